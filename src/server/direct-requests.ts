import {
  isJSONRPCRequest,
  type JSONRPCMessage,
  parseJSONRPCMessage,
  type Server,
  type Transport,
} from '@modelcontextprotocol/server';

type Router = NonNullable<Transport['onmessage']>;

/** Messages `parseMessage` produced: the SDK's JSON-RPC message schema has just accepted each. */
const parsed = new WeakSet<object>();

/**
 * The SDK's `parseJSONRPCMessage`, its result remembered, for a transport of ours that parses what
 * it reads (stdio-frames.ts). The message schema is a union of four strict schemas: a notification
 * has no `id`, a response no `method`, so a message it accepted that has a string `method` and an
 * `id` is a request, and directRequests dispatches it without parsing it against the request schema
 * again (one zod parse per stdio request, issue 22). Throws as `parseJSONRPCMessage` does.
 */
export function parseMessage(value: unknown): JSONRPCMessage {
  const message = parseJSONRPCMessage(value);
  parsed.add(message);
  return message;
}

/**
 * The server, with requests routed past the connection's message router. Once connected, the SDK's
 * router sorts every message by schema parses in a fixed order: a response, an error, then a request.
 * All four JSON-RPC schemas are strict, and a request has a string `method`, a key neither response
 * schema admits, so a message that parses as a request fails both response parses (two failing zod
 * parses, ~8 µs a message: every stdio `tools/call` paid them). Such a message goes to the server's
 * request dispatch directly, as the router would send it after those two failures; anything else
 * (a response, a notification, a malformed message) still goes through the router as before. The
 * HTTP fast lane (fast-lane.ts) enters the dispatch the same way. Left as it is when the SDK has no
 * such entry point, or when the transport already had a handler the router would call first.
 */
export function directRequests<S extends Server>(server: S): S {
  const entry = server as unknown as { _onrequest?: (message: unknown, extra: unknown) => void };
  if (typeof entry._onrequest !== 'function') return server;
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport): Promise<void> => {
    const prior = transport.onmessage;
    await connect(transport);
    const router: Router | undefined = transport.onmessage;
    if (prior !== undefined || router === undefined) return;
    transport.onmessage = (message, extra) => {
      const m = message as { method?: unknown; id?: unknown } | null;
      // Cheap necessary conditions first (a request has both); the schema parse decides, unless
      // `parseMessage` has just made it (then the message schema did).
      if (
        m !== null &&
        typeof m === 'object' &&
        typeof m.method === 'string' &&
        m.id !== undefined &&
        (parsed.has(m) || isJSONRPCRequest(message))
      )
        entry._onrequest!(message, extra);
      else router(message, extra);
    };
  };
  return server;
}
