// What tracing costs per tools/call: mcp-warden with tracing off and on (OTLP/HTTP to a local
// receiver in its own process), against the floor (a bare SDK server, bench/floor-server.mjs), in one
// run against the same upstream (the demo shop). Two measures:
//   1. stdio, end to end: sequential calls with the official SDK client, the three servers measured
//      in interleaved rounds (so drift hits all alike); p50/p99 are medians over the rounds.
//   2. in process: `pipeline.call` of two gateways (off, on) in alternating blocks, µs per call.
//
//   node bench/trace.mjs [calls=2000] [rounds=3] [inproc=20000]   (after `npm run build`)
//
// TRACE_BENCH_BASE=<dir>: also measure the build in <dir> (e.g. the commit before tracing, from
// `git archive <commit> | tar -x -C <dir>`, node_modules linked, `tsc` run), to compare off with before.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const CALLS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 3);
const INPROC = Number(process.argv[4] ?? 20000);
const WARMUP = 300;
const KEY = 'bench-shop-key-0123456789';
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const ARGS = { q: 'mouse' };
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill();
});

function start(args, readyPattern, env = {}) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const seen = (d) => {
      out += d;
      const m = readyPattern.exec(out);
      if (m) resolve(m);
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (c) => reject(new Error(`${args[0]} exited ${c}: ${out.slice(0, 500)}`)));
  });
}

/** A stand-in collector in its own process: takes OTLP/HTTP JSON, counts the spans. */
const RECEIVER = `
const http = require('node:http');
let spans = 0;
const s = http.createServer((req, res) => {
  if (req.method === 'GET') return res.end(String(spans));
  let b = '';
  req.on('data', (d) => (b += d));
  req.on('end', () => {
    try { spans += (b.match(/"spanId"/g) || []).length; } catch {}
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
s.listen(0, '127.0.0.1', () => console.log('receiver on ' + s.address().port));
`;

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeSequential(fn, n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: pct(ms, 50), p99: pct(ms, 99) };
}

async function sdkClient(transport) {
  const c = new Client(
    { name: 'bench', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await c.connect(transport);
  const tools = (await c.listTools()).tools;
  const tool = tools.find((t) => /search/i.test(t.name))?.name;
  if (!tool) throw new Error(`no search tool in ${tools.map((t) => t.name)}`);
  const call = async () => {
    const r = await c.callTool({ name: tool, arguments: ARGS });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  return { c, call };
}

const dir = mkdtempSync(join(tmpdir(), 'warden-trace-bench-'));
// The default rate limits (120 calls a minute per caller and tool) would stop a benchmark: raise them.
const POLICY = join(dir, 'policy.yaml');
writeFileSync(
  POLICY,
  'version: 1\nrateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }\ndefaults: { concurrency: 1000 }\n',
);
const BASE = process.env.TRACE_BENCH_BASE;
const wardenArgs = (up, audit, at = root) => [
  `${at}/dist/cli/main.js`,
  'serve',
  '--stdio',
  '--spec',
  SPEC,
  '--base-url',
  up,
  '--audit-file',
  join(dir, audit),
  '--policy',
  POLICY,
  '--log-level',
  'warn',
];

async function main() {
  const upPort = 4900 + Math.floor(Math.random() * 500);
  await start([`${root}examples/shop/server.mjs`, String(upPort)], /shop API at/, { SHOP_KEY: KEY });
  const up = `http://127.0.0.1:${upPort}/v1`;
  const [, recvPort] = await start(['-e', RECEIVER], /receiver on (\d+)/);
  const receiver = `http://127.0.0.1:${recvPort}`;
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver, OTEL_SERVICE_NAME: 'warden-bench' };
  // Off means nothing configured: the variables are removed, not set to off.
  const plainEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));

  // 1. stdio end to end, interleaved rounds.
  const servers = {
    floor: { args: [`${root}bench/floor-server.mjs`, 'stdio', up, KEY], env: plainEnv },
    ...(BASE
      ? {
          'mcp-warden before tracing (base)': {
            args: wardenArgs(up, 'base.jsonl', BASE),
            env: { ...plainEnv, MCP_WARDEN_CRED_SHOPKEY: KEY },
          },
        }
      : {}),
    'mcp-warden, tracing off': {
      args: wardenArgs(up, 'off.jsonl'),
      env: { ...plainEnv, MCP_WARDEN_CRED_SHOPKEY: KEY },
    },
    'mcp-warden, tracing on': {
      args: wardenArgs(up, 'on.jsonl'),
      env: { ...plainEnv, MCP_WARDEN_CRED_SHOPKEY: KEY, ...otel },
    },
  };
  const clients = {};
  for (const [name, s] of Object.entries(servers)) {
    const t = new StdioClientTransport({
      command: process.execPath,
      args: s.args,
      env: s.env,
      stderr: 'ignore',
    });
    clients[name] = await sdkClient(t);
    for (let i = 0; i < WARMUP; i++) await clients[name].call();
  }
  const results = Object.fromEntries(Object.keys(servers).map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++)
    for (const name of Object.keys(servers)) {
      results[name].push(await timeSequential(clients[name].call, CALLS));
      console.error(`round ${r + 1} ${name}: p50 ${results[name].at(-1).p50.toFixed(3)} ms`);
    }
  for (const { c } of Object.values(clients)) await c.close();

  // 2. In process: two gateways, their pipelines called in alternating blocks.
  const { startGateway } = await import(`${root}dist/server/serve.js`);
  const gw = async (env, audit) =>
    startGateway({
      spec: SPEC,
      baseUrl: up,
      policy: POLICY,
      auditFile: join(dir, audit),
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      env: { MCP_WARDEN_CRED_SHOPKEY: KEY, ...env },
    });
  const off = await gw({}, 'inproc-off.jsonl');
  const on = await gw(otel, 'inproc-on.jsonl');
  const principal = { id: 'bench', scopes: ['tools:read'], via: 'api-key' };
  const callOf = (g) => async () => {
    const r = await g.pipeline.call({ name: 'searchProducts', arguments: ARGS, principal });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  const inproc = { off: [], on: [] };
  const BLOCK = 1000;
  for (const g of [off, on]) for (let i = 0; i < 2000; i++) await callOf(g)();
  for (let done = 0; done < INPROC; done += BLOCK)
    for (const [k, g] of [
      ['off', off],
      ['on', on],
    ]) {
      const call = callOf(g);
      for (let i = 0; i < BLOCK; i++) {
        const t0 = process.hrtime.bigint();
        await call();
        inproc[k].push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  await off.close();
  await on.close();
  const spans = Number(await (await fetch(receiver)).text());

  const f = (x) => x.toFixed(3);
  console.log(
    `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  );
  console.log(
    `# stdio: ${ROUNDS} interleaved rounds of ${CALLS} sequential calls (SDK client, 2026-07-28) after ${WARMUP} warm-up; medians over rounds`,
  );
  console.log('| server | p50 ms | p99 ms | p50 / floor |');
  console.log('|---|---:|---:|---:|');
  const floor50 = median(results.floor.map((x) => x.p50));
  for (const [name, rs] of Object.entries(results)) {
    const p50 = median(rs.map((x) => x.p50));
    console.log(
      `| ${name} | ${f(p50)} | ${f(median(rs.map((x) => x.p99)))} | ${(p50 / floor50).toFixed(3)} |`,
    );
  }
  console.log(`# in process: pipeline.call, ${INPROC} calls each, alternating blocks of ${BLOCK}`);
  console.log('| tracing | mean µs | p50 µs | p90 µs | p99 µs |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [k, xs] of Object.entries(inproc)) {
    const s = [...xs].sort((a, b) => a - b);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `| ${k} | ${mean.toFixed(1)} | ${pct(s, 50).toFixed(1)} | ${pct(s, 90).toFixed(1)} | ${pct(s, 99).toFixed(1)} |`,
    );
  }
  console.log(`# spans received by the collector: ${spans}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
