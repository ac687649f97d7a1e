// Added latency per tools/call, and calls/s, for mcp-warden against the floor (a bare SDK server
// with one forwarding tool) and a peer (@ivotoby/openapi-mcp-server), over stdio and HTTP, in one
// run, against the same upstream (the demo shop in its own process).
//
//   node bench/serve.mjs [calls=2000] [seconds=5] [concurrency=16]

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Pool } from 'undici';

const CALLS = Number(process.argv[2] ?? 2000);
const SECONDS = Number(process.argv[3] ?? 5);
const CONC = Number(process.argv[4] ?? 16);
const WARMUP = 300;
const KEY = 'bench-shop-key-0123456789';
const root = new URL('..', import.meta.url).pathname;
const SPEC = `${root}examples/shop/openapi.yaml`;
const ARGS = { q: 'mouse' };
const children = [];

function start(cmd, args, readyPattern, env = {}) {
  const child = spawn(process.execPath, [cmd, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (readyPattern.test(err)) resolve(child);
    });
    child.on('exit', (c) => reject(new Error(`${cmd} exited ${c}: ${err.slice(0, 500)}`)));
  });
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: pct(s, 50), p99: pct(s, 99) };
}

async function timeSequential(fn) {
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return stats(ms);
}

/** Raw HTTP load: CONC workers posting prepared JSON-RPC frames for SECONDS. */
async function throughput(url, headers, body, check) {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: CONC, pipelining: 1 });
  const post = async () => {
    const r = await pool.request({ path: u.pathname, method: 'POST', headers, body });
    const text = await r.body.text();
    if (r.statusCode !== 200 || !check(text))
      throw new Error(`bad answer ${r.statusCode}: ${text.slice(0, 200)}`);
  };
  for (let i = 0; i < 200; i++) await post();
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (performance.now() < end) {
        await post();
        n++;
      }
    }),
  );
  await pool.close();
  return n / SECONDS;
}

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

/** CONC SDK clients (each with its own connection or session) calling in a loop for SECONDS. */
async function throughputSdk(url, era) {
  const clients = await Promise.all(
    Array.from({ length: CONC }, () => sdkClient(new StreamableHTTPClientTransport(new URL(url)), era)),
  );
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async ({ call }) => {
      while (performance.now() < end) {
        await call();
        n++;
      }
    }),
  );
  await Promise.all(clients.map(({ c }) => c.close()));
  return n / SECONDS;
}

const okResult = (t) =>
  t.includes('"result"') && t.includes('Wireless mouse') && !t.includes('"isError":true');

async function sdkClient(transport, mode) {
  const c = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode } });
  await c.connect(transport);
  const tools = (await c.listTools()).tools;
  const tool = tools.find((t) => /search/i.test(t.name))?.name;
  if (!tool) throw new Error(`no search tool in ${tools.map((t) => t.name)}`);
  const call = async () => {
    const r = await c.callTool({ name: tool, arguments: ARGS });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
  };
  return { c, tool, call };
}

// The default rate limits (120 calls a minute per caller and tool) would stop a benchmark: raise them.
// Per run, so that two runs at once (other checkouts) do not share an audit file (its lock) or a policy.
const WORK = mkdtempSync(join(tmpdir(), 'warden-bench-serve-'));
const BENCH_POLICY = join(WORK, 'policy.yaml');
writeFileSync(
  BENCH_POLICY,
  'version: 1\nrateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }\ndefaults: { concurrency: 1000 }\n',
);

const servers = (up) => ({
  floor: {
    era: { pin: '2026-07-28' },
    stdio: [`${root}bench/floor-server.mjs`, ['stdio', up, KEY]],
    http: (port) => [`${root}bench/floor-server.mjs`, ['http', up, KEY, String(port)], /listening/],
  },
  'mcp-warden': {
    era: { pin: '2026-07-28' },
    env: { MCP_WARDEN_CRED_SHOPKEY: KEY },
    stdio: [
      `${root}dist/cli/main.js`,
      [
        'serve',
        '--stdio',
        '--spec',
        SPEC,
        '--base-url',
        up,
        '--audit-file',
        join(WORK, 'audit.jsonl'),
        '--policy',
        BENCH_POLICY,
        '--log-level',
        'warn',
      ],
    ],
    http: (port) => [
      `${root}dist/cli/main.js`,
      [
        'serve',
        '--port',
        String(port),
        '--spec',
        SPEC,
        '--base-url',
        up,
        '--audit-file',
        join(WORK, 'audit.jsonl'),
        '--policy',
        BENCH_POLICY,
        '--log-level',
        'warn',
      ],
      /MCP endpoint/,
    ],
  },
  '@ivotoby/openapi-mcp-server': {
    era: 'legacy',
    stdio: [
      `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`,
      [
        '--transport',
        'stdio',
        '--api-base-url',
        up,
        '--openapi-spec',
        SPEC,
        '--headers',
        `X-Shop-Key:${KEY}`,
      ],
    ],
    http: (port) => [
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
    ],
  },
});

async function main() {
  const upPort = 4900 + Math.floor(Math.random() * 500);
  await start(`${root}examples/shop/server.mjs`, [String(upPort)], /shop API at/, { SHOP_KEY: KEY });
  const up = `http://127.0.0.1:${upPort}/v1`;

  const direct = new Pool(`http://127.0.0.1:${upPort}`, { connections: CONC });
  const directCall = async () => {
    const r = await direct.request({
      path: '/v1/products/search?q=mouse',
      method: 'GET',
      headers: { 'x-shop-key': KEY },
    });
    await r.body.text();
  };
  const d = await timeSequential(directCall);
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (performance.now() < end) {
        await directCall();
        n++;
      }
    }),
  );
  const rows = [
    {
      server: 'direct upstream',
      transport: 'http',
      p50: d.p50,
      p99: d.p99,
      added50: 0,
      added99: 0,
      rps: n / SECONDS,
    },
  ];
  console.error(`direct: p50 ${d.p50.toFixed(3)} ms`);
  await direct.close();

  let port = upPort + 1000;
  for (const [name, s] of Object.entries(servers(up))) {
    // stdio
    {
      const [cmd, args] = s.stdio;
      const t = new StdioClientTransport({
        command: process.execPath,
        args: [cmd, ...args],
        env: { ...process.env, ...(s.env ?? {}) },
        stderr: 'ignore',
      });
      const { c, call } = await sdkClient(t, s.era);
      const r = await timeSequential(call);
      rows.push({ server: name, transport: 'stdio', ...r, added50: r.p50 - d.p50, added99: r.p99 - d.p99 });
      console.error(`${name} stdio: p50 ${r.p50.toFixed(3)} ms`);
      await c.close();
    }
    // HTTP
    {
      port++;
      const [cmd, args, ready] = s.http(port);
      const child = await start(cmd, args, ready, s.env ?? {});
      await new Promise((r) => setTimeout(r, 300));
      const url = `http://127.0.0.1:${port}/mcp`;
      const { c, call } = await sdkClient(new StreamableHTTPClientTransport(new URL(url)), s.era);
      const r = await timeSequential(call);
      await c.close();
      // The peer answers 2025-era calls with 202 and sends results on a GET SSE stream, which a
      // raw frame generator cannot read; it is measured with concurrent SDK clients only.
      const rps =
        s.era === 'legacy' ? undefined : await throughput(url, modernHeaders, modernFrame, okResult);
      const sdkRps = await throughputSdk(url, s.era);
      rows.push({
        server: name,
        transport: 'http',
        ...r,
        added50: r.p50 - d.p50,
        added99: r.p99 - d.p99,
        rps,
        sdkRps,
      });
      child.kill();
    }
  }

  const f = (x) => (x === undefined ? '' : x.toFixed(3));
  console.log(
    `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  );
  console.log(
    `# ${CALLS} sequential calls after ${WARMUP} warm-up (SDK client), then ${SECONDS} s at concurrency ${CONC} (raw HTTP)`,
  );
  console.log(
    '| server | transport | p50 ms | p99 ms | added p50 ms | added p99 ms | calls/s (raw HTTP) | calls/s (SDK clients) |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.server} | ${r.transport} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.added50)} | ${f(r.added99)} | ${r.rps ? Math.round(r.rps) : ''} | ${r.sdkRps ? Math.round(r.sdkRps) : ''} |`,
    );
}

try {
  await main();
} finally {
  for (const c of children) c.kill();
}
process.exit(0);
