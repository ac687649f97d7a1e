import { classifyField } from '../classify/data-classes.js';
import { WardenError } from '../errors/index.js';
import type { DataClass } from '../model/catalog.js';
import { words } from '../openapi/text.js';
import { carryCut } from './caps.js';
import { type Detector, detectorFor, type RedactionCounts } from './detect.js';
import { itemTypesOf, typeOfValue } from './mask.js';

export type { RedactionCounts };

/** Deeper than this, a response is refused rather than walked (no stack is risked on hostile JSON). */
export const MAX_JSON_DEPTH = 64;

/** Bounds of the audit copy of arguments: deep, wide or long values are cut with a marker. */
const MAX_DEPTH = 6;
const MAX_ITEMS = 50;
const MAX_STRING = 1000;

const CREDENTIAL = '[REDACTED:credential]';

/**
 * Longer than any value a detector matches (a JWT runs to ~14 KiB): text this far past a cut is
 * redacted with what comes before it, so nothing the cut runs through is left half-shown.
 */
export const CUT_MARGIN = 16 * 1024;

/**
 * The one place where secrets and personal data are taken out of what leaves the gateway: results,
 * error excerpts, the audit and every log line. Built once at start-up; it holds the known credential
 * values (learnt as they appear) and builds no detector of its own beyond `detectorFor`'s cache.
 * Every operation replaces known credential values first, then runs detection by value.
 */
export interface Redactor {
  /**
   * Learns credential values that appear at run time (a rotated file, a fresh OAuth2 token). Old
   * values stay: a response may still echo a credential that was just rotated out. `until` (epoch
   * ms): a value that is worthless afterwards (a connect link's handle and state) is forgotten then,
   * so values minted per request cannot grow the list without end.
   */
  addSecrets(values: readonly string[], until?: number): void;
  /**
   * Known credential values only. For the raw upstream body, before it is parsed: detection by value
   * follows in the protect stage, which knows what the tool's masking allows.
   */
  credentials(s: string): string;
  /** A string: credential values, then every detected class (except those in `allow`). */
  text(s: string, counts?: RedactionCounts, allow?: readonly DataClass[]): string;
  /**
   * A JSON value: every string and object key, in one batched scan; a copy in which only what
   * changed is new. `allow`: the classes the tool's masking lets through. Refuses nesting deeper
   * than `MAX_JSON_DEPTH`.
   */
  json(value: unknown, counts: RedactionCounts, allow?: readonly DataClass[]): unknown;
  /**
   * A tool's arguments as the audit (and a confirmation preview) may show them: values under names
   * that classify as secret, PII or financial become a typed placeholder, every string is redacted
   * as by `text` with every class, and size is bounded.
   */
  args(value: unknown, counts?: RedactionCounts): unknown;
  /**
   * At most `n` characters of `s` for an error or a note: control characters removed, then redacted
   * as by `text` with every class, THEN cut — a secret the cut runs through is never half-shown.
   * `truncated`: `s` itself was cut (a capped body), so its last `CUT_MARGIN` characters may end in
   * a partial value; they are never shown.
   */
  excerpt(s: string, n: number, counts?: RedactionCounts, truncated?: boolean): string;
  /**
   * `text(s)` with every class, as far as a cut at `n` needs it: a long `s` is redacted only in a
   * window reaching `CUT_MARGIN` past the cut (as an excerpt is), so its first `n` characters are
   * those of `text(s)`; an `s` within the window comes back as `text(s)`, whole. For the audit's
   * copy of a response, which keeps 4 KiB of a result of up to the result limit.
   */
  head(s: string, n: number): string;
}

/** `secrets`: credential values known from the start (serving learns them through `addSecrets`). */
export function createRedactor(secrets: readonly string[] = [], now: () => number = Date.now): Redactor {
  let known: KnownSecret[] = [];
  const learn = (values: readonly string[], until?: number): void => {
    const t = now();
    const live = known.filter((k) => k.until === undefined || k.until > t);
    const fresh = [...new Set(values)].filter((v) => v.length > 0 && !live.some((k) => k.value === v));
    if (!fresh.length && live.length === known.length) return;
    // Longest first, so a secret containing another is replaced whole.
    const added = fresh.map((v) => (until !== undefined ? { ...knownSecret(v), until } : knownSecret(v)));
    known = [...live, ...added].sort((a, b) => b.value.length - a.value.length);
  };
  learn(secrets);

  const credentials = (s: string): string => {
    let out = s;
    for (const k of known) {
      if (!out.includes(k.anchor)) continue;
      if (k.escaped) out = out.replace(k.escaped, CREDENTIAL);
      else out = out.split(k.value).join(CREDENTIAL);
    }
    return out;
  };
  // The very array back when no string holds a secret (as usual): the walk then copies nothing.
  // Anchors are letters and digits, so one search of the joined strings per secret tells.
  const credentialsAll = (strings: string[], joined: string): [string[], string] => {
    if (!known.length || !strings.length || !known.some((k) => joined.includes(k.anchor)))
      return [strings, joined];
    const out = strings.map(credentials);
    return [out, out.join('\0')];
  };
  /** Every class, whatever a tool's masking allows: for the audit, logs and error excerpts. */
  const full = detectorFor([]);
  const detector = (allow?: readonly DataClass[]): Detector => (allow?.length ? detectorFor(allow) : full);
  const text = (s: string, counts?: RedactionCounts, allow?: readonly DataClass[]): string =>
    detector(allow).redact(known.length ? credentials(s) : s, counts);

  return {
    addSecrets: learn,
    credentials,
    text,
    json: (value, counts, allow) => redactJson(value, detector(allow), counts, credentialsAll),
    args: (value, counts) => redactArgs(value, '', [], 0, (s) => text(s, counts)),
    excerpt: (s, n, counts, truncated = false) =>
      cutRedacted(printable(s), n, truncated, (w) => text(w, counts)),
    // Most results fit the first window: redacted whole, with no window to set up.
    head: (s, n) => (s.length <= n + CUT_MARGIN ? text(s) : redactedWindow(s, n, false, (w) => text(w))),
  };
}

/** Printable text only (newlines and tabs kept): an excerpt cannot smuggle control sequences. */
function printable(s: string): string {
  return s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, '').trim();
}

/** Redacts a window reaching `CUT_MARGIN` past the cut (`redactedWindow`), then cuts. */
function cutRedacted(clean: string, n: number, truncated: boolean, text: (w: string) => string): string {
  const red = redactedWindow(clean, n, truncated, text);
  return red.length > n ? `${red.slice(0, n)}…` : red;
}

/**
 * `text` of a window of `s` reaching `CUT_MARGIN` past a cut at `n`, so that a value the cut runs
 * through is redacted as in the whole text: the first `n` characters are those of `text(s)`.
 *
 * What must hold is a bound on the *raw* text: the raw position behind redacted position `n` lies at
 * least `CUT_MARGIN` (longer than any match) before the window's end. The redacted length alone does
 * not give it: placeholders longer than what they replace (a 13-digit card number) lengthen the
 * window's redacted form without raw text behind it, and a long value cut by the window's end would
 * then fail to match and show. So placeholders past `n` are not counted: what is left of the redacted
 * text past `n` is raw text, one character for one. Once the window would pass half of `s`, `s` is
 * redacted whole (never more than about twice the whole text's cost on a hostile body).
 * `truncated`: `s` was itself cut short, so its redacted end loses `CUT_MARGIN` characters too.
 */
export function redactedWindow(
  s: string,
  n: number,
  truncated: boolean,
  text: (w: string) => string,
): string {
  let red = '';
  let grown = false;
  for (let w = n + CUT_MARGIN; ; ) {
    red = text(s.length > w ? s.slice(0, w) : s);
    if (s.length <= w) {
      // The real end of the text, unless the text was itself cut short.
      if (truncated) red = red.slice(0, Math.max(0, red.length - CUT_MARGIN));
      break;
    }
    const raw = red.length - n - placeholderChars(red, n);
    if (raw >= CUT_MARGIN) break;
    // Grown by the share of raw text the window kept (with 10 % to spare), not doubled: a text dense
    // with values a little longer than their placeholders fell short by a few percent and was
    // redacted again at twice the size.
    // From the second growth on, at least by half: a tail that is all placeholders (or looks like
    // them; a private key with no END line) adds no raw text, and growing by a share of what was
    // kept would take one redaction of the window per KiB of the body. So at most a few rounds.
    const kept = Math.max(red.length - placeholderChars(red, 0), 1) / w;
    const step = Math.ceil(((CUT_MARGIN - raw) / Math.max(kept, 0.05)) * 1.1);
    w = Math.max(grown ? Math.ceil(w * 1.5) : w + 1024, w + step);
    grown = true;
    if (w * 2 >= s.length) w = s.length;
  }
  return red;
}

/** Every placeholder, `[REDACTED:<kind>]` (detect.ts, credentials, policy rules): any kind counts. */
const PLACEHOLDER = /\[REDACTED:[^\]\s]{1,80}\]/g;

/**
 * Characters of `red` from `from` on that are placeholders (one straddling `from` counted whole).
 * Raw text that looks like a placeholder is counted too: that only grows the window.
 */
function placeholderChars(red: string, from: number): number {
  let count = 0;
  PLACEHOLDER.lastIndex = Math.max(0, from - 90);
  for (let m = PLACEHOLDER.exec(red); m !== null; m = PLACEHOLDER.exec(red)) count += m[0].length;
  return count;
}

interface KnownSecret {
  value: string;
  /** A part every escaped form keeps as is (its longest run of letters and digits): a cheap first test. */
  anchor: string;
  /** The value with each other character also matched in its escaped forms; absent when it has none. */
  escaped?: RegExp;
  /** Forgotten from then on (epoch ms); absent: kept for the life of the process. */
  until?: number;
}

/**
 * A credential value as servers write it back: raw, or with any of its punctuation escaped —
 * percent-encoded in either case, once or twice (whatever set of characters the encoder leaves alone:
 * `encodeURI`, `encodeURIComponent`, form encoding with `+` for a space), JSON-escaped (`\"`, `\/`, `\u002f`) or
 * HTML-escaped (`&amp;`, `&#47;`, `&#x2f;`). Letters and digits are never escaped by any encoder, so
 * they stay literal. The pattern is a plain sequence of fixed alternatives: linear in the text.
 */
function knownSecret(value: string): KnownSecret {
  const runs = value.match(/[A-Za-z0-9]+/g) ?? [];
  const anchor = runs.reduce((a, b) => (b.length > a.length ? b : a), '');
  if (anchor === value) return { value, anchor };
  let source = '';
  for (const ch of value) source += /[A-Za-z0-9]/.test(ch) ? ch : escapedForms(ch);
  return { value, anchor, escaped: new RegExp(source, 'gu') };
}

const HTML_NAMED: Record<string, string> = { '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' };

/** A regex group matching one character written as itself or in any of its escaped forms. */
function escapedForms(ch: string): string {
  const code = ch.codePointAt(0)!;
  const hex = code.toString(16).padStart(2, '0');
  // Either case for each hex letter: `%2f` and `%2F` are both written.
  const anyCase = (h: string) =>
    [...h].map((c) => (/[a-f]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join('');
  const lit = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  const alts = [
    lit(ch),
    `%(?:25)?${anyCase(hex)}`,
    `\\\\u${anyCase(hex.padStart(4, '0'))}`,
    `&#0*${code};`,
    `&#[xX]0*${anyCase(hex)};`,
  ];
  if (ch === ' ') alts.push('\\+');
  if (ch === '"' || ch === '\\' || ch === '/') alts.push(`\\\\${lit(ch)}`);
  if (HTML_NAMED[ch]) alts.push(`&${HTML_NAMED[ch]};`);
  return `(?:${alts.join('|')})`;
}

/**
 * Collects every string of a JSON value (keys too: maps keyed by email address exist), redacts them
 * in one batched scan, and rebuilds only what changed.
 */
function redactJson(
  value: unknown,
  detector: Detector,
  counts: RedactionCounts,
  credentials: (strings: string[], joined: string) => [string[], string],
): unknown {
  const found: string[] = [];
  collect(value, 0, found);
  if (found.length === 0) return value;
  // Credential values first; `redactAll` hands back the very array it was given when it found nothing.
  // The strings are joined once, for both (a large response's strings run to megabytes).
  const [strings, joined] = credentials(found, found.join('\0'));
  const out = detector.redactAll(strings, counts, joined);
  if (out === found) return value;
  return rebuild(value, out, { i: 0 });
}

function collect(v: unknown, depth: number, into: string[]): void {
  if (typeof v === 'string') into.push(v);
  else if (v !== null && typeof v === 'object') {
    if (depth > MAX_JSON_DEPTH)
      throw new WardenError(
        'UPSTREAM_SCHEMA_MISMATCH',
        `The upstream response nests deeper than ${MAX_JSON_DEPTH} levels.`,
      );
    if (Array.isArray(v)) for (let j = 0; j < v.length; j++) collect(v[j], depth + 1, into);
    else {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      for (let j = 0; j < keys.length; j++) {
        into.push(keys[j]!);
        collect(o[keys[j]!], depth + 1, into);
      }
    }
  }
}

/** Puts the redacted strings back in `collect`'s order; unchanged subtrees are returned as they are. */
function rebuild(v: unknown, out: readonly string[], at: { i: number }): unknown {
  if (typeof v === 'string') return out[at.i++];
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    for (let j = 0; j < v.length; j++) {
      const n = rebuild(v[j], out, at);
      if (n !== v[j]) {
        copy ??= v.slice();
        copy[j] = n;
      }
    }
    if (copy) carryCut(v, copy);
    return copy ?? v;
  }
  // Copy-on-write: the copy starts at the first change, with the keys before it (plain assignment,
  // not `defineProperty` per key, which was a fifth of a large response's redaction).
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  let copy: Record<string, unknown> | undefined;
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j]!;
    const x = o[k];
    const nk = out[at.i++] as string;
    const nx = rebuild(x, out, at);
    if (!copy && (nk !== k || nx !== x)) {
      copy = {};
      for (let m = 0; m < j; m++) setOwn(copy, keys[m]!, o[keys[m]!]);
    }
    if (copy) setOwn(copy, nk, nx);
  }
  return copy ?? v;
}

/** `o[k] = value`, except that a `__proto__` key stays an own key (as JSON.parse makes it). */
function setOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  if (k === '__proto__') defineOwn(o, k, value);
  else o[k] = value;
}

/** The audit copy of arguments: classified by key name, each string through `text`, size bounded. */
function redactArgs(
  v: unknown,
  name: string,
  parent: string[],
  depth: number,
  text: (s: string) => string,
): unknown {
  if (typeof v === 'string') {
    if (v.length <= MAX_STRING) return text(v);
    // Redacted whole, then cut: a secret the cut runs through must not survive as a prefix.
    return `${text(v).slice(0, MAX_STRING)}…[${v.length} chars]`;
  }
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_DEPTH) return '[…deeper values omitted]';
  if (Array.isArray(v)) {
    const out = v.slice(0, MAX_ITEMS).map((x) => redactArgs(x, name, parent, depth + 1, text));
    if (v.length > MAX_ITEMS) out.push(`[…${v.length - MAX_ITEMS} more items]`);
    return out;
  }
  const out: Record<string, unknown> = {};
  const here = name ? wordsOf(name) : [];
  let n = 0;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (n++ >= MAX_ITEMS) {
      out['…'] = `${Object.keys(v).length - MAX_ITEMS} more keys omitted`;
      break;
    }
    const cls = classifyField({
      name: k,
      words: wordsOf(k),
      parentWords: here.length ? here : parent,
      type: [typeOfValue(x)],
      ...(Array.isArray(x) && x.length ? { items: itemTypesOf(x).split(',') } : {}),
      description: '',
    });
    const hit = cls.find((c) => c.class === 'secret') ?? cls[0];
    // Keys are scanned too: a map keyed by email address is still a list of email addresses.
    setOwn(
      out,
      text(k),
      hit && x !== null && x !== undefined
        ? `[REDACTED:${hit.class}]`
        : redactArgs(x, k, here, depth + 1, text),
    );
  }
  return out;
}

/**
 * `words(name)` of argument names, remembered: every call's audit record classifies the same few
 * names again. Bounded (short names only, emptied when full): names come from callers. The lists
 * are frozen, so no caller can change what a later one is given.
 */
const WORDS = new Map<string, readonly string[]>();
function wordsOf(name: string): string[] {
  if (name.length > 64) return words(name);
  let w = WORDS.get(name);
  if (!w) {
    if (WORDS.size >= 4096) WORDS.clear();
    w = Object.freeze(words(name));
    WORDS.set(name, w);
  }
  return w as string[];
}

/** JSON.parse makes `__proto__` an own key; defineProperty keeps it one in a copy. */
function defineOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}
