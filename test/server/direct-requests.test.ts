import { PassThrough } from 'node:stream';
import { type JSONRPCMessage, Server, type Transport } from '@modelcontextprotocol/server';
import { describe, expect, it, vi } from 'vitest';
import { directRequests, parseMessage } from '../../src/server/direct-requests.js';
import { CappedStdioTransport } from '../../src/server/stdio-frames.js';
import { waitFor } from '../support/wait.js';

// The SDK's request check, counted where our modules call it (the SDK's own calls are not counted).
const requestChecks = vi.hoisted(() => ({ count: 0 }));
vi.mock('@modelcontextprotocol/server', async (importOriginal) => {
  const sdk = await importOriginal<typeof import('@modelcontextprotocol/server')>();
  return {
    ...sdk,
    isJSONRPCRequest: (value: unknown) => {
      requestChecks.count++;
      return sdk.isJSONRPCRequest(value);
    },
  };
});

/** A transport that only holds what the server sets on it. */
function fakeTransport(): Transport & { sent: JSONRPCMessage[] } {
  const sent: JSONRPCMessage[] = [];
  return {
    sent,
    start: async () => {},
    close: async () => {},
    send: async (m: JSONRPCMessage) => {
      sent.push(m);
    },
  };
}

type Routes = Array<[string, unknown]>;

/** A connected server whose four routing targets record what reached them (and nothing more). */
async function connected(direct: boolean): Promise<{ transport: Transport; routes: Routes }> {
  const server = new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } });
  const routes: Routes = [];
  const spy = server as unknown as Record<string, (m: unknown) => void>;
  for (const name of ['_onrequest', '_onresponse', '_onnotification', '_onerror'])
    spy[name] = (m: unknown) => {
      routes.push([name, m instanceof Error ? m.message : m]);
    };
  const s = direct ? directRequests(server) : server;
  const transport = fakeTransport();
  await s.connect(transport);
  return { transport, routes };
}

// Every shape the router tells apart, and near misses of a request (each fails some schema rule).
const CORPUS: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a', arguments: { q: 'x' } } },
  { jsonrpc: '2.0', id: 'abc', method: 'tools/list' },
  { jsonrpc: '2.0', id: 0, method: 'ping', params: {} },
  { jsonrpc: '2.0', id: 1.5, method: 'tools/list' },
  { jsonrpc: '2.0', id: null, method: 'tools/list' },
  { jsonrpc: '2.0', id: true, method: 'tools/list' },
  { jsonrpc: '1.0', id: 1, method: 'tools/list' },
  { id: 1, method: 'tools/list' },
  { jsonrpc: '2.0', id: 1, method: 7 },
  { jsonrpc: '2.0', id: 1, method: 'tools/list', extra: 1 },
  { jsonrpc: '2.0', id: 1, method: 'tools/list', result: {} },
  { jsonrpc: '2.0', id: 1, method: 'tools/list', error: { code: 1, message: 'm' } },
  { jsonrpc: '2.0', id: 1, method: 'tools/list', params: 'x' },
  { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: 'x' } },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
  { jsonrpc: '2.0', id: 1, result: {} },
  { jsonrpc: '2.0', id: 2, result: { content: [] } },
  { jsonrpc: '2.0', id: 3, error: { code: -32600, message: 'bad' } },
  { jsonrpc: '2.0', error: { code: -32600, message: 'bad' } },
  { jsonrpc: '2.0', id: 1, result: 'x' },
  { jsonrpc: '2.0' },
  {},
  [],
  [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }],
];

describe('directRequests', () => {
  it('routes every message exactly as the SDK router does', async () => {
    const plain = await connected(false);
    const direct = await connected(true);
    for (const m of CORPUS) {
      plain.transport.onmessage?.(structuredClone(m) as JSONRPCMessage);
      direct.transport.onmessage?.(structuredClone(m) as JSONRPCMessage);
    }
    expect(direct.routes).toEqual(plain.routes);
    // The corpus reaches every target, so the comparison covers each route.
    expect(new Set(plain.routes.map(([n]) => n))).toEqual(
      new Set(['_onrequest', '_onresponse', '_onnotification', '_onerror']),
    );
    expect(direct.routes.filter(([n]) => n === '_onrequest')).toHaveLength(3);
  });

  it('routes every message parseMessage accepts exactly as the SDK router does', async () => {
    const plain = await connected(false);
    const direct = await connected(true);
    let accepted = 0;
    for (const m of CORPUS) {
      let message: JSONRPCMessage;
      try {
        message = parseMessage(structuredClone(m));
      } catch {
        continue;
      }
      accepted++;
      plain.transport.onmessage?.(structuredClone(message));
      direct.transport.onmessage?.(message);
    }
    expect(direct.routes).toEqual(plain.routes);
    expect(accepted).toBeGreaterThan(8);
    expect(direct.routes.filter(([n]) => n === '_onrequest')).toHaveLength(3);
  });

  it('does not parse a request again that the stdio framing has just parsed (one zod parse saved)', async () => {
    const { transport, routes } = await connected(true);
    const stdin = new PassThrough();
    const framing = new CappedStdioTransport({ stdin, stdout: new PassThrough() });
    framing.onmessage = (m) => transport.onmessage?.(m);
    await framing.start();
    requestChecks.count = 0;
    stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' })}\n`);
    await waitFor(() => routes.length === 1, { what: 'the request dispatched' });
    expect(routes[0]![0]).toBe('_onrequest');
    expect(requestChecks.count).toBe(0);
    // A message that did not come from parseMessage is still checked by the schema.
    transport.onmessage?.({ jsonrpc: '2.0', id: 6, method: 'tools/list' } as JSONRPCMessage);
    expect(requestChecks.count).toBe(1);
    expect(routes.map(([n]) => n)).toEqual(['_onrequest', '_onrequest']);
    await framing.close();
  });

  it('hands a request to the dispatch with its extra, and the server answers it', async () => {
    const server = directRequests(new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } }));
    server.setRequestHandler('tools/list', () => ({ tools: [] }));
    const transport = fakeTransport();
    await server.connect(transport);
    transport.onmessage?.({ jsonrpc: '2.0', id: 9, method: 'tools/list' } as JSONRPCMessage);
    await new Promise((r) => setTimeout(r, 10));
    expect(transport.sent).toEqual([{ jsonrpc: '2.0', id: 9, result: { tools: [] } }]);
  });

  it('leaves the router alone when the transport already had a handler it calls first', async () => {
    const server = directRequests(new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } }));
    const seen: unknown[] = [];
    const transport = fakeTransport();
    transport.onmessage = (m) => seen.push(m);
    await server.connect(transport);
    const dispatched: unknown[] = [];
    (server as unknown as Record<string, (m: unknown) => void>)._onrequest = (m) => dispatched.push(m);
    const m = { jsonrpc: '2.0', id: 1, method: 'tools/list' } as JSONRPCMessage;
    transport.onmessage?.(m);
    expect(seen).toEqual([m]);
    expect(dispatched).toEqual([m]);
  });
});
