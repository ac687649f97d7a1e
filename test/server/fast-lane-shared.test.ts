import { request } from 'node:http';
import { type McpRequestContext, Server, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallInput } from '../../src/pipeline/context.js';
import { parsePolicy } from '../../src/policy/load.js';
import { newApiKey } from '../../src/server/callers.js';
import type { RunningHttp } from '../../src/server/http.js';
import { createServerFactory } from '../../src/server/mcp.js';
import { connectHttp, type Era } from '../support/gateway.js';
import { startEndpoint } from '../support/lane.js';
import { itemsCatalog, viewOf } from '../support/pipeline.js';
import { waitFor } from '../support/wait.js';

// The fast lane's shared server (fast-lane.ts, SharedTransport): one long-lived 2026-07-28 server
// for every request the lane takes. These tests are about what sharing could get wrong: answers
// crossing between callers that reuse an id, the caller or the request read from the wrong
// exchange, a client's going away reaching another call, and the endpoint's close.

const MODERN = '2026-07-28';
const envelope = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'shared-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const callFrame = (id: unknown, args: Record<string, unknown>) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'getPart', arguments: args, _meta: envelope },
  });
const listFrame = (id: unknown) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: envelope } });
const headersFor = (method: string, key: string, extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': MODERN,
  'mcp-method': method,
  ...(method === 'tools/call' ? { 'mcp-name': 'getPart' } : {}),
  'x-api-key': key,
  ...extra,
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const alice = newApiKey();
const bob = newApiKey();
const POLICY = [
  'version: 1',
  'callers:',
  '  apiKeys:',
  `    - { id: alice, hash: "${alice.hash}", scopes: [tools:read, parts:read] }`,
  `    - { id: bob, hash: "${bob.hash}", scopes: [tools:read] }`,
  'rules:',
  '  - match: { name: getPart }',
  '    scopes: [parts:read]',
  '',
].join('\n');

/** Calls the pipeline saw, and a way to hold them until the test lets them go. */
function recordingPipeline() {
  const seen: CallInput[] = [];
  const held: Array<() => void> = [];
  let hold = false;
  return {
    seen,
    held,
    setHold(v: boolean) {
      hold = v;
    },
    call: async (input: CallInput) => {
      seen.push(input);
      if (hold)
        await new Promise<void>((resolve, reject) => {
          held.push(resolve);
          input.signal?.addEventListener('abort', () => reject(new Error('aborted')));
        });
      return {
        content: [
          {
            type: 'text' as const,
            text: `${input.principal.id} ${JSON.stringify(input.arguments)} trace=${input.trace?.requestId}`,
          },
        ],
      };
    },
  };
}

describe('fast lane: one shared server for every 2026-07-28 request', () => {
  let http: RunningHttp;
  const pipeline = recordingPipeline();
  const built = { shared: 0, perRequest: 0 };

  beforeAll(async () => {
    const catalog = await itemsCatalog();
    const _doc = parsePolicy(POLICY, 'w.yaml').doc;
    const view = viewOf(catalog, POLICY);
    const factory = createServerFactory({
      catalog,
      view: () => view,
      inBandElicitation: false,
      tracing: true,
      pipeline,
    });
    // Counted: how many servers the endpoint builds, shared and per request.
    const counted = Object.assign(
      (ctx: McpRequestContext) => {
        built.perRequest++;
        return factory(ctx);
      },
      {
        modernShared: () => {
          built.shared++;
          return factory.modernShared();
        },
      },
    );
    http = await startEndpoint(counted, { policy: POLICY, scopesInUse: ['tools:read', 'parts:read'] });
  });
  afterAll(() => http?.close());

  it('builds one server for many calls and lists, none per request', async () => {
    const before = { ...built };
    for (let i = 0; i < 5; i++) {
      const a = await post(http.url, callFrame(i, { id: 'a', part: i }), headersFor('tools/call', alice.key));
      expect(a.status).toBe(200);
      const l = await post(http.url, listFrame(i), headersFor('tools/list', alice.key));
      expect(l.status).toBe(200);
    }
    expect(built.perRequest).toBe(before.perRequest);
    expect(built.shared).toBe(1);
  });

  it('callers that send the same id at the same time each get their own answer, as themselves', async () => {
    pipeline.setHold(true);
    const start = pipeline.seen.length;
    try {
      const a = post(http.url, callFrame(7, { id: 'a', part: 1 }), headersFor('tools/call', alice.key));
      const b = post(http.url, callFrame(7, { id: 'a', part: 2 }), headersFor('tools/call', bob.key));
      const c = post(http.url, callFrame('7', { id: 'a', part: 3 }), headersFor('tools/call', alice.key));
      // All three are in the pipeline together before any is answered; released in reverse order.
      await waitFor(() => pipeline.held.length === 3, { what: 'three calls in flight' });
      for (const release of pipeline.held.splice(0).reverse()) release();
      const [ra, rb, rc] = await Promise.all([a, b, c]);
      const parsed = [ra, rb, rc].map((r) => JSON.parse(r.body));
      expect(parsed.map((p) => p.id)).toEqual([7, 7, '7']);
      const texts = parsed.map((p) => p.result?.content?.[0]?.text);
      // The caller, the arguments and the client's own id (the trace's request id) of each request.
      expect(texts[0]).toBe('key:alice {"id":"a","part":1} trace=7');
      expect(texts[1]).toBe('key:bob {"id":"a","part":2} trace=7');
      expect(texts[2]).toBe('key:alice {"id":"a","part":3} trace=7');
      expect(
        pipeline.seen
          .slice(start)
          .map((s) => s.principal.id)
          .sort(),
      ).toEqual(['key:alice', 'key:alice', 'key:bob']);
    } finally {
      pipeline.setHold(false);
      for (const release of pipeline.held.splice(0)) release();
    }
  });

  it('lists each caller its own tools (scopes read per request, not from the first caller)', async () => {
    const names = async (key: string) =>
      (
        JSON.parse((await post(http.url, listFrame(1), headersFor('tools/list', key))).body).result
          .tools as Array<{
          name: string;
        }>
      ).map((t) => t.name);
    const [forAlice, forBob, againAlice] = [
      await names(alice.key),
      await names(bob.key),
      await names(alice.key),
    ];
    expect(forAlice).toContain('getPart');
    expect(forBob).not.toContain('getPart');
    expect(againAlice).toEqual(forAlice);
  });

  it('reads the trace headers of each request, not of another', async () => {
    const parent = (n: number) => `00-${String(n).repeat(32)}-${'b'.repeat(16)}-01`;
    const start = pipeline.seen.length;
    await Promise.all(
      [1, 2].map((n) =>
        post(
          http.url,
          callFrame(n, { id: 'a', part: n }),
          headersFor('tools/call', alice.key, { traceparent: parent(n) }),
        ),
      ),
    );
    const byPart = new Map(
      pipeline.seen.slice(start).map((s) => [(s.arguments as { part: number }).part, s.trace?.traceparent]),
    );
    expect(byPart.get(1)).toBe(parent(1));
    expect(byPart.get(2)).toBe(parent(2));
  });

  it('a client that goes away aborts its own call only; the server keeps serving', async () => {
    pipeline.setHold(true);
    const start = pipeline.seen.length;
    try {
      const stays = post(http.url, callFrame(1, { id: 'a', part: 10 }), headersFor('tools/call', bob.key));
      const u = new URL(http.url);
      const leaving = request({
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: headersFor('tools/call', alice.key),
      });
      leaving.on('error', () => {});
      leaving.end(callFrame(1, { id: 'a', part: 11 }));
      await waitFor(() => pipeline.held.length === 2, { what: 'both calls in flight' });
      const gone = pipeline.seen.slice(start).find((s) => (s.arguments as { part: number }).part === 11)!;
      const kept = pipeline.seen.slice(start).find((s) => (s.arguments as { part: number }).part === 10)!;
      leaving.destroy();
      await waitFor(() => gone.signal?.aborted === true, { what: 'the abandoned call to be aborted' });
      expect(kept.signal?.aborted).toBe(false);
      for (const release of pipeline.held.splice(0)) release();
      const answer = JSON.parse((await stays).body);
      expect(answer.result.content[0].text).toContain('key:bob {"id":"a","part":10}');
    } finally {
      pipeline.setHold(false);
      for (const release of pipeline.held.splice(0)) release();
    }
    const after = await post(
      http.url,
      callFrame(2, { id: 'a', part: 12 }),
      headersFor('tools/call', alice.key),
    );
    expect(JSON.parse(after.body).result.content[0].text).toContain('part":12');
  });

  const eras: Array<[string, Era]> = [
    ['2026-07-28', { pin: MODERN } as Era],
    ['2025-11-25', 'legacy'],
  ];
  for (const [revision, era] of eras)
    it(`an SDK client (${revision}) calls and lists as itself`, async () => {
      const c = await connectHttp(http.url, { era, token: bob.key });
      try {
        const tools = await c.listTools();
        expect(tools.tools.map((t) => t.name)).not.toContain('getPart');
        const r = (await c.callTool({ name: 'getPart', arguments: { id: 'a', part: 1 } })) as {
          content: Array<{ text?: string }>;
        };
        expect(r.content[0]?.text).toContain('key:bob');
      } finally {
        await c.close();
      }
    });
});

describe('fast lane: closing the endpoint with a call in flight on the shared server', () => {
  it('aborts the call and ends its exchange', async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    const _doc = parsePolicy('version: 1\n', 'w.yaml').doc;
    const pipeline = recordingPipeline();
    pipeline.setHold(true);
    const http = await startEndpoint(
      createServerFactory({ catalog, view: () => view, inBandElicitation: false, pipeline }),
    );
    const { 'x-api-key': _k, ...headers } = headersFor('tools/call', '');
    const answer = post(http.url, callFrame(1, { id: 'a', part: 1 }), headers).catch((e: Error) => e);
    await waitFor(() => pipeline.held.length === 1, { what: 'the call in flight' });
    await http.close();
    expect(pipeline.seen[0]?.signal?.aborted).toBe(true);
    const a = await answer;
    // Ended, not left hanging: the SDK's 499 for a closed exchange, or the connection closed.
    if (!(a instanceof Error)) expect(a.status).toBe(499);
  });
});

describe('fast lane: a message before the answer on the shared server', () => {
  it('turns the answer into the same event stream as the SDK handler', async () => {
    // A tool that sends a notification before its result: the SDK answers with an event stream.
    const make = (modern: boolean) => {
      const server = new Server(
        { name: 't', version: '1' },
        {
          capabilities: { tools: {}, logging: {} },
          ...(modern ? { supportedProtocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS, MODERN] } : {}),
        },
      );
      server.setRequestHandler('tools/call', async (_req, c) => {
        await c.mcpReq.notify({
          method: 'notifications/message',
          params: { level: 'info', data: 'working' },
        });
        return { content: [{ type: 'text', text: 'done' }] };
      });
      return server;
    };
    let shared = 0;
    const factory = Object.assign((ctx: McpRequestContext) => make(ctx.era === 'modern'), {
      modernShared: () => {
        shared++;
        return make(true);
      },
    });
    const _doc = parsePolicy('version: 1\n', 'w.yaml').doc;
    const start = (fastLane: boolean) => startEndpoint(factory, { fastLane });
    const [lane, sdk] = await Promise.all([start(true), start(false)]);
    try {
      const { 'x-api-key': _k, ...headers } = headersFor('tools/call', '');
      const body = callFrame(3, { id: 'a', part: 1 });
      const [a, b] = await Promise.all([post(lane.url, body, headers), post(sdk.url, body, headers)]);
      expect(shared).toBe(1);
      expect(a.status).toBe(200);
      expect(a.headers['content-type']).toBe('text/event-stream');
      expect(a.body).toContain('working');
      expect(a.body).toContain('"id":3');
      for (const h of ['content-type', 'cache-control', 'x-accel-buffering'])
        expect([h, a.headers[h]]).toEqual([h, b.headers[h]]);
      expect(a.body).toBe(b.body);
    } finally {
      await Promise.all([lane.close(), sdk.close()]);
    }
  });
});

describe('fast lane: a shared server that cannot serve the modern era', () => {
  it('is not used: each request gets its own server, and the answers are the same', async () => {
    const make = (modern: boolean) => {
      const server = new Server(
        { name: 't', version: '1' },
        {
          capabilities: { tools: {} },
          ...(modern ? { supportedProtocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS, MODERN] } : {}),
        },
      );
      server.setRequestHandler('tools/call', async () => ({ content: [{ type: 'text', text: 'done' }] }));
      return server;
    };
    const built = { shared: 0, perRequest: 0 };
    const factory = Object.assign(
      (ctx: McpRequestContext) => {
        built.perRequest++;
        return make(ctx.era === 'modern');
      },
      {
        // Does not list 2026-07-28: connecting it binds nothing, so the lane must not share it.
        modernShared: () => {
          built.shared++;
          return make(false);
        },
      },
    );
    const _doc = parsePolicy('version: 1\n', 'w.yaml').doc;
    const http = await startEndpoint(factory);
    try {
      const { 'x-api-key': _k, ...headers } = headersFor('tools/call', '');
      for (const id of [1, 2]) {
        const a = await post(http.url, callFrame(id, { id: 'a', part: 1 }), headers);
        expect(a.status).toBe(200);
        expect(JSON.parse(a.body)).toMatchObject({ id, result: { content: [{ text: 'done' }] } });
      }
      expect(built.shared).toBe(1);
      expect(built.perRequest).toBe(2);
    } finally {
      await http.close();
    }
  });
});
