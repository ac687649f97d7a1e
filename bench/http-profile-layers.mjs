// Splits a CPU profile of an mcp-warden HTTP server under load into the layers a `tools/call`
// crosses: each sample goes to the innermost frame that names a layer (so web objects built by
// the SDK count as web objects, and the upstream request made by the pipeline counts as pipeline).
//
//   node bench/http-profile-layers.mjs <a.cpuprofile> [<b.cpuprofile> …]
//
// Profiles come from `node bench/http-throughput.mjs … --profile <dir>` (the *.window.cpuprofile
// files hold only the measured load). One column per profile, shares of the non-idle time.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const LAYERS = [
  [
    'node:http and socket I/O',
    /^node:(_http_|net$|internal\/(stream_base_commons|streams\/|net|http|timers))/,
  ],
  [
    'pipeline, audit, observers, upstream call',
    /\/dist\/(pipeline|audit|protect|observe|upstream|control|state|catalog|policy)\/|node_modules\/(undici|cockatiel|rate-limiter-flexible|prom-client|pino)\//,
  ],
  ['MCP surface (server/mcp.ts)', /\/dist\/server\/mcp\.js/],
  [
    'transport steps + fast lane (server/http.ts, fast-lane.ts, callers.ts)',
    /\/dist\/(server\/(http|fast-lane|callers|list-changes)\.js|lib\/)/,
  ],
  [
    'web Request/Response/Headers/streams',
    /node:internal\/deps\/undici|node:internal\/webstreams|node:internal\/abort_controller|node:internal\/event_target/,
  ],
  ['SDK node adapter (@modelcontextprotocol/node)', /@modelcontextprotocol\/node/],
  ['SDK protocol + zod (@modelcontextprotocol/server)', /@modelcontextprotocol\/server|node_modules\/zod\//],
];
const OTHER = 'other (event loop, microtasks, JSON)';

function split(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map();
  const layerOf = (id) => {
    if (memo.has(id)) return memo.get(id);
    const n = byId.get(id);
    const fn = n.callFrame.functionName;
    let layer;
    if (fn === '(garbage collector)') layer = 'GC';
    else if (fn === '(idle)') layer = 'idle';
    else {
      const url = n.callFrame.url;
      const hit = url ? LAYERS.find(([, re]) => re.test(url)) : undefined;
      layer = hit ? hit[0] : parent.has(id) ? layerOf(parent.get(id)) : OTHER;
    }
    memo.set(id, layer);
    return layer;
  };
  const ms = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const l = layerOf(p.samples[i]);
    ms.set(l, (ms.get(l) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  return ms;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/http-profile-layers.mjs <profile>...');
  process.exit(2);
}
const splits = files.map(split);
const names = [...LAYERS.map(([n]) => n), OTHER, 'GC'];
console.log(`| layer | ${files.map((f) => basename(f)).join(' | ')} |`);
console.log(`|---|${files.map(() => '---:').join('|')}|`);
const busy = splits.map((m) => [...m].filter(([k]) => k !== 'idle').reduce((a, [, v]) => a + v, 0));
for (const name of names)
  console.log(
    `| ${name} | ${splits.map((m, i) => `${((100 * (m.get(name) ?? 0)) / busy[i]).toFixed(1)} %`).join(' | ')} |`,
  );
console.log(`| (busy ms sampled) | ${busy.map((b) => b.toFixed(0)).join(' | ')} |`);
