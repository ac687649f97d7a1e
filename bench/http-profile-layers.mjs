// Splits a CPU profile of an mcp-warden HTTP server under load into the layers a `tools/call`
// crosses: each sample goes to the innermost frame that names a layer (so web objects built by
// the SDK count as web objects, and the upstream request made by the pipeline counts as pipeline).
//
//   node bench/http-profile-layers.mjs [--top N] <a.cpuprofile> [<b.cpuprofile> …]
//
// The CLI is bundled (scripts/bundle-cli.mjs): a frame's URL names the bundle (dist/cli/cli.bundle.cjs)
// that mixes layers, so every sample of warden's own code fell to "other". When the chunk has a
// source map beside it (`BUNDLE_SOURCEMAP=1 npm run build`: esbuild's external maps), each frame is placed
// by its original source instead; without one the split is only right for an unbundled build, and
// the table says so. --top N: also the N functions with the most self time, by original source.
//
// Profiles come from `node bench/http-throughput.mjs … --profile <dir>` (the *.window.cpuprofile
// files hold only the measured load). One column per profile, shares of the non-idle time.

import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { takeFlag } from './lib/args.mjs';

const args = process.argv.slice(2);
const TOP = Number(takeFlag(args, '--top') ?? 0);

// A chunk's source map, read once per file (`undefined`: none beside it).
const maps = new Map();
function mapOf(url) {
  if (!maps.has(url)) {
    let map;
    try {
      const file = url.startsWith('file:') ? fileURLToPath(url) : url;
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = undefined;
    }
    maps.set(url, map);
  }
  return maps.get(url);
}

/** The frame's original place: `/dist/<module>.js` for the project's sources (as tsc lays them out), the source path for a dependency. */
function placeOf(frame) {
  const { url } = frame;
  if (!/\/dist\/cli\/[^/]+\.c?js$/.test(url)) return url;
  const entry = mapOf(url)?.findEntry(frame.lineNumber, frame.columnNumber);
  const source = entry?.originalSource;
  if (!source) return undefined;
  // A dependency first: the SDK's maps name its own src/ files too.
  const dep = /node_modules\/.+$/.exec(source);
  if (dep) return dep[0];
  const src = /(?:^|\/)src\/(.+)\.ts$/.exec(source);
  return src ? `/dist/${src[1]}.js` : source;
}

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
  [
    'SDK protocol + zod (@modelcontextprotocol/server)',
    /@modelcontextprotocol\/(server|core-internal)|node_modules\/zod\//,
  ],
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
      const url = n.callFrame.url ? placeOf(n.callFrame) : undefined;
      const hit = url ? LAYERS.find(([, re]) => re.test(url)) : undefined;
      layer = hit ? hit[0] : parent.has(id) ? layerOf(parent.get(id)) : OTHER;
    }
    memo.set(id, layer);
    return layer;
  };
  const ms = new Map();
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const l = layerOf(p.samples[i]);
    const t = (p.timeDeltas[i] ?? 0) / 1000;
    ms.set(l, (ms.get(l) ?? 0) + t);
    if (TOP && l !== 'idle') {
      const f = byId.get(p.samples[i]).callFrame;
      const where = (f.url && placeOf(f)) || f.url || '(native)';
      const key = `${f.functionName || '(anonymous)'} ${where.replace(/^.*?(\/dist\/|node_modules\/|node:)/, '$1')}`;
      self.set(key, (self.get(key) ?? 0) + t);
    }
  }
  ms.self = self;
  return ms;
}

const files = args;
if (files.length === 0) {
  console.error('usage: node bench/http-profile-layers.mjs [--top N] <profile>...');
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
// Frames of the bundle's chunks without a source map: the split above cannot place them.
if ([...maps.values()].some((m) => m === undefined))
  console.log(
    '\nnote: some bundled chunks have no source map beside them: their frames count as "other" (rebuild the bundle with sourcemap \'external\' to split them).',
  );
if (TOP)
  splits.forEach((m, i) => {
    console.log(`\n${basename(files[i])}: top ${TOP} functions by self time (% of busy)`);
    for (const [k, v] of [...m.self].sort((a, b) => b[1] - a[1]).slice(0, TOP))
      console.log(`${((100 * v) / busy[i]).toFixed(1).padStart(5)} %  ${k}`);
  });
