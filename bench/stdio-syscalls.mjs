// Issue 22, target 3: the system calls and wake-ups a stdio `tools/call` costs the server process,
// for the floor (bench/floor-server.mjs) and mcp-warden (this checkout's build), against the same
// upstream (the demo shop in its own process). Each server is started once and warmed up; then
// `perf stat` counts, per thread, every syscall entry and context switch over N sequential calls
// (kernel tracepoints: nothing is slowed down as under strace), and /proc/<pid>/stat gives the user
// and system CPU over the same calls. Printed per call: all syscalls, context switches, CPU, and
// each (thread, syscall) seen at least once per 20 calls in some server. The servers run one after
// the other (not interleaved): compare counts, and CPU only roughly.
//
//   node bench/stdio-syscalls.mjs [calls=2000]        (after `npm run build`; needs `perf`, root)
//
// STDIO_BENCH_BASE=<dir>  also the build in <dir> (e.g. /tmp/base)
// SEPARATE=1              also this build with its audit file outside the policy file's directory
//                         (the policy watcher watches that directory: see bench/stdio-latency.mjs)
// FLAGS='<node flags>'    also this build run with those node flags (e.g. --single-threaded-gc)
// PHASES=1                median µs of a call's phases on the main thread, from `perf trace` of its
//                         reads and writes (request read → upstream write → upstream read → answer
//                         written → next request read); perf trace slows syscalls, so roughly
// STRACE_DIR=<dir>        an `strace -f -tt` log of 5 calls per server there
// PERF_DIR=<dir>          a `perf record -g` of the calls per server there (run the bench under
//                         NODE_OPTIONS=--perf-basic-prof for JS frame names)
// BY_TID=1                rows per thread id rather than per thread name

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { SHOP_KEY as KEY, liftedPolicy, startShopUpstream } from './lib/shop.mjs';

const CALLS = Number(process.argv[2] ?? 2000);
const WARMUP = 1000;
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const BASE = process.env.STDIO_BENCH_BASE;
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill();
});

async function sdkClient(args, env) {
  const transport = new StdioClientTransport({ command: process.execPath, args, env, stderr: 'ignore' });
  const c = new Client(
    { name: 'bench', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await c.connect(transport);
  const tool = (await c.listTools()).tools.find((t) => /search/i.test(t.name))?.name;
  const call = async () => {
    const r = await c.callTool({ name: tool, arguments: { q: 'mouse' } });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  return { c, call, pid: transport.pid };
}

/** utime and stime of a process (all threads), µs. */
function stat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { u: Number(f[11]) * 1e4, s: Number(f[12]) * 1e4 };
}

/**
 * Where a call's time goes on the server's main thread, from `perf trace` of its reads and writes:
 * median µs from the request read (fd 0) to the upstream write, the upstream wait, from the
 * upstream read to the answer written (fd 1), and from there to the next request read.
 */
async function phases(r) {
  const out = join(mkdtempSync(join(tmpdir(), 'stdio-trace-')), 'trace.txt');
  const pt = spawn('perf', ['trace', '-e', 'read,write', '-o', out, '-p', String(r.pid)], {
    stdio: 'ignore',
  });
  await new Promise((res) => setTimeout(res, 1500));
  for (let i = 0; i < 1000; i++) await r.call();
  pt.kill('SIGINT');
  await new Promise((res) => pt.on('exit', res));
  const ev = [];
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    // perf trace leaves out a zero fd: `read(buf: …)` is a read of stdin.
    const m =
      /^\s*([\d.]+) \(\s*([\d.]+) ms\): [^/]*\/(\d+) (read|write)\((?:fd: (\d+))?[^)]*\)\s+= (-?\d+)/.exec(
        line,
      );
    if (!m || Number(m[3]) !== r.pid || Number(m[6]) <= 0) continue;
    ev.push({
      t0: Number(m[1]) * 1000,
      t1: (Number(m[1]) + Number(m[2])) * 1000,
      op: m[4],
      fd: Number(m[5] ?? 0),
    });
  }
  const d = { request: [], upstream: [], response: [], between: [] };
  let cur;
  let lastOut;
  for (const e of ev) {
    if (e.op === 'read' && e.fd === 0) {
      if (lastOut !== undefined) d.between.push(e.t1 - lastOut);
      cur = { in: e.t1 };
    } else if (cur && e.op === 'write' && e.fd > 2 && cur.up === undefined) cur.up = e.t0;
    else if (cur && e.op === 'read' && cur.up !== undefined && cur.back === undefined) cur.back = e.t1;
    else if (cur && e.op === 'write' && e.fd === 1 && cur.back !== undefined) {
      d.request.push(cur.up - cur.in);
      d.upstream.push(cur.back - cur.up);
      d.response.push(e.t1 - cur.back);
      lastOut = e.t1;
      cur = undefined;
    }
  }
  const med = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? Number.NaN;
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, med(v)]));
}

/** Thread id → name (comm) of a process's threads. */
function threads(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`))
    out.set(tid, readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
  return out;
}

/** Counts per thread name: { event: count } while `work` runs. */
async function count(pid, work) {
  const out = join(mkdtempSync(join(tmpdir(), 'stdio-sys-')), 'perf.txt');
  const perf = spawn(
    'perf',
    [
      'stat',
      '--per-thread',
      '-x',
      ',',
      '-o',
      out,
      '-e',
      'syscalls:sys_enter_*',
      '-e',
      'context-switches',
      '-p',
      String(pid),
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 1500)); // perf attaches
  await work();
  const names = threads(pid);
  perf.kill('SIGINT');
  await new Promise((r) => perf.on('exit', r));
  const byThread = {};
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    // "<comm>-<tid>,<count>,,<event>,..."
    const f = line.split(',');
    if (f.length < 4 || !/^\d+$/.test(f[1])) continue;
    const tid = f[0].slice(f[0].lastIndexOf('-') + 1);
    const name =
      (names.get(tid) ?? f[0].slice(0, f[0].lastIndexOf('-'))) + (process.env.BY_TID ? `-${tid}` : '');
    const ev = f[3].replace('syscalls:sys_enter_', '');
    const n = Number(f[1]);
    if (!n) continue;
    byThread[name] ??= {};
    byThread[name][ev] = (byThread[name][ev] ?? 0) + n;
  }
  return byThread;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-stdio-sys-'));
  const POLICY = liftedPolicy(dir);
  const { child: shop, url: up } = await startShopUpstream(5400);
  children.push(shop);
  const env = { ...process.env, MCP_WARDEN_CRED_SHOPKEY: KEY };
  const warden = (at, audit) => [
    `${at}/dist/cli/main.js`,
    ...['serve', '--stdio', '--spec', SPEC, '--base-url', up],
    ...[
      '--audit-file',
      audit.startsWith('/') ? audit : join(dir, audit),
      '--policy',
      POLICY,
      '--log-level',
      'warn',
    ],
  ];
  const servers = {
    floor: [`${root}bench/floor-server.mjs`, 'stdio', up, KEY],
    'mcp-warden': warden(root, 'this.jsonl'),
    ...(BASE ? { 'mcp-warden (base)': warden(BASE, 'base.jsonl') } : {}),
    // SEPARATE=1: also this build with its audit outside the policy file's directory (the default
    // layout: the audit in the state directory), whose watcher then hears nothing of the audit.
    ...(process.env.FLAGS
      ? {
          [`mcp-warden ${process.env.FLAGS}`]: [
            ...process.env.FLAGS.split(' '),
            ...warden(root, 'flags.jsonl'),
          ],
        }
      : {}),
    ...(process.env.SEPARATE
      ? {
          'mcp-warden (audit in another dir)': warden(
            root,
            join(mkdtempSync(join(tmpdir(), 'warden-audit-')), 'a.jsonl'),
          ),
        }
      : {}),
  };
  const results = {};
  for (const [name, args] of Object.entries(servers)) {
    const r = await sdkClient(args, env);
    for (let i = 0; i < WARMUP; i++) await r.call();
    if (process.env.STRACE_DIR) {
      // A readable log of a few calls (strace slows the process down: counts only from perf).
      const st = spawn(
        'strace',
        ['-f', '-tt', '-s', '80', '-o', join(process.env.STRACE_DIR, `${name}.strace`), '-p', String(r.pid)],
        { stdio: 'ignore' },
      );
      await new Promise((res) => setTimeout(res, 1000));
      for (let i = 0; i < 5; i++) await r.call();
      st.kill('SIGINT');
      await new Promise((res) => st.on('exit', res));
    }
    if (process.env.PERF_DIR) {
      // A CPU profile of the calls (start the bench with NODE_OPTIONS=--perf-basic-prof for JS names).
      const pr = spawn(
        'perf',
        [
          'record',
          // PERF_EVENT=<event>: sample that event instead (e.g. syscalls:sys_enter_futex: who wakes threads)
          ...(process.env.PERF_EVENT ? ['-e', process.env.PERF_EVENT] : ['-F', '1999']),
          '-g',
          '-o',
          join(process.env.PERF_DIR, `${name}.data`),
          '-p',
          String(r.pid),
        ],
        { stdio: 'ignore' },
      );
      await new Promise((res) => setTimeout(res, 1000));
      for (let i = 0; i < CALLS; i++) await r.call();
      pr.kill('SIGINT');
      await new Promise((res) => pr.on('exit', res));
    }
    const ph = process.env.PHASES ? await phases(r) : undefined;
    const s0 = stat(r.pid);
    results[name] = await count(r.pid, async () => {
      for (let i = 0; i < CALLS; i++) await r.call();
    });
    const s1 = stat(r.pid);
    results[name]['(cpu)'] = { utime: s1.u - s0.u, stime: s1.s - s0.s };
    if (ph) results[name]['(phases)'] = ph;
    await r.c.close();
    console.error(`${name}: counted`);
  }
  // Rows: (thread, syscall) seen at least once per 20 calls in some server.
  const keys = new Set();
  for (const byThread of Object.values(results))
    for (const [t, evs] of Object.entries(byThread))
      for (const [ev, n] of Object.entries(evs)) if (n >= CALLS / 20) keys.add(`${t}\t${ev}`);
  const names = Object.keys(results);
  const per = (n) => (n / CALLS).toFixed(2);
  console.log(`# per call, ${CALLS} sequential calls after ${WARMUP} warm-up; perf stat --per-thread`);
  console.log(`| thread | event | ${names.join(' | ')} |`);
  console.log(`|---|---|${names.map(() => '---:').join('|')}|`);
  const total = (byThread, pick) =>
    Object.entries(byThread)
      .filter(([t]) => !t.startsWith('('))
      .map(([, v]) => v)
      .reduce((s, evs) => s + Object.entries(evs).reduce((a, [e, n]) => a + (pick(e) ? n : 0), 0), 0);
  console.log(
    `| all | syscalls | ${names.map((n) => per(total(results[n], (e) => e !== 'context-switches'))).join(' | ')} |`,
  );
  console.log(
    `| all | context-switches | ${names.map((n) => per(total(results[n], (e) => e === 'context-switches'))).join(' | ')} |`,
  );
  console.log(`| all | user CPU µs | ${names.map((n) => per(results[n]['(cpu)'].utime)).join(' | ')} |`);
  console.log(`| all | system CPU µs | ${names.map((n) => per(results[n]['(cpu)'].stime)).join(' | ')} |`);
  if (process.env.PHASES)
    for (const p of ['request', 'upstream', 'response', 'between'])
      console.log(
        `| main | ${p} µs (median, perf trace) | ${names.map((n) => results[n]['(phases)'][p].toFixed(0)).join(' | ')} |`,
      );
  for (const k of [...keys].sort()) {
    if (k.startsWith('(')) continue;
    const [t, ev] = k.split('\t');
    console.log(`| ${t} | ${ev} | ${names.map((n) => per(results[n][t]?.[ev] ?? 0)).join(' | ')} |`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
