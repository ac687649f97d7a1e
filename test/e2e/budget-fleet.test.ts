import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import { type CliGateway, startCliGateway } from '../support/cli-gateway.js';
import { connectHttp } from '../support/gateway.js';
import { tempTree } from '../support/helpers.js';
import { adminApi, freePort } from '../support/http.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { ADMIN_TOKEN, SHOP_SPEC, type Shop, shopEnv, startShop } from '../support/shop.js';
import { readAudit } from '../support/wait.js';

/** A client's tool result as the pipeline helpers read it: its error code (or OK), its text. */
const code = (r: { content: unknown }) => codeOf(r as Parameters<typeof codeOf>[0]);
const text = (r: { content: unknown }) => textOf(r as Parameters<typeof textOf>[0]);
const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const ALICE_KEY = 'alice-agent-key-0123456789abcdef';
const BOB_KEY = 'bob-agent-key-0123456789abcdef01';
const ALICE = 'key:alice';

/** An instance with its admin API (each is started with one). */
type Instance = CliGateway & { name: string; ports: [number, number]; adminUrl: string };

/**
 * Three gateway processes (the built CLI over HTTP) sharing one Redis: a budget of 4 destructive
 * calls per hour per caller holds across them, the caller that passes it is read-only on every
 * instance (and after one restarts), the others are not, and an operator lifts it on any instance.
 */
describe('budgets on three instances sharing Redis', () => {
  const run = randomBytes(4).toString('hex');
  const prefix = `budget-${run}`;
  let shop: Shop;
  let redis: Redis;
  const fleet: Instance[] = [];
  /** Per caller, one MCP client on each instance (index = instance). */
  const on: Record<'alice' | 'bob', Client[]> = { alice: [], bob: [] };
  const dir = tempTree({
    'warden.yaml': [
      'version: 1',
      'mode: read-write',
      `state: { redis: env:REDIS_URL, prefix: ${prefix} }`,
      'admin: { token: env:ADMIN_TOKEN }',
      'callers:',
      '  apiKeys:',
      `    - { id: alice, hash: "${hashKey(ALICE_KEY)}", scopes: [tools:read, tools:write, tools:delete] }`,
      `    - { id: bob, hash: "${hashKey(BOB_KEY)}", scopes: [tools:read, tools:write, tools:delete] }`,
      'budgets:',
      '  - class: destructive',
      '    calls: 4',
      '    perSeconds: 3600',
      'rules:',
      '  - match: { name: deleteCustomer }',
      '    enabled: true',
      '    confirm: false',
      '    reason: the budget test deletes without asking anyone',
      '  - match: { name: createOrder }',
      '    enabled: true',
    ].join('\n'),
  });

  async function start(name: string, ports: [number, number]): Promise<Instance> {
    const gateway = await startCliGateway({
      dir,
      spec: SHOP_SPEC,
      auditFile: join(dir, `audit-${name}.jsonl`),
      baseUrl: shop.url,
      port: ports[0],
      adminPort: ports[1],
      env: shopEnv(shop, { REDIS_URL, ADMIN_TOKEN }),
      name: `instance ${name}`,
      timeout: 40_000,
    });
    return Object.assign(gateway, { name, ports, adminUrl: gateway.adminUrl! });
  }

  const stop = (inst: Instance) => inst.stop();

  const del = (who: 'alice' | 'bob', i: number, customerId: string) =>
    on[who][i]!.callTool({ name: 'deleteCustomer', arguments: { customerId } });

  beforeAll(async () => {
    shop = await startShop();
    redis = new Redis(REDIS_URL);
    const ports = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
    fleet.push(
      ...(await Promise.all(
        ['a', 'b', 'c'].map((name, i) => start(name, [ports[i]!, ports[i + 3]!] as [number, number])),
      )),
    );
    for (const inst of fleet) {
      on.alice.push(await connectHttp(inst.mcpUrl, { token: ALICE_KEY, name: 'budget-alice' }));
      on.bob.push(await connectHttp(inst.mcpUrl, { token: BOB_KEY, name: 'budget-bob' }));
    }
  }, 120_000);

  afterAll(async () => {
    for (const c of [...on.alice, ...on.bob]) await c.close().catch(() => {});
    await Promise.all(fleet.map(stop));
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await shop?.close();
  }, 60_000);

  it('admits N destructive calls spread over the instances and refuses the N+1th on any of them', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push(code(await del('alice', i % 3, `c_${1001 + i}`)));
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OK']);
    const over = await del('alice', 1, 'c_1005');
    expect(code(over)).toBe('BUDGET_EXCEEDED');
    expect(text(over)).toMatch(/destructive-calls.*4 of 4 calls per 3600 s/);
    // Only the four admitted deletes reached the shop.
    expect(shop.requests.filter((r) => r.method === 'DELETE')).toHaveLength(4);

    // Read-only for alice on every instance; her reads still served; bob unaffected.
    for (let i = 0; i < 3; i++) {
      const order = await on.alice[i]!.callTool({
        name: 'createOrder',
        arguments: { body: { customerId: 'c_1010', items: [{ sku: 'sku-1', quantity: 1 }] } },
      });
      expect(code(order)).toBe('CALLER_READ_ONLY');
      expect(code(await on.alice[i]!.callTool({ name: 'searchProducts', arguments: { q: 'x' } }))).toBe('OK');
    }
    expect(code(await del('bob', 2, 'c_1006'))).toBe('OK');

    // The refusal is audited with the budget, on the instance that refused it.
    const refused = readAudit(fleet[1]!.auditFile).find((r) => r.code === 'BUDGET_EXCEEDED');
    expect(refused).toMatchObject({
      principal: ALICE,
      decision: 'denied',
      budget: { name: 'destructive-calls', class: 'destructive', used: 4, limit: 4 },
    });
  }, 120_000);

  it('the restriction survives a restart of one instance, and is listed on every admin port', async () => {
    const c = fleet[2]!;
    await on.alice[2]!.close().catch(() => {});
    await stop(c);
    const restarted = await start('c', c.ports);
    fleet[2] = restarted;
    on.alice[2] = await connectHttp(restarted.mcpUrl, { token: ALICE_KEY, name: 'budget-alice' });
    expect(code(await del('alice', 2, 'c_1007'))).toBe('CALLER_READ_ONLY');

    for (const inst of fleet) {
      const { status, body } = await adminApi(inst.adminUrl, ADMIN_TOKEN)('GET', '/restricted');
      expect(status).toBe(200);
      expect((body as { restricted: Array<Record<string, unknown>> }).restricted).toEqual([
        expect.objectContaining({
          principal: ALICE,
          budget: 'destructive-calls',
          tool: 'deleteCustomer',
          used: 4,
          limit: 4,
        }),
      ]);
    }
  }, 120_000);

  it('an operator lifts it (admin token required, audited), and every instance lets alice write again', async () => {
    const path = `/restricted/${encodeURIComponent(ALICE)}/lift`;
    const anonymous = await fetch(`${fleet[0]!.adminUrl}${path}`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    const wrong = await adminApi(fleet[0]!.adminUrl, 'not-the-admin-token-0123456789')('POST', path, {});
    expect(wrong.status).toBe(401);
    expect(code(await del('alice', 0, 'c_1008'))).toBe('CALLER_READ_ONLY');

    const lifted = await adminApi(fleet[0]!.adminUrl, ADMIN_TOKEN, 'ops-carol')('POST', path, {
      reason: 'reviewed: a planned clean-up',
    });
    expect(lifted.status).toBe(200);
    expect(lifted.body).toMatchObject({ lifted: { principal: ALICE, budget: 'destructive-calls' } });
    const again = await adminApi(fleet[0]!.adminUrl, ADMIN_TOKEN)('POST', path, {});
    expect(again.status).toBe(404);
    expect(
      readAudit(fleet[0]!.auditFile).find((r) => r.kind === 'control' && r.action === 'budget.lift'),
    ).toMatchObject({ target: ALICE, actor: expect.stringContaining('ops-carol') });

    // Lifted everywhere, with a fresh window for the budget that was hit.
    expect(code(await del('alice', 1, 'c_1008'))).toBe('OK');
    expect(code(await del('alice', 2, 'c_1009'))).toBe('OK');
    const order = await on.alice[0]!.callTool({
      name: 'createOrder',
      arguments: { body: { customerId: 'c_1010', items: [{ sku: 'sku-1', quantity: 1 }] } },
    });
    expect(code(order)).not.toBe('CALLER_READ_ONLY');
  }, 120_000);
  it('concurrent calls racing on three instances spend exactly what is left, never more', async () => {
    // Bob has used 1 of his 4; five deletes at once, spread over the instances: exactly 3 go out.
    const before = shop.requests.filter((r) => r.method === 'DELETE').length;
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => del('bob', i % 3, `c_${1011 + i}`)));
    const codes = results.map((r) => code(r));
    expect(codes.filter((c) => c === 'OK')).toHaveLength(3);
    // The first call over the budget refuses itself and restricts bob; a call that is checked after
    // that restriction landed is refused for it (CALLER_READ_ONLY): which one a racing call meets
    // depends on the interleaving, and both refuse before anything is sent.
    const refused = codes.filter((c) => c !== 'OK');
    expect(refused).toContain('BUDGET_EXCEEDED');
    for (const c of refused) expect(['BUDGET_EXCEEDED', 'CALLER_READ_ONLY']).toContain(c);
    expect(shop.requests.filter((r) => r.method === 'DELETE').length - before).toBe(3);
    const { body } = await adminApi(fleet[1]!.adminUrl, ADMIN_TOKEN)('GET', '/restricted');
    expect((body as { restricted: Array<{ principal: string }> }).restricted.map((r) => r.principal)).toEqual(
      ['key:bob'],
    );
  }, 120_000);
});
