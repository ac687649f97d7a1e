// What the machine's cores give a start-up's CPU-bound work (issue 22): the same work — js-yaml
// parses of Stripe's spec, as the prefetch worker does — in one process alone, then in N processes
// at once. If the cores were independent, each process would take as long as the one alone; the
// ratio says how much running something beside the main thread slows it.
//
//   node bench/cores.mjs [rounds=3] [parses=3] [processes=2]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const SPEC = fileURLToPath(new URL('../../shared/specs/stripe.yaml', import.meta.url));

if (process.argv[2] === '--child') {
  const { CORE_SCHEMA, load } = createRequire(import.meta.url)('js-yaml');
  const text = readFileSync(SPEC, 'utf8');
  const n = Number(process.argv[3]);
  const t = performance.now();
  for (let i = 0; i < n; i++) load(text, { schema: CORE_SCHEMA });
  process.stdout.write(String(performance.now() - t));
  process.exit(0);
}

const [rounds = 3, parses = 3, procs = 2] = process.argv.slice(2).map(Number);
const run = () =>
  new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', String(parses)]);
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.on('exit', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`child exited ${code}`))));
  });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const alone = [];
const together = [];
for (let r = 0; r < rounds; r++) {
  alone.push(await run());
  together.push(...(await Promise.all(Array.from({ length: procs }, run))));
}
const a = median(alone);
const t = median(together);
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}`);
console.log(`${parses} js-yaml parses of stripe.yaml, ${rounds} rounds (medians):`);
console.log(`- one process alone: ${a.toFixed(0)} ms`);
console.log(`- each of ${procs} at once: ${t.toFixed(0)} ms (×${(t / a).toFixed(2)})`);
console.log(`- throughput of ${procs} processes: ${((procs * a) / t).toFixed(2)}× one alone`);
