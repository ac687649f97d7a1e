import { WardenError } from '../errors/index.js';
import type { Detector, RedactionCounts } from './detect.js';

/** Deeper than this, a response is refused rather than walked (no stack is risked on hostile JSON). */
export const MAX_JSON_DEPTH = 64;

/**
 * Runs detection over every string of a JSON value — object keys too (maps keyed by email address
 * exist) — in one batched scan, and returns a copy in which only what changed is new.
 */
export function redactJson(value: unknown, detector: Detector, counts: RedactionCounts): unknown {
  const strings: string[] = [];
  const collect = (v: unknown, depth: number): void => {
    if (typeof v === 'string') strings.push(v);
    else if (v !== null && typeof v === 'object') {
      if (depth > MAX_JSON_DEPTH)
        throw new WardenError(
          'UPSTREAM_SCHEMA_MISMATCH',
          `The upstream response nests deeper than ${MAX_JSON_DEPTH} levels.`,
        );
      if (Array.isArray(v)) for (const x of v) collect(x, depth + 1);
      else
        for (const [k, x] of Object.entries(v)) {
          strings.push(k);
          collect(x, depth + 1);
        }
    }
  };
  collect(value, 0);
  if (strings.length === 0) return value;
  const out = detector.redactAll(strings, counts);
  if (out === strings) return value;
  let i = 0;
  const rebuild = (v: unknown): unknown => {
    if (typeof v === 'string') return out[i++];
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      for (let j = 0; j < v.length; j++) {
        const n = rebuild(v[j]);
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
      const nk = out[i++] as string;
      const nx = rebuild(x);
      if (nk !== k || nx !== x) changed = true;
      entries.push([nk, nx]);
    }
    if (!changed) return v;
    // defineProperty keeps a `__proto__` key an own key, as JSON.parse made it.
    const copy: Record<string, unknown> = {};
    for (const [k, x] of entries)
      Object.defineProperty(copy, k, { value: x, enumerable: true, writable: true, configurable: true });
    return copy;
  };
  return rebuild(value);
}
