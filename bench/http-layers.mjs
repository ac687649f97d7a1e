// What one HTTP `tools/call` costs in each layer of the serving path, measured in one process as
// CPU time per call (process.cpuUsage: the client's share is the same in every row, so the
// differences between rows are the layers' costs). Rows are interleaved over several rounds and the
// median is reported, which keeps the noise of a shared machine out of the differences.
//
//   node bench/http-layers.mjs [calls=1500] [rounds=5]       (after `npm run build`)
//
// Rows:
//   node:http           a bare node:http server answering a fixed JSON-RPC result (HTTP itself + the client)
//   sdk handler         startHttp with the fast lane off: the transport steps, then the SDK's
//                       createMcpHandler through its web adapter, on a factory whose tool answers at once
//   fast lane           the same with the fast lane on (the default)
//   + mcp.ts factory    the fast lane with warden's own server factory (createServerFactory) and a
//                       pipeline stub that answers at once: what mcp.ts adds (served on the lane's
//                       one shared server, which createServerFactory offers)
//   mcp.ts factory, per-request lane   the same factory without its shared server: a server built,
//                       connected and closed per request on the lane (the lane before the shared server)
// The pipeline itself (guards, upstream call, audit) is not in these rows: bench/http-throughput.mjs
// measures the whole.
// BASE=<dir>: also the "+ mcp.ts factory" row of the build in <dir> (e.g. /tmp/base), same run.

import { createServer } from 'node:http';
import { Server } from '@modelcontextprotocol/server';
import { Client } from 'undici';
import { buildView } from '../dist/control/view.js';
import { Callers } from '../dist/server/callers.js';
import { startHttp } from '../dist/server/http.js';
import { createServerFactory } from '../dist/server/mcp.js';

const CALLS = Number(process.argv[2] ?? 1500);
const ROUNDS = Number(process.argv[3] ?? 5);
const MODERN = '2026-07-28';
const RESULT = { content: [{ type: 'text', text: '[{"sku":"MS-02","name":"Wireless mouse"}]' }] };
const frame = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'searchProducts',
    arguments: { q: 'mouse' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
});
const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': MODERN,
  'mcp-method': 'tools/call',
  'mcp-name': 'searchProducts',
};
const silent = { debug() {}, info() {}, warn() {}, error() {} };
/** Anonymous loopback callers, from this build's `Callers` or another build's. */
const callersWith = (CallersClass) => (url) =>
  new CallersClass({
    callers: undefined,
    environment: 'dev',
    resource: url,
    loopback: true,
    scopesInUse: () => [],
    warn: () => {},
  });
const callers = callersWith(Callers);

/** A bare SDK server with the one tool, listing the modern revision for modern requests (as mcp.ts does). */
const bareFactory = (ctx) => {
  const server = new Server(
    { name: 'bench', version: '1' },
    {
      capabilities: { tools: {} },
      ...(ctx.era === 'modern' ? { supportedProtocolVersions: ['2025-11-25', MODERN] } : {}),
    },
  );
  server.setRequestHandler('tools/call', async () => RESULT);
  return server;
};

/** warden's factory over a one-tool catalogue, with a pipeline that answers at once. */
function wardenFactory() {
  const tool = {
    name: 'searchProducts',
    listed: { name: 'searchProducts', inputSchema: { type: 'object' } },
  };
  const view = buildView([], new Map(), { kill: 'none', toggles: new Map() }, 1);
  return createServerFactory({
    catalog: { title: 'Bench', tools: [tool] },
    view: () => view,
    inBandElicitation: false,
    pipeline: { call: async () => RESULT },
  });
}

/** The factory alone, without the shared server it offers (`modernShared`). */
function perRequestOnly(factory) {
  return (ctx) => factory(ctx);
}

async function bareHttp() {
  const body = JSON.stringify({ result: RESULT, jsonrpc: '2.0', id: 1 });
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => server.close() };
}

/** The "+ mcp.ts factory" row of another build (its own dist: factory, callers, startHttp). */
async function baseEndpoint(dir) {
  const view = (await import(`${dir}/dist/control/view.js`)).buildView;
  const { Callers: BaseCallers } = await import(`${dir}/dist/server/callers.js`);
  const { startHttp: baseStart } = await import(`${dir}/dist/server/http.js`);
  const { createServerFactory: baseFactory } = await import(`${dir}/dist/server/mcp.js`);
  const tool = {
    name: 'searchProducts',
    listed: { name: 'searchProducts', inputSchema: { type: 'object' } },
  };
  const v = view([], new Map(), { kill: 'none', toggles: new Map() }, 1);
  const factory = baseFactory({
    catalog: { title: 'Bench', tools: [tool] },
    view: () => v,
    inBandElicitation: false,
    pipeline: { call: async () => RESULT },
  });
  return baseStart({ factory, logger: silent, callers: callersWith(BaseCallers), port: 0 });
}

const endpoint = (factory, fastLane) => startHttp({ factory, logger: silent, callers, port: 0, fastLane });

async function perCall(url) {
  const u = new URL(url);
  const client = new Client(u.origin, { pipelining: 1 });
  const once = async () => {
    const r = await client.request({ path: u.pathname, method: 'POST', headers, body: frame });
    const text = await r.body.text();
    if (r.statusCode !== 200 || !text.includes('Wireless mouse'))
      throw new Error(`${r.statusCode} ${text.slice(0, 200)}`);
  };
  for (let i = 0; i < 200; i++) await once();
  const c0 = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await once();
  const c = process.cpuUsage(c0);
  await client.close();
  return (c.user + c.system) / CALLS;
}

const rows = {
  'node:http': await bareHttp(),
  'sdk handler': await endpoint(bareFactory, false),
  'fast lane': await endpoint(bareFactory, true),
  '+ mcp.ts factory': await endpoint(wardenFactory(), true),
  'mcp.ts factory, per-request lane': await endpoint(perRequestOnly(wardenFactory()), true),
  'mcp.ts factory, sdk handler': await endpoint(wardenFactory(), false),
};
if (process.env.BASE) rows['+ mcp.ts factory (base)'] = await baseEndpoint(process.env.BASE);
// ROWS=name,name: only these rows (e.g. to profile one with --cpu-prof).
if (process.env.ROWS) {
  const keep = process.env.ROWS.split(',');
  for (const k of Object.keys(rows)) if (!keep.includes(k)) delete rows[k];
}
const samples = Object.fromEntries(Object.keys(rows).map((k) => [k, []]));
const names = Object.keys(rows);
// Rotated order per round: no row always runs right after another one.
for (let round = 0; round < ROUNDS; round++)
  for (const name of names.map((_, i) => names[(i + round) % names.length]))
    samples[name].push(await perCall(rows[name].url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = samples['node:http'] ? median(samples['node:http']) : 0;
console.log(
  `# node ${process.version}; ${CALLS} sequential calls × ${ROUNDS} rounds, median CPU µs per call (client + server, one process)`,
);
console.log('| row | CPU µs/call | over node:http |');
console.log('|---|---:|---:|');
for (const name of Object.keys(rows)) {
  const m = median(samples[name]);
  console.log(`| ${name} | ${m.toFixed(0)} | ${(m - floor).toFixed(0)} |`);
}
for (const ep of Object.values(rows)) await ep.close();
process.exit(0);
