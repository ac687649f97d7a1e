import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the demo upstream is plain JavaScript
import { startShop } from '../../examples/shop/server.mjs';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { eventually, tempTree } from '../support/helpers.js';

const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;
const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const run = promisify(execFile);

interface Shop {
  url: string;
  key: string;
  requests: Array<{ method: string; url: string }>;
  close(): Promise<void>;
}

const BASE_POLICY = [
  'version: 1',
  'mode: read-write',
  'admin:',
  '  token: env:ADMIN_TOKEN',
  'callers:',
  '  stdio: { principal: ops, scopes: [tools:read, tools:write] }',
  'rules:',
  '  - match: { name: createOrder }',
  '    enabled: true',
  '',
].join('\n');

describe('runtime control without a redeploy', () => {
  let shop: Shop;
  let gw: Gateway;
  let dir: string;
  let policyFile: string;
  let auditFile: string;
  let client: Client;

  const admin = async (method: string, path: string, body?: unknown, token = ADMIN_TOKEN) => {
    const res = await fetch(new URL(path, gw.adminUrl!), {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-actor': 'alice' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const names = async () => (await client.listTools()).tools.map((t) => t.name).sort();
  const audit = () =>
    readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

  beforeAll(async () => {
    shop = await startShop();
    dir = tempTree({ 'warden.yaml': BASE_POLICY });
    policyFile = join(dir, 'warden.yaml');
    auditFile = join(dir, 'audit.jsonl');
    gw = await startGateway({
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      policy: policyFile,
      auditFile,
      transport: { kind: 'http', port: 0 },
      admin: { port: 0 },
      logLevel: 'error',
      env: { MCP_WARDEN_CRED_SHOPKEY: shop.key, ADMIN_TOKEN },
    });
    client = new Client({ name: 'control-e2e', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url!)));
  });
  afterAll(async () => {
    await client?.close();
    await gw?.close();
    await shop?.close();
  });

  it('keeps the admin API on its own port, behind its own token', async () => {
    expect(new URL(gw.adminUrl!).port).not.toBe(new URL(gw.url!).port);
    expect((await admin('GET', '/tools', undefined, 'wrong')).status).toBe(401);
    const noAuth = await fetch(new URL('/tools', gw.adminUrl!));
    expect(noAuth.status).toBe(401);
    // The MCP port does not serve the admin API.
    expect((await fetch(new URL('/tools', gw.url!))).status).toBe(404);
  });

  it('disables a tool at run time: clients lose it and calls are refused, then enables it again', async () => {
    expect(await names()).toContain('searchProducts');
    const off = await admin('POST', '/tools/searchProducts/disable');
    expect(off.body).toMatchObject({ name: 'searchProducts', exposed: false, toggle: 'disabled' });
    expect(await names()).not.toContain('searchProducts');
    const before = shop.requests.length;
    const refused = await client.callTool({ name: 'searchProducts', arguments: { q: 'x' } }).catch((e) => e);
    expect(refused.code).toBe(-32602);
    expect(shop.requests.length).toBe(before);
    await admin('POST', '/tools/searchProducts/reset');
    expect(await names()).toContain('searchProducts');
    expect(audit()).toContainEqual(
      expect.objectContaining({
        kind: 'control',
        actor: 'admin:alice',
        action: 'tool.toggle',
        target: 'searchProducts',
        before: 'policy',
        after: 'disabled',
      }),
    );
    expect(audit()).toContainEqual(
      expect.objectContaining({ kind: 'call', tool: 'searchProducts', code: 'DENIED_HIDDEN' }),
    );
  });

  it('never lets a runtime enable lift a secure default (risk classes stay hidden)', async () => {
    const r = await admin('POST', '/tools/listApiKeys/enable');
    expect(r.body).toMatchObject({ exposed: false, toggle: 'enabled' });
    expect((r.body.hiddenBecause as string[]).join(' ')).toMatch(/admin: .*allowRisk/);
    await admin('POST', '/tools/listApiKeys/reset');
  });

  it('flips the kill switch: read-only drops writes, off drops everything, read-write restores the policy', async () => {
    expect(await names()).toContain('createOrder');
    expect((await admin('POST', '/mode', { mode: 'read-only' })).body).toMatchObject({ mode: 'read-only' });
    const ro = await names();
    expect(ro).not.toContain('createOrder');
    expect(ro).toContain('getOrder');
    await admin('POST', '/mode', { mode: 'off' });
    expect(await names()).toEqual([]);
    const refused = await client
      .callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } })
      .catch((e) => e);
    expect(refused.code).toBe(-32602);
    await admin('POST', '/mode', { mode: 'read-write' });
    expect(await names()).toContain('createOrder');
    expect((await admin('POST', '/mode', { mode: 'yolo' })).status).toBe(400);
    expect(
      audit()
        .filter((l) => l.action === 'mode')
        .map((l) => l.after),
    ).toEqual(['read-only', 'off', 'none']);
  });

  it('applies a valid policy edit without restart, versions it, and refuses an invalid one', async () => {
    writeFileSync(policyFile, `${BASE_POLICY}  - match: { name: getOrder }\n    enabled: false\n`);
    await eventually(async () => expect(await names()).not.toContain('getOrder'));
    const v = await admin('GET', '/policy/versions');
    expect(v.body.current).toBe(2);

    // A typo: refused, logged and audited; version 2 keeps running.
    writeFileSync(policyFile, `${BASE_POLICY}  - match: { name: getOrder }\n    enabeld: true\n`);
    await eventually(() =>
      expect(audit()).toContainEqual(expect.objectContaining({ kind: 'control', action: 'policy.rejected' })),
    );
    expect((await admin('GET', '/policy/versions')).body.current).toBe(2);
    expect(await names()).not.toContain('getOrder');
    const rejected = audit().find((l) => l.action === 'policy.rejected');
    expect(rejected.detail).toContain('unknown key rules[1].enabeld');
  });

  it('diffs versions and rolls back (the file is rewritten to match)', async () => {
    const d = await admin('GET', '/policy/diff?from=1&to=2');
    expect(d.body.diff).toContain('+  - match: { name: getOrder }');
    const r = await admin('POST', '/policy/rollback', { version: 1 });
    expect(r.body).toMatchObject({ version: 3, rolledBackTo: 1 });
    expect(await names()).toContain('getOrder');
    expect(readFileSync(policyFile, 'utf8')).toBe(BASE_POLICY);
    // The watcher sees the rewritten file, with the same hash: no extra version.
    await new Promise((r) => setTimeout(r, 400));
    expect((await admin('GET', '/policy/versions')).body.current).toBe(3);
    expect(audit()).toContainEqual(
      expect.objectContaining({ action: 'policy.rollback', actor: 'admin:alice', before: { version: 2 } }),
    );
    expect((await admin('POST', '/policy/rollback', { version: 99 })).status).toBe(400);
  });

  it('is driven by the CLI: tools list / disable, mode, policy history', async () => {
    const env = { ...process.env, MCP_WARDEN_ADMIN_TOKEN: ADMIN_TOKEN, MCP_WARDEN_ADMIN_URL: gw.adminUrl! };
    const list = await run(process.execPath, [CLI, 'tools', 'list'], { env });
    expect(list.stdout).toMatch(/^on +searchProducts +read +policy +scopes: tools:read$/m);
    expect(list.stdout).toMatch(/^off +listApiKeys/m);
    await run(process.execPath, [CLI, 'tools', 'disable', 'searchProducts'], { env });
    expect(await names()).not.toContain('searchProducts');
    await run(process.execPath, [CLI, 'tools', 'reset', 'searchProducts'], { env });
    const mode = await run(process.execPath, [CLI, 'mode', 'read-only'], { env });
    expect(mode.stdout).toBe('mode: read-only\n');
    await run(process.execPath, [CLI, 'mode', 'read-write'], { env });
    const history = await run(process.execPath, [CLI, 'policy', 'history'], { env });
    expect(history.stdout.trim().split('\n')).toHaveLength(3);
    expect(history.stdout).toMatch(/^\* v3 .* rollback /m);
    const noToken = await run(process.execPath, [CLI, 'tools', 'list'], {
      env: { PATH: process.env.PATH ?? '', MCP_WARDEN_ADMIN_URL: gw.adminUrl! },
    }).catch((e) => e);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('MCP_WARDEN_ADMIN_TOKEN');
  });
});

describe('stdio clients hear about changes', () => {
  it('sends tools/list_changed when the policy file changes, and lists the new set', async () => {
    const shop: Shop = await startShop();
    const dir = tempTree({ 'warden.yaml': BASE_POLICY });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        CLI,
        'serve',
        '--stdio',
        '--spec',
        SHOP_SPEC,
        '--base-url',
        shop.url,
        '--policy',
        join(dir, 'warden.yaml'),
        '--audit-file',
        join(dir, 'a.jsonl'),
      ],
      env: { MCP_WARDEN_CRED_SHOPKEY: shop.key, PATH: process.env.PATH ?? '' },
      stderr: 'pipe',
    });
    let changed = 0;
    const client = new Client(
      { name: 'stdio-watch', version: '1' },
      {
        versionNegotiation: { mode: 'legacy' },
        listChanged: { tools: { autoRefresh: false, onChanged: () => void changed++ } },
      },
    );
    try {
      await client.connect(transport);
      const before = (await client.listTools()).tools.map((t) => t.name);
      // The stdio principal has tools:write, so the enabled write is listed.
      expect(before).toContain('createOrder');
      writeFileSync(join(dir, 'warden.yaml'), BASE_POLICY.replace('mode: read-write', 'mode: read-only'));
      await eventually(() => expect(changed).toBeGreaterThan(0));
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('createOrder');
    } finally {
      await client.close();
      await shop.close();
    }
  });

  it('confirms a destructive call in-band with a 2025-11-25 client that declares elicitation', async () => {
    const shop: Shop = await startShop();
    const policy = [
      'version: 1',
      'mode: read-write',
      'callers:',
      '  stdio: { principal: ops, scopes: [tools:read, tools:delete] }',
      'rules:',
      '  - match: { name: deleteCustomer }',
      '    enabled: true',
      '',
    ].join('\n');
    const dir = tempTree({ 'warden.yaml': policy });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        CLI,
        'serve',
        '--stdio',
        '--spec',
        SHOP_SPEC,
        '--base-url',
        shop.url,
        '--policy',
        join(dir, 'warden.yaml'),
        '--audit-file',
        join(dir, 'a.jsonl'),
      ],
      env: { MCP_WARDEN_CRED_SHOPKEY: shop.key, PATH: process.env.PATH ?? '' },
      stderr: 'pipe',
    });
    const asked: string[] = [];
    let answer: 'accept' | 'decline' = 'decline';
    const client = new Client(
      { name: 'stdio-elicit', version: '1' },
      { versionNegotiation: { mode: 'legacy' }, capabilities: { elicitation: { form: {} } } },
    );
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push((req.params as { message: string }).message);
      return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
    });
    try {
      await client.connect(transport);
      const before = shop.requests.length;
      const no = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(JSON.stringify(no.content)).toContain('CONFIRMATION_DECLINED');
      expect(shop.requests.length).toBe(before);
      expect(asked[0]).toContain('Allow deleteCustomer (DELETE /customers/{customerId})');
      answer = 'accept';
      const yes = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(yes.isError).toBeFalsy();
      expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1002' });
      await new Promise((r) => setTimeout(r, 200));
      expect(readFileSync(join(dir, 'a.jsonl'), 'utf8')).toContain('"confirmed":"elicitation"');
    } finally {
      await client.close();
      await shop.close();
    }
  });
});
