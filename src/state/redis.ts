import { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';
import type { KillSwitch, ReplayGuard, RuntimeSnapshot, StateStore, Toggle } from '../model/state.js';

export interface RedisStateOptions {
  url: string;
  prefix: string;
  /** Told when Redis becomes unreachable or comes back (logged once per change, exposed as a metric). */
  onDegraded?: (degraded: boolean) => void;
  /** Fallback poll, in case a pub/sub message was missed while disconnected. */
  pollMs?: number;
}

export interface RedisState extends StateStore, ReplayGuard {
  /** The client, for the shared rate limiter. */
  client: Redis;
  degraded(): boolean;
  /** For readiness: connected, and Redis answers PING (one at a time). */
  reachable(): Promise<boolean>;
}

/**
 * Runtime state shared by every instance: toggles (a hash), the kill switch (a key) and used
 * confirmation tokens (`SET NX PX`, so a token works once across all instances). Changes are
 * published on a channel and applied by every instance within moments; readers use the local
 * snapshot, so the hot path never waits on Redis. While Redis is unreachable the last known state
 * holds, writes of state fail, and confirmation tokens are refused (fail closed).
 */
export async function createRedisState(o: RedisStateOptions): Promise<RedisState> {
  const common = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (n: number) => Math.min(2000, 100 * 2 ** Math.min(n, 5)),
  };
  const client = new Redis(o.url, common);
  const sub = new Redis(o.url, common);
  const k = (name: string) => `${o.prefix}:${name}`;
  let kill: KillSwitch = 'none';
  let toggles = new Map<string, Toggle>();
  let pins = new Map<string, string>();
  const listeners: Array<() => void> = [];
  let degraded = false;
  const setDegraded = (d: boolean) => {
    if (d === degraded) return;
    degraded = d;
    o.onDegraded?.(d);
  };
  client.on('error', () => setDegraded(true));
  client.on('ready', () => {
    setDegraded(false);
    void load();
  });
  client.on('close', () => setDegraded(true));
  sub.on('error', () => {});

  const load = async () => {
    try {
      const [t, ks, p] = await Promise.all([
        client.hgetall(k('toggles')),
        client.get(k('kill')),
        client.hgetall(k('pins')),
      ]);
      const next = new Map<string, Toggle>();
      for (const [name, v] of Object.entries(t)) if (v === 'enabled' || v === 'disabled') next.set(name, v);
      const nextKill: KillSwitch = ks === 'read-only' || ks === 'off' ? ks : 'none';
      let nextPins = new Map(Object.entries(p).filter(([, h]) => /^[0-9a-f]{64}$/.test(h)));
      if (nextPins.size === 0 && pins.size > 0) {
        // Redis lost its data (a restart without persistence): put back the approvals this instance
        // knew, rather than hide every tool until someone approves them all again.
        await client.hset(k('pins'), Object.fromEntries(pins));
        nextPins = pins;
      }
      const changed =
        nextKill !== kill ||
        next.size !== toggles.size ||
        [...next].some(([n, v]) => toggles.get(n) !== v) ||
        nextPins.size !== pins.size ||
        [...nextPins].some(([n, h]) => pins.get(n) !== h);
      toggles = next;
      kill = nextKill;
      pins = nextPins;
      if (changed) for (const l of listeners) l();
    } catch {
      setDegraded(true);
    }
  };

  try {
    await client.connect();
    await sub.connect();
  } catch (e) {
    client.disconnect();
    sub.disconnect();
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot reach Redis for the shared state: ${(e as Error).message}`,
    );
  }
  await sub.subscribe(k('changes'));
  sub.on('message', () => void load());
  await load();
  const poll = setInterval(() => void load(), o.pollMs ?? 5000);
  poll.unref();

  const publish = async () => {
    await client.publish(k('changes'), String(Date.now()));
  };
  const guard = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch {
      setDegraded(true);
      throw new WardenError(
        'STATE_UNAVAILABLE',
        'The shared state (Redis) cannot be reached; try again shortly.',
      );
    }
  };

  let pinging: Promise<boolean> | undefined;
  return {
    client,
    degraded: () => degraded,
    reachable() {
      if (client.status !== 'ready') return Promise.resolve(false);
      // One PING in flight at most: a Redis that hangs is asked once, not once per readiness probe.
      pinging ??= client
        .ping()
        .then(
          () => true,
          () => false,
        )
        .finally(() => {
          pinging = undefined;
        });
      return pinging;
    },
    snapshot: () => ({ kill, toggles: new Map(toggles) }) satisfies RuntimeSnapshot,
    async setToggle(tool, value) {
      await guard(async () => {
        if (value === undefined) await client.hdel(k('toggles'), tool);
        else await client.hset(k('toggles'), tool, value);
        await publish();
      });
      await load();
    },
    async setKill(value) {
      await guard(async () => {
        await client.set(k('kill'), value);
        await publish();
      });
      await load();
    },
    onChange(l) {
      listeners.push(l);
    },
    pins: {
      get: () => pins,
      async set(entries) {
        await guard(async () => {
          if (entries.size) await client.hset(k('pins'), Object.fromEntries(entries));
          await publish();
        });
        await load();
      },
    },
    async consume(id, expiresAt) {
      const ttl = Math.max(1, expiresAt - Date.now());
      const r = await guard(() => client.set(k(`confirm:${id}`), '1', 'PX', ttl, 'NX'));
      return r === 'OK';
    },
    async close() {
      clearInterval(poll);
      sub.disconnect();
      client.disconnect();
    },
  };
}
