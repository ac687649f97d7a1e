import { randomBytes } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { type ShopGateway, startShopGateway } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { tempPath } from '../support/paths.js';
import { ADMIN_TOKEN, rugPull, SHOP_SPEC, type Shop, startShop } from '../support/shop.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

/** Three instances on different ports, sharing the machine's real Redis and PostgreSQL. */
describe('scale-out: three instances sharing Redis and PostgreSQL', () => {
  const run = randomBytes(4).toString('hex');
  let shop: Shop;
  const fixtures: ShopGateway[] = [];
  const gws: Gateway[] = [];
  const clients: Client[] = [];
  const text = (r: unknown) => JSON.stringify((r as { content?: unknown }).content ?? r);
  // One spec file for the three, as a deployment would ship it; a test changes it under them.
  const specFile = tempPath('openapi.yaml');
  const admin = (path: string) => adminApi(gws[0]!.adminUrl!, ADMIN_TOKEN)('POST', path);

  beforeAll(async () => {
    shop = await startShop();
    copyFileSync(SHOP_SPEC, specFile);
    for (const name of ['a', 'b', 'c']) {
      const policy = [
        'version: 1',
        'mode: read-write',
        'state:',
        '  redis: env:REDIS_URL',
        `  prefix: test-${run}`,
        'audit:',
        '  postgres: env:PG_URL',
        `  instance: scale-${run}-${name}`,
        'confirm: { secret: env:CONFIRM_KEY }',
        'admin: { token: env:ADMIN_TOKEN }',
        'callers:',
        '  anonymous: { scopes: [tools:read, tools:delete], reason: loopback test instances }',
        'rules:',
        '  - match: { name: searchProducts }',
        '    rateLimit: { perTool: { calls: 10, perSeconds: 60 } }',
        '  - match: { name: deleteCustomer }',
        '    enabled: true',
        // Tokens shared by instances (operator approvals across instances: test/e2e/approvals.test.ts).
        '    approval: agent',
        '    reason: the test shares tokens between instances',
      ].join('\n');
      const fx = await startShopGateway({
        shop,
        spec: specFile,
        policy,
        admin: true,
        env: { REDIS_URL, PG_URL, CONFIRM_KEY: `confirm-key-shared-by-instances-${run}` },
      });
      fixtures.push(fx);
      gws.push(fx.gw);
      clients.push(await fx.connect({ name: `scale-${name}` }));
    }
  }, 30_000);

  afterAll(async () => {
    for (const fx of fixtures) await fx.close();
    await shop?.close();
    const db = new pg.Pool({ connectionString: PG_URL });
    await db.query('DELETE FROM mcp_warden_audit WHERE instance LIKE $1', [`scale-${run}-%`]);
    await db.end();
  });

  it('admits exactly N calls of a limit of N per minute across all three', async () => {
    const results = [];
    for (let i = 0; i < 15; i++)
      results.push(await clients[i % 3]!.callTool({ name: 'searchProducts', arguments: { q: `k${i}` } }));
    const ok = results.filter((r) => !r.isError).length;
    expect(ok).toBe(10);
    const limited = results.filter((r) => text(r).includes('RATE_LIMITED'));
    expect(limited).toHaveLength(5);
    expect(text(limited[0])).toMatch(/Retry after \d+ s/);
  });

  it('applies a tool disabled on one instance on the others within a second', async () => {
    const res = await admin('/tools/getOrder/disable');
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const gone = async (c: Client) => !(await c.listTools()).tools.some((t) => t.name === 'getOrder');
    await waitFor(async () => (await gone(clients[1]!)) && (await gone(clients[2]!)), {
      what: 'getOrder disabled on instances b and c',
      timeout: 1000,
      interval: 20,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    const refused = await clients[2]!
      .callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } })
      .catch((e) => e);
    expect(refused.code).toBe(-32602);
    await admin('/tools/getOrder/reset');
  });

  it('accepts a confirmation token once, whichever instance sees it', async () => {
    const first = await clients[0]!.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1004' } });
    const blocks = (first.content as Array<{ text: string }>).map((b) => b.text).join('\n');
    const token = /mcp_warden_confirmation: (\S+)/.exec(blocks)![1]!;
    const ok = await clients[1]!.callTool({
      name: 'deleteCustomer',
      arguments: { customerId: 'c_1004', mcp_warden_confirmation: token },
    });
    expect(ok.isError).toBeFalsy();
    expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1004' });
    const replay = await clients[2]!.callTool({
      name: 'deleteCustomer',
      arguments: { customerId: 'c_1004', mcp_warden_confirmation: token },
    });
    expect(text(replay)).toContain('already been used');
  });

  it('shares tool approvals: a changed tool approved on one instance is back on all three', async () => {
    const original = rugPull(specFile, 'Search products (changed upstream)');
    try {
      for (const g of gws) await g.reloadSpec('test');
      const has = async (c: Client) => (await c.listTools()).tools.some((t) => t.name === 'searchProducts');
      for (const c of clients) expect(await has(c)).toBe(false);
      const res = await admin('/tools/searchProducts/approve');
      expect(res.status).toBe(200);
      await waitFor(async () => (await has(clients[1]!)) && (await has(clients[2]!)), {
        what: 'the approval shared with instances b and c',
        timeout: 1000,
        interval: 20,
      });
      expect(await has(clients[0]!)).toBe(true);
    } finally {
      writeFileSync(specFile, original);
    }
  });

  it('lands every audit record of every instance in PostgreSQL', async () => {
    for (const g of gws) await g.flushAudit();
    const db = new pg.Pool({ connectionString: PG_URL });
    const { rows } = await db.query(
      "SELECT instance, count(*)::int AS n FROM mcp_warden_audit WHERE instance LIKE $1 AND kind = 'call' GROUP BY instance ORDER BY instance",
      [`scale-${run}-%`],
    );
    await db.end();
    // 15 searches (5 each), the refused getOrder on c, the confirmation steps (2 on a/b/c: first on a, ok on b, replay on c).
    expect(rows).toEqual([
      { instance: `scale-${run}-a`, n: 6 },
      { instance: `scale-${run}-b`, n: 6 },
      { instance: `scale-${run}-c`, n: 7 },
    ]);
  });
});
