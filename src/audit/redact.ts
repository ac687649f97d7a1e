import { classifyField } from '../classify/data-classes.js';
import type { Scrubber } from '../observe/scrub.js';
import { words } from '../openapi/text.js';
import { detectorFor, type RedactionCounts } from '../protect/detect.js';

const MAX_DEPTH = 6;
const MAX_ITEMS = 50;
const MAX_STRING = 1000;

/**
 * A copy of a tool's arguments fit for the audit: values under names that classify as secret, PII or
 * financial are replaced by a typed placeholder, credential values are scrubbed from every string,
 * and size is bounded (deep, long or wide values are cut with a marker).
 */
export function redactArgs(args: unknown, scrubber: Scrubber, counts?: RedactionCounts): unknown {
  return walk(args, '', [], 0, { scrubber, ...(counts ? { counts } : {}) });
}

interface Engine {
  scrubber: Scrubber;
  counts?: RedactionCounts;
}

/** Every class, whatever a tool's masking allows the agent: the audit must never become the leak. */
const AUDIT_DETECTOR = detectorFor([]);

function walk(v: unknown, name: string, parent: string[], depth: number, engine: Engine): unknown {
  if (typeof v === 'string') {
    const clipped = v.length > MAX_STRING ? v.slice(0, MAX_STRING) : v;
    const s = AUDIT_DETECTOR.redact(
      engine.scrubber.empty ? clipped : engine.scrubber.scrub(clipped),
      engine.counts,
    );
    return v.length > MAX_STRING ? `${s}…[${v.length} chars]` : s;
  }
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_DEPTH) return '[…deeper values omitted]';
  if (Array.isArray(v)) {
    const out = v.slice(0, MAX_ITEMS).map((x) => walk(x, name, parent, depth + 1, engine));
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
    // JSON.parse makes `__proto__` an own key; defineProperty keeps it one in the copy. Keys are
    // scanned too: a map keyed by email address is still a list of email addresses.
    Object.defineProperty(out, AUDIT_DETECTOR.redact(k, engine.counts), {
      value:
        hit && x !== null && x !== undefined
          ? `[REDACTED:${hit.class}]`
          : walk(x, k, here, depth + 1, engine),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
