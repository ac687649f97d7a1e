// CPU of one spec-cache hit (`loadSpec` of a spec whose entry is stored), in a fresh process each
// time, for this checkout and another build alternately (issue 22: a warm start's main thread). Each
// build gets its own temp cache directory, filled by one untimed load first; every timed load must be
// a hit (the document read lazily from the entry), else the script stops.
//
//   node bench/load-hit.mjs [reps=6] [--spec <file>] [--base <dir with dist/>]
//
// Default spec: DigitalOcean (2,849 $ref'd files, re-checked on every hit); default base: /tmp/base.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { takeFlag } from './lib/args.mjs';

const argv = process.argv.slice(2);
const spec =
  takeFlag(argv, '--spec') ??
  fileURLToPath(
    new URL('../../shared/specs/digitalocean/specification/DigitalOcean-public.v2.yaml', import.meta.url),
  );
const base = takeFlag(argv, '--base') ?? '/tmp/base';
const REPS = Number(argv[0] ?? 6);
const builds = [
  { name: 'this', dist: fileURLToPath(new URL('../dist/', import.meta.url)) },
  { name: 'base', dist: join(base, 'dist/') },
];

const child = (dist) =>
  `process.env.MCP_WARDEN_SPEC_CACHE='on';` +
  `const { loadSpec } = await import(${JSON.stringify(pathToFileURL(join(dist, 'openapi/load.js')).href)});` +
  'const c0 = process.cpuUsage(); const t0 = performance.now();' +
  `const s = await loadSpec(${JSON.stringify(spec)}, {});` +
  'const c = process.cpuUsage(c0);' +
  "const hit = typeof Object.getOwnPropertyDescriptor(s.doc, 'paths')?.get === 'function';" +
  'console.log(JSON.stringify({ cpu: (c.user + c.system) / 1000, wall: performance.now() - t0, hit }));';

const run = (b) =>
  JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', child(b.dist)], {
      encoding: 'utf8',
      env: { ...process.env, MCP_WARDEN_CACHE_DIR: b.cache },
    }),
  );

for (const b of builds) {
  b.cache = mkdtempSync(join(tmpdir(), `warden-load-hit-${b.name}-`));
  b.samples = [];
  run(b); // the miss that stores the entry
}
try {
  for (let r = 0; r < REPS; r++)
    for (const b of r % 2 ? [...builds].reverse() : builds) {
      const s = run(b);
      if (!s.hit) throw new Error(`${b.name}: not a hit`);
      b.samples.push(s);
    }
} finally {
  for (const b of builds) rmSync(b.cache, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(`loadSpec hit of ${spec}, ${REPS} fresh processes each, alternating:`);
for (const b of builds)
  console.log(
    `- ${b.name} (${b.dist}): CPU ms median ${median(b.samples.map((s) => s.cpu)).toFixed(1)}` +
      ` (${b.samples.map((s) => s.cpu.toFixed(0)).join(', ')}), wall ms median ${median(b.samples.map((s) => s.wall)).toFixed(1)}`,
  );
