import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the demo upstream is plain JavaScript
import { startShop } from '../../examples/shop/server.mjs';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { tempTree } from '../support/helpers.js';

const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;
const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const ERAS = [
  ['2025-11-25', 'legacy'],
  ['2026-07-28', { pin: '2026-07-28' }],
] as const;

interface Shop {
  url: string;
  key: string;
  requests: Array<{ method: string; url: string; headers: Record<string, string> }>;
  close(): Promise<void>;
}

type Connect = (era: (typeof ERAS)[number][1]) => Promise<Client>;

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
          expect(hidden.message.replace('deleteCustomer', 'X')).toBe(
            unknown.message.replace('deleteCustomex', 'X'),
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
      // Records are written as calls finish; give the stream a moment to flush.
      await new Promise((r) => setTimeout(r, 200));
      const all = readFileSync(env.auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const lines = all.filter((l) => l.kind === 'call');
      // One record per tool call: 14 calls per era above, two eras; plus the policy load at start-up.
      expect(lines.length).toBe(2 * 14);
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
  const shop: Shop = await startShop();
  const auditFile = join(tempTree({}), 'audit.jsonl');
  const gw: Gateway = await startGateway({
    spec: SHOP_SPEC,
    baseUrl: shop.url,
    auditFile,
    transport: { kind: 'http', port: 0 },
    logLevel: 'warn',
    env: { MCP_WARDEN_CRED_SHOPKEY: shop.key },
  });
  afterAll(async () => {
    await gw.close();
    await shop.close();
  });
  return {
    shop,
    auditFile,
    logs: () => '',
    connect: async (mode) => {
      const c = new Client({ name: 'e2e-http', version: '1' }, { versionNegotiation: { mode } });
      await c.connect(new StreamableHTTPClientTransport(new URL(gw.url!)));
      return c;
    },
  };
});

scenarios('serve over stdio (built CLI)', async () => {
  const shop: Shop = await startShop();
  const auditFile = join(tempTree({}), 'audit.jsonl');
  let logs = '';
  const clients: Client[] = [];
  afterAll(async () => {
    await shop.close();
  });
  return {
    shop,
    auditFile,
    logs: () => logs,
    connect: async (mode) => {
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
          '--audit-file',
          auditFile,
          '--log-level',
          'debug',
        ],
        env: { MCP_WARDEN_CRED_SHOPKEY: shop.key, PATH: process.env.PATH ?? '' },
        stderr: 'pipe',
      });
      transport.stderr?.on('data', (d: Buffer) => {
        logs += d.toString();
      });
      const c = new Client({ name: 'e2e-stdio', version: '1' }, { versionNegotiation: { mode } });
      await c.connect(transport);
      clients.push(c);
      return c;
    },
  };
});
