// Memory under many clients (issue 22, target 5): 200 concurrent HTTP MCP clients, each calling once a
// second, for 10 minutes; the gateway's RSS sampled every 5 s. mcp-warden, the bare floor
// (bench/floor-server.mjs) and the peer (@ivotoby/openapi-mcp-server) get the same load.
//
//   node bench/clients.mjs [minutes=10] [clients=200] [--sequential] [--only warden,floor,peer]
//                          [--base <dir>] [--out bench/results] [--warden-node '<node options>']
//
// The clients are real SDK clients (@modelcontextprotocol/client), each with its own connection
// state, as 200 agents would be: half speak 2026-07-28 (stateless), half 2025-11-25 (the SDK opens
// its standalone GET stream, which the gateway holds open for list-change notices). Each mcp-warden
// client authenticates with its own API key (200 principals: per-caller state is part of what is
// measured); the floor and the peer have no authentication and ignore the header. The peer speaks
// only 2025-11-25, so all its clients do. The upstream is the demo shop (its own process); the tool
// is `searchProducts` (a small JSON array). By default the three servers run at the same time (the
// load is 200 calls/s each, far below what any of them serves; RSS does not depend on the neighbours);
// `--sequential` runs them one after the other. `--base <dir>` adds mcp-warden from another build.
//
// Output: a Markdown table and a text chart of RSS on stdout; the samples as JSON and an SVG plot
// in `--out` (default bench/results/, which git ignores).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { takeFlag, takeSwitch } from './lib/args.mjs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const flag = (name) => takeFlag(args, name);
const SEQUENTIAL = takeSwitch(args, '--sequential');
const ONLY = flag('--only')?.split(',');
const BASE = flag('--base');
// Node options for the mcp-warden of this build only, not `--base` (e.g. '--trace-gc', or a V8 flag
// to compare against the same build as base: `--base . --warden-node '--max-semi-space-size=8'`).
const WARDEN_NODE = flag('--warden-node')?.split(' ').filter(Boolean) ?? [];
const OUT = flag('--out') ?? `${root}bench/results`;
const MINUTES = Number(args[0] ?? 10);
const CLIENTS = Number(args[1] ?? 200);
const SAMPLE_MS = 5000;
const KEY = 'bench-shop-key-0123456789';
const children = [];
const dir = `/tmp/warden-bench-clients-${process.pid}`;
mkdirSync(dir, { recursive: true });

function start(cmd, argv, ready, env = {}, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, cmd, ...argv], {
    env: { ...process.env, ...env },
    // With node options (--trace-gc writes to stdout), stdout is kept in the run's directory.
    stdio: [
      'ignore',
      nodeArgs.length ? openSync(`${dir}/${process.hrtime.bigint()}.stdout`, 'w') : 'ignore',
      'pipe',
    ],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      if (err.length < 20_000) err += d;
      if (ready.test(err)) resolve(child);
    });
    child.on('exit', (c) => reject(new Error(`${cmd} exited ${c}: ${err.slice(0, 800)}`)));
  });
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}
/** The V8 heap (used and total, MiB) from mcp-warden's Prometheus metrics on its admin port. */
async function heapMiB(adminPort) {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const get = (name) => Number(new RegExp(`^mcp_warden_${name} (\\S+)`, 'm').exec(text)?.[1]) / 2 ** 20;
  return { heapUsed: get('nodejs_heap_size_used_bytes'), heapTotal: get('nodejs_heap_size_total_bytes') };
}
function cpuSeconds(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

// 200 callers, each with its own API key (stored as SHA-256 hashes, as `mcp-warden keys create` does).
const keys = Array.from({ length: CLIENTS }, (_, i) => {
  const key = `mwk_${randomBytes(32).toString('base64url')}`;
  return { id: `bench-${i}`, key, hash: `sha256:${createHash('sha256').update(key).digest('hex')}` };
});
const POLICY = `${dir}/policy.yaml`;
writeFileSync(
  POLICY,
  [
    'version: 1',
    'rateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }',
    'defaults: { concurrency: 1000 }',
    // The admin port serves /metrics: the V8 heap in use, sampled beside RSS (a leak grows both).
    'admin: { token: env:MCP_WARDEN_BENCH_ADMIN, metricsPublic: true }',
    'callers:',
    '  apiKeys:',
    ...keys.map((k) => `    - { id: ${k.id}, hash: "${k.hash}", scopes: [mcp, tools:read] }`),
    '',
  ].join('\n'),
);

const SPEC = `${root}examples/shop/openapi.yaml`;
const wardenServer = (label, dist) => ({
  label,
  kind: 'warden',
  eras: 'mixed',
  ready: /MCP endpoint/,
  env: { MCP_WARDEN_CRED_SHOPKEY: KEY, MCP_WARDEN_BENCH_ADMIN: randomBytes(24).toString('hex') },
  admin: (port) => port + 100,
  argv: (up, port) => [
    `${dist}/dist/cli/main.js`,
    'serve',
    '--port',
    String(port),
    '--admin-port',
    String(port + 100),
    '--spec',
    SPEC,
    '--base-url',
    up,
    '--audit-file',
    `${dir}/${label.replace(/\W+/g, '_')}.jsonl`,
    '--policy',
    POLICY,
    '--log-level',
    'warn',
  ],
});
let SERVERS = [
  wardenServer('mcp-warden', root),
  ...(BASE ? [wardenServer('mcp-warden (base)', BASE)] : []),
  {
    label: 'floor (bare SDK)',
    kind: 'floor',
    eras: 'mixed',
    ready: /listening/,
    argv: (up, port) => [`${root}bench/floor-server.mjs`, 'http', up, KEY, String(port)],
  },
  {
    label: '@ivotoby/openapi-mcp-server',
    kind: 'peer',
    eras: 'legacy',
    ready: /listening|running|started|http/i,
    argv: (up, port) => [
      `${root}node_modules/@ivotoby/openapi-mcp-server/bin/mcp-server.js`,
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
  },
];
if (ONLY) SERVERS = SERVERS.filter((s) => ONLY.some((o) => s.kind === o || s.label === o));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connect(url, era, key) {
  const c = new Client({ name: 'bench-clients', version: '1' }, { versionNegotiation: { mode: era } });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await c.connect(transport);
  const tools = (await c.listTools()).tools;
  const tool = tools.find((t) => /search/i.test(t.name))?.name;
  if (!tool) throw new Error(`no search tool in ${tools.map((t) => t.name)}`);
  return { c, tool };
}

/** Runs one server under the load for `MINUTES`; returns its samples and call statistics. */
async function run(server, up, port) {
  const child = await start(
    server.argv(up, port)[0],
    server.argv(up, port).slice(1),
    server.ready,
    server.env,
    server.label === 'mcp-warden' ? WARDEN_NODE : [],
  );
  await sleep(500);
  const pid = child.pid;
  const url = `http://127.0.0.1:${port}/mcp`;
  const st = { calls: 0, errors: 0, firstError: undefined, ms: [], samples: [] };
  const t0 = performance.now();
  const sample = () => {
    const p = {
      s: Math.round((performance.now() - t0) / 1000),
      rss: rssMiB(pid),
      cpu: cpuSeconds(pid),
      calls: st.calls,
      errors: st.errors,
    };
    st.samples.push(p);
    if (server.admin)
      heapMiB(server.admin(port)).then(
        (h) => Object.assign(p, h),
        () => {},
      );
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  const end = t0 + MINUTES * 60_000;
  const clients = [];
  // Clients join over the first ~10 s (20 at a time), as agents would, not in one burst.
  for (let i = 0; i < CLIENTS; i += 20) {
    const batch = keys.slice(i, i + 20).map((k, j) => {
      const era = server.eras === 'legacy' || (i + j) % 2 === 1 ? 'legacy' : { pin: '2026-07-28' };
      return connect(url, era, k.key).catch((e) => {
        st.errors++;
        st.firstError ??= `connect: ${e.message}`;
      });
    });
    for (const c of await Promise.all(batch)) if (c) clients.push(c);
    await sleep(1000);
  }
  st.connected = clients.length;
  await Promise.all(
    clients.map(async ({ c, tool }) => {
      await sleep(Math.random() * 1000);
      while (performance.now() < end) {
        const tick = performance.now();
        try {
          const r = await c.callTool({ name: tool, arguments: { q: 'mouse' } });
          if (r.isError) throw new Error(JSON.stringify(r.content).slice(0, 200));
          st.calls++;
          if (st.ms.length < 2_000_000) st.ms.push(performance.now() - tick);
        } catch (e) {
          st.errors++;
          st.firstError ??= e.message;
        }
        await sleep(Math.max(0, 1000 - (performance.now() - tick)));
      }
    }),
  );
  sample();
  clearInterval(sampler);
  await Promise.all(clients.map(({ c }) => c.close().catch(() => {})));
  child.kill();
  return st;
}

/** Least-squares slope of RSS (MiB per minute) over the samples from `fromS` on. */
function slope(samples, fromS) {
  const xs = samples.filter((p) => p.s >= fromS);
  if (xs.length < 3) return Number.NaN;
  const mx = xs.reduce((a, p) => a + p.s, 0) / xs.length;
  const my = xs.reduce((a, p) => a + p.rss, 0) / xs.length;
  let num = 0;
  let den = 0;
  for (const p of xs) {
    num += (p.s - mx) * (p.rss - my);
    den += (p.s - mx) ** 2;
  }
  return (num / den) * 60;
}

function svg(results) {
  const W = 720;
  const H = 360;
  const L = 56;
  const B = 40;
  const maxS = Math.max(...results.flatMap((r) => r.st.samples.map((p) => p.s)), 1);
  const maxR = Math.max(260, ...results.flatMap((r) => r.st.samples.map((p) => p.rss)));
  const x = (s) => L + ((W - L - 16) * s) / maxS;
  const y = (r) => H - B - ((H - B - 16) * r) / maxR;
  const colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];
  const lines = results.map(
    (r, i) =>
      `<polyline fill="none" stroke="${colors[i % 4]}" stroke-width="2" points="${r.st.samples.map((p) => `${x(p.s).toFixed(1)},${y(p.rss).toFixed(1)}`).join(' ')}"/>` +
      `<text x="${L + 10}" y="${20 + 16 * i}" fill="${colors[i % 4]}" font-size="12">${r.label}</text>`,
  );
  const ticksY = [0, 50, 100, 150, 200, 250]
    .filter((v) => v <= maxR)
    .map(
      (v) =>
        `<line x1="${L}" x2="${W - 16}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v}</text>`,
    );
  const stepX = maxS > 300 ? 60 : 30;
  const ticksX = Array.from({ length: Math.floor(maxS / stepX) + 1 }, (_, i) => i * stepX).map(
    (s) => `<text x="${x(s)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${s / 60}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${ticksY.join('\n')}
${ticksX.join('\n')}
<line x1="${L}" x2="${W - 16}" y1="${y(250)}" y2="${y(250)}" stroke="#999" stroke-dasharray="4 3"/>
<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="12">minutes (${CLIENTS} clients, 1 call/s each)</text>
<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-size="12">RSS MiB</text>
${lines.join('\n')}
</svg>
`;
}

async function main() {
  const upPort = 20000 + Math.floor(Math.random() * 20000);
  await start(`${root}examples/shop/server.mjs`, [String(upPort)], /shop API at/, { SHOP_KEY: KEY });
  const up = `http://127.0.0.1:${upPort}/v1`;
  const results = [];
  const go = (s, i) => run(s, up, upPort + 1 + i).then((st) => results.push({ label: s.label, st }));
  if (SEQUENTIAL) for (const [i, s] of SERVERS.entries()) await go(s, i);
  else await Promise.all(SERVERS.map(go));
  results.sort(
    (a, b) => SERVERS.findIndex((s) => s.label === a.label) - SERVERS.findIndex((s) => s.label === b.label),
  );

  const pct = (a, p) => {
    const s = [...a].sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  };
  const f = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const heap = (samples) => {
    const h = samples.filter((p) => Number.isFinite(p.heapUsed));
    return h.length ? `${f(h.at(-1).heapUsed)} / ${f(Math.max(...h.map((p) => p.heapUsed)))}` : '';
  };
  console.log(
    `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${CLIENTS} SDK clients × 1 call/s for ${MINUTES} min, ${SEQUENTIAL ? 'servers one after the other' : 'the servers side by side'}; RSS every ${SAMPLE_MS / 1000} s`,
  );
  console.log(
    '| server | clients connected | calls | calls/s | errors | p50 ms | p99 ms | RSS idle MiB | RSS at 1 min | RSS max | RSS last | slope after 2 min (MiB/min) | heap used last / max MiB | CPU s |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { label, st } of results) {
    const at = (s) => st.samples.find((p) => p.s >= s)?.rss;
    const last = st.samples.at(-1);
    console.log(
      `| ${label} | ${st.connected} | ${st.calls} | ${f(st.calls / (MINUTES * 60))} | ${st.errors} | ${f(pct(st.ms, 0.5), 1)} | ${f(pct(st.ms, 0.99), 1)} | ${f(st.samples[0].rss)} | ${f(at(60))} | ${f(Math.max(...st.samples.map((p) => p.rss)))} | ${f(last.rss)} | ${f(slope(st.samples, 120), 2)} | ${heap(st.samples)} | ${f(last.cpu - st.samples[0].cpu, 1)} |`,
    );
    if (st.firstError) console.log(`  first error (${label}): ${st.firstError.slice(0, 300)}`);
  }
  // A compact text chart: RSS (MiB) per server, one row every 30 s.
  console.log(`\n| t | ${results.map((r) => r.label).join(' | ')} |`);
  console.log(`|---:|${results.map(() => '---:').join('|')}|`);
  const maxS = Math.max(...results.map((r) => r.st.samples.at(-1).s));
  for (let s = 0; s <= maxS; s += 30) {
    const cells = results.map((r) => {
      const p = r.st.samples.find((q) => q.s >= s);
      const h = Number.isFinite(p?.heapUsed) ? ` (heap ${f(p.heapUsed)})` : '';
      return p ? `${f(p.rss)}${h} ${'█'.repeat(Math.round(p.rss / 10))}` : '';
    });
    console.log(`| ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} | ${cells.join(' | ')} |`);
  }
  mkdirSync(OUT, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(
    `${OUT}/clients-${stamp}.json`,
    JSON.stringify(
      {
        minutes: MINUTES,
        clients: CLIENTS,
        sequential: SEQUENTIAL,
        results: results.map(({ label, st }) => ({
          label,
          connected: st.connected,
          calls: st.calls,
          errors: st.errors,
          firstError: st.firstError,
          samples: st.samples,
        })),
      },
      null,
      1,
    ),
  );
  writeFileSync(`${OUT}/clients-rss.svg`, svg(results));
  console.error(`samples: ${OUT}/clients-${stamp}.json, plot: ${OUT}/clients-rss.svg`);
}

try {
  await main();
} finally {
  for (const c of children) c.kill();
}
process.exit(0);
