import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler as sdkToNodeHandler } from '@modelcontextprotocol/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNodeHandler } from '../../src/server/node-handler.js';
import { waitFor } from '../support/wait.js';

type Fetch = (request: Request, options?: { authInfo?: unknown; parsedBody?: unknown }) => Promise<Response>;
type Handle = (req: IncomingMessage, res: ServerResponse, parsedBody?: unknown) => Promise<void>;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A server handing each request to `handle`, with `auth` set and the body parsed as the transport steps do. */
async function serve(handle: Handle): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    (req as IncomingMessage & { auth?: unknown }).auth = { token: '', clientId: 'c', scopes: ['mcp'] };
    if (req.method !== 'POST') return void handle(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, JSON.parse(Buffer.concat(chunks).toString('utf8'))));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function send(url: string, method: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        b += d;
      });
      res.on('end', () => {
        const { date: _d, connection: _c, 'keep-alive': _k, ...headers } = res.headers;
        resolve({ status: res.statusCode ?? 0, headers, body: b });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What the fetch handler below answers, by the request's method (`tools/list`…) in the body. */
const answering: Fetch = async (request, options) => {
  const text = await request.text();
  const message = JSON.parse(text) as { id?: unknown; method?: string };
  const seen = {
    method: request.method,
    url: request.url,
    contentType: request.headers.get('content-type'),
    body: text,
    authInfo: options?.authInfo,
    parsedBody: options?.parsedBody,
  };
  if (message.method === 'throw') throw new Error('boom');
  if (message.method === 'stream') {
    const frames = ['event: message\ndata: 1\n\n', 'event: message\ndata: 2\n\n'];
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          const f = frames.shift();
          if (f === undefined) c.close();
          else c.enqueue(new TextEncoder().encode(f));
        },
      }),
      { status: 200, headers: { 'content-type': 'text/event-stream', 'x-one': 'a' } },
    );
  }
  return Response.json({ jsonrpc: '2.0', id: message.id, result: seen }, { headers: { 'x-two': 'b' } });
};

describe('node handler: the same answers as the SDK adapter', () => {
  let ours: Awaited<ReturnType<typeof serve>>;
  let sdk: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    ours = await serve(toNodeHandler({ fetch: answering }));
    sdk = await serve(sdkToNodeHandler({ fetch: answering }));
  });
  afterAll(async () => {
    await ours?.close();
    await sdk?.close();
  });

  it.each([
    ['a JSON answer (body, headers, authInfo and parsed body passed on)', 'tools/list'],
    ['a streamed answer', 'stream'],
    ['a handler that throws (500, the id echoed)', 'throw'],
  ])('%s', async (_what, method) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method });
    const [a, b] = await Promise.all([send(ours.url, 'POST', body), send(sdk.url, 'POST', body)]);
    // The URL names the port, which differs between the two servers.
    const same = (x: Answer) => ({ ...x, body: x.body.replace(/127\.0\.0\.1:\d+/g, 'HOST') });
    expect(same(a)).toEqual(same(b));
    if (method === 'tools/list') {
      const result = (JSON.parse(a.body) as { result: Record<string, unknown> }).result;
      expect(result).toMatchObject({
        method: 'POST',
        contentType: 'application/json',
        authInfo: { clientId: 'c' },
        parsedBody: { jsonrpc: '2.0', id: 7, method },
      });
      expect(JSON.parse(result.body as string)).toEqual({ jsonrpc: '2.0', id: 7, method });
    }
    if (method === 'stream') expect(a.body).toBe('event: message\ndata: 1\n\nevent: message\ndata: 2\n\n');
    if (method === 'throw') expect(a.status).toBe(500);
  });
});

describe('node handler: a client that goes away', () => {
  it('aborts the signal the handler sees, before and while the answer streams', async () => {
    const seen = { started: 0, aborted: 0, streamCancelled: 0 };
    const handler: Fetch = async (request) => {
      const message = JSON.parse(await request.text()) as { method: string };
      seen.started++;
      request.signal.addEventListener('abort', () => seen.aborted++, { once: true });
      if (message.method === 'wait')
        await new Promise((resolve) => request.signal.addEventListener('abort', resolve, { once: true }));
      // Streams until cancelled: the adapter must stop reading it once the client is gone.
      return new Response(
        new ReadableStream<Uint8Array>({
          pull: (c) =>
            new Promise((r) =>
              setTimeout(() => {
                c.enqueue(new TextEncoder().encode(': tick\n\n'));
                r();
              }, 10),
            ),
          cancel: () => {
            seen.streamCancelled++;
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    };
    const s = await serve(toNodeHandler({ fetch: handler }));
    try {
      for (const [method, aborted] of [
        ['wait', 1],
        ['stream', 2],
      ] as const) {
        const req = request(s.url, { method: 'POST', headers: { 'content-type': 'application/json' } });
        req.on('error', () => {});
        req.on('response', (res) => res.on('error', () => {}));
        req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method }));
        await waitFor(() => seen.started === aborted, { what: 'the request to reach the handler' });
        if (method === 'stream') await new Promise((r) => setTimeout(r, 50));
        req.destroy();
        await waitFor(() => seen.aborted === aborted, { what: 'the handler to see the abort' });
      }
      // Both answers were cancelled: the one returned to a client already gone, and the one streaming.
      await waitFor(() => seen.streamCancelled === 2, { what: 'the answer streams to be cancelled' });
    } finally {
      await s.close();
    }
  });
});
