import { createServer, request } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import {
  type McpRequestContext,
  McpServer,
  type McpServerFactory,
  Server,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createFastLane } from '../../src/server/fast-lane.js';
import type { RunningHttp } from '../../src/server/http.js';
import { createServerFactory } from '../../src/server/mcp.js';
import { connectHttp, type Era } from '../support/gateway.js';
import { startEndpoint } from '../support/lane.js';
import { itemsCatalog, viewOf } from '../support/pipeline.js';
import { waitFor } from '../support/wait.js';

const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';
const envelope = (extra: Record<string, unknown> = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'lane-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
  ...extra,
});
const call = (id: unknown, name: unknown, args: unknown = {}, meta: Record<string, unknown> = envelope()) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, _meta: meta },
  });
const list = (id: unknown, meta: Record<string, unknown> = envelope()) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: meta } });
const modernHeaders = (method: string, name?: string): Record<string, string> => ({
  'mcp-protocol-version': MODERN,
  'mcp-method': method,
  ...(name !== undefined ? { 'mcp-name': name } : {}),
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One POST over node:http (any header may be set): status, every header as sent, and the body. */
function post(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The answer whole, framing headers left out (they differ by how the body was written, not what it says). */
async function exchange(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const a = await post(url, body, headers);
  const {
    date: _d,
    'content-length': _l,
    'transfer-encoding': _t,
    connection: _c,
    'keep-alive': _k,
    ...rest
  } = a.headers;
  return { ...a, headers: rest };
}

/** Whether the answer was written by the lane: it sends JSON in one piece, with its length. */
async function rawLength(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<string | undefined> {
  const length = (await post(url, body, headers)).headers['content-length'];
  return typeof length === 'string' ? length : undefined;
}

function endpoint(factory: McpServerFactory, fastLane: boolean): Promise<RunningHttp> {
  return startEndpoint(factory, { scopesInUse: ['tools:read'], maxBodyBytes: 4096, fastLane });
}

describe('fast lane: the same answers as the SDK handler', () => {
  let lane: RunningHttp;
  let sdk: RunningHttp;

  beforeAll(async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    const factory = createServerFactory({
      catalog,
      view: () => view,
      inBandElicitation: false,
      pipeline: {
        call: async (input) => {
          if (input.name === 'getPart')
            return {
              content: [
                { type: 'text', text: `part ${JSON.stringify(input.arguments)} for ${input.principal.id}` },
              ],
              structuredContent: { id: 'a' },
            };
          // Not a warden error: it must leave as INTERNAL on both paths.
          throw new Error('upstream exploded');
        },
      },
    });
    [lane, sdk] = await Promise.all([endpoint(factory, true), endpoint(factory, false)]);
  });
  afterAll(() => Promise.all([lane?.close(), sdk?.close()]));

  // name → [body, headers]: every frame goes to both endpoints.
  const frames: Record<string, [string, Record<string, string>]> = {
    'tools/call, answered': [
      call(1, 'getPart', { id: 'a', part: 2 }),
      modernHeaders('tools/call', 'getPart'),
    ],
    'tools/call, string id': [
      call('x-7', 'getPart', { id: 'a', part: 2 }),
      modernHeaders('tools/call', 'getPart'),
    ],
    'tools/call, arguments refused by the pipeline': [
      call(2, 'createItem', { name: 'n' }),
      modernHeaders('tools/call', 'createItem'),
    ],
    'tools/call, unknown tool': [call(3, 'nope'), modernHeaders('tools/call', 'nope')],
    'tools/list': [list(4), modernHeaders('tools/list')],
    'tools/list with an Mcp-Name header': [list(5), modernHeaders('tools/list', 'x')],
    'Mcp-Name differs from the body': [call(6, 'getPart'), modernHeaders('tools/call', 'other')],
    'Mcp-Name missing': [call(7, 'getPart'), modernHeaders('tools/call')],
    'Mcp-Name base64-encoded': [call(8, 'getPart'), modernHeaders('tools/call', '=?base64?Z2V0UGFydA==?=')],
    'Mcp-Method differs from the body': [call(9, 'getPart'), modernHeaders('tools/list', 'getPart')],
    'MCP-Protocol-Version missing': [
      call(10, 'getPart'),
      { 'mcp-method': 'tools/call', 'mcp-name': 'getPart' },
    ],
    'MCP-Protocol-Version differs from the envelope': [
      call(11, 'getPart'),
      { ...modernHeaders('tools/call', 'getPart'), 'mcp-protocol-version': LEGACY },
    ],
    'unsupported revision in the envelope': [
      call(12, 'getPart', {}, envelope({ 'io.modelcontextprotocol/protocolVersion': '2027-01-01' })),
      { ...modernHeaders('tools/call', 'getPart'), 'mcp-protocol-version': '2027-01-01' },
    ],
    'malformed envelope': [
      call(13, 'getPart', {}, envelope({ 'io.modelcontextprotocol/clientInfo': 'not an object' })),
      modernHeaders('tools/call', 'getPart'),
    ],
    // Served once the lane's shared server is up (the frames above opened it): the envelope is then
    // checked by the SDK's dispatch, and a request refused there is answered by the SDK's handler.
    'envelope without clientCapabilities': [
      call(25, 'getPart', {}, { 'io.modelcontextprotocol/protocolVersion': MODERN }),
      modernHeaders('tools/call', 'getPart'),
    ],
    'envelope with capabilities that are not an object': [
      call(26, 'getPart', {}, envelope({ 'io.modelcontextprotocol/clientCapabilities': 'all' })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'envelope with an unknown log level': [
      call(27, 'getPart', {}, envelope({ 'io.modelcontextprotocol/logLevel': 'loud' })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'envelope with a malformed progressToken': [
      call(28, 'getPart', {}, envelope({ progressToken: { a: 1 } })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'envelope with a valid progressToken': [
      call(29, 'getPart', { id: 'a', part: 1 }, envelope({ progressToken: 'p-1' })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'envelope with foreign _meta keys': [
      call(30, 'getPart', { id: 'a', part: 1 }, envelope({ 'x.example/trace': 'abc' })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'tools/list, malformed envelope': [
      list(31, envelope({ 'io.modelcontextprotocol/clientInfo': 7 })),
      modernHeaders('tools/list'),
    ],
    'tools/call, malformed envelope': [
      call(32, 'getPart', {}, envelope({ 'io.modelcontextprotocol/clientInfo': { name: 1 } })),
      modernHeaders('tools/call', 'getPart'),
    ],
    'tools/call with params that are not an object': [
      JSON.stringify({ jsonrpc: '2.0', id: 33, method: 'tools/call', params: 'getPart' }),
      modernHeaders('tools/call', 'getPart'),
    ],
    'tools/call without a name': [
      JSON.stringify({ jsonrpc: '2.0', id: 14, method: 'tools/call', params: { _meta: envelope() } }),
      modernHeaders('tools/call'),
    ],
    'tools/call with a numeric name': [call(15, 42), modernHeaders('tools/call', '42')],
    'a notification': [
      JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 1, _meta: envelope() },
      }),
      modernHeaders('notifications/cancelled'),
    ],
    'null id': [call(null, 'getPart'), modernHeaders('tools/call', 'getPart')],
    'an unknown method': [
      JSON.stringify({ jsonrpc: '2.0', id: 16, method: 'tools/frobnicate', params: { _meta: envelope() } }),
      modernHeaders('tools/frobnicate'),
    ],
    'wrong Content-Type': [
      call(17, 'getPart'),
      { ...modernHeaders('tools/call', 'getPart'), 'content-type': 'text/plain' },
    ],
    'an unknown session': [
      call(18, 'getPart'),
      { ...modernHeaders('tools/call', 'getPart'), 'mcp-session-id': 'bogus' },
    ],
    'Accept: JSON only': [
      call(19, 'getPart'),
      { ...modernHeaders('tools/call', 'getPart'), accept: 'application/json' },
    ],
    'bad JSON': ['{"jsonrpc":', modernHeaders('tools/call', 'getPart')],
    'a batch': [`[${call(20, 'getPart')}]`, modernHeaders('tools/call', 'getPart')],
    'an oversize body': [
      call(21, 'getPart', { pad: 'x'.repeat(5000) }),
      modernHeaders('tools/call', 'getPart'),
    ],
    '2025-11-25 tools/call': [
      JSON.stringify({
        jsonrpc: '2.0',
        id: 22,
        method: 'tools/call',
        params: { name: 'getPart', arguments: { id: 'a', part: 1 } },
      }),
      { 'mcp-protocol-version': LEGACY },
    ],
    '2025-11-25 tools/call, Accept JSON only': [
      JSON.stringify({
        jsonrpc: '2.0',
        id: 23,
        method: 'tools/call',
        params: { name: 'getPart', arguments: {} },
      }),
      { 'mcp-protocol-version': LEGACY, accept: 'application/json' },
    ],
    '2025-11-25 tools/list with an unknown session': [
      JSON.stringify({ jsonrpc: '2.0', id: 24, method: 'tools/list' }),
      { 'mcp-protocol-version': LEGACY, 'mcp-session-id': 'bogus' },
    ],
  };

  for (const [name, [body, headers]] of Object.entries(frames))
    it(`${name}: status, headers and body as the SDK's`, async () => {
      const [a, b] = await Promise.all([exchange(lane.url, body, headers), exchange(sdk.url, body, headers)]);
      expect(a).toEqual(b);
    });

  it('the lane serves the hot frames itself (one write, with a length) and leaves the rest to the SDK', async () => {
    const hot = frames['tools/call, answered']!;
    expect(await rawLength(lane.url, ...hot)).toMatch(/^\d+$/);
    expect(await rawLength(sdk.url, ...hot)).toBeUndefined();
    const legacy = frames['2025-11-25 tools/call']!;
    expect(await rawLength(lane.url, ...legacy)).toBeUndefined();
  });

  it('once its shared server is up, the lane serves a well-formed envelope itself and hands a refused one to the SDK', async () => {
    await post(lane.url, ...frames['tools/call, answered']!);
    expect(await rawLength(lane.url, ...frames['envelope with foreign _meta keys']!)).toMatch(/^\d+$/);
    expect(await rawLength(lane.url, ...frames['tools/call, malformed envelope']!)).toBeUndefined();
    expect(await rawLength(lane.url, ...frames['envelope without clientCapabilities']!)).toBeUndefined();
    // And the lane still serves the next one.
    expect(await rawLength(lane.url, ...frames['tools/call, answered']!)).toMatch(/^\d+$/);
  });

  for (const era of [{ pin: MODERN }, 'legacy'] as Era[])
    it(`an SDK client (${typeof era === 'string' ? era : era.pin}) lists and calls through the lane`, async () => {
      const client = await connectHttp(lane.url, { era });
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['getPart']);
        const r = await client.callTool({ name: 'getPart', arguments: { id: 'a', part: 3 } });
        expect(r.content).toEqual([{ type: 'text', text: 'part {"id":"a","part":3} for anonymous' }]);
      } finally {
        await client.close();
      }
    });
});

describe('fast lane: streamed answers, and factories that do not list the modern revision', () => {
  let lane: RunningHttp;
  let sdk: RunningHttp;
  let foreign: RunningHttp;

  // A tool that reports progress before its result: the answer becomes an event stream.
  const factoryListing =
    (modern: boolean): McpServerFactory =>
    (ctx: McpRequestContext) => {
      const server = new Server(
        { name: 't', version: '1' },
        {
          capabilities: { tools: {}, logging: {} },
          ...(modern && ctx.era === 'modern'
            ? { supportedProtocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS, MODERN] }
            : {}),
        },
      );
      server.setRequestHandler('tools/list', () => ({
        tools: [{ name: 'slow', inputSchema: { type: 'object' } }],
      }));
      server.setRequestHandler('tools/call', async (_req, c) => {
        await c.mcpReq.notify({
          method: 'notifications/message',
          params: { level: 'info', data: 'working' },
        });
        return { content: [{ type: 'text', text: 'done' }] };
      });
      return server;
    };

  beforeAll(async () => {
    [lane, sdk, foreign] = await Promise.all([
      endpoint(factoryListing(true), true),
      endpoint(factoryListing(true), false),
      endpoint(factoryListing(false), true),
    ]);
  });
  afterAll(() => Promise.all([lane?.close(), sdk?.close(), foreign?.close()]));

  it('a notification before the result: the same event stream', async () => {
    const body = call(1, 'slow');
    const headers = modernHeaders('tools/call', 'slow');
    const [a, b] = await Promise.all([exchange(lane.url, body, headers), exchange(sdk.url, body, headers)]);
    expect(a.headers['content-type']).toBe('text/event-stream');
    expect(a.body).toContain('working');
    expect(a).toEqual(b);
  });

  it('a factory of McpServer instances is answered by the SDK handler, as before', async () => {
    const factory: McpServerFactory = () => {
      const server = new McpServer({ name: 'm', version: '1' });
      server.registerTool('echo', { inputSchema: z.object({ q: z.string() }) }, async ({ q }) => ({
        content: [{ type: 'text', text: q }],
      }));
      return server;
    };
    const [withLane, without] = await Promise.all([endpoint(factory, true), endpoint(factory, false)]);
    try {
      for (const [body, headers] of [
        [call(4, 'echo', { q: 'hi' }), modernHeaders('tools/call', 'echo')],
        [call(5, 'echo', { q: 7 }), modernHeaders('tools/call', 'echo')],
        [list(6), modernHeaders('tools/list')],
      ] as const) {
        const [a, b] = await Promise.all([
          exchange(withLane.url, body, headers),
          exchange(without.url, body, headers),
        ]);
        expect(a).toEqual(b);
        expect(a.status).toBe(200);
      }
      expect(
        await rawLength(withLane.url, call(7, 'echo', { q: 'hi' }), modernHeaders('tools/call', 'echo')),
      ).toBeUndefined();
    } finally {
      await Promise.all([withLane.close(), without.close()]);
    }
  });

  it('a factory whose server does not list 2026-07-28 is answered by the SDK handler, as before', async () => {
    for (const [body, headers] of [
      [call(2, 'slow'), modernHeaders('tools/call', 'slow')],
      [list(3), modernHeaders('tools/list')],
    ] as const) {
      const [a, b] = await Promise.all([
        exchange(foreign.url, body, headers),
        exchange(sdk.url, body, headers),
      ]);
      expect(a).toEqual(b);
      expect(a.status).toBe(200);
    }
  });
});

describe('fast lane: a client that goes away', () => {
  let lane: RunningHttp;
  const seen: { started: number; aborted: number } = { started: 0, aborted: 0 };

  beforeAll(async () => {
    // The tool waits until its call is cancelled: the lane must pass the client's going away on.
    const factory: McpServerFactory = (ctx: McpRequestContext) => {
      const server = new Server(
        { name: 't', version: '1' },
        {
          capabilities: { tools: {} },
          ...(ctx.era === 'modern'
            ? { supportedProtocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS, MODERN] }
            : {}),
        },
      );
      server.setRequestHandler('tools/call', (_req, c) => {
        seen.started++;
        return new Promise((_resolve, reject) => {
          c.mcpReq.signal.addEventListener('abort', () => {
            seen.aborted++;
            reject(new Error('cancelled'));
          });
        });
      });
      return server;
    };
    lane = await endpoint(factory, true);
  });
  afterAll(() => lane?.close());

  it('aborts the call the handler is running, as the SDK handler does', async () => {
    const u = new URL(lane.url);
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...modernHeaders('tools/call', 'wait'),
      },
    });
    req.on('error', () => {});
    req.end(call(1, 'wait'));
    await waitFor(() => seen.started === 1, { what: 'the call to start' });
    req.destroy();
    await waitFor(() => seen.aborted === 1, { what: 'the call to be aborted' });
  });
});

describe('the client name reaches the pipeline on both paths', () => {
  let lane: RunningHttp;
  let sdk: RunningHttp;
  beforeAll(async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    const factory = createServerFactory({
      catalog,
      view: () => view,
      inBandElicitation: false,
      // The client the pipeline was told of: the audit's `client`, per-user OAuth's per-client consent.
      pipeline: { call: async (input) => ({ content: [{ type: 'text', text: `client=${input.client}` }] }) },
    });
    [lane, sdk] = await Promise.all([endpoint(factory, true), endpoint(factory, false)]);
  });
  afterAll(() => Promise.all([lane?.close(), sdk?.close()]));

  const eras: Array<[string, Era]> = [
    ['2026-07-28', { pin: MODERN } as Era],
    ['2025-11-25', 'legacy'],
  ];
  for (const [revision, era] of eras)
    for (const path of ['lane', 'sdk'] as const)
      it(`${revision} client, ${path === 'lane' ? 'fast lane on' : 'SDK handler'}`, async () => {
        const name = `named-${revision}-${path}`;
        const c = await connectHttp((path === 'lane' ? lane : sdk).url, { name, era });
        try {
          const r = (await c.callTool({ name: 'getPart', arguments: { id: 'a', part: 1 } })) as {
            content: Array<{ text?: string }>;
          };
          // A 2025-11-25 client over stateless HTTP names itself only in `initialize`, which no later
          // request carries: it stays unnamed (docs/token-vault.md, per-client consent).
          expect(r.content[0]?.text).toBe(revision === MODERN ? `client=${name}` : 'client=undefined');
        } finally {
          await c.close();
        }
      });
});

describe('a client that left before the lane was reached', () => {
  it('is not dispatched: a call it abandoned never reaches the pipeline (as on the SDK path)', async () => {
    let built = 0;
    const lane = createFastLane({
      factory: async () => {
        built++;
        throw new Error('must not be built');
      },
    });
    const served = new Promise<boolean>((resolve, reject) => {
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => {
          body += d;
        });
        req.on('end', async () => {
          // The earlier steps are still running (a JWKS fetch…) when the client goes away.
          await waitFor(() => res.destroyed, { what: 'the client to have left' });
          Promise.resolve(lane.serve(req, res, JSON.parse(body), undefined)).then(resolve, reject);
          server.close();
        });
      }).listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        const c = connect(port, '127.0.0.1', () => {
          const frame = call(1, 'getPart', { id: 'a', part: 1 });
          const head = Object.entries({
            ...modernHeaders('tools/call', 'getPart'),
            host: `127.0.0.1:${port}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'content-length': String(Buffer.byteLength(frame)),
          })
            .map(([k, v]) => `${k}: ${v}`)
            .join('\r\n');
          c.end(`POST /mcp HTTP/1.1\r\n${head}\r\n\r\n${frame}`, () => c.destroy());
        });
      });
    });
    expect(await served).toBe(true);
    expect(built).toBe(0);
    await lane.close();
  });
});

describe('a client name meant to look like another', () => {
  /** An endpoint whose one tool answers with the client name the pipeline got. */
  const clientEchoEndpoint = async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    const factory = createServerFactory({
      catalog,
      view: () => view,
      inBandElicitation: false,
      pipeline: { call: async (input) => ({ content: [{ type: 'text', text: `client=${input.client}` }] }) },
    });
    return endpoint(factory, true);
  };

  it('reaches the pipeline with its invisible and bidi characters escaped', async () => {
    const http = await clientEchoEndpoint();
    const c = await connectHttp(http.url, { name: 'claude\u202e\u200bdesktop', era: { pin: MODERN } as Era });
    try {
      const r = (await c.callTool({ name: 'getPart', arguments: { id: 'a', part: 1 } })) as {
        content: Array<{ text?: string }>;
      };
      expect(r.content[0]?.text).toBe('client=claude%u202E%u200Bdesktop');
      // The escaped name is remembered per name: the next call of the same client gets the same.
      const again = (await c.callTool({ name: 'getPart', arguments: { id: 'a', part: 1 } })) as {
        content: Array<{ text?: string }>;
      };
      expect(again.content[0]?.text).toBe('client=claude%u202E%u200Bdesktop');
    } finally {
      await c.close();
      await http.close();
    }
  });

  it('is cut to 100 characters before it is escaped, however long and however often sent', async () => {
    const http = await clientEchoEndpoint();
    const long = `${'a'.repeat(99)}\u202e${'b'.repeat(400)}`;
    const c = await connectHttp(http.url, { name: long, era: { pin: MODERN } as Era });
    try {
      for (let i = 0; i < 2; i++) {
        const r = (await c.callTool({ name: 'getPart', arguments: { id: 'a', part: 1 } })) as {
          content: Array<{ text?: string }>;
        };
        expect(r.content[0]?.text).toBe(`client=${'a'.repeat(99)}%u202E`);
      }
    } finally {
      await c.close();
      await http.close();
    }
  });
});
