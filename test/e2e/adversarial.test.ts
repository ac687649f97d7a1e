import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { callPipeline, codeOf, startTestGateway, type TestGateway } from '../support/gateway.js';
import { jsonOk, minimalSpec, startUpstream } from '../support/helpers.js';
import { frame, postMcp } from '../support/http.js';

/** A spec an attacker (or a careless author) wrote: a catastrophic pattern on an argument. */
const SPEC = minimalSpec(
  {
    '/items/{id}': {
      get: {
        operationId: 'getItem',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^(a+)+$' } },
          { name: 'filter', in: 'query', schema: { type: 'object', properties: { q: { type: 'string' } } } },
        ],
        responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
      },
    },
    // Shapes a star-height screen does not see (overlapping alternations), and one RE2 cannot run.
    '/things': {
      get: {
        operationId: 'findThings',
        parameters: [
          { name: 'a', in: 'query', schema: { type: 'string', pattern: '^(a|aa)+$' } },
          { name: 'b', in: 'query', schema: { type: 'string', pattern: '^(\\w+\\s?)*$' } },
          { name: 'c', in: 'query', schema: { type: 'string', pattern: '^(?!admin).*$' } },
          { name: 'd', in: 'query', schema: { type: 'string', pattern: '^\\u0041+$' } },
        ],
        responses: jsonOk({
          type: 'object',
          properties: { ok: { type: 'boolean' }, tag: { type: 'string', pattern: '^(x|xx)+$' } },
        }),
      },
    },
  },
  { info: { title: 'Hostile', version: '1' } },
);

describe('adversarial inputs', () => {
  let fx: TestGateway;
  let gw: Gateway;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const call = (args: unknown, name = 'getItem') => callPipeline(gw, name, args, 'mallory', ['tools:read']);

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const evil = req.url.includes('c=evilreply');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(evil ? { ok: true, tag: `${'x'.repeat(5000)}!` } : { ok: true }));
    });
    fx = await startTestGateway({ spec: SPEC, baseUrl: up.origin, logLevel: 'fatal', env: {} });
    gw = fx.gw;
  });
  afterAll(async () => {
    await fx?.close();
    await up?.close();
  });

  it('enforces catastrophic patterns from the spec in linear time (ReDoS): crafted input is refused at once', async () => {
    // With a backtracking engine each of these took from seconds to hours; on RE2 it is linear.
    const crafted = [
      [{ id: `${'a'.repeat(5000)}!` }, 'getItem'],
      [{ a: `${'a'.repeat(5000)}!` }, 'findThings'],
      [{ b: `${'ab '.repeat(3000)}!` }, 'findThings'],
    ] as const;
    for (const [args, name] of crafted) {
      const t0 = performance.now();
      const r = await call(args, name);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(codeOf(r), JSON.stringify(r).slice(0, 200)).toBe('INVALID_ARGUMENT');
    }
    // Still enforced, not dropped: matching values pass.
    const ok = await call({ id: 'aaaa' });
    expect(ok.isError, JSON.stringify(ok)).toBeFalsy();
    const ok2 = await call({ a: 'aaa', b: 'ab cd', d: 'AAA' }, 'findThings');
    expect(ok2.isError, JSON.stringify(ok2)).toBeFalsy();
    expect(codeOf(await call({ d: 'B' }, 'findThings'))).toBe('INVALID_ARGUMENT');
    // A lookahead cannot run in linear time: not enforced (the catalogue warned about it).
    expect((await call({ c: 'admin' }, 'findThings')).isError).toBeFalsy();
  });

  it('checks upstream strings against spec patterns in linear time too', async () => {
    const t0 = performance.now();
    const r = await call({ c: 'evilreply' }, 'findThings');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(codeOf(r)).toBe('UPSTREAM_SCHEMA_MISMATCH');
  });

  it('refuses prototype-pollution keys and leaves Object.prototype alone', async () => {
    const r = await call(
      JSON.parse('{"id":"aaa","__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}'),
    );
    expect(codeOf(r), JSON.stringify(r)).toBe('INVALID_ARGUMENT');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const nested = await call(JSON.parse('{"id":"aaa","filter":{"__proto__":{"polluted":true}}}'));
    expect(codeOf(nested)).toBe('INVALID_ARGUMENT');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([[[]], ['id=aaa'], [42], [null], [{ id: ['a'] }], [{ id: { toString: 'x' } }], [{ id: 7 }]])(
    'refuses type confusion %j with INVALID_ARGUMENT',
    async (args) => {
      expect(codeOf(await call(args))).toBe('INVALID_ARGUMENT');
    },
  );

  it('refuses a batched JSON-RPC body and a header/body method mismatch over HTTP, and keeps serving', async () => {
    const post = (body: unknown, headers: Record<string, string> = {}) => postMcp(gw.url!, body, headers);
    const before = up.requests.filter((r) => r.url.includes('/items/aaa')).length;
    const batch = await post([frame(1, 'tools/list', {}), frame(2, 'tools/list', {})]);
    expect(batch.status).toBeGreaterThanOrEqual(400);
    const meta = {
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    };
    const mismatch = await post(
      frame(3, 'tools/call', { name: 'getItem', arguments: { id: 'aaa' }, ...meta }),
      {
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/list',
      },
    );
    expect(mismatch.status).toBeGreaterThanOrEqual(400);
    expect(up.requests.filter((r) => r.url.includes('/items/aaa')).length).toBe(before);
    // Still serving.
    const ok = await call({ id: 'aaa' });
    expect(ok.isError).toBeFalsy();
  });
});
