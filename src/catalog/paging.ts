import { COLLECTION_KEYS, LIST_WORDS } from '../classify/risk.js';
import type { ArgBinding, HttpMethod, PageSizeInfo } from '../model/catalog.js';
import { type DefsLookup, type JsonSchema, resolveLocal } from '../model/json-schema.js';
import { words } from '../openapi/text.js';
import { topProperties } from './doc.js';

/** Query parameters that set how many items a page holds (compared as snake_case words). */
const PAGE_SIZE = new Set([
  'limit',
  'per_page',
  'perpage',
  'page_size',
  'pagesize',
  'size',
  'count',
  'max_results',
  'maxresults',
  'max_items',
  'maxitems',
  'top',
  'first',
  'take',
  'max',
  'results_per_page',
  'num',
  'rows',
  'page_limit',
  'max_page_size',
]);
/** Query parameters that move through pages. */
const PAGINATION = new Set([
  'page',
  'cursor',
  'offset',
  'starting_after',
  'ending_before',
  'after',
  'before',
  'continue',
  'next',
  'page_token',
  'pagetoken',
  'next_token',
  'marker',
  'skip',
  'start',
  'page_number',
  'next_page',
  'next_cursor',
  'continuation_token',
  'from',
]);

export interface Paging {
  /** The numeric page-size argument (the last one, if several), with the spec's maximum. */
  pageSize: PageSizeInfo | undefined;
  hasPagination: boolean;
}

/** Finds the page-size and pagination arguments among the query parameters. */
export function detectPaging(
  bindings: readonly ArgBinding[],
  properties: Record<string, JsonSchema>,
  defs: DefsLookup,
): Paging {
  let pageSize: PageSizeInfo | undefined;
  let hasPagination = false;
  for (const b of bindings) {
    if (b.in !== 'query') continue;
    const key = wordKey(b.name);
    const s = resolveLocal(properties[b.arg]!, defs);
    if (PAGE_SIZE.has(key) && isNumeric(s)) {
      const max = typeof s === 'object' ? (s.maximum ?? s.exclusiveMaximum) : undefined;
      pageSize = { arg: b.arg, ...(typeof max === 'number' ? { maximum: max } : {}) };
    } else if (PAGINATION.has(key)) hasPagination = true;
  }
  return { pageSize, hasPagination };
}

const wordKeys = new Map<string, string>();
/** A parameter name's words joined by `_`, once per name (the same query parameters recur on every operation). */
function wordKey(name: string): string {
  let key = wordKeys.get(name);
  if (key === undefined) {
    key = words(name).join('_');
    if (wordKeys.size > 20_000) wordKeys.clear();
    wordKeys.set(name, key);
  }
  return key;
}

/** A GET that returns a collection, by its response's shape or by its operationId's first words. */
export function isListOperation(
  method: HttpMethod,
  root: JsonSchema | undefined,
  defs: DefsLookup,
  opWords: readonly string[],
): boolean {
  return (
    method === 'get' && (returnsCollection(root, defs) || opWords.slice(0, 3).some((w) => LIST_WORDS.has(w)))
  );
}

function isNumeric(s: JsonSchema): boolean {
  if (typeof s !== 'object') return false;
  const t = s.type;
  return (
    t === undefined ||
    t === 'integer' ||
    t === 'number' ||
    (Array.isArray(t) && (t.includes('integer') || t.includes('number')))
  );
}

function returnsCollection(root: JsonSchema | undefined, defs: DefsLookup): boolean {
  if (root === undefined) return false;
  const s = resolveLocal(root, defs);
  if (typeof s !== 'object') return false;
  if (s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) return true;
  for (const [k, v] of Object.entries(topProperties(s, defs))) {
    if (!COLLECTION_KEYS.has(k.toLowerCase())) continue;
    const r = resolveLocal(v, defs);
    if (typeof r === 'object' && r.type === 'array') return true;
  }
  return false;
}
