import { classifyField } from '../classify/data-classes.js';
import type { Scrubber } from '../observe/scrub.js';
import { words } from '../spec/text.js';

const MAX_DEPTH = 6;
const MAX_ITEMS = 50;
const MAX_STRING = 1000;

/**
 * A copy of a tool's arguments fit for the audit: values under names that classify as secret, PII or
 * financial are replaced by a typed placeholder, credential values are scrubbed from every string,
 * and size is bounded (deep, long or wide values are cut with a marker).
 */
export function redactArgs(args: unknown, scrubber: Scrubber): unknown {
  return walk(args, '', [], 0, scrubber);
}

function walk(v: unknown, name: string, parent: string[], depth: number, scrubber: Scrubber): unknown {
  if (typeof v === 'string') {
    const s = scrubber.empty ? v : scrubber.scrub(v);
    return s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…[${s.length} chars]` : s;
  }
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_DEPTH) return '[…deeper values omitted]';
  if (Array.isArray(v)) {
    const out = v.slice(0, MAX_ITEMS).map((x) => walk(x, name, parent, depth + 1, scrubber));
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
    // JSON.parse makes `__proto__` an own key; defineProperty keeps it one in the copy.
    Object.defineProperty(out, k, {
      value:
        hit && x !== null && x !== undefined
          ? `[REDACTED:${hit.class}]`
          : walk(x, k, here, depth + 1, scrubber),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
