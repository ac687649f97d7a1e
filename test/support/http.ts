import { createServer, type RequestListener, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1, port 0; `close` also ends kept-alive and hanging connections. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** A free port on 127.0.0.1, for a server whose URL must be known before it starts (an OAuth redirect URI). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A JSON-RPC frame (an object; send it with `postMcp`). */
export const frame = (id: number | string, method: string, params: unknown = {}) => ({
  jsonrpc: '2.0',
  id,
  method,
  params,
});

/** `tools/list` as text, the frame most transport tests send. */
export const LIST_TOOLS = JSON.stringify(frame(1, 'tools/list'));

/** POSTs one body to an MCP endpoint as a client would (a string is sent as it is, anything else as JSON). */
export function postMcp(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Like `postMcp`, over node:http, which (unlike fetch) may set any header, Host included. */
export function rawPost(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let b = '';
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export type AdminCall = (
  method: string,
  path: string,
  body?: unknown,
  token?: string,
) => Promise<{ status: number; body: Record<string, unknown> }>;

/** The admin API with a bearer token (and an `x-actor` name when given); bodies in and out are JSON. */
export function adminApi(adminUrl: string, token: string, actor?: string): AdminCall {
  return async (method, path, body, asToken = token) => {
    const headers: Record<string, string> = { authorization: `Bearer ${asToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (actor) headers['x-actor'] = actor;
    const res = await fetch(new URL(path, adminUrl), {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, body: json };
  };
}
