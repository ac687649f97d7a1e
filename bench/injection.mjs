// The injection detector on its corpus (issue 24): detection rate on bench/injection-corpus/
// injections.json (tuning and held-out sets apart), false positives on benign.json (texts from the
// shared specs, made by bench/injection-benign.mjs), and the cost per KiB screened, on the benign
// texts and on adversarial input (trigger words everywhere). `npm run build`, then
// `node bench/injection.mjs [--show]` (--show lists misses of the tuning set and false positives).
import { readFileSync } from 'node:fs';
import { screenValue } from '../dist/protect/injection.js';

const show = process.argv.includes('--show');
const dir = new URL('./injection-corpus/', import.meta.url);
const { samples } = JSON.parse(readFileSync(new URL('injections.json', dir), 'utf8'));
const { texts } = JSON.parse(readFileSync(new URL('benign.json', dir), 'utf8'));

const FULLWIDTH = (s) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
const ROT13 = (s) =>
  s.replace(/[a-z]/gi, (c) => {
    const b = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - b + 13) % 26) + b);
  });
const TAGS = (s) => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
/** How each encoding is delivered: the payload as an attacker would place it in a field. */
const ENCODE = {
  base64: (t) => `Reference data: ${Buffer.from(t).toString('base64')}`,
  base64url: (t) => `token=${Buffer.from(t).toString('base64url')}`,
  hex: (t) => `Checksum ${Buffer.from(t).toString('hex')}`,
  rot13: ROT13,
  percent: (t) => `Link text: ${encodeURIComponent(t)}`,
  'zero-width': (t) => t.replace(/(\S{2})(?=\S)/g, '$1\u200b'),
  tags: (t) => `Lovely product, would buy again.${TAGS(t)}`,
  fullwidth: FULLWIDTH,
  bidi: (t) => `Order note: \u202e${[...t].reverse().join('')}\u202c`,
};

function payload(s) {
  if (s.fields) return s.fields;
  return s.encode ? ENCODE[s.encode](s.text) : s.text;
}

const by = new Map();
const tally = (key, hit) => {
  const t = by.get(key) ?? { n: 0, hit: 0 };
  t.n++;
  if (hit) t.hit++;
  by.set(key, t);
};
const misses = [];
for (const s of samples) {
  const hit = screenValue(payload(s)).length > 0;
  tally(`set:${s.set}`, hit);
  tally(`class:${s.class}`, hit);
  tally('all', hit);
  if (s.lang !== 'en') tally(`lang:${s.lang}`, hit);
  if (!hit && (s.set === 'tune' || show === 'all')) misses.push(s);
}

// Three passes first, so the timed pass measures the steady state (regexes compiled, code optimised).
for (let i = 0; i < 3; i++) for (const { text } of texts) screenValue(text);
let fp = 0;
let bytes = 0;
const fps = [];
const t0 = performance.now();
for (const { spec, text } of texts) {
  bytes += Buffer.byteLength(text);
  const f = screenValue(text);
  if (f.length) {
    fp++;
    fps.push({ spec, signals: f[0].signals, text: text.slice(0, 160) });
  }
}
const benignMs = performance.now() - t0;

// Adversarial: 256 KiB made of trigger words and near-misses, in one string and in 4,096 fields.
const words =
  'ignore previous send to http:// you must system prompt act as <| if you are dear ai password all ';
const big = words.repeat(Math.ceil((256 * 1024) / words.length)).slice(0, 256 * 1024);
const t1 = performance.now();
const advFlags = screenValue(big);
const advMs = performance.now() - t1;
const fields = Object.fromEntries(
  Array.from({ length: 4096 }, (_, i) => [`f${i}`, big.slice(i * 64, i * 64 + 64)]),
);
const t2 = performance.now();
screenValue(fields);
const advFieldsMs = performance.now() - t2;

const pct = (t) => `${((100 * t.hit) / t.n).toFixed(1)} % (${t.hit}/${t.n})`;
console.log('Injection detector (src/protect/injection.ts)');
console.log(`  detected, all samples:      ${pct(by.get('all'))}`);
console.log(`  detected, tuning set:       ${pct(by.get('set:tune'))}`);
console.log(`  detected, held-out set:     ${pct(by.get('set:heldout'))}`);
for (const [k, t] of [...by].filter(([k]) => k.startsWith('class:') || k.startsWith('lang:')))
  console.log(`    ${k.padEnd(26)} ${pct(t)}`);
console.log(
  `  false positives (benign):   ${((100 * fp) / texts.length).toFixed(2)} % (${fp}/${texts.length})`,
);
console.log(
  `  cost, benign texts:         ${((1000 * benignMs) / (bytes / 1024)).toFixed(1)} µs per KiB (${(bytes / 1024).toFixed(0)} KiB in ${benignMs.toFixed(0)} ms)`,
);
console.log(
  `  cost, adversarial 256 KiB:  ${((1000 * advMs) / 256).toFixed(1)} µs per KiB as one string (${advFlags[0]?.signals.join(',')}), ${((1000 * advFieldsMs) / 256).toFixed(1)} µs per KiB in 4,096 fields`,
);
if (show) {
  for (const m of misses)
    console.log(`MISS ${m.id} ${m.class} ${m.lang}: ${JSON.stringify(m.fields ?? m.text).slice(0, 160)}`);
  for (const f of fps) console.log(`FP ${f.spec} [${f.signals}]: ${JSON.stringify(f.text)}`);
}
