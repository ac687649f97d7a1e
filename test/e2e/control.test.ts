import { readFileSync, writeFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { mcpClient, type ShopGateway, startShopGateway } from '../support/gateway.js';
import { type AdminCall, adminApi } from '../support/http.js';
import { ADMIN_LINES, ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { cliEnv, connectShopStdio, runCliAsync } from '../support/stdio.js';
import { eventually, expectAudited, holds, readAudit } from '../support/wait.js';

const BASE_POLICY = shopPolicy([
  ...ADMIN_LINES,
  'callers:',
  '  stdio: { principal: ops, scopes: [tools:read, tools:write] }',
]);

describe('runtime control without a redeploy', () => {
  let fx: ShopGateway;
  let client: Client;
  let admin: AdminCall;
  let gw: Gateway;
  const names = async () => (await client.listTools()).tools.map((t) => t.name).sort();
  const audit = () => readAudit(fx.auditFile);

  beforeAll(async () => {
    fx = await startShopGateway({ policy: BASE_POLICY, admin: true });
    gw = fx.gw;
    admin = adminApi(gw.adminUrl!, ADMIN_TOKEN, 'alice');
    client = await fx.connect({ name: 'control-e2e' });
  });
  afterAll(() => fx?.close());

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
    const before = fx.shop.requests.length;
    const refused = await client.callTool({ name: 'searchProducts', arguments: { q: 'x' } }).catch((e) => e);
    expect(refused.code).toBe(-32602);
    expect(fx.shop.requests.length).toBe(before);
    await admin('POST', '/tools/searchProducts/reset');
    expect(await names()).toContain('searchProducts');
    await expectAudited(
      fx.auditFile,
      {
        kind: 'control',
        actor: 'admin:alice',
        action: 'tool.toggle',
        target: 'searchProducts',
        before: 'policy',
        after: 'disabled',
      },
      { kind: 'call', tool: 'searchProducts', code: 'DENIED_HIDDEN' },
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
    await eventually(
      () =>
        expect(
          audit()
            .filter((l) => l.action === 'mode')
            .map((l) => l.after),
        ).toEqual(['read-only', 'off', 'none']),
      { what: 'three mode changes in the audit' },
    );
  });

  it('applies a valid policy edit without restart, versions it, and refuses an invalid one', async () => {
    writeFileSync(fx.policyFile, `${BASE_POLICY}  - match: { name: getOrder }\n    enabled: false\n`);
    await eventually(async () => expect(await names()).not.toContain('getOrder'), {
      what: 'the edited policy to hide getOrder',
    });
    const v = await admin('GET', '/policy/versions');
    expect(v.body.current).toBe(2);

    // A typo: refused, logged and audited; version 2 keeps running.
    writeFileSync(fx.policyFile, `${BASE_POLICY}  - match: { name: getOrder }\n    enabeld: true\n`);
    await expectAudited(fx.auditFile, { kind: 'control', action: 'policy.rejected' });
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
    expect(readFileSync(fx.policyFile, 'utf8')).toBe(BASE_POLICY);
    // The watcher sees the rewritten file, with the same hash: no extra version.
    await holds(async () => expect((await admin('GET', '/policy/versions')).body.current).toBe(3), {
      during: 1200, // the policy is polled every 0.5 s and read once it holds still for 0.1 s
      what: 'version 3 after the watcher saw the rolled-back file',
    });
    await expectAudited(fx.auditFile, {
      action: 'policy.rollback',
      actor: 'admin:alice',
      before: { version: 2 },
    });
    expect((await admin('POST', '/policy/rollback', { version: 99 })).status).toBe(400);
  });

  it('is driven by the CLI: tools list / disable, mode, policy history', async () => {
    const env = { ...process.env, MCP_WARDEN_ADMIN_TOKEN: ADMIN_TOKEN, MCP_WARDEN_ADMIN_URL: gw.adminUrl! };
    const run = (...args: string[]) => runCliAsync(args, env);
    const list = await run('tools', 'list');
    expect(list.stdout).toMatch(/^on +searchProducts +read +policy +scopes: tools:read$/m);
    expect(list.stdout).toMatch(/^off +listApiKeys/m);
    await run('tools', 'disable', 'searchProducts');
    expect(await names()).not.toContain('searchProducts');
    await run('tools', 'reset', 'searchProducts');
    const mode = await run('mode', 'read-only');
    expect(mode.stdout).toBe('mode: read-only\n');
    await run('mode', 'read-write');
    const history = await run('policy', 'history');
    expect(history.stdout.trim().split('\n')).toHaveLength(3);
    expect(history.stdout).toMatch(/^\* v3 .* rollback /m);
    const noToken = await runCliAsync(
      ['tools', 'list'],
      cliEnv({ MCP_WARDEN_ADMIN_URL: gw.adminUrl! }),
    ).catch((e) => e);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('MCP_WARDEN_ADMIN_TOKEN');
  });
});

describe('stdio clients hear about changes', () => {
  it('sends tools/list_changed when the policy file changes, and lists the new set', async () => {
    let changed = 0;
    const client = mcpClient({
      name: 'stdio-watch',
      options: { listChanged: { tools: { autoRefresh: false, onChanged: () => void changed++ } } },
    });
    const served = await connectShopStdio(client, { policy: BASE_POLICY });
    try {
      const before = (await client.listTools()).tools.map((t) => t.name);
      // The stdio principal has tools:write, so the enabled write is listed.
      expect(before).toContain('createOrder');
      writeFileSync(served.policyFile, BASE_POLICY.replace('mode: read-write', 'mode: read-only'));
      await eventually(() => expect(changed).toBeGreaterThan(0), { what: 'tools/list_changed' });
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('createOrder');
    } finally {
      await served.close();
    }
  });

  it('confirms a destructive call in-band with a 2025-11-25 client that declares elicitation', async () => {
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
    const asked: string[] = [];
    let answer: 'accept' | 'decline' = 'decline';
    const client = mcpClient({
      name: 'stdio-elicit',
      options: { capabilities: { elicitation: { form: {} } } },
    });
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push((req.params as { message: string }).message);
      return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
    });
    const served = await connectShopStdio(client, { policy });
    const { shop } = served;
    try {
      const before = shop.requests.length;
      const no = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(JSON.stringify(no.content)).toContain('CONFIRMATION_DECLINED');
      expect(shop.requests.length).toBe(before);
      expect(asked[0]).toContain('Allow deleteCustomer (DELETE /customers/{customerId})');
      answer = 'accept';
      const yes = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(yes.isError).toBeFalsy();
      expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1002' });
      // The child writes its audit after answering: wait for the line, then read it.
      await eventually(
        () => expect(readFileSync(served.auditFile, 'utf8')).toContain('"confirmed":"elicitation"'),
        { what: 'the confirmed call in the audit' },
      );
    } finally {
      await served.close();
    }
  });
});
