// Issue 22, target 3: the p50 a stdio `tools/call` adds over calling the upstream directly, for
// mcp-warden (this checkout's build, and optionally an earlier build), the floor (a bare SDK server
// forwarding one hand-written tool, bench/floor-server.mjs) and the peer (@ivotoby/openapi-mcp-server),
// in one run against the same upstream (the demo shop in its own process). Every server is started
// once and warmed up; then interleaved rounds (direct, then each server, the order rotating), so drift
// on the shared machine hits all alike. Also the server process's CPU per call (utime + stime from
// /proc/<pid>/stat over the rounds, which covers everything the process does for a call: framing,
// SDK dispatch, the pipeline, the audit, its upstream request, GC).
//
//   node bench/stdio-latency.mjs [calls=500] [rounds=8]        (after `npm run build`)
//
// STDIO_BENCH_BASE=<dir>: also the build in <dir> (e.g. /tmp/base, the commit before), same run.
// STDIO_BENCH_SEPARATE=1: also this build with its audit file outside the policy file's directory
// (`--audit-file` defaults to the state directory). In the default rows both sit in one directory;
// a build whose policy watcher watches that directory (before control/policy-watch.ts) hears every
// audit append: two more reads a call (bench/stdio-syscalls.mjs), ~2–4 µs CPU in isolation.
// STDIO_BENCH_PROF=<dir>: the floor and mcp-warden processes run under `--cpu-prof` (profiles written there at
// exit; summarise with `node bench/pipeline-call.mjs <calls> --read <file>`).
// Writes bench/results/stdio-latency.json too.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Pool } from 'undici';
import { SHOP_KEY as KEY, liftedPolicy, startShopUpstream } from './lib/shop.mjs';

const CALLS = Number(process.argv[2] ?? 500);
const ROUNDS = Number(process.argv[3] ?? 8);
const WARMUP = 500;
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const ARGS = { q: 'mouse' };
const BASE = process.env.STDIO_BENCH_BASE;
const PROF = process.env.STDIO_BENCH_PROF;
const TICK_US = 1e6 / 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s ticks.
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill();
});

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** utime + stime of a process, in µs. */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

async function sdkClient(args, env, era) {
  const transport = new StdioClientTransport({ command: process.execPath, args, env, stderr: 'ignore' });
  const c = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode: era } });
  await c.connect(transport);
  const tools = (await c.listTools()).tools;
  const tool = tools.find((t) => /search/i.test(t.name))?.name;
  if (!tool) throw new Error(`no search tool in ${tools.map((t) => t.name)}`);
  const call = async () => {
    const r = await c.callTool({ name: tool, arguments: ARGS });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  return { c, call, pid: transport.pid };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-stdio-bench-'));
  // The default rate limits (120 calls a minute per caller and tool) would stop a benchmark: raise them.
  const POLICY = liftedPolicy(dir);
  const { child: shop, url: up } = await startShopUpstream(4900);
  children.push(shop);
  const env = { ...process.env, MCP_WARDEN_CRED_SHOPKEY: KEY };
  const warden = (at, audit) => [
    ...(PROF
      ? ['--cpu-prof', '--cpu-prof-dir', PROF, '--cpu-prof-name', `${basename(audit)}.cpuprofile`]
      : []),
    `${at}/dist/cli/main.js`,
    ...['serve', '--stdio', '--spec', SPEC, '--base-url', up],
    ...[
      '--audit-file',
      isAbsolute(audit) ? audit : join(dir, audit),
      '--policy',
      POLICY,
      '--log-level',
      'warn',
    ],
  ];
  const modern = { pin: '2026-07-28' };
  const servers = {
    floor: {
      args: [
        ...(PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF, '--cpu-prof-name', 'floor.cpuprofile'] : []),
        `${root}bench/floor-server.mjs`,
        ...['stdio', up, KEY],
      ],
      era: modern,
    },
    'mcp-warden': { args: warden(root, 'this.jsonl'), era: modern },
    ...(BASE ? { 'mcp-warden (base)': { args: warden(BASE, 'base.jsonl'), era: modern } } : {}),
    ...(process.env.STDIO_BENCH_SEPARATE
      ? {
          'mcp-warden (audit apart)': {
            args: warden(root, join(mkdtempSync(join(tmpdir(), 'warden-stdio-audit-')), 'apart.jsonl')),
            era: modern,
          },
        }
      : {}),
    '@ivotoby/openapi-mcp-server': {
      args: [
        `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`,
        ...['--transport', 'stdio', '--api-base-url', up, '--openapi-spec', SPEC],
        ...['--headers', `X-Shop-Key:${KEY}`],
      ],
      era: 'legacy',
    },
  };

  const direct = new Pool(new URL(up).origin, { connections: 4 });
  const directCall = async () => {
    const r = await direct.request({
      path: '/v1/products/search?q=mouse',
      method: 'GET',
      headers: { 'x-shop-key': KEY },
    });
    await r.body.text();
  };
  const runners = { direct: { call: directCall } };
  for (const [name, s] of Object.entries(servers)) {
    runners[name] = await sdkClient(s.args, env, s.era);
    console.error(`${name}: started (pid ${runners[name].pid})`);
  }
  for (const r of Object.values(runners)) for (let i = 0; i < WARMUP; i++) await r.call();

  const samples = Object.fromEntries(Object.keys(runners).map((n) => [n, { ms: [], cpuUs: 0, calls: 0 }]));
  const names = Object.keys(runners);
  for (let round = 0; round < ROUNDS; round++) {
    // Rotated order: no server always runs right after another one.
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      const r = runners[name];
      const s = samples[name];
      const c0 = r.pid ? cpuOf(r.pid) : 0;
      for (let i = 0; i < CALLS; i++) {
        const t0 = performance.now();
        await r.call();
        s.ms.push(performance.now() - t0);
      }
      if (r.pid) s.cpuUs += cpuOf(r.pid) - c0;
      s.calls += CALLS;
    }
    console.error(`round ${round + 1}/${ROUNDS} done`);
  }
  for (const r of Object.values(runners)) await r.c?.close();
  await direct.close();

  const rows = {};
  for (const [name, s] of Object.entries(samples)) {
    const sorted = [...s.ms].sort((a, b) => a - b);
    rows[name] = {
      p50: pct(sorted, 50),
      p99: pct(sorted, 99),
      cpuUsPerCall: s.calls ? s.cpuUs / s.calls : 0,
    };
  }
  const d = rows.direct;
  for (const r of Object.values(rows)) {
    r.added50 = r.p50 - d.p50;
    r.added99 = r.p99 - d.p99;
  }
  const f = (x) => x.toFixed(3);
  console.log(
    `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  );
  console.log(
    `# ${ROUNDS} interleaved rounds of ${CALLS} sequential calls each after ${WARMUP} warm-up (SDK client; 2026-07-28, the peer 2025-11-25)`,
  );
  console.log(
    '| server | p50 ms | p99 ms | added p50 ms | added p99 ms | added p50 − floor ms | server CPU µs per call |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, r] of Object.entries(rows))
    console.log(
      `| ${name} | ${f(r.p50)} | ${f(r.p99)} | ${name === 'direct' ? '—' : f(r.added50)} | ${name === 'direct' ? '—' : f(r.added99)} | ${name === 'direct' ? '—' : f(r.added50 - rows.floor.added50)} | ${name === 'direct' ? '—' : r.cpuUsPerCall.toFixed(0)} |`,
    );
  const w = rows['mcp-warden'];
  const peer = rows['@ivotoby/openapi-mcp-server'];
  const within = w.added50 - rows.floor.added50;
  console.log(
    `# target 3: added p50 within 0.1 ms of the floor: ${within <= 0.1 ? 'met' : 'NOT met'} (${within >= 0 ? '+' : ''}${f(within)} ms); below the peer's: ${w.added50 < peer.added50 ? 'met' : 'NOT met'} (${f(w.added50)} vs ${f(peer.added50)} ms); ratio to the floor ${(w.added50 / rows.floor.added50).toFixed(2)}, to the peer ${(w.added50 / peer.added50).toFixed(2)}`,
  );
  mkdirSync(`${root}bench/results`, { recursive: true });
  writeFileSync(
    `${root}bench/results/stdio-latency.json`,
    `${JSON.stringify({ node: process.version, calls: CALLS, rounds: ROUNDS, rows }, null, 2)}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
