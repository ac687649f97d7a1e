import { readFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notFound } from '../../src/pipeline/resolve.js';
import { connectHttp, type Era, mcpClient, startShopGateway } from '../support/gateway.js';
import { tempPath } from '../support/paths.js';
import { type Shop, startShop } from '../support/shop.js';
import { connectShopStdio, type StdioShop } from '../support/stdio.js';
import { eventually, readAudit } from '../support/wait.js';

const ERAS: ReadonlyArray<readonly [string, Era]> = [
  ['2025-11-25', 'legacy'],
  ['2026-07-28', { pin: '2026-07-28' }],
];

type Connect = (era: Era) => Promise<Client>;

/** The same scenarios run over HTTP (in-process gateway) and stdio (the built CLI as a child). */
function scenarios(
  name: string,
  setup: () => Promise<{ connect: Connect; shop: Shop; auditFile: string; logs: () => string }>,
) {
  describe(name, () => {
    let env: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      env = await setup();
    });

    for (const [label, era] of ERAS) {
      describe(`with a ${label} client`, () => {
        let client: Client;
        beforeAll(async () => {
          client = await env.connect(era);
        });
        afterAll(() => client.close());

        it('negotiates the era it asked for', () => {
          expect(client.getProtocolEra?.()).toBe(label === '2025-11-25' ? 'legacy' : 'modern');
        });

        it('lists only the safe reads', async () => {
          const names = (await client.listTools()).tools.map((t) => t.name).sort();
          // getCustomer returns a secret field: served, because masking drops it (see below).
          expect(names).toEqual([
            'getCustomer',
            'getOrder',
            'listCustomerOrders',
            'listCustomers',
            'searchProducts',
          ]);
        });

        it('masks personal data and drops secret fields before the agent sees them', async () => {
          const r = await client.callTool({ name: 'getCustomer', arguments: { customerId: 'c_1003' } });
          expect(r.isError).toBeFalsy();
          const c = r.structuredContent as Record<string, unknown>;
          expect(c.apiToken).toBeUndefined();
          expect(c).toMatchObject({
            id: 'c_1003',
            name: 'A. H.',
            email: 'a***@example.org',
            phone: '+*-***-**02',
          });
          const text = JSON.stringify(r);
          expect(text).not.toContain('tok_demo_');
          expect(text).not.toContain('alan.hamilton');
          const list = await client.callTool({ name: 'listCustomers', arguments: { limit: 5 } });
          expect(JSON.stringify(list)).not.toContain('sk_live_51DemoPlantedSecretKey000');
          expect(JSON.stringify(list)).toContain('[REDACTED:stripe-key]');
        });

        it('calls a read and returns structured content', async () => {
          const r = await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
          expect(r.isError).toBeFalsy();
          expect(r.structuredContent).toEqual({
            result: [{ sku: 'MS-02', name: 'Wireless mouse', price: 49.5, inStock: true }],
          });
          const last = env.shop.requests.at(-1)!;
          expect(last.url).toBe('/v1/products/search?q=mouse');
          expect(last.headers['x-shop-key']).toBe(env.shop.key);
        });

        it('makes hidden tools unreachable with the same error as unknown ones', async () => {
          const before = env.shop.requests.length;
          const hidden = await client
            .callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1001' } })
            .catch((e) => e);
          const unknown = await client
            .callTool({ name: 'deleteCustomex', arguments: { customerId: 'c_1001' } })
            .catch((e) => e);
          expect(hidden.code).toBe(-32602);
          expect(unknown.code).toBe(-32602);
          // Both answered alike: "Unknown tool", then the closest names among those this caller can
          // see (a hidden name is never one of them), exactly as for a name the API does not have.
          const visible = ((await client.listTools()) as { tools: Array<{ name: string }> }).tools.map(
            (t) => t.name,
          );
          expect(visible).not.toContain('deleteCustomer');
          for (const [e, name] of [
            [hidden, 'deleteCustomer'],
            [unknown, 'deleteCustomex'],
          ] as const)
            expect(e.message).toMatch(
              new RegExp(`${escapeRe(notFound('TOOL_NOT_FOUND', name, visible).message)}$`),
            );
          expect(env.shop.requests.length).toBe(before);
        });

        it('never sends invalid arguments upstream', async () => {
          const before = env.shop.requests.length;
          const r = await client.callTool({
            name: 'listCustomerOrders',
            arguments: { customerId: 'nope', status: 'lost', x: 1 },
          });
          expect(r.isError).toBe(true);
          const text = (r.content as Array<{ text: string }>)[0]!.text;
          expect(text).toContain('[INVALID_ARGUMENT]');
          expect(text).toContain("'customerId' must match the pattern");
          expect(text).toContain("'status' must be one of");
          expect(text).toContain("'x' is not an argument of this tool");
          expect(env.shop.requests.length).toBe(before);
        });

        it.each(['../admin', '..%2Fadmin', '%2e%2e/admin', 'a?x=1', 'a#b', '..', '%2e%2e'])(
          'keeps the upstream path when orderId is %j',
          async (orderId) => {
            const before = env.shop.requests.length;
            await client.callTool({ name: 'getOrder', arguments: { orderId } });
            for (const r of env.shop.requests.slice(before)) {
              const u = new URL(r.url, 'http://upstream.invalid');
              expect(u.pathname).toMatch(/^\/v1\/orders\/[^/]+$/);
              expect(decodeURIComponent(u.pathname.slice('/v1/orders/'.length))).toBe(orderId);
              expect(u.search).toBe('');
            }
          },
        );

        it('injects the credential and never echoes it', async () => {
          const r = await client.callTool({ name: 'listCustomers', arguments: { limit: 500 } });
          expect(r.isError).toBeFalsy();
          expect(env.shop.requests.at(-1)!.url).toBe('/v1/customers?limit=100');
          expect((r.structuredContent as { data: unknown[] }).data).toHaveLength(30);
          expect(JSON.stringify(r)).not.toContain(env.shop.key);
          expect(JSON.stringify(r)).toContain('maximum page size 100');
        });
      });
    }

    it('audits every call, denied ones included, and never writes the credential anywhere', async () => {
      // Records are written as calls finish: wait until every call's record is there.
      // One record per tool call: 14 calls per era above, two eras; plus the policy load at start-up.
      const lines = await eventually(
        () => {
          const calls = readAudit(env.auditFile).filter((l) => l.kind === 'call');
          expect(calls.length).toBe(2 * 14);
          return calls;
        },
        { what: '28 call records' },
      );
      const all = readAudit(env.auditFile);
      expect(all.some((l) => l.kind === 'control' && l.action === 'policy.load')).toBe(true);
      // The client saw TOOL_NOT_FOUND; the audit keeps the real reason (no tools:delete scope).
      expect(
        lines.some(
          (l) => l.decision === 'denied' && l.code === 'DENIED_SCOPE' && l.tool === 'deleteCustomer',
        ),
      ).toBe(true);
      expect(lines.some((l) => l.decision === 'denied' && l.code === 'INVALID_ARGUMENT')).toBe(true);
      const ok = lines.find((l) => l.tool === 'searchProducts')!;
      expect(ok).toMatchObject({
        decision: 'allowed',
        outcome: 'ok',
        upstream: { method: 'GET', path: '/v1/products/search', status: 200 },
      });
      expect(readFileSync(env.auditFile, 'utf8')).not.toContain(env.shop.key);
      expect(env.logs()).not.toContain(env.shop.key);
    });
  });
}

scenarios('serve over Streamable HTTP', async () => {
  const fx = await startShopGateway({ logLevel: 'warn' });
  afterAll(() => fx.close());
  return {
    shop: fx.shop,
    auditFile: fx.auditFile,
    logs: () => '',
    connect: (era) => connectHttp(fx.gw.url!, { name: 'e2e-http', era }),
  };
});

scenarios('serve over stdio (built CLI)', async () => {
  const shop = await startShop();
  const auditFile = tempPath();
  const sessions: StdioShop[] = [];
  afterAll(async () => {
    await shop.close();
  });
  return {
    shop,
    auditFile,
    logs: () => sessions.map((s) => s.stderr()).join(''),
    connect: async (era) => {
      const c = mcpClient({ name: 'e2e-stdio', era });
      sessions.push(await connectShopStdio(c, { shop, auditFile, logLevel: 'debug' }));
      return c;
    },
  };
});

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
