import { AsyncLocalStorage } from 'node:async_hooks';
import type { Server, ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { sameListing, type ToolView } from '../control/view.js';
import type { Principal } from '../model/principal.js';

/** Bounds on the notification streams an HTTP endpoint holds open (GET streams and `subscriptions/listen`). */
export interface StreamLimits {
  /** Open streams one caller (principal id) may hold. */
  perCaller: number;
  /** Open streams the endpoint holds in all. */
  total: number;
  /** A stream is ended (cleanly) after this long; the client opens a new one, authenticated again. */
  lifetimeMs: number;
  /** An SSE comment is written this often, so proxies and clients see the stream is alive. */
  keepAliveMs: number;
}

export const STREAM_DEFAULTS: StreamLimits = {
  perCaller: 16,
  total: 1024,
  lifetimeMs: 30 * 60_000,
  keepAliveMs: 15_000,
};

/** Who a listener is: the scopes decide its view. */
export type Caller = Pick<Principal, 'id' | 'scopes'> & { via?: Principal['via'] };

/** One open stream, counted against its caller and the endpoint until released. */
export interface StreamSlot {
  readonly caller: Caller;
  /** `subscriptions/listen`: the request's id (the subscription id); absent for a GET stream. */
  listenId?: string | number;
  /** Idempotent. */
  release(): void;
}

interface Listener {
  caller: Caller;
  /** The view the caller was last told of (or started listening with): compared, not hashed, on a change. */
  seen: ToolView;
  tell(): void;
}

/**
 * Tool-list change notices, per caller. Everyone who may be told of a change registers here: each
 * stdio connection, each 2025-11-25 GET stream and each 2026-07-28 `subscriptions/listen` stream
 * (through `bus`, the SDK's seam for listen streams). On every change of what is served (the
 * controller's `onChange`: toggles, kill switch, approvals, policy and spec reloads, and changes
 * another instance made in the shared state) a listener is told only when the tools listed for
 * its own scopes changed: a toggle of a tool it cannot see tells it nothing, not even that
 * something changed.
 */
export class ListChanges {
  private readonly listeners = new Set<Listener>();
  private readonly byCaller = new Map<string, number>();
  private openCount = 0;
  /** The stream being opened in this async context: the SDK subscribes a listen stream without saying for whom. */
  private readonly opening = new AsyncLocalStorage<StreamSlot>();
  readonly limits: StreamLimits;

  /**
   * The SDK's listen streams subscribe here (`createMcpHandler({ bus })`). A subscription belongs to
   * the stream slot of the request that opened it; one without a slot (never expected) is never told.
   */
  readonly bus: ServerEventBus = {
    publish: (event: ServerEvent) => {
      if (event.kind === 'tools_list_changed') this.changed();
    },
    subscribe: (deliver: (event: ServerEvent) => void) => {
      const slot = this.opening.getStore();
      if (!slot) {
        this.o.warn?.('a listen stream opened outside a stream slot: it will not be told of changes');
        return () => {};
      }
      return this.listen(slot.caller, () => deliver({ kind: 'tools_list_changed' }));
    },
  };

  constructor(
    private readonly o: {
      view: () => ToolView;
      limits?: Partial<StreamLimits>;
      warn?: (msg: string) => void;
    },
  ) {
    this.limits = { ...STREAM_DEFAULTS, ...o.limits };
  }

  /**
   * A slot for one more stream, or which bound refuses it. `from` (the remote address) splits the
   * callers that share one id — anonymous ones — so one of them cannot use up the bucket of all.
   */
  claim(caller: Caller, from?: string): StreamSlot | 'caller' | 'total' {
    const bucket = caller.via === 'anonymous' && from !== undefined ? `${caller.id}@${from}` : caller.id;
    const mine = this.byCaller.get(bucket) ?? 0;
    if (mine >= this.limits.perCaller) return 'caller';
    if (this.openCount >= this.limits.total) return 'total';
    this.byCaller.set(bucket, mine + 1);
    this.openCount++;
    let released = false;
    return {
      caller,
      release: () => {
        if (released) return;
        released = true;
        this.openCount--;
        const left = (this.byCaller.get(bucket) ?? 1) - 1;
        if (left > 0) this.byCaller.set(bucket, left);
        else this.byCaller.delete(bucket);
      },
    };
  }

  /** Runs `fn` as the opening of `slot`'s stream: a listen subscription made inside is that caller's. */
  within<T>(slot: StreamSlot, fn: () => T): T {
    return this.opening.run(slot, fn);
  }

  /** The slot of the stream being opened in this async context, if any. */
  current(): StreamSlot | undefined {
    return this.opening.getStore();
  }

  /** Tells `tell` whenever `caller`'s view changes from what it is now; returns the unsubscribe. */
  listen(caller: Caller, tell: () => void): () => void {
    const l: Listener = { caller, seen: this.o.view(), tell };
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /** What is served changed: each listener whose own view differs from what it last saw is told. */
  changed(): void {
    if (this.listeners.size === 0) return;
    const view = this.o.view();
    for (const l of [...this.listeners]) {
      const same = sameListing(l.seen, view, l.caller.scopes);
      l.seen = view;
      if (same) continue;
      try {
        l.tell();
      } catch {
        /* one listener's failure must not keep the others from hearing */
      }
    }
  }

  /** Stdio: each server built for the connection hears about `caller`'s view (servers are let go freely). */
  stdio(caller: Caller): (server: Server) => void {
    return (server) => {
      const ref = new WeakRef(server);
      const stop = this.listen(caller, () => {
        const s = ref.deref();
        if (!s) stop();
        else void s.sendToolListChanged().catch(stop);
      });
    };
  }

  /** Open streams (in all) and listeners (streams and stdio servers), for tests and the report. */
  get counts(): { streams: number; listeners: number } {
    return { streams: this.openCount, listeners: this.listeners.size };
  }
}
