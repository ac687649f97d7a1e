// Issue 22, target 2: Streamable HTTP calls/s at best concurrency and server CPU per call, for
// mcp-warden (full pipeline, JSONL audit on, rate limits lifted), the bare SDK floor
// (bench/floor-server.mjs) and the peer (@ivotoby/openapi-mcp-server), in one run, against the same
// upstream (the demo shop in its own process). Optionally also a "before" build of mcp-warden.
//
//   node bench/http-throughput.mjs [seconds=3] [levels=1,4,16,64] [rounds=2] [--before <dir>]
//        [--only name,name] [--profile <dir>]
//
// --before: another built checkout of mcp-warden measured as "mcp-warden (before)" (default /tmp/base
// when it exists). --profile: the mcp-warden processes run with `--cpu-prof` into <dir>.
//
// Load: raw keep-alive HTTP frames (undici Pool, one connection per worker). mcp-warden and the
// floor get 2026-07-28 `tools/call` frames (one POST, one answer). The peer speaks 2025-11-25 with
// sessions and answers a POST with 202, the result arriving on the session's GET stream: each worker
// holds its own session and GET stream and waits for its result there, so a "call" is the same
// round trip for everyone. Levels and servers are interleaved (round → level → server) so that
// noise from the shared machine lands on every server alike.
//
// CPU per call: the server process's utime+stime (/proc/<pid>/stat) over the measured window ÷
// calls answered in it. Results: a table on stdout, the raw numbers in bench/results/.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { takeFlag } from './lib/args.mjs';

const args = process.argv.slice(2);
const flag = (name) => takeFlag(args, name);
const BEFORE = flag('--before') ?? (existsSync('/tmp/base/dist/cli/main.js') ? '/tmp/base' : undefined);
const ONLY = flag('--only')?.split(',');
// Writes a V8 CPU profile of each mcp-warden process (summarise with bench/profile-summary.mjs).
const PROFILE = flag('--profile');
const SECONDS = Number(args[0] ?? 3);
const LEVELS = (args[1] ?? '1,4,16,64').split(',').map(Number);
const ROUNDS = Number(args[2] ?? 2);
const KEY = 'bench-shop-key-0123456789';
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const ARGS = { q: 'mouse' };
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux.
const children = [];
// A failed run must not leave its servers behind (they would load the next run).
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill();
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));
process.on('uncaughtException', (e) => {
  console.error(e);
  process.exit(1);
});

function start(cmd, argv, readyPattern, env = {}, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, cmd, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const seen = (d) => {
      out += d;
      if (readyPattern.test(out)) resolve(child);
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (c) => reject(new Error(`${cmd} exited ${c}: ${out.slice(0, 500)}`)));
  });
}

/** utime+stime of a process, in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

const okResult = (t) =>
  t.includes('"result"') && t.includes('Wireless mouse') && !t.includes('"isError":true');

const modernFrame = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'searchProducts',
    arguments: ARGS,
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
});
const modernHeaders = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': 'searchProducts',
};

/** A modern endpoint: every worker posts the same frame on its own keep-alive connection. */
async function modernDriver(url, conc) {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: conc, pipelining: 1 });
  const call = async () => {
    const r = await pool.request({
      path: u.pathname,
      method: 'POST',
      headers: modernHeaders,
      body: modernFrame,
    });
    const text = await r.body.text();
    if (r.statusCode !== 200 || !okResult(text))
      throw new Error(`bad answer ${r.statusCode}: ${text.slice(0, 200)}`);
  };
  return { workers: Array.from({ length: conc }, () => call), close: () => pool.close() };
}

let nextId = 1000;
/** The peer: per worker a 2025-11-25 session, its GET stream, and POSTs answered with 202. */
async function peerDriver(url, conc) {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: conc, pipelining: 1 });
  const streams = new Pool(u.origin, { connections: conc, pipelining: 1 });
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const post = (headers, body) =>
    pool.request({ path: u.pathname, method: 'POST', headers, body: JSON.stringify(body) });
  const gets = [];
  const workers = await Promise.all(
    Array.from({ length: conc }, async () => {
      const init = await post(base, {
        jsonrpc: '2.0',
        id: nextId++,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'bench', version: '1' },
        },
      });
      await init.body.text();
      const session = init.headers['mcp-session-id'];
      const headers = { ...base, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
      await (await post(headers, { jsonrpc: '2.0', method: 'notifications/initialized' })).body.text();
      // The peer sends the GET stream's headers with its first event only: not awaited here.
      const waiting = new Map();
      let buf = '';
      const onData = (d) => {
        buf += d;
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          if (data) {
            const msg = JSON.parse(data);
            waiting.get(msg.id)?.(data);
            waiting.delete(msg.id);
          }
          i = buf.indexOf('\n\n');
        }
      };
      gets.push(
        streams
          .request({
            path: u.pathname,
            method: 'GET',
            headers: {
              accept: 'text/event-stream',
              'mcp-session-id': session,
              'mcp-protocol-version': '2025-11-25',
            },
          })
          .then((get) => {
            get.body.setEncoding('utf8');
            get.body.on('data', onData);
            get.body.on('error', () => {});
            return get;
          }),
      );
      // A result sent before the peer has registered the GET stream is lost (it says so in its
      // log): the first call of a session is repeated until one is answered.
      let streaming = false;
      const call = async () => {
        const id = nextId++;
        let timer;
        const answered = new Promise((resolve, reject) => {
          waiting.set(id, resolve);
          timer = setTimeout(
            () => reject(new Error(`no answer to ${id} on the peer's GET stream`)),
            streaming ? 60_000 : 5_000,
          );
        });
        // The peer names its tools after method and path.
        const r = await post(headers, {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'search-products', arguments: ARGS },
        });
        await r.body.text();
        const text = await answered.finally(() => clearTimeout(timer));
        if (r.statusCode !== 202 || !okResult(text))
          throw new Error(`bad peer answer ${r.statusCode}: ${text.slice(0, 200)}`);
        streaming = true;
      };
      return async () => {
        for (let tries = 0; !streaming && tries < 10; tries++) {
          try {
            return await call();
          } catch {
            // not streaming yet
          }
        }
        return call();
      };
    }),
  );
  return {
    workers,
    close: async () => {
      for (const g of gets)
        void g.then(
          (x) => x.body.destroy(),
          () => {},
        );
      await Promise.all([pool.destroy(), streams.destroy()]);
    },
  };
}

/** Warms up, then runs every worker flat out for SECONDS: calls/s and the server's CPU per call. */
async function measure(server, conc) {
  const driver = await server.driver(server.url, conc);
  const warm = Math.max(100, conc * 5);
  await Promise.all(
    driver.workers.map(async (w) => {
      for (let i = 0; i < warm / conc; i++) await w();
    }),
  );
  let n = 0;
  server.loadFrom ??= performance.now();
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    driver.workers.map(async (w) => {
      while (performance.now() < end) {
        await w();
        n++;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(server.pid) - cpu0;
  await driver.close();
  return { rps: n / wall, cpuUsPerCall: (cpu / n) * 1e6, calls: n, cpuSeconds: cpu, wall };
}

// The default rate limits (120 calls a minute per caller and tool) would stop a benchmark: raise them.
// Per run, so that two runs at once (other checkouts) do not share an audit file (its lock) or a policy.
const WORK = mkdtempSync(join(tmpdir(), 'warden-bench-http-'));
const BENCH_POLICY = join(WORK, 'policy.yaml');
writeFileSync(
  BENCH_POLICY,
  'version: 1\nrateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }\ndefaults: { concurrency: 1000 }\n',
);

const warden = (dir, audit, name) => (up, port) => [
  `${dir}/dist/cli/main.js`,
  [
    'serve',
    '--port',
    String(port),
    '--spec',
    SPEC,
    '--base-url',
    up,
    '--audit-file',
    audit,
    '--policy',
    BENCH_POLICY,
    '--log-level',
    'warn',
  ],
  /MCP endpoint/,
  { MCP_WARDEN_CRED_SHOPKEY: KEY },
  modernDriver,
  PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(PROFILE, name)] : [],
];
const SERVERS = {
  'mcp-warden': warden(root.replace(/\/$/, ''), join(WORK, 'audit.jsonl'), 'after'),
  ...(BEFORE ? { 'mcp-warden (before)': warden(BEFORE, join(WORK, 'audit-before.jsonl'), 'before') } : {}),
  floor: (up, port) => [
    `${root}bench/floor-server.mjs`,
    ['http', up, KEY, String(port)],
    /listening/,
    {},
    modernDriver,
  ],
  peer: (up, port) => [
    `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`,
    [
      '--transport',
      'http',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--path',
      '/mcp',
      '--api-base-url',
      up,
      '--openapi-spec',
      SPEC,
      '--headers',
      `X-Shop-Key:${KEY}`,
    ],
    /listening|running|started|http/i,
    {},
    peerDriver,
  ],
};

async function main() {
  const upPort = 5400 + Math.floor(Math.random() * 400);
  await start(`${root}examples/shop/server.mjs`, [String(upPort)], /shop API at/, { SHOP_KEY: KEY });
  const up = `http://127.0.0.1:${upPort}/v1`;
  const servers = [];
  let port = upPort + 1000;
  for (const [name, make] of Object.entries(SERVERS)) {
    if (ONLY && !ONLY.includes(name)) continue;
    port++;
    const [cmd, argv, ready, env, driver, nodeArgs] = make(up, port);
    const spawnedAt = performance.now();
    const child = await start(cmd, argv, ready, env, nodeArgs);
    servers.push({ name, child, pid: child.pid, url: `http://127.0.0.1:${port}/mcp`, driver, spawnedAt });
  }
  await new Promise((r) => setTimeout(r, 500));
  const runs = {};
  for (let round = 0; round < ROUNDS; round++)
    for (const conc of LEVELS)
      for (const s of servers) {
        const r = await measure(s, conc);
        runs[s.name] ??= {};
        runs[s.name][conc] ??= [];
        runs[s.name][conc].push(r);
        console.error(
          `round ${round + 1} ${s.name} c=${conc}: ${r.rps.toFixed(0)} calls/s, ${r.cpuUsPerCall.toFixed(0)} µs CPU/call`,
        );
      }

  // Per level: the best round's calls/s and the lowest CPU per call across rounds (noise only adds).
  const summary = {};
  for (const s of servers) {
    const levels = {};
    for (const conc of LEVELS) {
      const rs = runs[s.name][conc];
      levels[conc] = {
        rps: Math.max(...rs.map((r) => r.rps)),
        cpuUsPerCall: Math.min(...rs.map((r) => r.cpuUsPerCall)),
      };
    }
    const best = LEVELS.reduce((a, b) => (levels[b].rps > levels[a].rps ? b : a));
    summary[s.name] = { levels, best, rps: levels[best].rps, cpuUsPerCall: levels[best].cpuUsPerCall };
  }

  const machine = `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
  console.log(`# ${machine}; ${SECONDS} s per level, ${ROUNDS} rounds interleaved; best round per level`);
  console.log(
    `| server | ${LEVELS.map((c) => `c=${c} calls/s`).join(' | ')} | best calls/s | CPU µs/call (at best) | ${LEVELS.map((c) => `c=${c} µs`).join(' | ')} |`,
  );
  console.log(`|---|${LEVELS.map(() => '---:').join('|')}|---:|---:|${LEVELS.map(() => '---:').join('|')}|`);
  for (const [name, s] of Object.entries(summary))
    console.log(
      `| ${name} | ${LEVELS.map((c) => Math.round(s.levels[c].rps)).join(' | ')} | ${Math.round(s.rps)} (c=${s.best}) | ${Math.round(s.cpuUsPerCall)} | ${LEVELS.map((c) => Math.round(s.levels[c].cpuUsPerCall)).join(' | ')} |`,
    );
  const w = summary['mcp-warden'];
  if (w)
    for (const other of Object.keys(summary).filter((n) => n !== 'mcp-warden'))
      console.log(
        `mcp-warden / ${other}: calls/s ×${(w.rps / summary[other].rps).toFixed(2)}, CPU per call ×${(w.cpuUsPerCall / summary[other].cpuUsPerCall).toFixed(2)}`,
      );
  mkdirSync(`${root}bench/results`, { recursive: true });
  const file = `${root}bench/results/http-throughput-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ machine, seconds: SECONDS, levels: LEVELS, rounds: ROUNDS, runs, summary }, null, 2),
  );
  console.log(`raw numbers: ${file}`);
  // A profile is written when the process exits on its own (mcp-warden ends cleanly on SIGTERM).
  if (PROFILE)
    await Promise.all(
      servers.map((s) => {
        const exited = new Promise((r) => s.child.once('exit', r));
        s.child.kill('SIGTERM');
        return exited.then(() => trimProfile(s));
      }),
    );
}

/**
 * The profile of the measured windows only: samples before the first measured call (start-up, spec
 * loading, warm-up) are dropped, into `<name>.window.cpuprofile` beside the whole profile.
 */
function trimProfile(s) {
  const dir = join(PROFILE, s.name === 'mcp-warden' ? 'after' : 'before');
  const file = existsSync(dir) && readdirSync(dir).find((f) => f.endsWith(`.${s.pid}.0.001.cpuprofile`));
  if (!file || s.loadFrom === undefined) return;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const skipUs = (s.loadFrom - s.spawnedAt) * 1000;
  let t = 0;
  let from = 0;
  while (from < profile.timeDeltas.length && t < skipUs) t += profile.timeDeltas[from++];
  profile.samples = profile.samples.slice(from);
  profile.timeDeltas = profile.timeDeltas.slice(from);
  profile.startTime += t;
  writeFileSync(
    join(PROFILE, `${s.name === 'mcp-warden' ? 'after' : 'before'}.window.cpuprofile`),
    JSON.stringify(profile),
  );
}

try {
  await main();
} finally {
  for (const c of children) c.kill();
}
process.exit(0);
