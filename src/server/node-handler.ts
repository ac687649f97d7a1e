import type { IncomingMessage, ServerResponse } from 'node:http';
import { toWebRequest } from '@modelcontextprotocol/node';
import type { AuthInfo } from '@modelcontextprotocol/server';

/** What `handler.fetch` is handed besides the request, as the SDK's own adapter hands it. */
interface FetchOptions {
  authInfo?: AuthInfo;
  parsedBody?: unknown;
}

type FetchHandler = { fetch(request: Request, options?: FetchOptions): Promise<Response> };

/**
 * The SDK's Node adapter (`toNodeHandler` of @modelcontextprotocol/node), with one difference: the
 * web `Request` is built without a `signal`, and the adapter's own abort signal is set on it as
 * `request.signal` instead. Given a signal, Node's `Request` follows it through a `WeakRef` and a
 * `FinalizationRegistry`, and V8's young-generation GC keeps whatever a `WeakRef` reaches alive: the
 * SDK hangs its per-request teardown (the request's `Server` and transport) on `request.signal`, so
 * every 2025-11-25 request's whole object graph was promoted to the old generation, which then grew
 * by megabytes a second between major GCs (the RSS plateau under 200 clients, bench/clients.mjs).
 * The signal handlers see is the same: aborted when the client goes away before the answer ends.
 */
export function toNodeHandler(
  handler: FetchHandler,
): (req: IncomingMessage, res: ServerResponse, parsedBody?: unknown) => Promise<void> {
  return async (req, res, parsedBody) => {
    let finished = false;
    const abort = new AbortController();
    res.on('close', () => {
      if (!finished) abort.abort();
    });
    if (res.destroyed) abort.abort();
    let response: Response;
    try {
      const request = await toWebRequest(req, parsedBody);
      // An own property shadows the prototype's getter: the handlers read this signal, no WeakRef made.
      Object.defineProperty(request, 'signal', { value: abort.signal, configurable: true });
      const auth = (req as IncomingMessage & { auth?: AuthInfo }).auth;
      response = await handler.fetch(request, {
        ...(auth !== undefined ? { authInfo: auth } : {}),
        ...(parsedBody !== undefined ? { parsedBody } : {}),
      });
    } catch (error) {
      // As the SDK's adapter: an oversized body is a 413, anything else a JSON-RPC internal error.
      response =
        (error as { name?: unknown })?.name === 'RequestBodyTooLargeError'
          ? Response.json(
              { jsonrpc: '2.0', error: { code: -32000, message: (error as Error).message }, id: null },
              { status: 413, headers: { connection: 'close' } },
            )
          : Response.json(
              {
                jsonrpc: '2.0',
                error: { code: -32603, message: 'Internal server error' },
                id: echoableId(parsedBody),
              },
              { status: 500 },
            );
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of response.headers) headers[name] = value;
    res.writeHead(response.status, headers);
    if (response.body === null) {
      finished = true;
      res.end();
      return;
    }
    // Streamed (SSE) answers honour the socket's backpressure, and stop when the client is gone.
    let drained: (() => void) | undefined;
    res.on('drain', () => {
      drained?.();
      drained = undefined;
    });
    const closed = new Promise<void>((resolve) => {
      abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (abort.signal.aborted) break;
        if (!res.write(chunk))
          await Promise.race([
            new Promise<void>((resolve) => {
              drained = resolve;
            }),
            closed,
          ]);
      }
    } catch {
      /* the stream failed or was cancelled: the answer ends here, as in the SDK's adapter */
    }
    finished = true;
    res.end();
  };
}

/** The JSON-RPC id to echo on an error built here: a single request's string or number id, else null. */
function echoableId(body: unknown): string | number | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const { method, id } = body as { method?: unknown; id?: unknown };
  if (typeof method !== 'string') return null;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
