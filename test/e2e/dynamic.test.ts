import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { SHARED_SPECS, startUpstream } from '../support/helpers.js';
import { expectAudited } from '../support/wait.js';

const GITHUB = join(SHARED_SPECS, 'github-rest.json');
const STRIPE = join(SHARED_SPECS, 'stripe.yaml');
const POLICY = [
  'version: 1',
  'mode: read-write',
  'callers:',
  '  anonymous: { scopes: [tools:read, tools:write, tools:delete], reason: loopback test }',
  'rules:',
  '  - match: { name: repos_delete }',
  '    enabled: true',
  // call_tool takes the token flow like a direct call (approval: agent, chosen for the test).
  '    approval: agent',
  '    reason: the test confirms through call_tool with the token',
  '  - match: { name: "gists_*" }',
  '    scopes: [gists:read]',
  '  - match: { name: pulls_list-files }',
  '    enabled: false',
  '  - match: { name: pulls_get }',
  '    rateLimit: { perToolPrincipal: { calls: 2, perSeconds: 60 } }',
  '',
].join('\n');

type Result = {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};
const text = (r: Result) => r.content.map((c) => c.text ?? '').join('\n');

describe('dynamic mode on the GitHub API: three meta-tools, every guard of a direct call', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let fx: TestGateway;
  let client: Client;

  const call = (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }) as Promise<Result>;
  const via = (name: string, args: Record<string, unknown>) => call('call_tool', { name, arguments: args });
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => expect.unreachable('expected a refusal'),
      (e) => e,
    );

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      // GET /emojis answers a map of strings: one of them an address, found by value and masked.
      if (req.url === '/emojis')
        res.end(JSON.stringify({ '+1': 'https://e.example/1.png', contact: 'jane.doe@example.org' }));
      else
        res.end(
          JSON.stringify([{ id: 1, number: 7, title: 'Fix it', user: { email: 'jane.doe@example.org' } }]),
        );
    });
    fx = await startTestGateway({
      spec: GITHUB,
      baseUrl: upstream.origin,
      policy: POLICY,
      serve: { dynamic: true },
    });
    client = await fx.connect({ name: 'dynamic-e2e' });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
    await upstream?.close();
  });

  it('lists three meta-tools, a few hundred tokens for a 771-operation API', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['search_tools', 'describe_tool', 'call_tool']);
    // About four characters per token: far below the 15k-token target.
    expect(JSON.stringify(tools).length).toBeLessThan(4 * 1500);
  });

  it('searches in plain words and never shows a hidden tool (scopes, disabled)', async () => {
    const r = await call('search_tools', { query: 'list open pull requests' });
    const results = r.structuredContent!.results as Array<{ name: string; kind: string; summary: string }>;
    expect(results.slice(0, 3).map((x) => x.name)).toContain('pulls_list');
    expect(results.find((x) => x.name === 'pulls_list')).toMatchObject({
      kind: 'read',
      summary: 'List pull requests',
    });
    const files = (await call('search_tools', { query: 'list files of a pull request', limit: 20 }))
      .structuredContent!.results as Array<{ name: string }>;
    expect(files.map((x) => x.name)).not.toContain('pulls_list-files');
    const gists = (await call('search_tools', { query: 'list gists', limit: 20 })).structuredContent!
      .results as Array<{ name: string }>;
    expect(gists.some((x) => x.name.startsWith('gists_'))).toBe(false);
    const bad = await call('search_tools', { query: '' });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/INVALID_ARGUMENT.*"query"/);
  });

  it('describes a visible tool fully, and answers for a hidden one exactly as for an unknown one', async () => {
    const d = (await call('describe_tool', { name: 'pulls_list' })).structuredContent as {
      inputSchema: { properties: Record<string, unknown>; required: string[] };
    };
    expect(Object.keys(d.inputSchema.properties)).toEqual(expect.arrayContaining(['owner', 'repo', 'state']));
    expect(d.inputSchema.required).toEqual(expect.arrayContaining(['owner', 'repo']));
    const errs = await Promise.all(
      ['gists_list', 'pulls_list-files', 'no_such_tool'].map(async (name) => ({
        describe: await refusal(call('describe_tool', { name })),
        callTool: await refusal(via(name, {})),
        direct: await refusal(call(name, {})),
      })),
    );
    for (const [i, name] of ['gists_list', 'pulls_list-files', 'no_such_tool'].entries())
      for (const e of Object.values(errs[i]!)) {
        expect(e.code).toBe(-32602);
        expect(e.message).toContain(`Unknown tool: ${name}`);
      }
  });

  it('suggests the closest tools the caller can see for a near-miss name, and never a hidden one', async () => {
    const paths = (name: string) =>
      Promise.all([
        refusal(call('describe_tool', { name })),
        refusal(via(name, {})),
        refusal(call(name, {})),
      ]) as Promise<Array<{ message: string }>>;
    for (const e of await paths('pulls_lst'))
      expect(e.message).toMatch(/Unknown tool: pulls_lst\. Did you mean [^?]*\bpulls_list\b/);
    // gists_* need a scope this caller lacks: a near-miss of one, or the hidden name itself, is
    // answered from the visible names only, the same way on every path.
    for (const name of ['gists_list', 'gists_lst']) {
      const errs = await paths(name);
      for (const e of errs) {
        expect(e.message).toMatch(
          new RegExp(`^(MCP error -32602: )?Unknown tool: ${name}(\\. Did you mean [^?]+\\?)?$`),
        );
        expect(e.message.slice(e.message.indexOf(name) + name.length)).not.toContain('gists_');
      }
      expect(new Set(errs.map((e) => e.message)).size).toBe(1);
    }
  });

  it('calls a tool through call_tool with the same request building, masking and audit as a direct call', async () => {
    const before = upstream.requests.length;
    const r = await via('emojis_get', {});
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ '+1': 'https://e.example/1.png' });
    expect(JSON.stringify(r)).not.toContain('jane.doe@example.org');
    await expectAudited(fx.auditFile, {
      kind: 'call',
      tool: 'emojis_get',
      decision: 'allowed',
      principal: 'anonymous',
    });
    // The same request and the same answer as a direct call (the fake PR fails GitHub's output schema:
    // both doors report it the same way, masked).
    const args = { owner: 'o', repo: 'r', state: 'open' };
    const viaResult = await via('pulls_list', args);
    const viaUrl = upstream.requests.at(-1)!.url;
    const direct = await call('pulls_list', args);
    expect(upstream.requests.at(-1)!.url).toBe(viaUrl);
    expect(viaUrl).toMatch(/^\/repos\/o\/r\/pulls\?(.*&)?state=open/);
    // Equal but for the untrusted-data block's id, which is random per call.
    const sameIds = (r: unknown) =>
      JSON.parse(JSON.stringify(r).replace(/id=\\"[0-9a-f]{12}\\"/g, 'id=\\"…\\"'));
    expect(JSON.stringify(direct)).toMatch(/untrusted-data id=/);
    expect(sameIds(viaResult)).toEqual(sameIds(direct));
    expect(JSON.stringify(direct)).not.toContain('jane.doe@example.org');
    expect(upstream.requests.length).toBe(before + 3);
  });

  it('validates the arguments of the called tool, naming the field, before anything leaves', async () => {
    const before = upstream.requests.length;
    const missing = await via('pulls_list', { owner: 'o' });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toMatch(/INVALID_ARGUMENT[\s\S]*repo/);
    const traversal = await via('pulls_list', { owner: '..', repo: 'r' });
    expect(traversal.isError).toBe(true);
    const wrongShape = await call('call_tool', { name: 'pulls_list', arguments: 'owner=o' });
    expect(wrongShape.isError).toBe(true);
    const meta = await call('call_tool', { name: 'call_tool', arguments: {} });
    expect(text(meta)).toMatch(/INVALID_ARGUMENT.*"name"/);
    expect(upstream.requests.length).toBe(before);
  });

  it('shares one rate limit between direct calls and call_tool', async () => {
    // The fake PR fails GitHub's output schema, so each answer is an error; only the third is a refusal.
    const args = { owner: 'o', repo: 'r', pull_number: 7 };
    expect(text(await call('pulls_get', args))).not.toMatch(/RATE_LIMITED/);
    expect(text(await via('pulls_get', args))).not.toMatch(/RATE_LIMITED/);
    const before = upstream.requests.length;
    const third = await via('pulls_get', args);
    expect(upstream.requests.length).toBe(before);
    expect(third.isError).toBe(true);
    expect(text(third)).toMatch(/RATE_LIMITED/);
  });

  it('asks for confirmation of a destructive call made through call_tool, and runs it once confirmed', async () => {
    const before = upstream.requests.length;
    const first = await via('repos_delete', { owner: 'o', repo: 'r' });
    expect(first.isError).toBe(true);
    expect(text(first)).toMatch(/CONFIRMATION_REQUIRED/);
    expect(upstream.requests.length).toBe(before);
    const token = /mcp_warden_confirmation[^A-Za-z0-9_-]+([A-Za-z0-9_.-]{20,})/.exec(text(first))?.[1];
    expect(token).toBeDefined();
    const second = await via('repos_delete', { owner: 'o', repo: 'r', mcp_warden_confirmation: token });
    expect(second.isError).toBeFalsy();
    expect(upstream.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/repos/o/r' });
    // Single use, through either door.
    const again = await call('repos_delete', { owner: 'o', repo: 'r', mcp_warden_confirmation: token });
    expect(text(again)).toMatch(/CONFIRMATION_INVALID/);
  });
});

describe('toolsets and dynamic mode on the Stripe API', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  beforeAll(async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          object: 'list',
          data: [
            { id: 'cus_1', object: 'customer', created: 1, livemode: false, email: 'jane.doe@example.org' },
          ],
          has_more: false,
          url: '/v1/customers',
        }),
      );
    });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  const start = (opts: { toolsets?: string[]; dynamic?: boolean }) =>
    startTestGateway({
      spec: STRIPE,
      baseUrl: upstream.origin,
      env: { MCP_WARDEN_CRED_BASICAUTH: 'sk_test_x:', MCP_WARDEN_CRED_BEARERAUTH: 'sk_test_bench_0000' },
      serve: opts,
    });

  it('serves only the customers toolset with --toolsets customers', async () => {
    const fx = await start({ toolsets: ['customers'] });
    try {
      const client = await fx.connect({ name: 't' });
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('GetCustomers');
      expect(names.every((n) => /Customers/.test(n))).toBe(true);
      const refused = await client.callTool({ name: 'GetInvoices', arguments: {} }).catch((e) => e);
      expect(refused.code).toBe(-32602);
    } finally {
      await fx.close();
    }
  }, 60_000);

  it('finds, describes and calls a Stripe read through the meta-tools, masked', async () => {
    const fx = await start({ dynamic: true });
    try {
      const client = await fx.connect({ name: 't' });
      const found = (await client.callTool({
        name: 'search_tools',
        arguments: { query: 'list customers' },
      })) as Result;
      const names = (found.structuredContent!.results as Array<{ name: string }>).map((x) => x.name);
      expect(names.slice(0, 3)).toContain('GetCustomers');
      // Writes are hidden by the defaults: not in the results, whatever the words.
      const writes = (await client.callTool({
        name: 'search_tools',
        arguments: { query: 'create a customer', limit: 20 },
      })) as Result;
      expect(
        (writes.structuredContent!.results as Array<{ kind: string }>).every((x) => x.kind === 'read'),
      ).toBe(true);
      const d = (await client.callTool({
        name: 'describe_tool',
        arguments: { name: 'GetCustomers' },
      })) as Result;
      expect(JSON.stringify(d.structuredContent).length).toBeLessThan(4 * 15_000);
      const r = (await client.callTool({
        name: 'call_tool',
        arguments: { name: 'GetCustomers', arguments: { limit: 3 } },
      })) as Result;
      expect(r.isError).toBeFalsy();
      expect(JSON.stringify(r.structuredContent)).toContain('j***@example.org');
      expect(upstream.requests.at(-1)!.url).toMatch(/^\/v1\/customers\?limit=3$/);
      expect(JSON.stringify(r)).not.toContain('jane.doe@example.org');
    } finally {
      await fx.close();
    }
  }, 60_000);
});
