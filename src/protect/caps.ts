/**
 * Context limits: how much of a response reaches the agent. Works in place on the call's own copy
 * of the response (the parsed upstream body belongs to this call alone). Arrays longer than `maxItems` are cut,
 * then the largest arrays are halved until the JSON fits `maxResultBytes`; long strings are cut as a
 * last resort. Every cut is told to the agent with what it can do to see the rest.
 */
export interface CapLimits {
  maxItems: number;
  maxResultBytes: number;
}

export interface CapResult {
  value: unknown;
  notes: string[];
}

export const DEFAULT_MAX_ITEMS = 100;
export const DEFAULT_MAX_RESULT_BYTES = 128 * 1024;

/**
 * Arrays cut before masking (`precut`): the kept slice → how many items the upstream sent, and the
 * items cut off (walked by the masker for its counts only). Masking and redaction copy a changed
 * array; the copy carries the record (`carryCut`), so `capValue` still reports the upstream's total.
 */
export interface Cut {
  total: number;
  tail: readonly unknown[];
}
const CUTS = new WeakMap<readonly unknown[], Cut>();

export function cutOf(a: readonly unknown[]): Cut | undefined {
  return CUTS.get(a);
}

/** `to` is a copy of `from`; `cap`: the copy holds at most that many items (a masked array). */
export function carryCut(from: readonly unknown[], to: readonly unknown[], cap?: number): void {
  const c = CUTS.get(from);
  if (c) CUTS.set(to, cap === undefined ? c : { total: Math.min(c.total, cap), tail: [] });
}

/**
 * Cuts every array `capValue`'s item cap would cut (the same walk: nested arrays in the first 1,000
 * items, 64 levels) down to `keep` items, in place, BEFORE masking and detection by value: items that
 * will not reach the agent are not masked and scanned first. `keep` ≥ the item limit; `capValue`
 * then cuts to the limit and reports the upstream's totals.
 */
export function precut(value: unknown, keep: number): unknown {
  const box = { v: value };
  precutAt(box, 'v', keep, 0);
  return box.v;
}

function precutAt(holder: unknown, key: string | number, keep: number, depth: number): void {
  const h = holder as Record<string | number, unknown>;
  let v = h[key];
  if (v === null || typeof v !== 'object' || depth > 64) return;
  if (Array.isArray(v)) {
    if (v.length > keep) {
      const kept = v.slice(0, keep);
      CUTS.set(kept, { total: v.length, tail: v.slice(keep) });
      h[key] = kept;
      v = kept;
    }
    const a = v as unknown[];
    for (let i = 0; i < Math.min(a.length, 1000); i++)
      if (a[i] !== null && typeof a[i] === 'object') precutAt(a, i, keep, depth + 1);
    return;
  }
  for (const k of Object.keys(v)) precutAt(v, k, keep, depth + 1);
}

interface ArrayRef {
  holder: Record<string, unknown> | unknown[] | null;
  key: string | number;
  path: string;
  total: number;
}

/**
 * Caps a value. `args`, `inputKeys` (the tool's argument names) and `pageArg` (its page-size
 * argument) are used only to say how to continue. `out.json` is set to `JSON.stringify` of the
 * capped value, as measured for the byte cap, so that the caller need not serialise it again.
 */
export function capValue(
  value: unknown,
  limits: CapLimits,
  args: Record<string, unknown>,
  inputKeys: readonly string[],
  pageArg?: string,
  out?: { json?: string | undefined },
): CapResult {
  const notes: string[] = [];
  const box = { v: value };
  const cuts: Array<{ path: string; kept: number; total: number; lastId?: unknown }> = [];

  // 1. Item cap, everywhere.
  const arrays = collectArrays(box, 'v', '$', 0);
  for (const a of arrays) {
    const arr = (a.holder as Record<string | number, unknown>)[a.key] as unknown[];
    if (arr.length > limits.maxItems || a.total > arr.length) {
      const kept = arr.slice(0, limits.maxItems);
      (a.holder as Record<string | number, unknown>)[a.key] = kept;
      cuts.push({ path: a.path, kept: kept.length, total: a.total, lastId: idOf(kept.at(-1)) });
    }
  }
  // 2. Byte cap: halve the largest array until it fits, then cut long strings. `json` is always
  // the serialised form of `box.v` as it stands.
  let json = JSON.stringify(box.v);
  let size = byteLength(json);
  for (let round = 0; size > limits.maxResultBytes && round < 40; round++) {
    const candidates = collectArrays(box, 'v', '$', 0)
      .map((a) => ({ a, len: ((a.holder as Record<string | number, unknown>)[a.key] as unknown[]).length }))
      .filter((x) => x.len > 1)
      .sort((x, y) => y.len - x.len);
    const biggest = candidates[0];
    if (!biggest) break;
    const arr = (biggest.a.holder as Record<string | number, unknown>)[biggest.a.key] as unknown[];
    const kept = arr.slice(0, Math.max(1, Math.floor(arr.length / 2)));
    (biggest.a.holder as Record<string | number, unknown>)[biggest.a.key] = kept;
    const prior = cuts.find((c) => c.path === biggest.a.path);
    if (prior) {
      prior.kept = kept.length;
      prior.lastId = idOf(kept.at(-1));
    } else
      cuts.push({
        path: biggest.a.path,
        kept: kept.length,
        total: biggest.a.total,
        lastId: idOf(kept.at(-1)),
      });
    json = JSON.stringify(box.v);
    size = byteLength(json);
  }
  if (size > limits.maxResultBytes) {
    const budget = Math.max(64, Math.floor(limits.maxResultBytes / 8));
    box.v = cutStrings(box.v, budget, 0);
    notes.push(`long text values were cut to ${budget} characters to fit the gateway's result limit`);
    json = JSON.stringify(box.v);
    size = byteLength(json);
  }
  for (const c of cuts)
    notes.push(
      `truncated: ${c.kept} of ${c.total} items${c.path === '$' || c.path === '$.result' ? '' : ` at ${c.path}`}; ${howToContinue(c, args, inputKeys, pageArg)}`,
    );
  if (out) out.json = json;
  return { value: box.v, notes };
}

function collectArrays(
  holder: unknown,
  key: string | number,
  path: string,
  depth: number,
  out: ArrayRef[] = [],
): ArrayRef[] {
  const v = (holder as Record<string | number, unknown>)[key];
  if (v === null || typeof v !== 'object' || depth > 64) return out;
  if (Array.isArray(v)) {
    out.push({ holder: holder as ArrayRef['holder'], key, path, total: CUTS.get(v)?.total ?? v.length });
    // Arrays nested in items are looked at in the first items only: bounded work on huge lists.
    for (let i = 0; i < Math.min(v.length, 1000); i++)
      if (v[i] !== null && typeof v[i] === 'object') collectArrays(v, i, `${path}[${i}]`, depth + 1, out);
    return out;
  }
  for (const k of Object.keys(v)) collectArrays(v, k, `${path}.${k}`, depth + 1, out);
  return out;
}

function byteLength(json: string | undefined): number {
  return Buffer.byteLength(json ?? '');
}

function cutStrings(v: unknown, budget: number, depth: number): unknown {
  if (typeof v === 'string') return v.length > budget ? `${v.slice(0, budget)}…` : v;
  if (v === null || typeof v !== 'object' || depth > 64) return v;
  if (Array.isArray(v)) return v.map((x) => cutStrings(x, budget, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cutStrings(x, budget, depth + 1)]));
}

function idOf(item: unknown): unknown {
  if (item && typeof item === 'object' && !Array.isArray(item)) {
    const id = (item as Record<string, unknown>).id;
    if (typeof id === 'string' || typeof id === 'number') return id;
  }
  return undefined;
}

const OFFSET_ARGS = ['offset', 'skip', 'start'];
/** Arguments whose meaning is known: "start after this item id" (Stripe, many others). */
const AFTER_ARGS = ['starting_after', 'after_id', 'since_id'];

/**
 * How to see the rest. Only hints whose meaning is certain: an offset argument, an "after this id"
 * argument, or a smaller page size. A cursor the response carries is never suggested: it points past
 * the whole page, so following it would skip the items the gateway cut.
 */
function howToContinue(
  cut: { kept: number; lastId?: unknown },
  args: Record<string, unknown>,
  inputKeys: readonly string[],
  pageArg: string | undefined,
): string {
  const offset = OFFSET_ARGS.find((a) => inputKeys.includes(a));
  if (offset) {
    const from = typeof args[offset] === 'number' ? (args[offset] as number) : 0;
    return `call again with ${offset}=${from + cut.kept} to continue`;
  }
  const after = AFTER_ARGS.find((a) => inputKeys.includes(a));
  if (after && cut.lastId !== undefined)
    return `call again with ${after}=${JSON.stringify(cut.lastId)} to continue`;
  if (pageArg && inputKeys.includes(pageArg))
    return `ask for at most ${cut.kept} items per call (${pageArg}=${cut.kept}) and page through the rest`;
  return 'narrow the request (filters or a smaller page size) to see the rest';
}
