import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  type AuthInfo,
  createMcpHandler,
  SERVER_INFO_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server';
import { buildView } from '../control/view.js';
import { type HttpError, replyHttpError } from '../errors/index.js';
import { tooDeep } from '../lib/json-depth.js';
import { listen } from '../lib/listen.js';
import { OAUTH_CALLBACK_PATH } from '../model/connection.js';
import { Health, isProbePath } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import { VERSION } from '../version.js';
import { type AuthOutcome, type Callers, carriedPrincipal, carryPrincipal } from './callers.js';
import { createFastLane, type FastLane, type SharedServerFactory } from './fast-lane.js';
import { ListChanges, type StreamSlot } from './list-changes.js';
import { toNodeHandler } from './node-handler.js';

export interface HttpOptions {
  /** With `modernShared` (createServerFactory does), the fast lane serves on one long-lived server. */
  factory: SharedServerFactory;
  logger: Logger;
  onAuthFailure?: (code: string) => void;
  /** Authenticates each request; built once the listening address (the resource URL) is known. */
  callers: (url: string) => Callers;
  port: number;
  /** Interface to bind; loopback unless the operator says otherwise. */
  host?: string;
  /** Host names accepted in `Host` (and `Origin`) headers; default: the loopback names. */
  allowedHosts?: string[];
  /** Largest request body read (default 1 MiB). */
  maxBodyBytes?: number;
  /** Deepest JSON nesting accepted in a request body (default 64). */
  maxJsonDepth?: number;
  /** Answers `/healthz` and `/readyz` (default: live, and ready with nothing to check). */
  health?: Health;
  /**
   * Who is told of tool-list changes, and the bounds on notification streams (default: a list that
   * never changes, with the default bounds).
   */
  changes?: ListChanges;
  /**
   * Per-user OAuth's browser pages (`/oauth/connect`, `/oauth/callback`; src/server/oauth-pages.ts):
   * the consent page and the return from the upstream's authorization server. Absent: the paths do not exist.
   */
  oauthCallback?: (
    req: IncomingMessage,
  ) => Promise<{ status: number; headers: Record<string, string | string[]>; body: string }>;
  /**
   * Serve well-formed 2026-07-28 `tools/call` and `tools/list` requests on the Node-native lane
   * (fast-lane.ts) instead of through the SDK's web adapter (default true). The answers are the
   * same; off is for the tests that compare the two.
   */
  fastLane?: boolean;
}

export interface RunningHttp {
  url: string;
  server: HttpServer;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const METADATA_PATH = '/.well-known/oauth-protected-resource';

export { OAUTH_CALLBACK_PATH };
export const OAUTH_CONNECT_PATH = '/oauth/connect';

/**
 * What every request passes before the SDK sees it, in this order, written here and nowhere else
 * (like the pipeline's stages). Each step may refuse; a later step never runs for a refused request.
 */
export const TRANSPORT_STEPS = [
  // First: only /mcp, the metadata document and the probes exist; any other path is refused before any work.
  'path',
  // Before the Host check: kubelets and load balancers probe with any Host, and the answer says only up or down.
  'probe',
  // Before anything else is answered: a foreign Host or Origin is a page using DNS rebinding to reach a local server.
  'host',
  // Public by design (RFC 9728): a client reads it to learn how to authenticate, so before authentication.
  'metadata',
  // Per-user OAuth's connect page and callback, before authentication: the browser carries no MCP credential; the flow's CSRF token and binding cookie are the checks.
  'callback',
  // Before the body is read: an unauthenticated caller costs no more than its headers.
  'authenticate',
  // Before parsing: the body is read only up to the cap, so its size bounds memory.
  'body',
  // Once, here: the later steps and the SDK see the very same value.
  'parse',
  // One message per request (MCP 2025-06-18 removed batches): one audit record per call.
  'batch',
  // Before the SDK walks the message: deep nesting would exhaust its recursion.
  'depth',
  // Once every other check passed: a stream held open (GET, subscriptions/listen) takes a slot, bounded per caller and in all.
  'stream',
  // The hot path: a well-formed 2026-07-28 tools/call or tools/list is served on one shared SDK server straight from Node, skipping the per-request server and the web Request/Response round trip.
  'lane',
  // Last: the SDK dispatches the one checked message (both protocol eras, stateless).
  'sdk',
] as const;

export type TransportStepName = (typeof TRANSPORT_STEPS)[number];

/** One request on its way through the steps; each step writes at most the field named for it. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly callers: Callers;
  /** path → which endpoint the request is for. */
  route?: 'mcp' | 'metadata' | 'probe' | 'callback';
  /** body → the request body (POST only). */
  body?: Buffer;
  /** parse → the JSON-RPC message. */
  message?: { value: unknown };
  /** stream → the slot a `subscriptions/listen` stream holds while the SDK serves it. */
  stream?: StreamSlot;
}

/** A step goes on (nothing), refuses (answered with the code's status), or has answered itself. */
type Verdict = undefined | 'answered' | (HttpError & { headers?: Record<string, string> });
type TransportStep = (x: Exchange) => Verdict | Promise<Verdict>;

/** The steps' implementations; the compiler checks there is one for every name in TRANSPORT_STEPS. */
function transportSteps(
  o: HttpOptions,
  handle: ReturnType<typeof toNodeHandler>,
  streams: Streams,
  lane: FastLane | undefined,
) {
  const maxBody = o.maxBodyBytes ?? 1024 * 1024;
  const maxDepth = o.maxJsonDepth ?? 64;
  const allowed = o.allowedHosts?.length ? o.allowedHosts : LOOPBACK_NAMES;
  const posted = (x: Exchange) => x.req.method === 'POST';
  const health = o.health ?? new Health();
  // The SDK's check parses the Host as a URL; a client sends the same few values again and again.
  const hostAllowed = remembered((host: string | undefined) => validateHostHeader(host, allowed).ok);
  const authenticated = (x: Exchange, auth: AuthOutcome): Verdict => {
    if (auth.ok) {
      // The SDK hands this to the server factory as `authInfo`; the caller's token is not kept.
      (x.req as IncomingMessage & { auth?: unknown }).auth = carryPrincipal(auth.principal);
      return;
    }
    // Failed authentication is worth seeing (guessing, expired keys), but never with the credential.
    o.onAuthFailure?.(auth.code);
    o.logger[auth.code === 'AUTH_REQUIRED' ? 'debug' : 'info'](
      { code: auth.code, remote: x.req.socket.remoteAddress },
      'mcp request refused: not authenticated',
    );
    return { code: auth.code, message: auth.message, headers: { 'www-authenticate': auth.challenge } };
  };
  const steps: Record<TransportStepName, TransportStep> = {
    path(x) {
      const path = pathOf(x.req);
      if (path.startsWith(METADATA_PATH)) x.route = 'metadata';
      else if (path === '/mcp') x.route = 'mcp';
      else if (isProbePath(path)) x.route = 'probe';
      else if ((path === OAUTH_CALLBACK_PATH || path === OAUTH_CONNECT_PATH) && o.oauthCallback)
        x.route = 'callback';
      else return { code: 'HTTP_NOT_FOUND', message: 'Not found. The MCP endpoint is /mcp.' };
    },
    // Steps that only some requests need return a promise only for those: an `async` step would
    // cost every request a promise and a tick.
    probe(x) {
      if (x.route !== 'probe') return;
      return health
        .answer(x.req, x.res, pathOf(x.req))
        .then(
          (answered): Verdict => (answered ? 'answered' : { code: 'HTTP_NOT_FOUND', message: 'Not found.' }),
        );
    },
    host(x) {
      // The same allow-list semantics as the SDK's middleware, answered with our code.
      if (!hostAllowed(x.req.headers.host))
        return { code: 'HTTP_FORBIDDEN_HOST', message: 'Forbidden: the Host header is not allowed.' };
      // The metadata document is public: browser-based clients may fetch it from any page.
      if (x.route === 'mcp' && !validateOriginHeader(x.req.headers.origin, allowed).ok)
        return { code: 'HTTP_FORBIDDEN_HOST', message: 'Forbidden: the Origin header is not allowed.' };
    },
    metadata(x) {
      if (x.route !== 'metadata') return;
      if (x.req.method !== 'GET' && x.req.method !== 'HEAD')
        return { code: 'HTTP_NOT_FOUND', message: 'Not found.' };
      x.res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      x.res.end(JSON.stringify(x.callers.metadata()));
      return 'answered';
    },
    callback(x) {
      if (x.route !== 'callback') return;
      return o.oauthCallback!(x.req).then((page): Verdict => {
        // The pages set their own headers (no-store, no referrer, CSP): their URLs carry capabilities.
        x.res.writeHead(page.status, page.headers);
        x.res.end(page.body);
        return 'answered';
      });
    },
    authenticate(x) {
      // Synchronous for anonymous and API-key callers; only a JWT's verification is awaited.
      const auth = x.callers.authenticate(x.req.headers);
      return auth instanceof Promise ? auth.then((a) => authenticated(x, a)) : authenticated(x, auth);
    },
    async body(x) {
      if (!posted(x)) return;
      const body = await readBody(x.req, maxBody);
      if (body === undefined)
        return { code: 'HTTP_BODY_TOO_LARGE', message: `Request body larger than ${maxBody} bytes.` };
      x.body = body;
    },
    parse(x) {
      if (x.body === undefined) return;
      try {
        x.message = { value: JSON.parse(x.body.toString('utf8')) };
      } catch {
        return { code: 'HTTP_PARSE_ERROR', message: 'Parse error: the body is not valid JSON.' };
      }
    },
    batch(x) {
      if (x.message && Array.isArray(x.message.value))
        return {
          code: 'HTTP_BAD_REQUEST',
          message: 'Batched JSON-RPC requests are not supported; send one message per request.',
        };
    },
    depth(x) {
      if (x.message && tooDeep(x.message.value, maxDepth))
        return { code: 'HTTP_BAD_REQUEST', message: `The JSON body nests deeper than ${maxDepth} levels.` };
    },
    stream(x) {
      const listenId = listenIdOf(x.message?.value);
      const get = x.req.method === 'GET' && acceptsEventStream(x.req);
      if (listenId === undefined && !get) return;
      const caller = carriedPrincipal((x.req as IncomingMessage & { auth?: AuthInfo }).auth);
      const slot = streams.changes.claim(caller, x.req.socket.remoteAddress);
      if (slot === 'caller' || slot === 'total') {
        o.logger.info({ principal: caller.id, bound: slot }, 'notification stream refused: too many open');
        const n = slot === 'caller' ? streams.changes.limits.perCaller : streams.changes.limits.total;
        return {
          code: 'HTTP_TOO_MANY_STREAMS',
          message:
            slot === 'caller'
              ? `Too many open notification streams for this caller (${n}); close one first.`
              : `Too many open notification streams on this server (${n}); retry later.`,
        };
      }
      if (listenId === undefined) {
        streams.serveGet(x.res, slot);
        return 'answered';
      }
      slot.listenId = listenId;
      x.stream = slot;
    },
    lane(x) {
      if (!lane || x.stream || !x.message) return;
      const auth = (x.req as IncomingMessage & { auth?: AuthInfo }).auth;
      // Synchronous once the lane's shared server is connected (fast-lane.ts).
      const served = lane.serve(x.req, x.res, x.message.value, auth);
      if (served === true) return 'answered';
      if (served === false) return;
      return served.then((s): Verdict => (s ? 'answered' : undefined));
    },
    async sdk(x) {
      const slot = x.stream;
      if (!slot) await handle(x.req, x.res, x.message?.value);
      else {
        // The SDK subscribes the listen stream inside this call; the slot says for whom. It is held
        // until the response ends (the handler returns once the stream is over).
        const done = streams.changes.within(slot, () => handle(x.req, x.res, x.message?.value));
        streams.track(done);
        await done.finally(slot.release);
      }
      return 'answered' as const;
    },
  };
  return steps;
}

/**
 * Streamable HTTP at `/mcp`. Both protocol eras are served statelessly from one factory, so any
 * instance can answer any request, once it has passed the TRANSPORT_STEPS above.
 */
export async function startHttp(o: HttpOptions): Promise<RunningHttp> {
  const host = o.host ?? '127.0.0.1';
  const changes = o.changes ?? new ListChanges({ view: () => NOTHING_SERVED });
  const mcp = createMcpHandler(o.factory, {
    legacy: 'stateless',
    maxRequestBodySize: o.maxBodyBytes ?? 1024 * 1024,
    onerror: (e) => o.logger.debug({ err: e.message }, 'mcp request rejected'),
    // Listen streams subscribe to the change notices of the caller whose slot opened them.
    bus: changes.bus,
    maxSubscriptions: changes.limits.total,
    keepAliveMs: changes.limits.keepAliveMs,
  });
  const streams = openStreams(changes);
  const lane =
    o.fastLane === false
      ? undefined
      : createFastLane({
          factory: o.factory,
          keepAliveMs: changes.limits.keepAliveMs,
          onerror: (e) => o.logger.debug({ err: e.message }, 'mcp request rejected'),
        });
  const steps = transportSteps(
    o,
    toNodeHandler({
      fetch: async (request, options) =>
        endingListen(await mcp.fetch(request, options), changes.current(), streams),
    }),
    streams,
    lane,
  );
  // The steps in their order, looked up once.
  const order = TRANSPORT_STEPS.map((name) => steps[name]);
  let callers: Callers | undefined;

  const server = createServer(async (req, res) => {
    try {
      // Not a step: until the listening address is known there is no resource to authenticate for.
      if (!callers) return refuse(req, res, { code: 'INTERNAL', message: 'Starting up; try again.' });
      const x: Exchange = { req, res, callers };
      for (const step of order) {
        // Most steps decide synchronously: only a promise is awaited (a tick saved per step).
        let verdict = step(x);
        if (verdict instanceof Promise) verdict = await verdict;
        if (verdict === 'answered') return;
        if (verdict) return refuse(req, res, verdict);
      }
    } catch (e) {
      o.logger.error({ err: (e as Error)?.message }, 'http request failed');
      if (!res.headersSent) refuse(req, res, { code: 'INTERNAL', message: 'Internal error.' });
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  const listening = await listen(server, o.port, host, { port: '--port', host: '--host' });
  const url = `${listening.origin}/mcp`;
  try {
    callers = o.callers(url);
  } catch (e) {
    await listening.close();
    throw e;
  }
  return {
    url,
    server,
    close: async () => {
      // Streams first, each ended cleanly (a client told the stream is over, not cut off), then the socket.
      await streams.close(async () => {
        await Promise.all([mcp.close(), lane?.close()]);
      });
      await listening.close();
    },
  };
}

/** No tools: what an endpoint started without a change source lists to everyone, for ever. */
const NOTHING_SERVED = buildView([], new Map(), { kill: 'none', toggles: new Map() }, 1);

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
const LIST_CHANGED_FRAME = `event: message\ndata: ${JSON.stringify({
  jsonrpc: '2.0',
  method: 'notifications/tools/list_changed',
})}\n\n`;
/** How soon a 2025-11-25 client opens a new GET stream once one ends (its lifetime): the SSE `retry` field. */
const RECONNECT_MS = 1000;
/** How long close waits for streams to flush their last frame before the sockets are dropped. */
const CLOSE_GRACE_MS = 2000;

/** The notification streams this endpoint holds open, so that close can end each one cleanly. */
interface Streams {
  changes: ListChanges;
  /** A 2025-11-25 client's standalone GET stream: only `notifications/tools/list_changed` is sent on it. */
  serveGet(res: ServerResponse, slot: StreamSlot): void;
  /** Counts a stream until `done` settles (close waits for it). */
  track(done: Promise<unknown>): void;
  /** A listen stream's lifetime: ends it gracefully when due (or at close). */
  bound(end: () => void): () => void;
  close(closeSdk: () => Promise<void>): Promise<void>;
}

function openStreams(changes: ListChanges): Streams {
  const { keepAliveMs, lifetimeMs } = changes.limits;
  const ends = new Set<() => void>();
  const pending = new Set<Promise<void>>();
  const track = (done: Promise<unknown>) => {
    const settled = done.then(
      () => {},
      () => {},
    );
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
  };
  const bound = (end: () => void) => {
    const timer = setTimeout(end, lifetimeMs);
    ends.add(end);
    return () => {
      clearTimeout(timer);
      ends.delete(end);
    };
  };
  return {
    changes,
    track,
    bound,
    serveGet(res, slot) {
      // Gone while an earlier step awaited (authentication): 'close' has fired already and would
      // never fire again, so the slot is given back here or never.
      if (res.destroyed) {
        slot.release();
        return;
      }
      res.writeHead(200, SSE_HEADERS);
      res.write(`retry: ${RECONNECT_MS}\n\n`);
      const write = (frame: string) => {
        if (!res.writableEnded && !res.destroyed) res.write(frame);
      };
      const stop = changes.listen(slot.caller, () => write(LIST_CHANGED_FRAME));
      const keepAlive =
        keepAliveMs > 0 ? setInterval(() => write(': keepalive\n\n'), keepAliveMs) : undefined;
      let finished: () => void = () => {};
      const done = new Promise<void>((resolve) => {
        finished = resolve;
      });
      let cleaned = false;
      // Once, whichever comes first: the client's close, or the stream's end at its lifetime.
      const cleanup = () => {
        if (cleaned) return;
        cleaned = true;
        clearInterval(keepAlive);
        unbound();
        stop();
        slot.release();
        finished();
      };
      // Ended, not cut: the client sees a finished stream and opens another (authenticated again).
      const unbound = bound(() => {
        if (!res.writableEnded) res.end();
        cleanup();
      });
      res.once('close', cleanup);
      track(done);
    },
    async close(closeSdk) {
      // The SDK ends its listen streams with the graceful result; GET streams end here.
      await closeSdk();
      for (const end of [...ends]) end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(pending),
        new Promise((r) => {
          timer = setTimeout(r, CLOSE_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/**
 * A `subscriptions/listen` stream, ended gracefully at its lifetime: the SDK's frames pass through as
 * they come, then the empty listen result (the spec's graceful close, which a client tells apart
 * from a dropped connection) and the end of the stream; the SDK's side is cancelled, so it unsubscribes.
 */
function endingListen(response: Response, slot: StreamSlot | undefined, streams: Streams): Response {
  const id = slot?.listenId;
  if (id === undefined || !response.body || !isEventStream(response.headers.get('content-type')))
    return response;
  const reader = response.body.getReader();
  let finished = false;
  let unbound = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      unbound = streams.bound(() => {
        if (finished) return;
        finished = true;
        controller.enqueue(new TextEncoder().encode(listenResultFrame(id)));
        controller.close();
        void reader.cancel().catch(() => {});
      });
    },
    async pull(controller) {
      const next = await reader.read();
      if (finished) return;
      if (next.done) {
        finished = true;
        unbound();
        controller.close();
      } else controller.enqueue(next.value);
    },
    cancel(reason) {
      finished = true;
      unbound();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

/** The empty `subscriptions/listen` result: the server ended the subscription on purpose. */
function listenResultFrame(id: string | number): string {
  const result = {
    resultType: 'complete',
    _meta: {
      [SUBSCRIPTION_ID_META_KEY]: id,
      [SERVER_INFO_META_KEY]: { name: 'mcp-warden', version: VERSION },
    },
  };
  return `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result })}\n\n`;
}

/** The id of a `subscriptions/listen` request (a stream the SDK will hold open), if this is one. */
function listenIdOf(message: unknown): string | number | undefined {
  const m = message as { method?: unknown; id?: unknown } | null | undefined;
  if (m?.method !== 'subscriptions/listen') return undefined;
  return typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
}

function acceptsEventStream(req: IncomingMessage): boolean {
  return isEventStream(req.headers.accept);
}

function isEventStream(value: string | null | undefined): boolean {
  return (value ?? '').toLowerCase().includes('text/event-stream');
}

/**
 * A pure check of a header value, remembered for the values already seen (at most 256: a client
 * that sends a new value with every request only gets the check done each time).
 */
function remembered(check: (value: string | undefined) => boolean): (value: string | undefined) => boolean {
  const seen = new Map<string | undefined, boolean>();
  return (value) => {
    let ok = seen.get(value);
    if (ok === undefined) {
      ok = check(value);
      if (seen.size < 256) seen.set(value, ok);
    }
    return ok;
  };
}

/** A refusal: the rest of the body is drained (the connection stays usable), then the JSON-RPC error. */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  v: HttpError & { headers?: Record<string, string> },
) {
  req.resume();
  replyHttpError(res, 'json-rpc', v, v.headers);
}

/** The request's path: its URL without the query. */
function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Reads the body, or `undefined` once it passes `max` bytes (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      // A small body arrives in one chunk: used as it is, not copied.
      if (!over) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}
