// Summarises V8 CPU profiles (`node --cpu-prof`): self time by module and by function, and inclusive
// time by function (each function counted once per sample, so recursion does not inflate it).
// Several profiles are added up (e.g. five start-ups of the same spec) and shown as a share of the
// total and as ms per profile.
//
//   node bench/profile-summary.mjs [--top 25] [--match <regex>] [--md] <file.cpuprofile|dir>...
//
// --match keeps only the profiles whose file name matches. --md prints Markdown tables.
// Modules: a package under node_modules (`yaml`, `@modelcontextprotocol/server`), a file of this
// project relative to dist/ or src/ (`catalog/tool.js`), `node:internal`, or V8's own entries
// (`(garbage collector)`, `(program)`, `(idle)`).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
let top = 25;
let match;
let md = false;
const inputs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--match') match = new RegExp(args[++i]);
  else if (args[i] === '--md') md = true;
  else inputs.push(args[i]);
}
if (inputs.length === 0) {
  console.error('usage: node bench/profile-summary.mjs [--top N] [--match re] [--md] <profile|dir>...');
  process.exit(2);
}

const files = inputs.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(p, f))
    : [p],
);
const chosen = files.filter((f) => !match || match.test(f));
if (chosen.length === 0) {
  console.error('no profiles matched');
  process.exit(1);
}

function moduleOf(node) {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = url.match(/\/(?:dist|src)\/(.+)$/);
  if (m) return m[1];
  return url.replace(/^file:\/\//, '');
}

function functionOf(node) {
  const { url, functionName, lineNumber } = node.callFrame;
  const mod = moduleOf(node);
  if (!url) return mod;
  return `${functionName || '(anonymous)'} ${mod}:${lineNumber + 1}`;
}

const selfByModule = new Map();
const selfByFn = new Map();
const inclByFn = new Map();
let totalUs = 0;
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);

for (const f of chosen) {
  const p = JSON.parse(readFileSync(f, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The time of sample i is the delta to the next one (V8's own convention in DevTools).
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (dt <= 0) continue;
    totalUs += dt;
    const leaf = byId.get(p.samples[i]);
    add(selfByModule, moduleOf(leaf), dt);
    add(selfByFn, functionOf(leaf), dt);
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const key = functionOf(byId.get(id));
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclByFn, key, dt);
    }
  }
}

const n = chosen.length;
const ms = (us) => (us / 1000 / n).toFixed(1);
const pct = (us) => ((100 * us) / totalUs).toFixed(1);
function table(title, map, skipRoot) {
  const rows = [...map.entries()]
    .filter(([k]) => !skipRoot || !/^\((root|program|idle)\)/.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  if (md) {
    console.log(`\n**${title}**\n\n| % | ms/profile | |\n|---:|---:|---|`);
    for (const [k, v] of rows) console.log(`| ${pct(v)} | ${ms(v)} | \`${k}\` |`);
  } else {
    console.log(`\n${title}`);
    for (const [k, v] of rows) console.log(`${pct(v).padStart(6)} % ${ms(v).padStart(9)} ms  ${k}`);
  }
}

console.log(`${n} profile(s), ${(totalUs / 1000 / n).toFixed(0)} ms sampled per profile`);
table('Self time by module', selfByModule);
table('Self time by function', selfByFn);
table('Inclusive time by function', inclByFn, true);
