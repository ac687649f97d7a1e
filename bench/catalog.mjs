// Load + catalogue + classify benchmark. Each run is a fresh Node process, so RSS is that of one
// cold start doing the work once (what `mcp-warden scan` and server start-up pay).
// Usage: npm run bench   (or: node bench/catalog.mjs [runs])
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORE_SCHEMA, load } from 'js-yaml';

const runs = Number(process.argv[2] ?? 5);
const shared = fileURLToPath(new URL('../../shared/specs/', import.meta.url));
// Stripe's spec also as JSON, to separate YAML parsing from everything else.
const stripeJson = join(tmpdir(), 'mcp-warden-bench-stripe.json');
writeFileSync(
  stripeJson,
  JSON.stringify(load(readFileSync(`${shared}stripe.yaml`, 'utf8'), { schema: CORE_SCHEMA })),
);
const specs = [
  `${shared}github-rest.json`,
  `${shared}stripe.yaml`,
  stripeJson,
  `${shared}kubernetes-swagger2.json`,
  `${shared}openai.yaml`,
];
const child = `
  const { loadSpec } = await import(${JSON.stringify(new URL('../dist/openapi/load.js', import.meta.url).href)});
  const { buildCatalog } = await import(${JSON.stringify(new URL('../dist/catalog/build.js', import.meta.url).href)});
  const t0 = performance.now();
  const spec = await loadSpec(process.argv[1]);
  const t1 = performance.now();
  const cat = buildCatalog(spec);
  const t2 = performance.now();
  process.stdout.write(JSON.stringify({ tools: cat.tools.length, load: t1 - t0, catalog: t2 - t1, total: t2 - t0,
    maxRssMb: process.resourceUsage().maxRSS / 1024 }));
`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${runs} runs each (median)`,
);
console.log('| spec | tools | load+validate ms | catalogue+classify ms | total ms | peak RSS MB |');
console.log('|---|---|---|---|---|---|');
for (const s of specs) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', child, s], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`${s}: ${r.stderr}`);
    results.push(JSON.parse(r.stdout));
  }
  const m = (k) => median(results.map((x) => x[k])).toFixed(0);
  const label = s === stripeJson ? 'stripe.yaml as JSON' : s.slice(shared.length);
  console.log(
    `| ${label} | ${results[0].tools} | ${m('load')} | ${m('catalog')} | ${m('total')} | ${m('maxRssMb')} |`,
  );
}
