// Mixed load through Streamable HTTP, with a slow and a failing endpoint (issue 7).
// `node bench/load.mjs [seconds=600] [concurrency=16]` after `npm run build`. Starts an upstream
// (fast / slow / failing endpoints) and mcp-warden as its own process, drives raw 2026-07-28
// tools/call frames at a fixed concurrency, samples the gateway's RSS every 10 s, and at the end
// checks that every answered call has its audit record.
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { auditFiles } from '../dist/audit/read.js';

const SECONDS = Number(process.argv[2] ?? 600);
const CONC = Number(process.argv[3] ?? 16);
const root = new URL('..', import.meta.url).pathname;

const upstream = createServer((req, res) => {
  if (req.url?.startsWith('/slow'))
    return setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"slow":true}'),
      1500,
    );
  if (req.url?.startsWith('/fail'))
    return res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      items: Array.from({ length: 20 }, (_, i) => ({
        id: i,
        name: `item ${i}`,
        contact: `user${i}@example.org`,
      })),
    }),
  );
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upUrl = `http://127.0.0.1:${upstream.address().port}`;

const dir = mkdtempSync(join(tmpdir(), 'warden-load-'));
const op = (id) => ({
  get: { operationId: id, responses: { 200: { description: 'ok', content: { 'application/json': {} } } } },
});
writeFileSync(
  join(dir, 'spec.json'),
  JSON.stringify({
    openapi: '3.0.3',
    info: { title: 'Load', version: '1' },
    paths: { '/fast': op('fastThing'), '/slow': op('slowThing'), '/fail': op('failThing') },
  }),
);
writeFileSync(
  join(dir, 'warden.yaml'),
  [
    'version: 1',
    'rateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: 60 }, perPrincipal: { calls: 1000000, perSeconds: 60 } }',
    'originBreaker: false',
    'audit: { rotateMb: 100, retain: 100 }',
    'rules:',
    '  - match: { name: slowThing }',
    '    timeoutMs: 1000',
    '  - match: { name: failThing }',
    '    breaker: { failures: 20, halfOpenAfterSeconds: 5 }',
  ].join('\n'),
);
const audit = join(dir, 'audit.jsonl');
const gw = spawn(
  process.execPath,
  [
    `${root}dist/cli/main.js`,
    'serve',
    '--spec',
    join(dir, 'spec.json'),
    '--base-url',
    upUrl,
    '--policy',
    join(dir, 'warden.yaml'),
    '--port',
    '0',
    '--audit-file',
    audit,
    '--log-level',
    'warn',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const url = await new Promise((resolve, reject) => {
  let buf = '';
  gw.stderr.on('data', (d) => {
    buf += d;
    const m = /MCP endpoint (\S+)/.exec(buf);
    if (m) resolve(m[1]);
  });
  gw.once('exit', () => reject(new Error(`the gateway did not start:\n${buf}`)));
});

const frame = (name, id) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name,
      arguments: {},
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'load', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  });
const headers = (name) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': name,
});
const u = new URL(url);
const pool = new Pool(u.origin, { connections: CONC, pipelining: 1 });

const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const samples = [{ t: 0, rss: rss() }];
const lat = { fastThing: [], slowThing: [], failThing: [] };
let answered = 0;
let errors = 0;
let id = 0;
const t0 = performance.now();
const end = t0 + SECONDS * 1000;
const sampler = setInterval(
  () => samples.push({ t: Math.round((performance.now() - t0) / 1000), rss: rss() }),
  10_000,
);
await Promise.all(
  Array.from({ length: CONC }, async () => {
    while (performance.now() < end) {
      const r = Math.random();
      const name = r < 0.8 ? 'fastThing' : r < 0.9 ? 'slowThing' : 'failThing';
      const s = performance.now();
      try {
        const res = await pool.request({
          path: u.pathname,
          method: 'POST',
          headers: headers(name),
          body: frame(name, ++id),
        });
        const text = await res.body.text();
        if (res.statusCode === 200 && text.includes('"result"')) answered++;
        else errors++;
      } catch {
        errors++;
      }
      lat[name].push(performance.now() - s);
    }
  }),
);
clearInterval(sampler);
samples.push({ t: SECONDS, rss: rss() });
await pool.close();
gw.kill('SIGTERM');
await new Promise((r) => gw.once('exit', r));
upstream.close();

// Count call records across the audit's rotated files, streaming (ten minutes of audit is large).
let recorded = 0;
for (const f of auditFiles(audit)) {
  const rl = createInterface({ input: createReadStream(f), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) if (line.includes('"kind":"call"')) recorded++;
}
const q = (a, f) => (a.length ? a.sort((x, y) => x - y)[Math.floor(f * (a.length - 1))].toFixed(1) : '-');
console.log(
  `# node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${SECONDS} s at concurrency ${CONC}`,
);
console.log(
  `calls answered: ${answered} (${(answered / SECONDS).toFixed(0)}/s), transport errors: ${errors}, audit call records: ${recorded}, lost: ${Math.max(answered - recorded, 0)}`,
);
console.log('| tool | calls | p50 ms | p99 ms |');
console.log('|---|---:|---:|---:|');
for (const [k, v] of Object.entries(lat))
  console.log(`| ${k} | ${v.length} | ${q(v, 0.5)} | ${q(v, 0.99)} |`);
console.log(`RSS MiB over time (s:MiB): ${samples.map((s) => `${s.t}:${s.rss.toFixed(0)}`).join(' ')}`);
