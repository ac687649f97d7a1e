// Where a stdio `tools/call`'s time goes, mcp-warden beside the bare SDK floor (issue 22, target 3),
// under the same load: the floor (bench/floor-server.mjs) and one or more warden builds, each run
// UNBUNDLED (tsc output, dist/cli/serve.js via bench/lib/stdio-unbundled.mjs) so that profiles name
// modules and pipeline stages, against the demo shop in its own process. Every server is warmed up,
// then measured in interleaved rounds of sequential calls (the time other servers run is idle time in a
// server's profile, left out). One of three views:
//
//   node bench/stdio-profile.mjs [calls=3000] [rounds=3] [--builds <dir>,<dir>…] [--keep <dir>]
//     V8 profiles (`--cpu-prof`): self time per call by category (I/O syscalls, GC, SDK, zod, undici,
//     warden's modules, node internals…), per module and per function, side by side; the time in
//     the window from the first sample inside a call to the last, weighted per sample (a profile's
//     clock is the thread's wall time: a write that is descheduled in the kernel looks long).
//   … --perf
//     `perf record -e cpu-clock` on each server process (every thread; on-CPU time only, kernel
//     included): CPU µs per call per thread, and the main thread's top symbols. Needs perf.
//   … --syscalls
//     `perf record` of read/write syscall entries: the wall time of a call's legs, medians —
//     stdin read → upstream write (before the request leaves), upstream write → response read (the
//     upstream), response read → audit write → stdout write (after the answer arrives). Needs perf
//     and tracepoints.
//
// --builds: the warden builds to run (default: this checkout); e.g. `--builds .,/tmp/base`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { takeFlag, takeSwitch } from './lib/args.mjs';
import { categorise } from './lib/profile-categories.mjs';
import { SHOP_KEY as KEY, liftedPolicy, startShopUpstream } from './lib/shop.mjs';

const argv = process.argv.slice(2);
const PERF = takeSwitch(argv, '--perf');
const SYSCALLS = takeSwitch(argv, '--syscalls');
const builds = (takeFlag(argv, '--builds') ?? '.').split(',').map((b) => resolve(b));
const KEEP = takeFlag(argv, '--keep');
const CALLS = Number(argv[0] ?? 3000);
const ROUNDS = Number(argv[1] ?? 3);
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const PERF_HZ = 2999;

if (KEEP) mkdirSync(KEEP, { recursive: true });
const out = KEEP ?? mkdtempSync(join(tmpdir(), 'stdio-profile-'));
const dir = mkdtempSync(join(tmpdir(), 'stdio-profile-run-'));
const POLICY = liftedPolicy(dir);
const { child: shop, url: up } = await startShopUpstream(4900);
const env = { ...process.env, MCP_WARDEN_CRED_SHOPKEY: KEY };
const flagsFor = (name) =>
  PERF || SYSCALLS ? [] : ['--cpu-prof', '--cpu-prof-dir', out, '--cpu-prof-name', `${name}.cpuprofile`];

const servers = { floor: [...flagsFor('floor'), `${root}bench/floor-server.mjs`, 'stdio', up, KEY] };
const labels = { floor: 'floor' };
builds.forEach((b, i) => {
  const name = `warden${i}`;
  labels[name] = b === resolve(root) ? 'mcp-warden' : `mcp-warden ${b}`;
  servers[name] = [
    ...flagsFor(name),
    `${root}bench/lib/stdio-unbundled.mjs`,
    b,
    `spec=${SPEC}`,
    `baseUrl=${up}`,
    `auditFile=${join(dir, `${name}.jsonl`)}`,
    `policy=${POLICY}`,
    'logLevel=warn',
  ];
});

const runners = {};
for (const [name, args] of Object.entries(servers)) {
  const t = new StdioClientTransport({ command: process.execPath, args, env, stderr: 'ignore' });
  const c = new Client(
    { name: 'bench', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await c.connect(t);
  const call = async () => {
    const r = await c.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  runners[name] = { c, call, pid: t.pid };
}
const WARMUP = 500;
for (const r of Object.values(runners)) for (let i = 0; i < WARMUP; i++) await r.call();

const recorders = [];
if (PERF || SYSCALLS)
  for (const [n, r] of Object.entries(runners)) {
    const events = SYSCALLS
      ? ['-e', 'syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev']
      : ['-e', 'cpu-clock', '-F', String(PERF_HZ)];
    const p = spawn(
      'perf',
      ['record', '-q', ...events, '-p', String(r.pid), '-o', join(out, `${n}.perf.data`)],
      {
        stdio: 'inherit',
      },
    );
    recorders.push(new Promise((done) => p.once('exit', done)));
    r.recorder = p;
  }
if (recorders.length) await new Promise((r) => setTimeout(r, 1000));
const names = Object.keys(runners);
for (let round = 0; round < ROUNDS; round++)
  for (const n of names.map((_, i) => names[(i + round) % names.length]))
    for (let i = 0; i < CALLS; i++) await runners[n].call();
for (const r of Object.values(runners)) r.recorder?.kill('SIGINT');
await Promise.all(recorders);
for (const r of Object.values(runners)) await r.c.close();
// The profiles are written as each server exits.
await new Promise((r) => setTimeout(r, 1500));
shop.kill();

const calls = CALLS * ROUNDS;
console.log(
  `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
);
console.log(
  `# ${ROUNDS} interleaved rounds of ${CALLS} sequential calls per server after 500 warm-up; files in ${out}`,
);
const cols = names.map((n) => labels[n]);
const row = (k, vals) => console.log(`| ${k} | ${vals.map((v) => v.toFixed(1)).join(' | ')} |`);
const head = (k) =>
  console.log(`\n| ${k} | ${cols.join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|`);

if (!PERF && !SYSCALLS) {
  const res = {};
  for (const n of names) {
    const p = JSON.parse(readFileSync(join(out, `${n}.cpuprofile`), 'utf8'));
    const inCall =
      n === 'floor' ? (u) => u.endsWith('/bench/floor-server.mjs') : (u) => u.includes('/dist/pipeline/');
    res[n] = categorise(p, inCall);
  }
  // A process's profile covers its warm-up calls too (the window runs from its first call to its last).
  const calls = CALLS * ROUNDS + WARMUP;
  console.log('\nV8 profile, µs per call (sample-weighted self time; warm-up calls included)');
  head('total (idle excluded)');
  row(
    'all',
    names.map((n) => res[n].total / calls),
  );
  const table = (key, top, title) => {
    const keys = new Map();
    for (const n of names) for (const [k, v] of res[n][key]) keys.set(k, Math.max(keys.get(k) ?? 0, v));
    head(title);
    for (const [k] of [...keys].sort((a, b) => b[1] - a[1]).slice(0, top))
      row(
        k.replace(/\|/g, '\\|').slice(0, 100),
        names.map((n) => (new Map(res[n][key]).get(k) ?? 0) / calls),
      );
  };
  table('cat', 30, 'category');
  table('mod', 30, 'module');
  table('fn', 40, 'function');
} else if (PERF) {
  console.log(`\nperf cpu-clock at ${PERF_HZ} Hz: on-CPU µs per call`);
  const perThread = {};
  for (const n of names) {
    const r = spawnSync(
      'perf',
      ['report', '-i', join(out, `${n}.perf.data`), '--no-children', '--sort', 'pid', '-n', '--stdio'],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      },
    );
    const rows = [...r.stdout.matchAll(/^\s+[\d.]+%\s+(\d+)\s+(\d+):/gm)].map((m) => [
      Number(m[2]),
      Number(m[1]),
    ]);
    rows.sort((a, b) => a[0] - b[0]);
    const us = (s) => (s * 1e6) / PERF_HZ / calls;
    perThread[n] = {
      main: us(rows[0]?.[1] ?? 0),
      others: us(rows.slice(1).reduce((a, [, s]) => a + s, 0)),
    };
  }
  head('thread');
  row(
    'main thread',
    names.map((n) => perThread[n].main),
  );
  row(
    'other threads (V8 workers, libuv pool)',
    names.map((n) => perThread[n].others),
  );
  row(
    'all',
    names.map((n) => perThread[n].main + perThread[n].others),
  );
  for (const n of names) {
    const r = spawnSync(
      'perf',
      ['report', '-i', join(out, `${n}.perf.data`), '--no-children', '--sort', 'dso', '-n', '--stdio'],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      },
    );
    console.log(
      `\n${labels[n]}: by object (samples)\n${r.stdout
        .split('\n')
        .filter((l) => /^\s+\d/.test(l))
        .slice(0, 6)
        .join('\n')}`,
    );
  }
} else {
  // The legs of each call, from the syscall entries: fd 0 read (request in), the upstream socket's
  // write and read, the audit file's write, fd 1 write (answer out).
  console.log('\nsyscall entries (perf): wall µs per leg of a call, medians');
  const legs = [
    'in → upstream write',
    'upstream write → response read',
    'response read → audit write',
    'audit write → stdout write',
    'response read → stdout write',
    'stdout write → next stdin read',
    'stdin read → stdout write',
  ];
  const med = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1] : Number.NaN);
  const table = {};
  for (const n of names) {
    const r = spawnSync('perf', ['script', '-i', join(out, `${n}.perf.data`)], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    const ev = [];
    for (const m of r.stdout.matchAll(
      / (\d+\.\d+):\s+syscalls:sys_enter_(\w+): fd: 0x([0-9a-f]+), \w+: 0x[0-9a-f]+, \w+: 0x([0-9a-f]+)/g,
    ))
      ev.push({
        t: Number(m[1]) * 1e6,
        call: m[2],
        fd: Number.parseInt(m[3], 16),
        n: Number.parseInt(m[4], 16),
      });
    // The upstream socket: the fd written right after the first stdin read; the audit file: any
    // other fd written between the response read and the stdout write.
    const firstIn = ev.findIndex((e) => e.call === 'read' && e.fd === 0);
    const upFd = ev.slice(firstIn).find((e) => e.call.startsWith('write') && e.fd > 2)?.fd;
    const seg = Object.fromEntries(legs.map((l) => [l, []]));
    let cur;
    let lastOut;
    for (const e of ev) {
      const kind =
        e.call === 'read' && e.fd === 0
          ? 'in'
          : e.call.startsWith('write') && e.fd === 1
            ? 'out'
            : e.fd === upFd
              ? e.call === 'read'
                ? 'resp'
                : 'up'
              : // Not libuv's 8-byte wake-ups of the loop (its thread pool's eventfd).
                e.call === 'write' && cur?.resp !== undefined && e.fd > 2 && e.n > 8
                ? 'audit'
                : undefined;
      if (!kind) continue;
      if (kind === 'in') {
        if (lastOut !== undefined) seg['stdout write → next stdin read'].push(e.t - lastOut);
        cur = { in: e.t };
        continue;
      }
      if (!cur || cur[kind] !== undefined) continue;
      cur[kind] = e.t;
      if (kind === 'out' && cur.up !== undefined && cur.resp !== undefined) {
        seg['in → upstream write'].push(cur.up - cur.in);
        seg['upstream write → response read'].push(cur.resp - cur.up);
        if (cur.audit !== undefined) {
          seg['response read → audit write'].push(cur.audit - cur.resp);
          seg['audit write → stdout write'].push(e.t - cur.audit);
        }
        seg['response read → stdout write'].push(e.t - cur.resp);
        seg['stdin read → stdout write'].push(e.t - cur.in);
        lastOut = e.t;
      }
    }
    table[n] = seg;
  }
  head('leg');
  for (const l of legs)
    row(
      l,
      names.map((n) => med(table[n][l])),
    );
  row(
    'calls seen',
    names.map((n) => table[n]['stdin read → stdout write'].length),
  );
}
process.exit(0);
