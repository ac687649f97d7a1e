// Issue 22, target 1: what a stdio start costs up to the first `tools/list`, and how long the first
// `tools/call` after it takes (no first call may stall more than 50 ms). Each sample is a fresh
// `serve --stdio` of the demo shop's spec (examples/shop, a real upstream in its own process, rate
// limits lifted), driven over raw JSON-RPC lines: initialize, tools/list, then — right away, or after
// `--delay <ms>` — one tools/call of the shop's search, then a second call (warm, for reference).
// Builds interleaved sample by sample: this checkout and /tmp/base (or --base <dir>).
//
// Any spec (Stripe, GitHub…): `--spec <file> --tool <regex> --args <json> --echo <json body>` serves the
// spec against an in-process node:http upstream on port 0 that answers every request 200 with that
// JSON body (the spec's own servers are replaced by --base-url), and calls the first listed tool whose
// name matches. `--prof <dir>` writes a --cpu-prof of every gateway started (per thread).
//
// CPU is the sum over the process's threads of /proc/<pid>/task/*/schedstat (ns, unlike
// /proc/<pid>/stat's 10 ms ticks), read when the list answer arrives; "main" is the main thread's alone.
//
//   node bench/first-call.mjs [reps=10] [--delay 0,300,1000] [--spec <file>] [--base <dir>] [--no-base]
//     [--tool <regex>] [--args <json>] [--echo <json>] [--prof <dir>] [--cold]
// --cold gives every start an empty spec cache (by default they share one: warm after the first).
//   e.g. node bench/first-call.mjs 7 --delay 1000 --spec ../shared/specs/stripe.yaml \
//     --tool '^GetCustomers$' --args '{}' --echo '{"object":"list","data":[],"has_more":false,"url":"$PATH"}'

import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { takeFlag, takeSwitch } from './lib/args.mjs';
import { liftedPolicy, SHOP_KEY, startShopUpstream } from './lib/shop.mjs';

const argv = process.argv.slice(2);
const delays = (takeFlag(argv, '--delay') ?? '0').split(',').map(Number);
const baseDir = takeFlag(argv, '--base') ?? '/tmp/base';
const noBase = takeSwitch(argv, '--no-base');
const root = new URL('..', import.meta.url).pathname;
const SPEC = takeFlag(argv, '--spec') ?? `${root}examples/shop/openapi.yaml`;
const TOOL = new RegExp(takeFlag(argv, '--tool') ?? 'search', 'i');
const ARGS = JSON.parse(takeFlag(argv, '--args') ?? '{"q":"mouse"}');
const ECHO = takeFlag(argv, '--echo');
const PROF = takeFlag(argv, '--prof');
// The second call goes to another tool (its own first call, once the code is warm): per-tool cost.
const THEN = takeFlag(argv, '--then');
const THEN_ARGS = JSON.parse(takeFlag(argv, '--then-args') ?? JSON.stringify(ARGS));
// --cold: each start gets an empty spec cache (a miss: a big spec is parsed by the prefetch worker).
const COLD = takeSwitch(argv, '--cold');
const REPS = Number(argv[0] ?? 10);

const variants = [
  { name: 'mcp-warden', main: `${root}dist/cli/main.js` },
  ...(!noBase && existsSync(`${baseDir}/dist/cli/main.js`)
    ? [{ name: 'before', main: `${baseDir}/dist/cli/main.js` }]
    : []),
];

/** CPU ms of every thread of `pid`, and of its main thread, from schedstat (ns). */
function cpuOf(pid) {
  let all = 0;
  let main = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    all += ns;
    if (t === String(pid)) main = ns;
  }
  return { cpu: all / 1e6, main: main / 1e6 };
}

/** A node:http upstream on port 0 answering every request 200 with `body` (JSON; `$PATH` is the request's path). */
async function echoUpstream(body) {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(body.replaceAll('$PATH', req.url.split('?')[0])),
    );
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { child: { kill: () => server.close() }, url: `http://127.0.0.1:${server.address().port}` };
}

/** One fresh gateway: ms and CPU to the list answer, then the first and second call's ms. */
async function sample(v, up, policy, work, delay, n) {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(PROF ? ['--cpu-prof', '--cpu-prof-dir', join(PROF, `${v.name}-${n}`)] : []),
      ...[v.main, 'serve', '--stdio', '--spec', SPEC, '--base-url', up, '--policy', policy],
      ...['--audit-file', join(work, `audit-${v.name}-${n}.jsonl`), '--log-level', 'warn'],
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...(COLD ? { MCP_WARDEN_CACHE_DIR: mkdtempSync(join(work, `cache-${v.name}-${n}-`)) } : {}),
        MCP_WARDEN_CRED_SHOPKEY: SHOP_KEY,
        // Stripe's schemes (the echo upstream does not read them; a call needs one to be sent).
        MCP_WARDEN_CRED_BEARERAUTH: 'bench-token',
        MCP_WARDEN_CRED_BASICAUTH: 'bench-user:bench-password',
        // Kubernetes' (without it every tool is withheld and the list is empty).
        MCP_WARDEN_CRED_BEARERTOKEN: 'bench-token',
      },
    },
  );
  let err = '';
  child.stderr.on('data', (d) => {
    if (err.length < 2000) err += d;
  });
  const waiting = new Map();
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiting.get(m.id)?.(m);
    }
  });
  const exited = new Promise((r) => child.on('exit', r));
  let id = 0;
  const send = (method, params) =>
    new Promise((resolve, reject) => {
      const n = ++id;
      waiting.set(n, (m) =>
        m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m),
      );
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: n, method, params })}\n`);
    });
  try {
    await send('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'bench-first-call', version: '1' },
    });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const list = await send('tools/list', {});
    const listMs = performance.now() - t0;
    const cpu = cpuOf(child.pid);
    const tool = list.result.tools.find((t) => TOOL.test(t.name))?.name;
    if (!tool)
      throw new Error(`no tool matches ${TOOL} among ${list.result.tools.map((t) => t.name).slice(0, 8)}`);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    // Wall ms of a call, and the main thread's CPU ms while it ran (less noisy on a shared machine).
    const then = THEN ? list.result.tools.find((t) => new RegExp(THEN, 'i').test(t.name))?.name : tool;
    if (!then) throw new Error(`no tool matches ${THEN}`);
    const call = async (name = tool, args = ARGS) => {
      const t = performance.now();
      const c = cpuOf(child.pid).main;
      const r = await send('tools/call', { name, arguments: args });
      if (r.result?.isError) throw new Error(JSON.stringify(r.result).slice(0, 300));
      return [performance.now() - t, cpuOf(child.pid).main - c];
    };
    const us = () => Number(process.hrtime.bigint() / 1000n);
    const listed = us();
    const [first, firstCpu] = await call();
    const firstDone = us();
    const [second, secondCpu] = await call(then, THEN ? THEN_ARGS : ARGS);
    // The profile's timestamps are the same monotonic clock (µs): where each part lies in it.
    if (PROF) {
      mkdirSync(join(PROF, `${v.name}-${n}`), { recursive: true });
      const at = { tool, listed, firstStart: firstDone - first * 1000, firstDone, secondDone: us() };
      writeFileSync(join(PROF, `${v.name}-${n}`, 'times.json'), JSON.stringify(at));
    }
    return { listMs, ...cpu, first, firstCpu, second, secondCpu };
  } catch (e) {
    return { error: `${e.message} ${err.slice(0, 300)}` };
  } finally {
    child.stdin.end();
    await exited;
  }
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const max = (xs) => Math.max(...xs.filter(Number.isFinite));

const work = mkdtempSync(join(tmpdir(), 'warden-first-call-'));
const policy = liftedPolicy(work);
const { child: shop, url: up } =
  ECHO === undefined ? await startShopUpstream(5400) : await echoUpstream(ECHO);
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${REPS} starts per build and delay, interleaved; spec ${SPEC.replace(root, '')}; spec cache ${COLD ? 'cold (a fresh one per start)' : 'shared (warm after the first start)'}`,
);
const results = {};
let n = 0;
for (let r = 0; r < REPS; r++)
  for (const delay of delays)
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      const s = await sample(v, up, policy, work, delay, n++);
      if (s.error) console.error(`${v.name}: ${s.error}`);
      const key = `${v.name}\t${delay}`;
      results[key] ??= [];
      results[key].push(s);
    }
console.log(
  `\n| build | call after list | list ms | CPU ms at list (all threads) | main thread CPU ms | 1st call ms (median / max) | its main-thread CPU ms | 2nd call ms${THEN ? ` (${THEN})` : ''} | its CPU ms |`,
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [key, ss] of Object.entries(results)) {
  const [name, delay] = key.split('\t');
  const ok = ss.filter((s) => !s.error);
  const f = (k, d = 0) => median(ok.map((s) => s[k])).toFixed(d);
  console.log(
    `| ${name} | ${delay} ms | ${f('listMs')} | ${f('cpu')} | ${f('main')} | ${f('first', 1)} / ${max(ok.map((s) => s.first)).toFixed(1)} | ${f('firstCpu', 1)} | ${f('second', 1)} | ${f('secondCpu', 1)} |`,
  );
}
shop.kill();
rmSync(work, { recursive: true, force: true });
