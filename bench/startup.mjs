// Start-up to the first tools/list over stdio, on every shared spec (issue 22, target 1): mcp-warden
// (this checkout), the same before this work (/tmp/base, when present) and the peer
// @ivotoby/openapi-mcp-server, interleaved in one run. Each sample is a fresh process started by a
// real SDK client (StdioClientTransport): wall time from spawn to the tools/list answer, the child's
// CPU time and RSS (VmRSS, VmHWM from /proc) right after it. Also `--version` alone (code loading).
//
//   node bench/startup.mjs [reps=5] [--only github,stripe] [--no-base] [--no-peer] [--base <dir>]
//                          [--cpu-prof <dir>] [--json <file>] [--main <dist/cli/main.js of another build>]
//                          [--cold]
//   node bench/startup.mjs --compare [--only …] [--base <dir>]
//
// The spec cache (src/openapi/cache.ts): by default every mcp-warden start of a run shares one temp
// cache directory, warmed by one untimed start per spec, so the samples are hits (a restart on the
// same spec); --cold gives each sample a fresh one, so each is a miss that also stores its entry.
// The peer has no cache: report both.
//
// --cpu-prof writes one profile per warden/base start (summarise with bench/profile-summary.mjs).
// --compare checks, instead of timing, that this checkout serves what /tmp/base serves on every
// spec: the same tools/list answer (JSON text), the same pins (tool definition hashes) and the same
// `scan -f json` report; it exits 1 on any difference.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { takeFlag, takeSwitch } from './lib/args.mjs';
import { serveArgs, UPSTREAM } from './lib/serve-args.mjs';
import { credentialEnv } from './lib/spec-credentials.mjs';

const argv = process.argv.slice(2);
const flag = (name) => takeFlag(argv, name);
const bool = (name) => takeSwitch(argv, name);
const only = flag('--only')?.split(',');
const profDir = flag('--cpu-prof');
const jsonOut = flag('--json');
const noBase = bool('--no-base');
const noPeer = bool('--no-peer');
const compare = bool('--compare');
const cold = bool('--cold');
// Another build of mcp-warden to time (default: this checkout's dist/cli/main.js).
const wardenMain = flag('--main');
// The build before (a checkout or copy with dist/): /tmp/base unless --base says.
const baseDir = flag('--base') ?? '/tmp/base';
const REPS = Number(argv[0] ?? 5);

const root = fileURLToPath(new URL('..', import.meta.url));
const shared = fileURLToPath(new URL('../../shared/specs/', import.meta.url));
const BASE = `${baseDir}/dist/cli/main.js`;
const PEER = `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`;

// Operation counts from ../shared/specs/INDEX.md (not the listed tools: the default policy hides some).
const SPECS = [
  ['github-rest.json', 771],
  ['stripe.yaml', 468],
  ['kubernetes-swagger2.json', 1123],
  ['digitalocean/specification/DigitalOcean-public.v2.yaml', 659],
  ['openai.yaml', 288],
  ['asana.yaml', 247],
  ['slack-web.json', 174],
  ['petstore-v3-swagger-api.yaml', 19],
  ['azure-storage-arm-2015-05-01-preview.json', 10],
  ['link-example-v3.yaml', 6],
  ['petstore-expanded-v3.yaml', 4],
  ['petstore-separate-swagger2/spec/swagger.yaml', 4],
  ['petstore-v3.yaml', 3],
  ['petstore-swagger2.json', 3],
  ['uspto-v3.yaml', 3],
  ['callback-example-v3.yaml', 1],
  ['webhook-example-v3.1.json', 0],
].filter(([f]) => !only || only.some((o) => f.includes(o)));

const work = mkdtempSync(join(tmpdir(), 'warden-startup-'));
/** The spec cache a start of `v` uses (see the top): never the user's own. */
const cacheEnv = (v) =>
  v.name === 'peer'
    ? {}
    : // One directory per build: two builds' entries for many specs would pass the cache's 16-entry
      // cap and evict each other (8 specs: every "warm" sample a miss).
      { MCP_WARDEN_CACHE_DIR: cold ? mkdtempSync(join(work, 'cache-')) : join(work, `spec-cache-${v.name}`) };
if (profDir) mkdirSync(profDir, { recursive: true });

const variants = [
  { name: 'mcp-warden', main: wardenMain ?? `${root}dist/cli/main.js`, era: { pin: '2026-07-28' } },
  ...(!noBase && existsSync(BASE) ? [{ name: 'before', main: BASE, era: { pin: '2026-07-28' } }] : []),
  ...(!noPeer ? [{ name: 'peer', main: PEER, era: 'legacy' }] : []),
];

function argsFor(v, spec, n) {
  if (v.name === 'peer')
    return [PEER, '--transport', 'stdio', '--api-base-url', UPSTREAM, '--openapi-spec', spec];
  const prof = profDir
    ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${v.name}-${label(spec)}-${n}.cpuprofile`]
    : [];
  return [
    ...prof,
    ...serveArgs(v.main, spec, [
      '--audit-file',
      join(work, `audit-${v.name}-${n}.jsonl`),
      ...(compare ? ['--pins', join(work, `pins-${v.name}-${label(spec)}.json`)] : []),
      // Its shared files sit beside the spec's folder, outside the default $ref root.
      ...(spec.includes('petstore-separate') ? ['--ref-root', `${shared}petstore-separate-swagger2`] : []),
    ]),
  ];
}

const creds = new Map();

const label = (spec) =>
  spec
    .slice(shared.length)
    .replace(/\/.*/, '')
    .replace(/\.(json|yaml)$/, '');

/** utime+stime of a live process in ms, and its VmRSS/VmHWM in MB. */
function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 10; // USER_HZ is 100 on Linux
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm'))?.[1] ?? Number.NaN);
  return { cpuMs: (Number(f[11]) + Number(f[12])) * tick, rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

let runNo = 0;
async function firstList(v, spec) {
  const n = runNo++;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: argsFor(v, spec, n),
    env: { ...process.env, NO_COLOR: '1', ...cacheEnv(v), ...(v.name === 'peer' ? {} : creds.get(spec)) },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d) => {
    if (err.length < 4000) err += d;
  });
  const client = new Client({ name: 'bench-startup', version: '1' }, { versionNegotiation: { mode: v.era } });
  // The clock starts when the transport spawns the server: a client pinned to 2026-07-28 spends
  // ~0.7 s of its own (wall time, before it spawns anything) in connect(), which the peer's legacy
  // client does not; timing from before connect() charged that to mcp-warden.
  let t0 = performance.now();
  let spawns = 0;
  const start = transport.start.bind(transport);
  transport.start = () => {
    t0 = performance.now();
    spawns++;
    // --cold: every spawn its own empty cache. A client pinned to 2026-07-28 may spawn the server more
    // than once in connect() (its version probe): with one directory per sample, the first, untimed
    // process stored the entry and the timed one was a hit.
    if (cold) transport._serverParams.env = { ...transport._serverParams.env, ...cacheEnv(v) };
    return start();
  };
  // The answer's arrival, seen before the SDK validates it: the peer's GitHub list has schemas the
  // SDK refuses (22 tools without `type: object`), yet it did answer, and that is what is timed.
  let answered;
  try {
    // Generous timeouts: a loaded machine must give a slow number, not a missing one.
    await client.connect(transport, { timeout: 600_000 });
    const deliver = transport.onmessage;
    transport.onmessage = (m, ...rest) => {
      if (answered === undefined && Array.isArray(m?.result?.tools))
        answered = {
          ms: performance.now() - t0,
          tools: m.result.tools.length,
          spawns,
          ...procStats(transport.pid),
          ...(compare ? { list: JSON.stringify(m.result) } : {}),
        };
      deliver?.call(transport, m, ...rest);
    };
    await client.listTools({}, { timeout: 600_000 }).catch((e) => {
      if (!answered) throw e;
      answered.invalid = true;
    });
    return answered;
  } catch (e) {
    return { error: `${String(e.message ?? e).slice(0, 120)} ${err.slice(0, 300)}` };
  } finally {
    await client.close().catch(() => {});
  }
}

function timeVersion(main) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [main, '--version'], { stdio: ['ignore', 'ignore', 'ignore'] });
    c.on('exit', () => resolve(performance.now() - t0));
  });
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};

/** Least-squares slope of y over x. */
function slope(points) {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length < 2) return Number.NaN;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  const num = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return num / den;
}

const pins = (v, spec) => readFileSync(join(work, `pins-${v.name}-${label(spec)}.json`), 'utf8');

/** --compare: this checkout against /tmp/base, spec by spec (mcp-warden with its spec cache cold, then warm). */
async function compareWithBase() {
  const [mine, base] = variants;
  if (base?.name !== 'before') throw new Error(`--compare needs ${BASE}`);
  let differ = 0;
  console.log('| spec | tools/list | pins | scan -f json |\n|---|---|---|---|');
  for (const [file] of SPECS) {
    const spec = `${shared}${file}`;
    creds.set(spec, credentialEnv(spec));
    // Twice: the first start stores the spec cache's entry, the second is served from it.
    const a = await firstList(mine, spec);
    const pinsCold = pins(mine, spec);
    const warm = await firstList(mine, spec);
    const b = await firstList(base, spec);
    const scan = (main, ...flags) =>
      spawnSync(process.execPath, [main, 'scan', spec, '-f', 'json', '-q', ...flags], {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
        env: { ...process.env, ...cacheEnv(mine) },
      }).stdout;
    for (const [v, r] of [
      [mine, a],
      [mine, warm],
      [base, b],
    ])
      if (r.error) console.error(`${v.name} ${file}: ${r.error}`);
    const baseScan = scan(base.main);
    const same = [
      a.list !== undefined && a.list === b.list && warm.list === b.list,
      pinsCold === pins(base, spec) && pins(mine, spec) === pinsCold,
      scan(mine.main) === baseScan && scan(mine.main, '--no-spec-cache') === baseScan,
    ];
    if (same.includes(false)) differ++;
    console.log(`| ${file} | ${same.map((x) => (x ? 'same' : '**differs**')).join(' | ')} |`);
  }
  rmSync(work, { recursive: true, force: true });
  process.exitCode = differ ? 1 : 0;
}

async function main() {
  console.log(
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${REPS} runs each (median), interleaved, every other run in reverse order`,
  );
  // spec -> variant -> samples; variant -> --version ms
  const results = Object.fromEntries(
    SPECS.map(([f]) => [f, Object.fromEntries(variants.map((v) => [v.name, []]))]),
  );
  const versions = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (const [file] of SPECS) creds.set(`${shared}${file}`, credentialEnv(`${shared}${file}`));
  console.log(
    cold
      ? 'spec cache: cold (each mcp-warden sample a miss, with a fresh cache directory)'
      : 'spec cache: warm (each mcp-warden sample a hit: one untimed start per spec first)',
  );
  if (!cold)
    for (const [file] of SPECS)
      for (const v of variants) if (v.name !== 'peer') await firstList(v, `${shared}${file}`);
  for (let r = 0; r < REPS; r++) {
    // Every other run in reverse: whoever goes first after another start meets a different page
    // cache and CPU state (a fresh build of the same commit measured ~60 ms apart by order alone).
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const main = v.name === 'peer' ? PEER : v.main;
      versions[v.name].push(await timeVersion(main));
    }
    for (const [file] of SPECS) {
      const spec = `${shared}${file}`;
      for (const v of order) {
        const s = await firstList(v, spec);
        results[file][v.name].push(s);
        if (s.error && r === 0) console.error(`${v.name} ${file}: ${s.error}`);
      }
    }
    process.stderr.write(`run ${r + 1}/${REPS} done\n`);
  }

  const names = variants.map((v) => v.name);
  const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const agg = {};
  console.log('\n`--version` (code loading alone), ms:');
  for (const n of names) console.log(`- ${n}: ${fmt(median(versions[n]))}`);
  console.log(
    `\n| spec | ops | ${names.map((n) => `${n} ms`).join(' | ')} | ${names.map((n) => `${n} CPU ms`).join(' | ')} | ${names.map((n) => `${n} RSS MB (peak)`).join(' | ')} | warden/peer | tools listed |`,
  );
  console.log(
    `|---|---:|${names
      .map(() => '---:|')
      .join('')
      .repeat(3)}---:|---|`,
  );
  for (const [file, ops] of SPECS) {
    const row = {};
    for (const n of names) {
      const ok = results[file][n].filter((s) => !s.error);
      row[n] = {
        ms: median(ok.map((s) => s.ms)),
        cpuMs: median(ok.map((s) => s.cpuMs)),
        rss: median(ok.map((s) => s.rss)),
        hwm: median(ok.map((s) => s.hwm)),
        tools: ok[0] ? `${ok[0].tools}${ok[0].invalid ? '*' : ''}` : undefined,
        errors: results[file][n].length - ok.length,
      };
    }
    agg[file] = { ops, ...row };
    const ratio = row.peer ? row['mcp-warden'].ms / row.peer.ms : Number.NaN;
    console.log(
      `| ${file.replace(/\/.*/, '/')} | ${ops} | ${names.map((n) => fmt(row[n].ms)).join(' | ')} | ${names.map((n) => fmt(row[n].cpuMs)).join(' | ')} | ${names.map((n) => `${fmt(row[n].rss)} (${fmt(row[n].hwm)})`).join(' | ')} | ${fmt(ratio, 2)} | ${names.map((n) => row[n].tools ?? 'error').join(' / ')} |`,
    );
  }
  console.log(
    '\n`*`: the SDK client refused the list (schemas without `type: object`); timed at its arrival.',
  );
  console.log('\nGrowth per 100 operations (least squares over the specs above):');
  const growth = {};
  for (const n of names) {
    const pts = (k) => SPECS.map(([f, ops]) => [ops, agg[f][n][k]]);
    growth[n] = {
      msPer100: slope(pts('ms')) * 100,
      cpuMsPer100: slope(pts('cpuMs')) * 100,
      mbPer100: slope(pts('rss')) * 100,
    };
    console.log(
      `- ${n}: +${fmt(growth[n].msPer100)} ms, +${fmt(growth[n].cpuMsPer100)} CPU ms, +${fmt(growth[n].mbPer100, 1)} MB`,
    );
  }
  const out = {
    node: process.version,
    reps: REPS,
    specCache: cold ? 'cold' : 'warm',
    version: Object.fromEntries(names.map((n) => [n, median(versions[n])])),
    specs: agg,
    growth,
  };
  mkdirSync(`${root}bench/results`, { recursive: true });
  writeFileSync(jsonOut ?? `${root}bench/results/startup.json`, `${JSON.stringify(out, null, 2)}\n`);
  rmSync(work, { recursive: true, force: true });
}

await (compare ? compareWithBase() : main());
