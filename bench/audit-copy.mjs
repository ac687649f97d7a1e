// The audit's copy of a large result (issue 22, target 4): CPU of building one call record whose
// result is large and PII-dense, this checkout against an earlier build (/tmp/base, or --base <dir>),
// alternating rounds in one process; and whether both keep the same response copy. The record keeps
// 4 KiB of the result, redacted (src/pipeline/audit.ts, Redactor.head).
//
//   node bench/audit-copy.mjs [KiB=128] [calls per round=40] [--base <dir>]

import { fileURLToPath } from 'node:url';
import { takeFlag } from './lib/args.mjs';

const argv = process.argv.slice(2);
const baseDir = takeFlag(argv, '--base') ?? '/tmp/base';
const KB = Number(argv[0] ?? 128);
const N = Number(argv[1] ?? 40);
const root = fileURLToPath(new URL('..', import.meta.url));

const items = [];
for (let i = 0; items.length < 5000; i++)
  items.push({
    id: i,
    name: `Jane Doe${i}`,
    email: `jane.doe${i}@example.org`,
    phone: `+1 415 555 ${String(1000 + (i % 9000)).padStart(4, '0')}`,
    notes: `call ${i} at (415) 555-01${String(i % 100).padStart(2, '0')} or mail j${i}@mail.example.com; item ${i * 7}`,
  });
const big = JSON.stringify({ items }).slice(0, KB * 1024);

/** One build's `audit.build` of the same call, ready to run. */
async function recorder(dir) {
  const { createRedactor } = await import(`${dir}/dist/protect/redactor.js`);
  const { createAudit } = await import(`${dir}/dist/pipeline/audit.js`);
  const audit = createAudit({ sink: { write() {} }, redactor: createRedactor(['bench-key-0123456789']) });
  const ctx = {
    id: 'x',
    startedAt: performance.now(),
    input: { name: 'searchProducts', arguments: { q: 'a' }, principal: { id: 'p', via: 'stdio' } },
    tool: { name: 'searchProducts', api: 'shop' },
    decision: { decision: { audit: 'full', kind: 'read' }, policyVersion: 'v' },
    args: { q: 'a' },
    request: { method: 'GET', path: '/v1/products/search' },
    response: { status: 200, ms: 1, body: Buffer.alloc(10) },
    result: { content: [{ type: 'text', text: big }] },
  };
  return () => audit.build(ctx);
}

const runs = { this: await recorder(root.replace(/\/$/, '')), base: await recorder(baseDir) };
const cpu = { this: [], base: [] };
for (let r = 0; r < 7; r++)
  for (const k of r % 2 ? ['base', 'this'] : ['this', 'base']) {
    for (let i = 0; i < 3; i++) runs[k]();
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) runs[k]();
    const c = process.cpuUsage(c0);
    cpu[k].push((c.user + c.system) / N);
  }
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const same = runs.base().response === runs.this().response;
console.log(
  `${KB} KiB result: audit record CPU µs per call, median of 7 rounds: this ${median(cpu.this).toFixed(0)}, ` +
    `base ${median(cpu.base).toFixed(0)}; response copy identical: ${same}`,
);
