// False positives of detection by value on ordinary data (issue 17, item 8).
// `node bench/detect-fp.mjs [--show N]` after `npm run build`. Runs the full detector (every class,
// as for the audit and logs) over corpora that hold no secret, each item as a bare value and as
// written in free text or a log line, and counts the items it changed: for the context/entropy rule
// (`generic-secret`, and `aws-secret-key` found beside a key id) and for every rule together.
// Deterministic: the random corpora come from a seeded generator.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Detector } from '../dist/protect/detect.js';

const show = Number(process.argv[process.argv.indexOf('--show') + 1] || 0);
const root = new URL('..', import.meta.url).pathname;
const detector = new Detector();

// A small seeded generator (mulberry32): the same corpora on every run.
let seed = 17;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
const hex = (n) => bytes(n).toString('hex');
const uuid = () => {
  const h = hex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const N = 5000;

/** Each ordinary value as itself, in a sentence, and as a log line's field (a label a secret could have). */
const written = (label, v) => [v, `${label} ${v} was updated`, JSON.stringify({ [label]: v, level: 'info' })];

const corpora = {
  UUIDs: Array.from({ length: N }, () =>
    written(pick(['id', 'customer_id', 'request_id', 'order']), uuid()),
  ).flat(),
  'hex hashes (MD5, SHA-1, SHA-256)': Array.from({ length: N }, (_, i) => {
    const h = createHash(['md5', 'sha1', 'sha256'][i % 3])
      .update(bytes(32))
      .digest('hex');
    return written(pick(['sha', 'commit', 'etag', 'checksum', 'digest']), h);
  }).flat(),
  'base64 images (data URLs)': Array.from(
    { length: 500 },
    () => `data:image/png;base64,${bytes(200 + Math.floor(rand() * 8000)).toString('base64')}`,
  ),
  URLs: Array.from({ length: N }, () => {
    const path = Array.from({ length: 1 + Math.floor(rand() * 4) }, () =>
      pick(['v1', 'users', uuid(), hex(6), 'orders', 'files']),
    ).join('/');
    return written(
      'url',
      `https://${pick(['api', 'cdn', 'www'])}.example.com/${path}?page=${Math.floor(rand() * 90)}&ref=${hex(8)}`,
    );
  }).flat(),
  'prose (this project’s docs)': docsParagraphs(),
  'real API examples (../shared/specs)': specExamples(),
};

function docsParagraphs() {
  const files = ['README.md', 'SECURITY.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))];
  return files
    .filter((f) => f.endsWith('.md'))
    .flatMap((f) => readFileSync(join(root, f), 'utf8').split(/\n\s*\n/))
    .filter((p) => p.trim().length > 0);
}

function specExamples() {
  const dir = join(root, '..', 'shared', 'specs');
  const out = [];
  const walk = (v, depth) => {
    if (v === null || typeof v !== 'object' || depth > 200) return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'example' || k === 'x-example') push(x);
      else if (k === 'examples' && x && typeof x === 'object')
        for (const e of Object.values(x)) push(e && typeof e === 'object' && 'value' in e ? e.value : e);
      walk(x, depth + 1);
    }
  };
  const push = (x) => {
    if (x === undefined) return;
    out.push(typeof x === 'string' ? x : JSON.stringify(x));
  };
  const files = (d) =>
    readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)]));
  try {
    for (const f of files(dir).filter((x) => /\.(json|ya?ml)$/.test(x))) {
      const text = readFileSync(f, 'utf8');
      try {
        walk(f.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: -1 }), 0);
      } catch {
        /* not a spec */
      }
    }
  } catch {
    /* no shared corpus here */
  }
  return out;
}

const NEW = ['generic-secret', 'aws-secret-key'];
console.log(
  '| corpus | items | changed by the context/entropy rule | rate | changed by any rule | rate | kinds (any rule) |',
);
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const [name, items] of Object.entries(corpora)) {
  let any = 0;
  let generic = 0;
  const hits = [];
  const kinds = {};
  for (const s of items) {
    const counts = {};
    const out = detector.redact(s, counts);
    if (out !== s) any++;
    for (const k of Object.keys(counts)) kinds[k] = (kinds[k] ?? 0) + 1;
    if (NEW.some((k) => counts[k])) {
      generic++;
      if (hits.length < show) hits.push(out.slice(0, 160));
    }
  }
  const pct = (n) => `${((100 * n) / Math.max(1, items.length)).toFixed(3)} %`;
  const byKind = Object.entries(kinds)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  console.log(
    `| ${name} | ${items.length} | ${generic} | ${pct(generic)} | ${any} | ${pct(any)} | ${byKind} |`,
  );
  for (const h of hits) console.log(`    ${h}`);
}
