import { randomBytes } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApiKey } from '../../src/server/callers.js';
import { type Era, type ShopGateway, startShopGateway } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ADMIN_LINES, ADMIN_TOKEN, type Shop, shopPolicy, startShop } from '../support/shop.js';
import { holds, waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const MODERN: Era = { pin: '2026-07-28' };
const ARRIVES = { timeout: 5000 };

// reader sees the shop's reads (searchProducts among them); orders sees getOrder only.
const READER = newApiKey();
const ORDERS = newApiKey();
const POLICY_LINES = [
  ...ADMIN_LINES,
  'callers:',
  '  apiKeys:',
  `    - { id: reader, hash: "${READER.hash}", scopes: [tools:read] }`,
  `    - { id: orders, hash: "${ORDERS.hash}", scopes: [orders] }`,
];
const ORDERS_RULE = ['  - match: { name: getOrder }', '    scopes: [orders]'];

/** How many `notifications/tools/list_changed` one client has received. */
interface Heard {
  name: string;
  count: number;
  close(): Promise<void>;
}

/** A v1 SDK client (`@modelcontextprotocol/sdk` 1.x): its transport opens the GET stream itself. */
async function v1(url: string, key: string): Promise<Heard> {
  const client = new V1Client({ name: 'v1-listener', version: '1' });
  const heard: Heard = { name: 'v1', count: 0, close: () => client.close() };
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.count++);
  await client.connect(
    new V1Transport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${key}` } } }),
  );
  return heard;
}

/**
 * A v2 SDK client in either era, the way applications ask: `listChanged` in the client options
 * (2025-11-25: the transport opens the GET stream; 2026-07-28: the client opens `subscriptions/listen`).
 */
async function v2(fx: ShopGateway, key: string, era: Era): Promise<Heard> {
  const heard: Heard = {
    name: `v2 ${era === 'legacy' ? 'legacy' : 'modern'}`,
    count: 0,
    close: async () => {},
  };
  const client: Client = await fx.connect({
    token: key,
    era,
    options: {
      listChanged: { tools: { autoRefresh: false, debounceMs: 0, onChanged: () => void heard.count++ } },
    },
  });
  heard.close = () => client.close();
  return heard;
}

/** Waits until each client heard `n` notices in all. */
async function told(clients: Heard[], n: number): Promise<void> {
  for (const c of clients)
    await waitFor(() => c.count >= n, { what: `${c.name} to hear list_changed #${n}`, ...ARRIVES });
  for (const c of clients) expect(c.count, c.name).toBe(n);
}

describe('tool-list changes reach HTTP clients on the same instance', () => {
  let shop: Shop;
  let fx: ShopGateway;
  let readers: Heard[];
  let orders: Heard[];
  const admin = (path: string, body?: unknown) => adminApi(fx.gw.adminUrl!, ADMIN_TOKEN)('POST', path, body);

  beforeAll(async () => {
    shop = await startShop();
    fx = await startShopGateway({ shop, admin: true, policy: shopPolicy(POLICY_LINES, ORDERS_RULE) });
    readers = [
      await v1(fx.gw.url!, READER.key),
      await v2(fx, READER.key, 'legacy'),
      await v2(fx, READER.key, MODERN),
    ];
    orders = [await v1(fx.gw.url!, ORDERS.key), await v2(fx, ORDERS.key, MODERN)];
    // The 2025-11-25 transports open their GET streams on their own, after the handshake.
    await waitFor(() => fx.gw.changes.counts.streams === 5, { what: 'five notification streams open' });
  });
  afterAll(async () => {
    for (const c of [...(readers ?? []), ...(orders ?? [])]) await c.close();
    await fx?.close();
    await shop?.close();
  });

  it('tells v1 and v2 clients (both eras) of a toggle made through the admin API', async () => {
    expect((await admin('/tools/searchProducts/disable')).status).toBe(200);
    await told(readers, 1);
    expect((await admin('/tools/searchProducts/reset')).status).toBe(200);
    await told(readers, 2);
  });

  it('tells a caller only about its own view', async () => {
    // Positive control: the orders callers hear a change of getOrder, which they can see…
    await admin('/tools/getOrder/disable');
    await told(orders, 1);
    await admin('/tools/getOrder/reset');
    await told(orders, 2);
    // …and nothing of searchProducts, which they cannot, while the readers do hear of it.
    const before = readers.map((c) => c.count);
    await admin('/tools/searchProducts/disable');
    await told(readers, before[0]! + 1);
    await admin('/tools/searchProducts/reset');
    await told(readers, before[0]! + 2);
    await holds(() => expect(orders.map((c) => c.count)).toEqual([2, 2]), {
      during: 500,
      what: 'the orders callers not told of a tool they cannot see',
    });
  });

  it('tells every listener of the kill switch', async () => {
    const r = readers[0]!.count;
    await admin('/mode', { mode: 'off' });
    await told(readers, r + 1);
    await told(orders, 3);
    await admin('/mode', { mode: 'read-write' });
    await told(readers, r + 2);
    await told(orders, 4);
  });

  it('refuses an unauthenticated GET stream like a POST (401)', async () => {
    const res = await fetch(fx.gw.url!, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'AUTH_REQUIRED',
    );
  });
});

describe('tool-list changes reach HTTP clients on another instance (Redis)', () => {
  const prefix = `test-listchanged-${randomBytes(4).toString('hex')}`;
  let shop: Shop;
  let a: ShopGateway;
  let b: ShopGateway;
  let listeners: Heard[];

  beforeAll(async () => {
    shop = await startShop();
    const policy = shopPolicy(
      [...POLICY_LINES, 'state:', '  redis: env:REDIS_URL', `  prefix: ${prefix}`],
      ORDERS_RULE,
    );
    a = await startShopGateway({ shop, admin: true, policy, env: { REDIS_URL } });
    b = await startShopGateway({ shop, admin: true, policy, env: { REDIS_URL } });
    listeners = [
      await v1(b.gw.url!, READER.key),
      await v2(b, READER.key, 'legacy'),
      await v2(b, READER.key, MODERN),
    ];
    await waitFor(() => b.gw.changes.counts.streams === 3, { what: 'three streams open on instance B' });
  }, 30_000);
  afterAll(async () => {
    for (const c of listeners ?? []) await c.close();
    await a?.close();
    await b?.close();
    await shop?.close();
  });

  it('tells clients connected to instance B of a toggle made on instance A', async () => {
    const onA = adminApi(a.gw.adminUrl!, ADMIN_TOKEN);
    expect((await onA('POST', '/tools/searchProducts/disable')).status).toBe(200);
    await told(listeners, 1);
    await onA('POST', '/tools/searchProducts/reset');
    await told(listeners, 2);
  });
});

describe('closing the gateway', () => {
  it('ends the listen stream gracefully', async () => {
    const fx = await startShopGateway({ policy: shopPolicy(POLICY_LINES, ORDERS_RULE) });
    const client = await fx.connect({ token: READER.key, era: MODERN });
    const sub = await client.listen({ toolsListChanged: true });
    await fx.gw.close();
    expect(await sub.closed).toBe('graceful');
    expect(fx.gw.changes.counts.streams).toBe(0);
    await client.close();
    await fx.shop.close();
  });
});
