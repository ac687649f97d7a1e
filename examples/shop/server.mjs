// The demo upstream: a small shop API on node:http, no dependencies. It is what mcp-warden guards
// in `npm start` and in the end-to-end tests. Data is generated, but shaped like the real thing:
// customers with PII, a planted secret (`apiToken`, and a key pasted into a support note).
import { createServer } from 'node:http';

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Tim'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Thompson', 'Hamilton', 'Ritchie', 'Allen', 'Berners-Lee'];
const TIERS = ['bronze', 'silver', 'gold'];

export function shopData(count = 30) {
  const customers = [];
  for (let i = 0; i < count; i++) {
    const first = FIRST[i % FIRST.length];
    const last = LAST[(i * 3) % LAST.length];
    customers.push({
      id: `c_${1001 + i}`,
      name: `${first} ${last}`,
      email: `${first}.${last}`.toLowerCase().replace(/[^a-z.]/g, '') + '@example.org',
      phone: `+1-555-01${String(i).padStart(2, '0')}`,
      loyaltyTier: TIERS[i % 3],
      notes: i === 2 ? 'Called about a refund; pasted storefront key sk_live_51DemoPlantedSecretKey000 by mistake.' : '',
      apiToken: `tok_demo_${(0xabcdef + i * 7919).toString(16)}`,
      createdAt: new Date(Date.UTC(2025, i % 12, 1 + (i % 28))).toISOString(),
    });
  }
  const products = [
    { sku: 'KB-01', name: 'Mechanical keyboard', price: 129.0, inStock: true },
    { sku: 'MS-02', name: 'Wireless mouse', price: 49.5, inStock: true },
    { sku: 'MN-27', name: '27-inch monitor', price: 329.0, inStock: false },
    { sku: 'HD-05', name: 'Noise-cancelling headphones', price: 199.0, inStock: true },
    { sku: 'CB-10', name: 'USB-C cable', price: 12.0, inStock: true },
  ];
  const orders = [];
  for (let i = 0; i < count * 2; i++) {
    const c = customers[i % count];
    const p = products[i % products.length];
    const quantity = 1 + (i % 3);
    orders.push({
      id: `o_${5001 + i}`,
      customerId: c.id,
      status: ['open', 'paid', 'shipped', 'cancelled'][i % 4],
      total: Math.round(p.price * quantity * 100) / 100,
      currency: 'USD',
      items: [{ sku: p.sku, quantity }],
    });
  }
  return { customers, products, orders };
}

const json = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

/**
 * Starts the shop. `key` is the API key it demands in `X-Shop-Key`. Every request is recorded in
 * `requests` (method, raw URL, headers) so tests can see exactly what reached the upstream.
 */
export async function startShop({ port = 0, host = '127.0.0.1', key = 'demo-shop-key-0123456789' } = {}) {
  const data = shopData();
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.headers['x-shop-key'] !== key) return json(res, 401, { error: 'missing or wrong X-Shop-Key' });
      const url = new URL(req.url, 'http://shop.invalid');
      const parts = url.pathname.split('/').slice(1);
      if (parts[0] !== 'v1') return json(res, 404, { error: 'not found' });
      const [, a, b, c] = parts.map((p) => decodeURIComponent(p));
      const summary = ({ apiToken, createdAt, ...rest }) => rest;
      if (req.method === 'GET' && a === 'customers' && b === undefined) {
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), 1000);
        const start = Number(url.searchParams.get('cursor') ?? 0);
        const page = data.customers.slice(start, start + limit).map(summary);
        const next = start + limit < data.customers.length ? String(start + limit) : null;
        return json(res, 200, { data: page, nextCursor: next });
      }
      if (a === 'customers' && b !== undefined) {
        const customer = data.customers.find((x) => x.id === b);
        if (!customer) return json(res, 404, { error: `no customer ${b}` });
        if (req.method === 'GET' && c === undefined) return json(res, 200, customer);
        if (req.method === 'DELETE' && c === undefined) {
          data.customers.splice(data.customers.indexOf(customer), 1);
          res.writeHead(204).end();
          return;
        }
        if (req.method === 'GET' && c === 'orders') {
          const status = url.searchParams.get('status');
          return json(res, 200, data.orders.filter((o) => o.customerId === b && (!status || o.status === status)));
        }
      }
      if (req.method === 'GET' && a === 'orders' && b !== undefined) {
        const order = data.orders.find((o) => o.id === b);
        return order ? json(res, 200, order) : json(res, 404, { error: `no order ${b}` });
      }
      if (req.method === 'POST' && a === 'orders' && b === undefined) {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        const order = { id: `o_${5001 + data.orders.length}`, customerId: body.customerId, status: 'open', total: 0, currency: 'USD', items: body.items ?? [] };
        data.orders.push(order);
        return json(res, 201, order);
      }
      if (req.method === 'GET' && a === 'products' && b === 'search') {
        const q = (url.searchParams.get('q') ?? '').toLowerCase();
        const inStock = url.searchParams.get('inStock');
        return json(
          res,
          200,
          data.products.filter((p) => p.name.toLowerCase().includes(q) && (inStock === null || String(p.inStock) === inStock)),
        );
      }
      if (req.method === 'GET' && a === 'exports' && b === 'customers') {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.end(['id,name,email,phone', ...data.customers.map((x) => [x.id, x.name, x.email, x.phone].join(','))].join('\n'));
        return;
      }
      if (req.method === 'GET' && a === 'admin' && b === 'api-keys') return json(res, 200, [{ id: 'k1', secret: key }]);
      return json(res, 404, { error: 'not found' });
    });
  });
  // A bind failure (port taken) rejects, so the caller can say which port instead of crashing.
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}/v1`,
    port: addr.port,
    key,
    requests,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

// `node examples/shop/server.mjs [port]` runs it on its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const shop = await startShop({ port: Number(process.argv[2] ?? 4010), key: process.env.SHOP_KEY });
  process.stderr.write(`shop API at ${shop.url} (X-Shop-Key: ${shop.key})\n`);
}
