import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import type { Gateway } from '../../src/server/serve.js';
import {
  callPipeline,
  codeOf,
  mcpClient,
  type ShopGateway,
  startShopGateway,
  startTestGateway,
  type TestGateway,
  textOf,
} from '../support/gateway.js';
import { jsonOk, minimalSpec, startUpstream } from '../support/helpers.js';
import { frame, postMcp } from '../support/http.js';
import { connectShopStdio } from '../support/stdio.js';
import { expectAudited, readAudit } from '../support/wait.js';

/** A spec an attacker (or a careless author) wrote: a catastrophic pattern on an argument. */
const SPEC = minimalSpec(
  {
    '/items/{id}': {
      get: {
        operationId: 'getItem',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^(a+)+$' } },
          { name: 'filter', in: 'query', schema: { type: 'object', properties: { q: { type: 'string' } } } },
          { name: 'ids', in: 'query', schema: { type: 'array', items: { type: 'integer' } } },
        ],
        responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
      },
    },
    // A list whose page size the spec leaves open: 0 or -1 means "everything" to many APIs.
    '/pages': {
      get: {
        operationId: 'listPages',
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer' } }],
        responses: jsonOk({ type: 'object', properties: { ok: { type: 'boolean' } } }),
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

  it('refuses a __proto__ key hidden past the argument walk budget behind a large array (under 1 MiB, over HTTP)', async () => {
    const before = up.requests.length;
    // Raw JSON text: `__proto__` stays an own key; `filter` is walked last, after 150,000 numbers.
    const args = `{"filter":{"__proto__":{"isAdmin":true}},"id":"aaa","ids":[${'0,'.repeat(150_000)}0]}`;
    const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"getItem","arguments":${args}}}`;
    expect(body.length).toBeLessThan(1024 * 1024);
    const res = await postMcp(gw.url!, body, { 'mcp-protocol-version': '2025-11-25' });
    const text = await res.text();
    expect(text).toContain('INVALID_ARGUMENT');
    expect(text).toContain('more than 100000 values');
    expect(up.requests.length).toBe(before);
  });

  it.each([[0], [-1], [-1e9], [1.5], [1e12]])(
    'never sends the page size %j upstream (refused below the range, lowered above it)',
    async (limit) => {
      const before = up.requests.length;
      const r = await call({ limit }, 'listPages');
      const sent = up.requests.slice(before).map((q) => new URL(q.url, 'http://x').searchParams.get('limit'));
      if (limit > 100) {
        expect(sent).toEqual(['100']);
        expect(textOf(r)).toContain(`was lowered from ${limit} to the gateway's maximum page size 100`);
      } else {
        expect(codeOf(r)).toBe('INVALID_ARGUMENT');
        expect(sent).toEqual([]);
      }
    },
  );

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

/**
 * What a buggy or hostile client may answer to the confirmation question. Some pass the client
 * SDK's own checks and reach the gateway as sent; the others make the client answer with an error.
 * Either way: a refusal with a clear code, nothing run upstream, no internal error in the log.
 */
const GARBAGE_ANSWERS: unknown[] = [
  { action: 'accept', content: { confirm: 'yes' } },
  { action: 'accept', content: { confirm: true, amount: 1_000_000 } },
  { action: 'accept', content: { confirm: 1 } },
  { action: 'accept' },
  { action: 'accept', content: {} },
  { action: 'maybe', content: { confirm: true } },
  { action: 'accept', content: 'confirm' },
  { action: 'accept', content: [true] },
  'yes',
  null,
  [],
];

describe('adversarial confirmations: a malformed elicitation answer is a refusal', () => {
  const KEY = 'mwk_deleter-key-00000000000000000000000000';
  const policy = (callers: string[]) =>
    [
      'version: 1',
      'mode: read-write',
      // Dozens of attempts at one destructive tool: its default write limit (20 a minute) is lifted.
      'rateLimit:',
      '  perPrincipal: { calls: 10000, perSeconds: 60 }',
      '  perToolPrincipal: { calls: 10000, perSeconds: 60 }',
      'callers:',
      ...callers,
      'rules:',
      '  - match: { name: deleteCustomer }',
      '    enabled: true',
      '',
    ].join('\n');

  it('over stdio, answering the in-band elicitation/create (2025-11-25, the real CLI)', async () => {
    let next: unknown;
    const client = mcpClient({
      name: 'garbage-elicit',
      options: { capabilities: { elicitation: { form: {} } } },
    });
    client.setRequestHandler('elicitation/create', async () => next as never);
    const served = await connectShopStdio(client, {
      policy: policy(['  stdio: { principal: ops, scopes: [tools:read, tools:delete] }']),
    });
    try {
      const before = served.shop.requests.length;
      for (const answer of GARBAGE_ANSWERS) {
        next = answer;
        const r = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
        expect(r.isError, JSON.stringify(answer)).toBe(true);
        expect(textOf(r), JSON.stringify(answer)).toMatch(
          /^\[CONFIRMATION_INVALID\] The confirmation was refused/,
        );
      }
      expect(served.shop.requests.length).toBe(before);
      // A well-formed yes still works, so the refusals above were about the answers.
      next = { action: 'accept', content: { confirm: true } };
      const yes = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(yes.isError, textOf(yes)).toBeFalsy();
      await expectAudited(served.auditFile, {
        tool: 'deleteCustomer',
        decision: 'denied',
        code: 'CONFIRMATION_INVALID',
      });
      expect(served.stderr()).not.toMatch(/"level":50|internal error|"stack"/);
    } finally {
      await served.close();
    }
  }, 60_000);

  describe('over HTTP, answering input_required (2026-07-28)', () => {
    let fx: ShopGateway;
    beforeAll(async () => {
      fx = await startShopGateway({
        policy: policy([
          '  apiKeys:',
          `    - { id: deleter, hash: "${hashKey(KEY)}", scopes: [tools:read, tools:delete] }`,
        ]),
        logLevel: 'info',
      });
    });
    afterAll(() => fx?.close());

    it('a real client whose elicitation handler returns garbage: refused, nothing run', async () => {
      let next: unknown;
      const client = mcpClient({
        name: 'garbage-mrtr',
        era: { pin: '2026-07-28' },
        options: { capabilities: { elicitation: { form: {} } } },
      });
      client.setRequestHandler('elicitation/create', async () => next as never);
      await fx.connect({ token: KEY }, client);
      const before = fx.shop.requests.length;
      for (const answer of GARBAGE_ANSWERS) {
        next = answer;
        // The client SDK refuses to send some of these at all (its call then fails on its side).
        const r = await client
          .callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } })
          .catch((e: Error) => ({
            isError: true,
            content: [{ type: 'text', text: `client: ${e.message}` }],
          }));
        expect(r.isError, JSON.stringify(answer)).toBe(true);
        expect(textOf(r), JSON.stringify(answer)).toMatch(/^\[CONFIRMATION_(INVALID|DECLINED)\]|^client: /);
      }
      expect(fx.shop.requests.length).toBe(before);
      await expectAudited(fx.auditFile, {
        tool: 'deleteCustomer',
        decision: 'denied',
        code: 'CONFIRMATION_INVALID',
      });
    });

    it('raw retries carrying any garbage in inputResponses, with a genuine request state: refused', async () => {
      const meta = {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'raw-mrtr', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
      };
      const headers = {
        authorization: `Bearer ${KEY}`,
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'deleteCustomer',
      };
      const call = async (extra: Record<string, unknown>) => {
        const params = { name: 'deleteCustomer', arguments: { customerId: 'c_1003' }, _meta: meta, ...extra };
        const res = await postMcp(
          fx.gw.url!,
          { jsonrpc: '2.0', id: 1, method: 'tools/call', params },
          headers,
        );
        return (await res.json()) as {
          result?: { requestState?: string; content?: Array<{ text: string }> };
        };
      };
      const before = fx.shop.requests.length;
      const refusedAs = async (inputResponses: unknown) => {
        // Each retry needs a state of its own: a state is consumed by the attempt that carries it.
        const requestState = (await call({})).result?.requestState;
        expect(requestState).toBeTruthy();
        return (await call({ inputResponses, requestState })).result?.content?.[0]?.text;
      };
      for (const answer of [
        ...GARBAGE_ANSWERS,
        { method: 'elicitation/create', result: { action: 'accept' } },
      ])
        expect(await refusedAs({ confirm: answer }), JSON.stringify(answer)).toMatch(
          /^\[CONFIRMATION_INVALID\] The confirmation was refused: the client's answer to the confirmation request is malformed/,
        );
      // Not a map of answers at all: no answer came with the retry, which is no approval either.
      for (const inputResponses of ['confirm', [{ action: 'accept', content: { confirm: true } }]])
        expect(await refusedAs(inputResponses)).toMatch(/^\[CONFIRMATION_(INVALID|DECLINED)\]/);
      expect(fx.shop.requests.length).toBe(before);
      // Refusals, audited as such: not one call ended as an internal error.
      expect(readAudit(fx.auditFile).filter((r) => r.code === 'INTERNAL')).toEqual([]);
    });
  });
});
