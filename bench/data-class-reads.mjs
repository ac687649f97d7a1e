// Data classes computed on first read (issue 22, target 1: no first call may stall > 50 ms): builds a
// spec's catalogue in process, then reads every tool's `dataClasses` once, slowest first. A call reads
// them only for a confirmation or for taint with a class the masking lets through.
//
//   node bench/data-class-reads.mjs [spec=../shared/specs/stripe.yaml] [--dist <dir>/dist]

import { fileURLToPath } from 'node:url';
import { takeFlag } from './lib/args.mjs';

const argv = process.argv.slice(2);
const dist = takeFlag(argv, '--dist') ?? fileURLToPath(new URL('../dist', import.meta.url));
const spec = argv[0] ?? fileURLToPath(new URL('../../shared/specs/stripe.yaml', import.meta.url));
const { loadSpec } = await import(`${dist}/openapi/load.js`);
const { buildCatalog } = await import(`${dist}/catalog/build.js`);
const catalog = buildCatalog(await loadSpec(spec, { specCache: false }));
const reads = [];
for (const tool of catalog.tools) {
  const t = performance.now();
  void tool.dataClasses;
  reads.push([performance.now() - t, tool.name]);
}
reads.sort((a, b) => b[0] - a[0]);
const total = reads.reduce((s, [ms]) => s + ms, 0);
console.log(`${dist}: ${catalog.tools.length} tools, first reads ${total.toFixed(0)} ms in all; slowest:`);
for (const [ms, name] of reads.slice(0, 5)) console.log(`  ${name} ${ms.toFixed(1)} ms`);
