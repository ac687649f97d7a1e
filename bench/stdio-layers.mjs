// What one stdio `tools/call` costs in the serving layer (issue 22, target 3), measured in one
// process as CPU time per call (process.cpuUsage: the client's share — writing the request line,
// reading the answer line — is the same in every row, so the differences between rows are the
// layers'). The SDK's `serveStdio` runs over in-memory streams; every tool answers at once, so no
// upstream, pipeline or audit is in these rows (bench/stdio-latency.mjs measures the whole, and
// bench/pipeline-call.mjs the pipeline). Rows are interleaved over rounds; the median is reported.
//
//   node bench/stdio-layers.mjs [calls=3000] [rounds=5]       (after `npm run build`)
//
// Rows:
//   floor            serveStdio with the SDK's stdio transport and an McpServer with one zod-typed
//                    tool: the serving path of bench/floor-server.mjs
//   floor + capped   the same McpServer behind warden's framing (CappedStdioTransport: size and
//                    depth caps per frame)
//   mcp-warden       warden's framing and server factory (createServerFactory, the stdio principal)
//                    with a pipeline stub that answers at once: warden's serving layer
// BASE=<dir>: also the mcp-warden row of the build in <dir> (e.g. /tmp/base), same run.

import { PassThrough } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/server';
import { StdioServerTransport, serveStdio } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';

const CALLS = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 5);
const MODERN = '2026-07-28';
const RESULT = { content: [{ type: 'text', text: '[{"sku":"MS-02","name":"Wireless mouse"}]' }] };
const META = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

const floorFactory = () => {
  const server = new McpServer({ name: 'floor', version: '1' });
  server.registerTool('searchProducts', { inputSchema: z.object({ q: z.string() }) }, async () => RESULT);
  return server;
};

/** warden's factory and framing from the build in `dist`, over a one-tool catalogue. */
async function warden(dist) {
  const { buildView } = await import(`${dist}/control/view.js`);
  const { createServerFactory } = await import(`${dist}/server/mcp.js`);
  const { CappedStdioTransport } = await import(`${dist}/server/stdio-frames.js`);
  const tool = {
    name: 'searchProducts',
    listed: { name: 'searchProducts', inputSchema: { type: 'object' } },
  };
  const view = buildView([], new Map(), { kill: 'none', toggles: new Map() }, 1);
  const factory = createServerFactory({
    catalog: { title: 'Bench', tools: [tool] },
    view: () => view,
    inBandElicitation: true,
    stdioPrincipal: { id: 'stdio:local', scopes: ['read'], via: 'stdio' },
    pipeline: { call: async () => RESULT },
  });
  return { factory, Capped: CappedStdioTransport };
}

/** One connection: a call writes a request line and resolves with the answer line. */
async function connect(factory, transportOf) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  serveStdio(factory, { transport: transportOf(stdin, stdout) });
  let buffered = '';
  let waiting;
  stdout.on('data', (d) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const w = waiting;
      waiting = undefined;
      w?.(line);
    }
  });
  let id = 0;
  const call = () =>
    new Promise((resolve) => {
      waiting = resolve;
      const params = { name: 'searchProducts', arguments: { q: 'mouse' }, _meta: META };
      stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params })}\n`);
    });
  const first = await call();
  if (!first.includes('Wireless mouse')) throw new Error(first.slice(0, 300));
  return call;
}

const root = new URL('..', import.meta.url).pathname;
const self = await warden(`${root}dist`);
const rows = {
  floor: await connect(floorFactory, (i, o) => new StdioServerTransport(i, o)),
  'floor + capped': await connect(floorFactory, (i, o) => new self.Capped({ stdin: i, stdout: o })),
  'mcp-warden': await connect(self.factory, (i, o) => new self.Capped({ stdin: i, stdout: o })),
};
if (process.env.BASE) {
  const base = await warden(`${process.env.BASE}/dist`);
  rows['mcp-warden (base)'] = await connect(base.factory, (i, o) => new base.Capped({ stdin: i, stdout: o }));
}
for (const call of Object.values(rows)) for (let i = 0; i < 500; i++) await call();
const samples = Object.fromEntries(Object.keys(rows).map((k) => [k, []]));
const names = Object.keys(rows);
for (let round = 0; round < ROUNDS; round++)
  for (const name of names.map((_, i) => names[(i + round) % names.length])) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) await rows[name]();
    const c = process.cpuUsage(c0);
    samples[name].push((c.user + c.system) / CALLS);
  }
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = median(samples.floor);
console.log(
  `# node ${process.version}; ${CALLS} sequential calls × ${ROUNDS} rounds, median CPU µs per call (client + server, one process)`,
);
console.log('| row | CPU µs/call | over floor |');
console.log('|---|---:|---:|');
for (const name of names) {
  const m = median(samples[name]);
  console.log(`| ${name} | ${m.toFixed(1)} | ${(m - floor).toFixed(1)} |`);
}
process.exit(0);
