// Masking + value scanning cost per KiB of response (issue 5 target: ≤ 20 µs/KiB median).
// `node bench/protect.mjs [iterations]` after `npm run build`. Each payload is protected the way the
// pipeline does it (schema masking, then detection over every string and key, batched), timed per
// call, and reported as the median per KiB of the upstream JSON.
import { cpus } from 'node:os';
import { buildCatalog } from '../dist/catalog/build.js';
import { loadSpec } from '../dist/openapi/load.js';
import { maskerFor, maskRules, maskUntyped } from '../dist/protect/mask.js';
import { createRedactor } from '../dist/protect/redactor.js';
import { shopData } from '../examples/shop/server.mjs';

const iterations = Number(process.argv[2] ?? 400);
const catalog = buildCatalog(
  await loadSpec(new URL('../examples/shop/openapi.yaml', import.meta.url).pathname, {}),
);
const tool = (n) => catalog.tools.find((t) => t.name === n);
const rules = maskRules(undefined, undefined);
const redactor = createRedactor();

const data = shopData(200);
const words = 'the quick brown fox jumps over the lazy dog and ships order number'.split(' ');
const prose = (i) => Array.from({ length: 40 }, (_, j) => words[(i * 7 + j) % words.length]).join(' ');

const payloads = [
  {
    name: 'customers (schema: PII in every item)',
    tool: tool('listCustomers'),
    value: { data: data.customers.map(({ apiToken, createdAt, ...c }) => c) },
  },
  {
    name: 'orders (schema: no sensitive fields)',
    tool: tool('listCustomerOrders'),
    value: { result: data.orders.concat(data.orders, data.orders) },
  },
  {
    name: 'free text (no schema: notes and logs)',
    tool: undefined,
    value: {
      entries: Array.from({ length: 300 }, (_, i) => ({
        id: i,
        message: i % 25 === 0 ? `${prose(i)} token ghp_1234567890abcdefghijklmnopqrstuvwxyZ` : prose(i),
        level: 'info',
      })),
    },
  },
];

const rows = [];
for (const p of payloads) {
  const kib = Buffer.byteLength(JSON.stringify(p.value)) / 1024;
  const masker = p.tool ? maskerFor(p.tool.outputSchema, rules) : undefined;
  const run = () => {
    const counts = {};
    const masked = masker ? masker.mask(p.value, counts) : maskUntyped(p.value, rules, counts);
    return redactor.json(masked, counts);
  };
  for (let i = 0; i < 50; i++) run();
  const times = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const q = (f) => times[Math.floor(f * (times.length - 1))];
  rows.push({
    payload: p.name,
    kib: kib.toFixed(1),
    medianUs: q(0.5).toFixed(0),
    perKiB: (q(0.5) / kib).toFixed(2),
    p90PerKiB: (q(0.9) / kib).toFixed(2),
  });
}
console.log(
  `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${iterations} iterations`,
);
console.log('| payload | KiB | median µs | median µs/KiB | p90 µs/KiB |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows)
  console.log(`| ${r.payload} | ${r.kib} | ${r.medianUs} | ${r.perKiB} | ${r.p90PerKiB} |`);
