import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  type AuthInfo,
  classifyInboundRequest,
  type InboundModernRoute,
  isJSONRPCRequest,
  isJsonContentType,
  type JSONRPCMessage,
  type McpServerFactory,
  PerRequestHTTPServerTransport,
  PROTOCOL_VERSION_META_KEY,
  SdkError,
  SdkErrorCode,
  Server,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';

/**
 * The 2026-07-28 revisions served here: the SDK's modern-era list (not exported). A request naming
 * any other goes to the SDK's handler, which answers it (unsupported version).
 */
export const MODERN_REVISIONS: readonly string[] = ['2026-07-28'];

/** The hot methods: one POST, one answer, no stream held open. */
const LANE_METHODS = new Set(['tools/call', 'tools/list']);

/** `=?base64?…?=`: an encoded `Mcp-Name`; the SDK decodes and checks it, so such a request is not taken. */
const BASE64_SENTINEL = /^=\?base64\?.*\?=$/;

/**
 * Set on the `requestInfo` of a request served by the lane's shared server: the JSON-RPC id the
 * client sent (the shared server sees a lane-unique id instead, so that concurrent requests that
 * reuse an id do not meet inside it).
 */
export const LANE_REQUEST_ID: unique symbol = Symbol.for('mcp-warden.lane-request-id');

/**
 * A server factory that can also build one long-lived 2026-07-28 server for every request the lane
 * takes: its handlers read the caller (`ctx.http.authInfo`) and the HTTP request (`ctx.http.req`)
 * per request instead of capturing them at construction (createServerFactory in mcp.ts).
 */
export type SharedServerFactory = McpServerFactory & { modernShared?: () => Server };

/** The SDK's HTTP statuses for errors raised before a handler runs (its `LADDER_ERROR_HTTP_STATUS`, not exported). */
const LADDER_STATUS: Readonly<Record<number, number>> = {
  [-32700]: 400,
  [-32600]: 400,
  [-32601]: 404,
  [-32022]: 400,
  [-32021]: 400,
  [-32020]: 400,
};
const MISSING_CLIENT_CAPABILITY = -32021;

export interface FastLaneOptions {
  factory: SharedServerFactory;
  keepAliveMs?: number;
  /** Told of a request that failed inside the SDK (the answer is the SDK's own 500). */
  onerror?: (e: Error) => void;
}

export interface FastLane {
  /**
   * The request, served, when it is one the lane takes (a well-formed 2026-07-28 `tools/call` or
   * `tools/list` whose standard headers agree with its body); `false` (nothing written) otherwise.
   * Decided synchronously once the shared server is connected (no promise, no tick per request).
   */
  serve(
    req: IncomingMessage,
    res: ServerResponse,
    message: unknown,
    authInfo: AuthInfo | undefined,
  ): boolean | Promise<boolean>;
  /** Tears down the exchanges still in flight (close of the endpoint). */
  close(): Promise<void>;
}

/**
 * The Node-native lane for the hot path. The SDK's `createMcpHandler` serves a Node request through
 * web objects: the already parsed body is serialised again into a web `Request`, classified, served
 * on a per-request transport whose answer is a web `Response`, and streamed back chunk by chunk.
 * Here the same SDK building blocks (`classifyInboundRequest`, the server factory,
 * `PerRequestHTTPServerTransport`: the protocol stays the SDK's) are driven straight from the Node
 * request, with the body parsed once. The lane only takes what it can answer exactly as the SDK's
 * handler would: anything else (other methods, notifications, the 2025 era, any header the SDK
 * would refuse or has to decode) returns `false` and goes to the SDK's handler unchanged.
 *
 * When the factory offers `modernShared` (createServerFactory does), every request the lane takes
 * is served on that one long-lived server instead (SharedTransport below): no server built,
 * connected and closed per request, no web `Response`, the answer written once.
 *
 * It needs of the factory what createServerFactory (mcp.ts) does: a low-level `Server` (an
 * `McpServer` goes to the SDK's handler, which runs its scope and parameter-header checks); a modern-era server lists the
 * modern revision (so connecting binds it; otherwise the request goes to the SDK's handler), and
 * reads the client's identity from the request's envelope, not from the deprecated
 * `getClientVersion`/`getClientCapabilities`, which the SDK's handler fills in and the lane does not.
 */
export function createFastLane(o: FastLaneOptions): FastLane {
  const inflight = new Set<Server>();
  let closed = false;
  const report = (e: unknown) => {
    try {
      o.onerror?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // A broken reporter must not break the answer.
    }
  };
  // One long-lived server for every request the lane takes, when the factory offers one (mcp.ts):
  // no server built, connected and closed per request. `undefined` until first used; `false` when
  // it cannot serve (it does not bind the modern revision): then each request gets its own, as below.
  const shared = o.factory.modernShared;
  let sharedLane: Promise<SharedTransport | false> | undefined;
  // The shared transport once connected: every later request is dispatched without awaiting it again.
  let sharedReady: SharedTransport | undefined;
  const openShared = (route: ModernRequestRoute): Promise<SharedTransport | false> => {
    sharedLane ??= (async () => {
      const server = shared!();
      const transport = new SharedTransport({
        classification: route.classification,
        ...(o.keepAliveMs !== undefined ? { keepAliveMs: o.keepAliveMs } : {}),
      });
      transport.onerrorReport = report;
      await server.connect(transport);
      if (server.getNegotiatedProtocolVersion() !== route.classification.revision) {
        await server.close().catch(() => {});
        return false;
      }
      transport.server = server;
      // What the SDK reports of a request it could not serve (as its handler's `onerror` does).
      server.onerror = report;
      sharedReady = transport;
      return transport;
    })().catch((e: unknown) => {
      // A server that cannot be connected is not shared: each request gets its own, as before.
      report(e);
      return false as const;
    });
    return sharedLane;
  };
  // The lane until the shared server is connected (or without one): a promise per request.
  const serveAwaiting = async (
    req: IncomingMessage,
    res: ServerResponse,
    route: ModernRequestRoute,
    authInfo: AuthInfo | undefined,
  ): Promise<boolean> => {
    if (shared) {
      const transport = await openShared(route);
      if (transport) {
        if (res.destroyed) return true;
        return transport.dispatch(req, res, route, authInfo);
      }
    }
    const abort = new ExchangeSignal();
    let finished = false;
    res.once('close', () => {
      if (!finished) abort.abort();
    });
    const request = nodeRequestInfo(req, abort as unknown as AbortSignal);
    let server: Server | undefined;
    try {
      const product = await o.factory({
        era: 'modern',
        ...(authInfo !== undefined ? { authInfo } : {}),
        requestInfo: request,
      });
      // An McpServer gets checks of its own in the SDK's handler (scope challenges, x-mcp-header
      // parameters): it is left to that handler.
      if (!(product instanceof Server)) {
        finished = true;
        await product.close().catch(() => {});
        return false;
      }
      server = product;
      if (server.transport !== undefined)
        throw new Error('The factory returned a server that is still serving.');
      inflight.add(server);
      const done = server;
      const previous = server.onclose;
      server.onclose = () => {
        inflight.delete(done);
        previous?.();
      };
      const transport = new NodeExchangeTransport({
        classification: route.classification,
        ...(o.keepAliveMs !== undefined ? { keepAliveMs: o.keepAliveMs } : {}),
      });
      transport.expected = route.message.id;
      // Connecting binds the instance to the classified revision when the factory lists it for the
      // modern era (ours does). One that does not is left to the SDK's handler, which binds it itself.
      await server.connect(transport);
      if (server.getNegotiatedProtocolVersion() !== route.classification.revision) {
        finished = true;
        await server.close().catch(() => {});
        return false;
      }
      const response = await transport.handleMessage(route.message, {
        request,
        ...(authInfo !== undefined ? { authInfo } : {}),
      });
      await writeResponse(res, response, abort, transport.answer);
    } catch (e) {
      // The SDK's own answers: a client gone before the result (499), anything else a 500 with the id.
      if (e instanceof SdkError && e.code === SdkErrorCode.ConnectionClosed) {
        if (!res.headersSent) res.writeHead(499).end();
      } else {
        if (server) {
          inflight.delete(server);
          await server.close().catch(() => {});
        }
        report(e);
        if (!res.headersSent) {
          const body = JSON.stringify({
            jsonrpc: '2.0',
            error: { code: -32603, message: 'Internal server error' },
            id: route.message.id,
          });
          res.writeHead(500, { 'content-type': 'application/json' }).end(body);
        } else res.destroy();
      }
    } finally {
      finished = true;
    }
    return true;
  };
  return {
    serve(req, res, message, authInfo) {
      if (closed) return false;
      const route = takes(req, message, sharedReady !== undefined);
      if (!route) return false;
      // The client left while an earlier step was still running (a JWKS fetch…): as the SDK's
      // handler does, nothing is dispatched — a write it abandoned must not reach the upstream.
      if (res.destroyed) return true;
      if (sharedReady) return sharedReady.dispatch(req, res, route, authInfo);
      return serveAwaiting(req, res, route, authInfo);
    },
    async close() {
      closed = true;
      const closing = [...inflight].map((s) => s.close().catch(() => {}));
      inflight.clear();
      const open = await sharedLane;
      if (open) closing.push(open.server!.close().catch(() => {}));
      await Promise.all(closing);
    },
  };
}

type ModernRequestRoute = Extract<InboundModernRoute, { messageKind: 'request' }> & {
  /**
   * Routed without `classifyInboundRequest` (see `takes`): its envelope is checked by the SDK's
   * dispatch only, and a request refused there goes to the SDK's handler, which answers it.
   */
  unclassified?: true;
};

/**
 * The modern route of a request the lane takes, or `undefined` for the SDK's handler.
 *
 * `shared`: the shared server is connected, so a request can be routed without
 * `classifyInboundRequest`, whose cost (~13 µs, ~30 in a loaded server) is mostly two parses that
 * cannot succeed here: the response schemas are strict, and the body has a `method`. What else it
 * decides for such a body is decided here on the same values — a JSON-RPC request (the SDK's own
 * `isJSONRPCRequest`), the envelope's claimed revision equal to the header's and served, the method
 * header equal to the body's — except the envelope's validity: the SDK's dispatch checks the same
 * envelope keys against the same schema (`checkInboundEnvelope`); `_meta.progressToken`, which only
 * the classifier checks, sends the request the classified way. A request the dispatch refuses
 * before its handler runs is handed to the SDK's handler, whose answer is then the classifier's.
 */
function takes(req: IncomingMessage, message: unknown, shared: boolean): ModernRequestRoute | undefined {
  if (req.method !== 'POST' || !isJsonContentType(req.headers['content-type'] ?? null)) return undefined;
  const m = message as { method?: unknown; id?: unknown; params?: unknown } | null;
  if (m === null || typeof m !== 'object' || typeof m.method !== 'string' || !LANE_METHODS.has(m.method))
    return undefined;
  if (typeof m.id !== 'string' && typeof m.id !== 'number') return undefined;
  const protocolVersionHeader = header(req.headers, 'mcp-protocol-version');
  const mcpMethodHeader = header(req.headers, 'mcp-method');
  const mcpNameHeader = header(req.headers, 'mcp-name');
  // Every standard header present and equal to what the body says; a missing or different one is
  // the SDK's to refuse, with its own error.
  if (mcpMethodHeader !== m.method || protocolVersionHeader === undefined) return undefined;
  if (m.method === 'tools/call') {
    const name = (m.params as { name?: unknown } | undefined)?.name;
    if (typeof name !== 'string' || mcpNameHeader !== name || BASE64_SENTINEL.test(name)) return undefined;
  }
  if (shared && MODERN_REVISIONS.includes(protocolVersionHeader) && !Array.isArray(m)) {
    const meta = plainObject(m.params) ? m.params._meta : undefined;
    if (
      plainObject(meta) &&
      meta[PROTOCOL_VERSION_META_KEY] === protocolVersionHeader &&
      !('progressToken' in meta) &&
      isJSONRPCRequest(m)
    )
      return {
        kind: 'modern',
        messageKind: 'request',
        message: m as ModernRequestRoute['message'],
        classification: { era: 'modern', revision: protocolVersionHeader },
        unclassified: true,
      };
  }
  const route = classifyInboundRequest({
    httpMethod: 'POST',
    protocolVersionHeader,
    mcpMethodHeader,
    ...(mcpNameHeader !== undefined ? { mcpNameHeader } : {}),
    body: message,
  });
  if (route.kind !== 'modern' || route.messageKind !== 'request') return undefined;
  const revision = route.classification.revision;
  if (revision === undefined || revision !== protocolVersionHeader || !MODERN_REVISIONS.includes(revision))
    return undefined;
  return route;
}

function plainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * What the SDK and the server factory read of the HTTP request (`requestInfo`: method, URL,
 * headers, the abort signal), read from the Node request as needed instead of copied into a web
 * `Request` up front. Only a request the lane takes gets one; its body is already parsed.
 */
export function nodeRequestInfo(
  req: IncomingMessage,
  signal: AbortSignal,
  requestId?: string | number,
): Request {
  return new NodeRequestInfo(req, signal, requestId) as unknown as Request;
}

/**
 * nodeRequestInfo's object: a class, so that each request costs one allocation of a known shape
 * (an object literal with a spread and accessors was built property by property, per request).
 */
class NodeRequestInfo {
  readonly method: string;
  readonly [LANE_REQUEST_ID]: string | number | undefined;
  readonly signal: AbortSignal;
  readonly #req: IncomingMessage;
  #headers: Headers | undefined;
  constructor(req: IncomingMessage, signal: AbortSignal, requestId: string | number | undefined) {
    this.method = req.method ?? 'POST';
    this.signal = signal;
    this[LANE_REQUEST_ID] = requestId;
    this.#req = req;
  }
  get url(): string {
    return `http://${header(this.#req.headers, 'host') ?? 'localhost'}${this.#req.url ?? '/'}`;
  }
  get headers(): Headers {
    this.#headers ??= webHeaders(this.#req.headers);
    return this.#headers;
  }
}

/** The Node request's headers as web `Headers` (the shape the SDK's `requestInfo` promises), once asked. */
function webHeaders(h: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined || name.startsWith(':')) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.set(name, value);
  }
  return out;
}

/**
 * The SDK's answer, written to the Node response: a JSON body in one write (its length known), an
 * event stream chunk by chunk as the SDK produces it, honouring backpressure, until the client goes.
 */
async function writeResponse(
  res: ServerResponse,
  response: Response,
  signal: ExchangeSignal,
  answer: JSONRPCMessage | undefined,
): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  if (response.body === null) {
    res.writeHead(response.status, headers).end();
    return;
  }
  if (!(headers['content-type'] ?? '').startsWith('text/event-stream')) {
    // The SDK built this body as JSON.stringify(answer) (Response.json): the same bytes, without
    // reading them back out of the web stream.
    const body =
      answer !== undefined ? Buffer.from(JSON.stringify(answer)) : Buffer.from(await response.arrayBuffer());
    headers['content-length'] = String(body.length);
    res.writeHead(response.status, headers).end(body);
    return;
  }
  res.writeHead(response.status, headers);
  res.flushHeaders();
  const reader = response.body.getReader();
  const gone = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), gone.then(() => undefined)]);
      if (next === undefined || next.done) break;
      if (!res.write(next.value))
        await Promise.race([new Promise<void>((resolve) => res.once('drain', () => resolve())), gone]);
    }
  } catch {
    // The stream failed or was cancelled: end what was written.
  } finally {
    if (signal.aborted) await reader.cancel().catch(() => {});
    res.end();
  }
}

/**
 * The SDK's per-request transport, unchanged, except that it keeps the terminal message it sends
 * (the result or error the SDK turns into the JSON body), so the lane writes that body directly.
 */
class NodeExchangeTransport extends PerRequestHTTPServerTransport {
  answer: JSONRPCMessage | undefined;
  /** The id of the request served: the SDK settles only the answer that carries it. */
  expected: string | number | undefined;
  override send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    // A plain shape check (the SDK's guards are schema parses): only a terminal answer carries an
    // id with a result or an error and no method; the body is used only if the SDK answered in JSON.
    const m = message as { id?: unknown; method?: unknown; result?: unknown; error?: unknown };
    if (
      this.answer === undefined &&
      m.method === undefined &&
      m.id === this.expected &&
      (m.result !== undefined || m.error !== undefined)
    )
      this.answer = message;
    return super.send(message, options);
  }
}

/**
 * The abort signal of one exchange (the client went away): what the SDK's per-request transport
 * uses of an `AbortSignal` (`aborted`, `reason`, `abort` listeners), without the cost of an
 * `AbortController` per request. Nothing else sees it: handlers get the SDK's own signal.
 */
class ExchangeSignal {
  aborted = false;
  reason: unknown;
  private listeners: Array<() => void> = [];
  addEventListener(type: string, listener: () => void): void {
    if (type === 'abort' && !this.aborted) this.listeners.push(listener);
  }
  removeEventListener(type: string, listener: () => void): void {
    if (type === 'abort') this.listeners = this.listeners.filter((l) => l !== listener);
  }
  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new DOMException('The client closed the connection.', 'AbortError');
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }
}

/** One request in flight on the shared server: where its answer goes. */
interface SharedExchange {
  readonly res: ServerResponse;
  /** The id the client sent (the server saw a lane-unique one). */
  readonly id: string | number;
  /** Set once a message before the answer turned the response into an event stream. */
  keepAlive?: NodeJS.Timeout | 'none';
  /** An unclassified request refused before its handler ran: nothing is written, the SDK's handler answers. */
  handBack?: boolean;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * The transport of the lane's shared server: one SDK `Protocol` connection that many HTTP exchanges
 * use at once. Each request gets a lane-unique JSON-RPC id on its way in (clients reuse ids: every
 * SDK client starts at 0 or 1), and its answer is routed back by that id and written with the
 * client's id, exactly as the SDK's per-request transport would answer it: JSON in one write, the
 * SDK's ladder statuses for errors raised before a handler runs, an event stream once a message
 * precedes the answer (its keep-alive comments included). A client that goes away aborts its
 * handler (as closing a per-request transport does) and nothing more is written for it.
 *
 * It extends the SDK's per-request transport only so that connecting binds the server to the
 * classified 2026-07-28 revision, as the SDK's handler does; its single-exchange methods are not used.
 */
class SharedTransport extends PerRequestHTTPServerTransport {
  server: Server | undefined;
  onerrorReport: ((e: unknown) => void) | undefined;
  private readonly exchanges = new Map<number, SharedExchange>();
  private next = 0;
  /**
   * Set while a request is handed to the server synchronously: an error sent then is the SDK's
   * ladder ('unclassified': the request goes back to the SDK's handler instead, which answers it).
   */
  private window: boolean | 'unclassified' = false;
  /** The lane id of the request handed over in the window. */
  private windowId = 0;
  private readonly keepAliveMs: number;

  constructor(o: ConstructorParameters<typeof PerRequestHTTPServerTransport>[0]) {
    super(o);
    this.keepAliveMs = o.keepAliveMs ?? 15_000;
  }

  override handleMessage(): Promise<Response> {
    throw new Error('The shared lane transport serves requests through dispatch().');
  }

  /**
   * Serves the request; `false` when an unclassified one was refused before its handler ran
   * (nothing written: the caller hands it to the SDK's handler).
   */
  dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    route: ModernRequestRoute,
    authInfo?: AuthInfo,
  ): boolean {
    const message = route.message;
    const internal = ++this.next;
    const exchange: SharedExchange = { res, id: message.id };
    this.exchanges.set(internal, exchange);
    const onClose = () => {
      if (!this.exchanges.delete(internal)) return;
      // Gone before its answer: the handler's signal is aborted as a closed per-request transport
      // aborts it (the SDK then drops the handler's answer), and a stream is stopped.
      if (exchange.keepAlive !== undefined && exchange.keepAlive !== 'none')
        clearInterval(exchange.keepAlive);
      this.abortHandler(internal);
    };
    // `on`, not `once`: 'close' fires once, and `once` wraps each listener in a closure of its own.
    res.on('close', onClose);
    const request = nodeRequestInfo(req, NEVER_ABORTED, message.id);
    // authInfo may be undefined: the SDK reads it as `extra?.authInfo ? … : undefined`.
    const extra = { classification: route.classification, request, authInfo };
    this.window = route.unclassified ? 'unclassified' : true;
    this.windowId = internal;
    try {
      // classifyInboundRequest (or, unclassified, the SDK's isJSONRPCRequest in `takes`) has just
      // checked the body against the SDK's JSON-RPC request schema: it goes to the server's request dispatch
      // directly, not through the connection's message router, which would parse it against the
      // response, error and request schemas again. Without that entry point, the router.
      const dispatch = (this.server as unknown as { _onrequest?: (m: unknown, e: unknown) => void })
        ?._onrequest;
      if (typeof dispatch === 'function') dispatch.call(this.server, { ...message, id: internal }, extra);
      else this.onmessage?.({ ...message, id: internal } as JSONRPCMessage, extra as never);
    } catch (e) {
      this.exchanges.delete(internal);
      this.onerrorReport?.(e);
      if (!res.headersSent)
        writeJson(res, 500, {
          jsonrpc: '2.0',
          error: { code: -32603, message: 'Internal server error' },
          id: message.id,
        });
    } finally {
      this.window = false;
    }
    if (!exchange.handBack) return true;
    res.off('close', onClose);
    return false;
  }

  override async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as { id?: unknown; method?: unknown; result?: unknown; error?: { code?: unknown } };
    const answer = m.method === undefined && (m.result !== undefined || m.error !== undefined);
    const key = answer ? m.id : options?.relatedRequestId;
    const exchange = typeof key === 'number' ? this.exchanges.get(key) : undefined;
    if (exchange === undefined) {
      if (answer) this.onerror?.(new Error(`Received a response for an unknown request id: ${String(m.id)}`));
      return;
    }
    const { res } = exchange;
    if (!answer) {
      // A message before the answer (a notification of the call): the response becomes a stream.
      if (exchange.keepAlive === undefined) this.openStream(exchange);
      frame(res, message);
      return;
    }
    this.exchanges.delete(key as number);
    if (
      this.window === 'unclassified' &&
      key === this.windowId &&
      m.error !== undefined &&
      exchange.keepAlive === undefined
    ) {
      exchange.handBack = true;
      return;
    }
    const out = { ...message, id: exchange.id } as JSONRPCMessage;
    if (exchange.keepAlive !== undefined) {
      if (exchange.keepAlive !== 'none') clearInterval(exchange.keepAlive);
      frame(res, out);
      res.end();
      return;
    }
    const code = typeof m.error?.code === 'number' ? m.error.code : undefined;
    const ladder =
      code !== undefined && (this.window || code === MISSING_CLIENT_CAPABILITY)
        ? LADDER_STATUS[code]
        : undefined;
    writeJson(res, ladder ?? 200, out);
  }

  override async close(): Promise<void> {
    // The endpoint closes: the exchanges still waiting are ended as the SDK ends a closed per-request
    // transport's (499 when nothing was written yet), then the server's handlers are aborted.
    for (const [id, exchange] of this.exchanges) {
      this.exchanges.delete(id);
      if (exchange.keepAlive !== undefined && exchange.keepAlive !== 'none')
        clearInterval(exchange.keepAlive);
      if (!exchange.res.headersSent) exchange.res.writeHead(499).end();
      else exchange.res.end();
    }
    await super.close();
  }

  private openStream(exchange: SharedExchange): void {
    const { res } = exchange;
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    if (!Number.isFinite(this.keepAliveMs) || this.keepAliveMs < 1) {
      exchange.keepAlive = 'none';
      return;
    }
    const timer = setInterval(() => {
      if (!res.writableEnded && !res.destroyed) res.write(': keepalive\n\n');
    }, this.keepAliveMs);
    timer.unref?.();
    exchange.keepAlive = timer;
  }

  private abortHandler(internal: number): void {
    const controllers = (
      this.server as unknown as { _requestHandlerAbortControllers?: Map<unknown, AbortController> }
    )?._requestHandlerAbortControllers;
    controllers?.get(internal)?.abort(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'));
  }
}

/** The `requestInfo.signal` of the shared lane's requests: a handler is aborted through its own signal. */
const NEVER_ABORTED = new AbortController().signal;

function frame(res: ServerResponse, message: JSONRPCMessage): void {
  if (!res.writableEnded && !res.destroyed) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

function writeJson(res: ServerResponse, status: number, message: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  // The body stays a string: Node then sends it joined to the head in one write, where a Buffer is a
  // second chunk (a writev) and a copy; its length is counted in bytes, as the SDK's Response sends it.
  const body = JSON.stringify(message);
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    })
    .end(body);
}
