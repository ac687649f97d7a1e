import { classifyField } from '../classify/data-classes.js';
import { WardenError } from '../errors/index.js';
import type { DataClass } from '../model/catalog.js';
import { words } from '../openapi/text.js';
import { type Detector, detectorFor, type RedactionCounts } from './detect.js';

export type { RedactionCounts };

/** Deeper than this, a response is refused rather than walked (no stack is risked on hostile JSON). */
export const MAX_JSON_DEPTH = 64;

/** Bounds of the audit copy of arguments: deep, wide or long values are cut with a marker. */
const MAX_DEPTH = 6;
const MAX_ITEMS = 50;
const MAX_STRING = 1000;

const CREDENTIAL = '[REDACTED:credential]';

/**
 * The one place where secrets and personal data are taken out of what leaves the gateway: results,
 * error excerpts, the audit and every log line. Built once at start-up; it holds the known credential
 * values (learnt as they appear) and builds no detector of its own beyond `detectorFor`'s cache.
 * Every operation replaces known credential values first, then runs detection by value.
 */
export interface Redactor {
  /**
   * Learns credential values that appear at run time (a rotated file, a fresh OAuth2 token). Old
   * values stay: a response may still echo a credential that was just rotated out.
   */
  addSecrets(values: readonly string[]): void;
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
}

/** `secrets`: credential values known from the start (serving learns them through `addSecrets`). */
export function createRedactor(secrets: readonly string[] = []): Redactor {
  let known: string[] = [];
  const learn = (values: readonly string[]): void => {
    const fresh = [...new Set(values)].filter((v) => v.length > 0 && !known.includes(v));
    // Longest first, so a secret containing another is replaced whole.
    if (fresh.length) known = [...known, ...fresh].sort((a, b) => b.length - a.length);
  };
  learn(secrets);

  const credentials = (s: string): string => {
    let out = s;
    for (const v of known) if (out.includes(v)) out = out.split(v).join(CREDENTIAL);
    return out;
  };
  // The very array back when no string holds a secret (as usual): the walk then copies nothing.
  const credentialsAll = (strings: string[]): string[] =>
    known.length && strings.some((s) => known.some((v) => s.includes(v)))
      ? strings.map(credentials)
      : strings;
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
  };
}

/**
 * Collects every string of a JSON value (keys too: maps keyed by email address exist), redacts them
 * in one batched scan, and rebuilds only what changed.
 */
function redactJson(
  value: unknown,
  detector: Detector,
  counts: RedactionCounts,
  credentials: (strings: string[]) => string[],
): unknown {
  const found: string[] = [];
  collect(value, 0, found);
  if (found.length === 0) return value;
  // Credential values first; `redactAll` hands back the very array it was given when it found nothing.
  const out = detector.redactAll(credentials(found), counts);
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
    if (Array.isArray(v)) for (const x of v) collect(x, depth + 1, into);
    else
      for (const [k, x] of Object.entries(v)) {
        into.push(k);
        collect(x, depth + 1, into);
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
    return copy ?? v;
  }
  let changed = false;
  const entries: Array<[string, unknown]> = [];
  for (const [k, x] of Object.entries(v)) {
    const nk = out[at.i++] as string;
    const nx = rebuild(x, out, at);
    if (nk !== k || nx !== x) changed = true;
    entries.push([nk, nx]);
  }
  if (!changed) return v;
  const copy: Record<string, unknown> = {};
  for (const [k, x] of entries) defineOwn(copy, k, x);
  return copy;
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
  const here = name ? words(name) : [];
  let n = 0;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (n++ >= MAX_ITEMS) {
      out['…'] = `${Object.keys(v).length - MAX_ITEMS} more keys omitted`;
      break;
    }
    const cls = classifyField({
      name: k,
      words: words(k),
      parentWords: here.length ? here : parent,
      type: [x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x],
      description: '',
    });
    const hit = cls.find((c) => c.class === 'secret') ?? cls[0];
    // Keys are scanned too: a map keyed by email address is still a list of email addresses.
    defineOwn(
      out,
      text(k),
      hit && x !== null && x !== undefined
        ? `[REDACTED:${hit.class}]`
        : redactArgs(x, k, here, depth + 1, text),
    );
  }
  return out;
}

/** JSON.parse makes `__proto__` an own key; defineProperty keeps it one in a copy. */
function defineOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}
