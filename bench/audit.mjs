// Audit cost per call on the hot path (issue 6 target: ≤ 50 µs p50 for the JSONL sink).
// `node bench/audit.mjs [calls]` after `npm run build`. Times the audit stage as the pipeline runs
// it: redact the arguments, redact and cut the response, chain the record and append it to the file
// (written to the kernel before the call is answered), for each fsync policy.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openJsonlAudit } from '../dist/audit/jsonl.js';
import { createAudit } from '../dist/pipeline/audit.js';
import { createRedactor } from '../dist/protect/redactor.js';

const calls = Number(process.argv[2] ?? 20000);
const response = JSON.stringify({
  data: Array.from({ length: 10 }, (_, i) => ({
    id: `c_${1000 + i}`,
    name: 'A. L.',
    email: 'a***@example.org',
    tier: 'gold',
  })),
});
const ctxFor = (i) => ({
  id: `call-${i}`,
  startedAt: performance.now(),
  input: {
    name: 'listCustomers',
    arguments: { limit: 10, q: `search ${i}` },
    principal: 'ci-bot',
    scopes: [],
    client: 'bench',
  },
  tool: { name: 'listCustomers' },
  args: { limit: 10, q: `search ${i}` },
  request: { method: 'GET', origin: 'http://x', path: '/v1/customers', query: 'limit=10', headers: {} },
  response: {
    status: 200,
    contentType: 'application/json',
    headers: {},
    body: Buffer.from(response),
    truncated: false,
    ms: 1.2,
  },
  result: { content: [{ type: 'text', text: response }] },
});

console.log(
  `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${calls} calls per policy`,
);
console.log('| fsync | p50 µs | p90 µs | p99 µs | record bytes |');
console.log('|---|---:|---:|---:|---:|');
for (const fsync of ['never', 'batch', 'always']) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  const sink = openJsonlAudit(join(dir, 'audit.jsonl'), { fsync });
  const audit = createAudit({ sink, redactor: createRedactor() });
  const n = fsync === 'always' ? Math.min(calls, 2000) : calls;
  for (let i = 0; i < 500; i++) audit(ctxFor(i));
  const times = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const ctx = ctxFor(i);
    const t0 = process.hrtime.bigint();
    const rec = audit(ctx);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (i === 0) bytes = JSON.stringify(rec).length;
  }
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  const q = (f) => times[Math.floor(f * (times.length - 1))].toFixed(1);
  console.log(`| ${fsync} | ${q(0.5)} | ${q(0.9)} | ${q(0.99)} | ~${bytes + 100} |`);
}
