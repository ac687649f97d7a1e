// Where a start's time goes, thread by thread (issue 22, cold start): one mcp-warden start over stdio
// with a fresh spec cache (a miss) under `--cpu-prof`, each thread writing its own profile, then a
// timeline of the main thread and the spec-loading worker on one clock: per bucket, the three
// largest of buildCatalog, restoreCatalog, loadSpec, unpackSpec, module compiling, idle and GC.
// Shows what waits for what (a cold Stripe start: main idle while the worker parses the YAML, then
// the worker idle while main builds the catalogue).
//
//   node bench/catalog-timeline.mjs <spec> [--main <dist/cli/main.js>] [--bucket 100] [--warm]
//
// --warm starts once untimed first, so the timed start is a hit.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { takeFlag, takeSwitch } from './lib/args.mjs';
import { serveArgs } from './lib/serve-args.mjs';

const argv = process.argv.slice(2);
const main = takeFlag(argv, '--main') ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const bucket = Number(takeFlag(argv, '--bucket') ?? 100);
const warm = takeSwitch(argv, '--warm');
const spec = argv[0];
if (!spec) {
  console.error('usage: node bench/catalog-timeline.mjs <spec> [--main <main.js>] [--bucket ms] [--warm]');
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'warden-timeline-'));
const profDir = join(work, 'prof');

/** One start that lists once and closes; resolves with the ms from spawn to the list. */
function start(prof) {
  return new Promise((resolve, reject) => {
    const args = [
      ...(prof ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
      ...serveArgs(main, spec, ['--audit-file', join(work, 'audit.jsonl')]),
    ];
    const t0 = performance.now();
    const child = spawn(process.execPath, args, {
      env: { ...process.env, MCP_WARDEN_CACHE_DIR: join(work, 'cache') },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let listedAt;
    let buf = '';
    const send = (m) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...m })}\n`);
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const m = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (m.id === 1) {
          send({ method: 'notifications/initialized' });
          send({ id: 2, method: 'tools/list' });
        } else if (m.id === 2) {
          listedAt = performance.now() - t0;
          child.stdin.end();
        }
      }
    });
    child.on('error', reject);
    child.on('exit', () => resolve(listedAt));
    send({
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'timeline', version: '1' },
      },
    });
  });
}

const KEYS = [
  'buildCatalog',
  'restoreCatalog',
  'snapshotCatalog',
  'unpackSpec',
  'loadSpec',
  'listFor',
  'compileSourceTextModule',
  '(idle)',
  '(garbage collector)',
];

if (warm) await start(false);
const listed = await start(true);
console.log(`${spec}: tools/list answered ${listed?.toFixed(0) ?? '(never)'} ms after spawn (profiled)`);
const files = readdirSync(profDir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort();
const profiles = files.map((f) => JSON.parse(readFileSync(join(profDir, f), 'utf8')));
const t0 = Math.min(...profiles.map((p) => p.startTime));
profiles.forEach((p, k) => {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const labels = new Map();
  const label = (id) => {
    let l = labels.get(id);
    if (l === undefined) {
      const names = new Set();
      for (let x = id; x !== undefined; x = parent.get(x)) names.add(byId.get(x).callFrame.functionName);
      l = KEYS.find((key) => names.has(key)) ?? 'other';
      labels.set(id, l);
    }
    return l;
  };
  const buckets = [];
  let t = p.startTime - t0;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i];
    const b = Math.floor(t / 1000 / bucket);
    buckets[b] ??= {};
    const l = label(id);
    buckets[b][l] = (buckets[b][l] ?? 0) + p.timeDeltas[i] / 1000;
  });
  console.log(
    `thread ${k} (${files[k]}): ${((p.startTime - t0) / 1000).toFixed(0)}–${((p.endTime - t0) / 1000).toFixed(0)} ms`,
  );
  buckets.forEach((b, i) => {
    if (!b) return;
    const top = Object.entries(b)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([name, ms]) => `${name} ${ms.toFixed(0)}`)
      .join(', ');
    console.log(`  ${String(i * bucket).padStart(5)} ms: ${top}`);
  });
});
