// Latency from a toggle made through the admin API to `notifications/tools/list_changed` arriving at
// HTTP clients: a v1 SDK client (GET stream), a v2 client in 2025-11-25 mode (GET stream) and in
// 2026-07-28 mode (subscriptions/listen); on the instance toggled, and on another instance sharing
// Redis. Each round disables then re-enables one tool; every latency counts the admin request too.
//
//   node bench/list-changed.mjs [rounds=50]      (after npm run build; Redis at $MCP_WARDEN_TEST_REDIS
//                                                 or 127.0.0.1:6379 for the second part)
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const ROUNDS = Number(process.argv[2] ?? 50);
const REDIS = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const root = new URL('..', import.meta.url).pathname;
const { startGateway } = await import(`${root}dist/server/serve.js`);
const { startShop } = await import(`${root}examples/shop/server.mjs`);

const shop = await startShop();
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-bench-'));

async function gateway(name, extra = []) {
  const policy = join(dir, `${name}.yaml`);
  writeFileSync(policy, ['version: 1', 'admin:', '  token: env:ADMIN_TOKEN', ...extra, ''].join('\n'));
  return startGateway({
    spec: `${root}examples/shop/openapi.yaml`,
    baseUrl: shop.url,
    policy,
    auditFile: join(dir, `${name}.jsonl`),
    transport: { kind: 'http', port: 0 },
    admin: { port: 0 },
    logLevel: 'error',
    env: { ...process.env, ADMIN_TOKEN, BENCH_REDIS_URL: REDIS, MCP_WARDEN_CRED_SHOPKEY: shop.key },
  });
}

/** Each client resolves the promise `next()` handed out when its next notice arrives. */
function listener(name) {
  const l = { name, waiting: undefined, ms: [] };
  l.notified = () => {
    const w = l.waiting;
    l.waiting = undefined;
    w?.(performance.now());
  };
  l.next = () => new Promise((r) => (l.waiting = r));
  return l;
}

async function clients(url) {
  const v1 = listener('v1 (GET stream)');
  const c1 = new V1Client({ name: 'bench-v1', version: '1' });
  c1.setNotificationHandler(ToolListChangedNotificationSchema, v1.notified);
  await c1.connect(new V1Transport(new URL(url)));
  const v2 = async (name, mode) => {
    const l = listener(name);
    const c = new Client({ name: 'bench-v2', version: '1' }, { versionNegotiation: { mode } });
    c.setNotificationHandler('notifications/tools/list_changed', l.notified);
    await c.connect(new StreamableHTTPClientTransport(new URL(url)));
    if (mode !== 'legacy') await c.listen({ toolsListChanged: true });
    return { l, c };
  };
  const legacy = await v2('v2 2025-11-25 (GET stream)', 'legacy');
  const modern = await v2('v2 2026-07-28 (listen)', { pin: '2026-07-28' });
  return {
    all: [v1, legacy.l, modern.l],
    close: () => Promise.all([c1.close(), legacy.c.close(), modern.c.close()]),
  };
}

async function waitStreams(gw, n) {
  while (gw.changes.counts.streams < n) await new Promise((r) => setTimeout(r, 10));
}

async function measure(adminUrl, listeners) {
  for (let i = 0; i < ROUNDS * 2; i++) {
    const arrivals = listeners.map((l) => l.next());
    const t0 = performance.now();
    const res = await fetch(new URL(`/tools/searchProducts/${i % 2 ? 'reset' : 'disable'}`, adminUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    if (!res.ok) throw new Error(`admin answered ${res.status}`);
    await res.arrayBuffer();
    const at = await Promise.race([
      Promise.all(arrivals),
      new Promise((_, no) => setTimeout(() => no(new Error('no notice within 5 s')), 5000)),
    ]);
    for (const [k, l] of listeners.entries()) l.ms.push(at[k] - t0);
  }
  return listeners.map((l) => {
    const s = [...l.ms].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1);
    return `| ${l.name} | ${q(0.5)} | ${q(0.99)} | ${s.at(-1).toFixed(1)} |`;
  });
}

console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${ROUNDS * 2} toggles\n`,
);
console.log('| client | p50 ms | p99 ms | max ms |\n|---|---|---|---|');

const one = await gateway('single');
const here = await clients(one.url);
await waitStreams(one, 3);
console.log('| **same instance** | | | |');
for (const line of await measure(one.adminUrl, here.all)) console.log(line);
await here.close();
await one.close();

const shared = [
  'state:',
  '  redis: env:BENCH_REDIS_URL',
  `  prefix: bench-listchanged-${randomBytes(4).toString('hex')}`,
];
const a = await gateway('a', shared);
const b = await gateway('b', shared);
const there = await clients(b.url);
await waitStreams(b, 3);
console.log('| **toggled on A, clients on B (Redis)** | | | |');
for (const line of await measure(a.adminUrl, there.all)) console.log(line);
await there.close();
await a.close();
await b.close();
await shop.close();
