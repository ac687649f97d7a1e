// Several APIs behind one gateway (issue 20), two measures in one run:
//  (a) isolation: p50 of calls to two healthy APIs (the demo shop, the demo pet store) while a third
//      API (GitHub's spec) is idle, and while it hangs (never answers) under a crowd of callers;
//  (b) start-up: the three-API set (`serve --policy` with `apis:`) against the sum of the three
//      single-API start-ups (`serve --spec`), each until the MCP endpoint is announced.
//
//   npm run build && node bench/apis.mjs [calls=1000] [rounds=5] [hungCallers=32] [starts=5]

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startPetstore } from '../examples/petstore/server.mjs';
import { startShop } from '../examples/shop/server.mjs';

const CALLS = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 5);
const HUNG_CALLERS = Number(process.argv[4] ?? 32);
const STARTS = Number(process.argv[5] ?? 5);
const WARMUP = 200;
const HUNG_TIMEOUT_MS = 2000;
const root = new URL('..', import.meta.url).pathname;
const CLI = `${root}dist/cli/main.js`;
const SPECS = {
  shop: `${root}examples/shop/openapi.yaml`,
  pets: `${root}examples/petstore/openapi.yaml`,
  github: new URL('../../shared/specs/github-rest.json', import.meta.url).pathname,
};
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-apis-'));
const children = new Set();

// The upstreams live in this process: the measured client only waits on them, one call at a time.
const shop = await startShop({ key: 'bench-shop-key-0123456789' });
const pets = await startPetstore({ key: 'bench-pets-key-0123456789' });
/** GitHub's stand-in: answers `{}` at once, or (hung) holds every request open without a byte. */
const github = { hung: false, held: new Set() };
const githubServer = createServer((_req, res) => {
  if (github.hung) {
    github.held.add(res);
    res.on('close', () => github.held.delete(res));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
});
await new Promise((r) => githubServer.listen(0, '127.0.0.1', r));
const githubUrl = `http://127.0.0.1:${githubServer.address().port}`;

const ENV = {
  SHOP_KEY: shop.key,
  PETS_KEY: pets.key,
  MCP_WARDEN_CRED_SHOPKEY: shop.key,
  MCP_WARDEN_CRED_PETSKEY: pets.key,
};
// The default rate limits (120 calls a minute per caller and tool) would stop a benchmark: raise them.
const LIMITS =
  'rateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }\ndefaults: { concurrency: 1000 }\n';
const setPolicy = join(dir, 'gateway.yaml');
writeFileSync(
  setPolicy,
  `version: 1
${LIMITS}apis:
  shop:
    spec: ${SPECS.shop}
    baseUrl: ${shop.url}
    credentials: { shop: { scheme: shopKey, dev: env:SHOP_KEY } }
  pets:
    spec: ${SPECS.pets}
    baseUrl: ${pets.url}
    credentials: { pets: { scheme: petsKey, dev: env:PETS_KEY } }
  github:
    spec: ${SPECS.github}
    baseUrl: ${githubUrl}
    timeoutMs: ${HUNG_TIMEOUT_MS}
`,
);
const singlePolicy = join(dir, 'single.yaml');
writeFileSync(singlePolicy, `version: 1\n${LIMITS}`);

/** Starts `serve` with `args`; resolves with the child, its endpoint and ms until it announced it. */
function serve(args) {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--port',
      '0',
      '--log-level',
      'warn',
      '--audit-file',
      join(dir, `audit-${children.size}-${Date.now()}.jsonl`),
      ...args,
    ],
    { env: { ...process.env, ...ENV }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const url = /MCP endpoint (\S+)/.exec(err)?.[1];
      if (url) resolve({ child, url, ms: performance.now() - t0 });
    });
    child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err.slice(0, 800)}`)));
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

async function connect(url) {
  const c = new Client(
    { name: 'bench', version: '1' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// (a) Isolation.
const gw = await serve(['--policy', setPolicy]);
const client = await connect(gw.url);
const CALL = {
  shop: { name: 'shop_searchProducts', arguments: { q: 'mouse' } },
  pets: { name: 'pets_listPets', arguments: { species: 'cat' } },
};
async function call(api) {
  const r = await client.callTool(CALL[api]);
  if (r.isError) throw new Error(`${api}: ${JSON.stringify(r.content).slice(0, 300)}`);
}
/** CALLS sequential calls alternating shop and pets; per-API latencies in ms. */
async function measure() {
  const ms = { shop: [], pets: [] };
  for (let i = 0; i < CALLS; i++) {
    const api = i % 2 ? 'pets' : 'shop';
    const t0 = performance.now();
    await call(api);
    ms[api].push(performance.now() - t0);
  }
  return ms;
}
/** HUNG_CALLERS clients calling the hung API in a loop (each call ends at its timeout) until stopped. */
async function crowd() {
  const clients = await Promise.all(Array.from({ length: HUNG_CALLERS }, () => connect(gw.url)));
  let running = true;
  const counts = { timedOut: 0, fastFailed: 0 };
  const loops = clients.map(async (c) => {
    while (running) {
      const r = await c.callTool({ name: 'github_meta_root', arguments: {} }, undefined, { timeout: 60_000 });
      const text = JSON.stringify(r.content);
      if (text.includes('UPSTREAM_TIMEOUT')) counts.timedOut++;
      else {
        // Refused at once (the origin's breaker is open), or released at the end of the round: an
        // agent would not retry in a hot loop.
        counts.fastFailed++;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  });
  return async () => {
    running = false;
    github.hung = false;
    for (const res of github.held) res.destroy();
    await Promise.all(loops);
    await Promise.all(clients.map((c) => c.close()));
    return counts;
  };
}

for (let i = 0; i < WARMUP; i++) await call(i % 2 ? 'pets' : 'shop');
const rounds = { idle: [], hung: [] };
const hung = { timedOut: 0, fastFailed: 0, heldMax: 0 };
for (let r = 0; r < ROUNDS; r++) {
  rounds.idle.push(await measure());
  github.hung = true;
  const end = await crowd();
  // Let the crowd reach the hung API before measuring.
  await new Promise((res) => setTimeout(res, 500));
  hung.heldMax = Math.max(hung.heldMax, github.held.size);
  rounds.hung.push(await measure());
  const c = await end();
  hung.timedOut += c.timedOut;
  hung.fastFailed += c.fastFailed;
}
if (hung.heldMax === 0) throw new Error('no call reached the hung API');
await client.close();
await stop(gw.child);

const row = (phase, api) => {
  const p50 = median(rounds[phase].map((m) => pct(m[api], 50)));
  const p99 = median(rounds[phase].map((m) => pct(m[api], 99)));
  return { p50, p99 };
};
const isolation = {};
for (const api of ['shop', 'pets']) {
  const idle = row('idle', api);
  const hung = row('hung', api);
  isolation[api] = { idle, hung, ratio: hung.p50 / idle.p50 };
}

// (b) Start-up, interleaved: each single API, then the set; medians over STARTS.
const starts = { shop: [], pets: [], github: [], set: [] };
const single = {
  shop: ['--spec', SPECS.shop, '--base-url', shop.url, '--policy', singlePolicy],
  pets: ['--spec', SPECS.pets, '--base-url', pets.url, '--policy', singlePolicy],
  github: ['--spec', SPECS.github, '--base-url', githubUrl, '--policy', singlePolicy],
  set: ['--policy', setPolicy],
};
for (let i = 0; i < STARTS; i++)
  for (const [name, args] of Object.entries(single)) {
    const s = await serve(args);
    starts[name].push(s.ms);
    await stop(s.child);
  }
const startup = Object.fromEntries(Object.entries(starts).map(([k, v]) => [k, median(v)]));
const sum = startup.shop + startup.pets + startup.github;

const f = (x) => x.toFixed(3);
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log(
  `\n(a) ${ROUNDS} rounds × ${CALLS} sequential calls (shop and pets alternating), medians over rounds; hung: ${HUNG_CALLERS} callers on the hung API (timeout ${HUNG_TIMEOUT_MS} ms; in all ${hung.timedOut} calls timed out, up to ${hung.heldMax} held at once, ${hung.fastFailed} refused at once by the open breaker (each caller then pausing 100 ms) or released at the end of a round)\n`,
);
console.log('| API | third API idle: p50 ms | p99 ms | third API hung: p50 ms | p99 ms | hung / idle p50 |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [api, r] of Object.entries(isolation))
  console.log(
    `| ${api} | ${f(r.idle.p50)} | ${f(r.idle.p99)} | ${f(r.hung.p50)} | ${f(r.hung.p99)} | ${r.ratio.toFixed(3)} |`,
  );
console.log(`\n(b) start-up until the MCP endpoint is announced, median of ${STARTS}\n`);
console.log('| served | ms |');
console.log('|---|---:|');
for (const k of ['shop', 'pets', 'github']) console.log(`| ${k} alone (--spec) | ${startup[k].toFixed(0)} |`);
console.log(`| sum of the three | ${sum.toFixed(0)} |`);
console.log(`| **the set of three (--policy with apis:)** | ${startup.set.toFixed(0)} |`);
const okA = Object.values(isolation).every((r) => r.ratio <= 1.1);
const okB = startup.set <= sum;
console.log(
  `\ntargets: hung/idle p50 ≤ 1.10: ${okA ? 'met' : 'MISSED'}; set ≤ sum of singles: ${okB ? 'met' : 'MISSED'} (set / largest single: ${(startup.set / Math.max(startup.shop, startup.pets, startup.github)).toFixed(2)})`,
);

await Promise.all([shop.close(), pets.close(), new Promise((r) => githubServer.close(r))]);
githubServer.closeAllConnections();
for (const c of children) c.kill('SIGTERM');
