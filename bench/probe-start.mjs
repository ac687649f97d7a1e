// What a client pinned to protocol 2026-07-28 waits for on a first start: the v2 SDK client runs its
// version probe (`server/discover`) on a disposable sibling process spawned with the same parameters,
// then spawns the server it keeps. Prints the time connect() took (the probe's process included), when
// the kept server was spawned, and the first tools/list from that spawn and from connect(). A fresh
// spec cache per run unless one is given (so both processes of a run load the spec cold, or the kept
// one hits what the probe's stored).
//
//   node bench/probe-start.mjs <dist/cli/main.js> <spec> [cacheDir]
//
// Before/after: each spec, N rounds, each round one cold (fresh cache) and one warm run (a cache dir
// per build, filled by one untimed run first) of each build, the builds alternating; medians per
// spec, cache and build. Every run is its own process (the single mode above).
//
//   node bench/probe-start.mjs --base /tmp/base/dist/cli/main.js [--rounds 5] <dist/cli/main.js> <spec>...
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const argv = process.argv.slice(2);
if (argv[0] === '--base') {
  await compare(argv);
  process.exit(0);
}
const [main, spec, cacheDir] = argv;
const transport = new StdioClientTransport({
  command: process.execPath,
  args: [
    main,
    'serve',
    '--stdio',
    '--spec',
    spec,
    '--base-url',
    'http://127.0.0.1:9',
    '--log-level',
    'error',
  ],
  env: { ...process.env, MCP_WARDEN_CACHE_DIR: cacheDir ?? mkdtempSync(join(tmpdir(), 'warden-probe-')) },
  stderr: 'pipe',
});
const client = new Client(
  { name: 'p', version: '1' },
  { versionNegotiation: { mode: { pin: '2026-07-28' } } },
);
let tSpawn;
const start = transport.start.bind(transport);
transport.start = () => {
  tSpawn = performance.now();
  return start();
};
const t0 = performance.now();
await client.connect(transport, { timeout: 600000 });
const tc = performance.now();
const r = await client.listTools({}, { timeout: 600000 }).catch((e) => ({ tools: [], e }));
const t1 = performance.now();
console.log(
  JSON.stringify({
    connectMs: Math.round(tc - t0),
    spawnAt: Math.round(tSpawn - t0),
    listFromSpawn: Math.round(t1 - tSpawn),
    listFromConnect: Math.round(t1 - t0),
    tools: r.tools.length,
  }),
);
await client.close();

/** The before/after mode (see the header): one child process per run. */
async function compare(args) {
  const base = args[1];
  let rounds = 5;
  let rest = args.slice(2);
  if (rest[0] === '--rounds') {
    rounds = Number(rest[1]);
    rest = rest.slice(2);
  }
  const [after, ...specs] = rest;
  if (!base || !after || !specs.length || !(rounds > 0))
    throw new Error('usage: node bench/probe-start.mjs --base <main.js> [--rounds n] <main.js> <spec>...');
  const self = new URL(import.meta.url).pathname;
  const run = (m, spec, dir) =>
    JSON.parse(
      execFileSync(process.execPath, [self, m, spec, ...(dir ? [dir] : [])], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
  const builds = { base, after };
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const keys = ['connectMs', 'listFromConnect', 'listFromSpawn'];
  console.log(`spec | cache | build | ${keys.join(' | ')} (medians of ${rounds})`);
  for (const spec of specs) {
    const warm = {};
    for (const [b, m] of Object.entries(builds)) {
      warm[b] = mkdtempSync(join(tmpdir(), `warden-probe-${b}-`));
      run(m, spec, warm[b]);
    }
    const res = {};
    for (let i = 0; i < rounds; i++)
      for (const [b, m] of i % 2 ? Object.entries(builds).reverse() : Object.entries(builds))
        for (const cache of ['cold', 'warm']) {
          const r = run(m, spec, cache === 'warm' ? warm[b] : undefined);
          const k = `${cache} ${b}`;
          res[k] = [...(res[k] ?? []), r];
        }
    for (const cache of ['cold', 'warm'])
      for (const b of Object.keys(builds)) {
        const rs = res[`${cache} ${b}`];
        console.log(
          `${spec.split('/').pop()} | ${cache} | ${b} | ${keys.map((k) => median(rs.map((r) => r[k]))).join(' | ')}`,
        );
      }
  }
}
