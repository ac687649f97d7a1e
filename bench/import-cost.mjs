// What importing one module (with everything it imports) costs a fresh process: CPU ms
// (process.cpuUsage: every thread) and wall ms, for two files alternately, median of n processes.
// For one bundle chunk against the same chunk of another build (issue 22: code loaded by every start).
//
//   node bench/import-cost.mjs <file A> <file B> [n=20]

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [a, b, n = '20'] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: node bench/import-cost.mjs <file A> <file B> [n=20]');
const code = (f) =>
  `const t=process.cpuUsage();const w=performance.now();await import(${JSON.stringify(pathToFileURL(resolve(f)).href)});` +
  'const u=process.cpuUsage(t);console.log((u.user+u.system)/1000, performance.now()-w)';
const res = { A: [], B: [] };
for (let i = 0; i < Number(n); i++)
  for (const [k, f] of i % 2
    ? [
        ['B', b],
        ['A', a],
      ]
    : [
        ['A', a],
        ['B', b],
      ]) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code(f)], { encoding: 'utf8' });
    res[k].push(out.trim().split(' ').map(Number));
  }
const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
for (const [k, f] of [
  ['A', a],
  ['B', b],
])
  console.log(
    `${k} ${f}: CPU ${median(res[k].map((r) => r[0])).toFixed(1)} ms, wall ${median(res[k].map((r) => r[1])).toFixed(1)} ms (median of ${n})`,
  );
