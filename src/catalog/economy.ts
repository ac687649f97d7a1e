import { memoByText } from '../lib/text-memo.js';
import type { JsonSchemaObject } from '../model/json-schema.js';
import { cutAtBoundary } from './description.js';

/**
 * Schema economy for what a model reads. An output schema tells a model the shape of a result; the
 * gateway itself validates results against the full schema before this one is ever published. So
 * the published output schema can be cut to what is informative: the outline breadth-first up to a
 * node budget (the top-level fields first), `$ref`s inlined and `$defs` gone, descriptions only near
 * the top and short, no constraints. Every cut makes the schema looser, never stricter, so a result
 * that validates against the full schema validates against this one too (SDK clients check that).
 * Stripe's expandable objects took 88,000 tokens per tool before this.
 */
export interface EconomyOptions {
  /** Schema nodes kept, breadth-first; deeper ones become `{ type }` or `{}`. */
  budget?: number;
  /** Depth (0 = the root) down to which descriptions are kept. */
  describeDepth?: number;
  descriptionMax?: number;
  /**
   * The `$defs` entry of a key, instead of `schema.$defs` (SchemaMasker.publishedOutline converts
   * each on request: only the few definitions the outline reaches are).
   */
  defs?: (key: string) => unknown;
}

type S = Record<string, unknown>;

/** A property named `__proto__` (a spec may have one) must stay a property, not become a prototype. */
function setOwn(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

const MAX_ENUM = 20;

const COMPOSITIONS = ['anyOf', 'oneOf', 'allOf'] as const;

/** Whether every child of a node over budget dereferences to a schema (in the order they are listed). */
function everyChildResolves(
  from: S,
  propKeys: string[] | undefined,
  hasItems: boolean,
  hasMore: boolean,
  lists: ReadonlyArray<{ list: unknown[] }>,
  deref: (s: unknown) => S | undefined,
): boolean {
  if (propKeys) {
    const props = from.properties as Record<string, unknown>;
    for (const k of propKeys) if (deref(props[k]) === undefined) return false;
  }
  if (hasItems && deref(from.items) === undefined) return false;
  if (hasMore && deref(from.additionalProperties) === undefined) return false;
  for (const { list } of lists) for (const x of list) if (deref(x) === undefined) return false;
  return true;
}

export function economizeOutput(schema: JsonSchemaObject, o: EconomyOptions = {}): JsonSchemaObject {
  const budget = { left: o.budget ?? 80 };
  const describeDepth = o.describeDepth ?? 1;
  const descriptionMax = o.descriptionMax ?? 120;
  const defs = (schema.$defs ?? {}) as Record<string, S>;
  const lookup = o.defs ?? ((key: string): unknown => defs[key]);

  const deref = (s: unknown, seen = 0): S | undefined => {
    if (s === true || s === undefined) return {};
    if (!s || typeof s !== 'object' || Array.isArray(s)) return undefined;
    const ref = (s as S).$ref;
    if (typeof ref === 'string' && ref.startsWith('#/$defs/') && seen < 32)
      return deref(
        lookup(decodeURIComponent(ref.slice(8)).replace(/~1/g, '/').replace(/~0/g, '~')),
        seen + 1,
      );
    return s as S;
  };
  // Breadth-first: each kept node lists its children only if the budget covers all of them.
  const root: S = {};
  const queue: Array<{ from: S; into: S; depth: number }> = [];
  const rootSchema = deref(schema);
  if (!rootSchema) return {};
  queue.push({ from: rootSchema, into: root, depth: 0 });
  // An index, not `shift()`; children are counted before any is made (most nodes of a large
  // schema are over budget, and each property used to cost a closure).
  for (let head = 0; head < queue.length; head++) {
    const { from, into, depth } = queue[head]!;
    // Children, in this order: properties, items, additionalProperties, then each branch of anyOf,
    // oneOf, allOf. They are dereferenced only when they are kept (or a composition's are checked):
    // a `$ref` costs a definition's conversion when the defs come from `o.defs`.
    const props = from.properties as Record<string, unknown> | undefined;
    const propKeys = props && typeof props === 'object' ? Object.keys(props) : undefined;
    const hasItems = from.items !== undefined && typeof from.items === 'object';
    const hasMore = from.additionalProperties !== undefined && typeof from.additionalProperties === 'object';
    let count = (propKeys?.length ?? 0) + (hasItems ? 1 : 0) + (hasMore ? 1 : 0);
    const lists: Array<{ key: (typeof COMPOSITIONS)[number]; list: unknown[] }> = [];
    for (const key of COMPOSITIONS) {
      const list = from[key];
      if (!Array.isArray(list)) continue;
      lists.push({ key, list });
      count += list.length;
    }
    // Out of budget, a node keeps its own keywords and loses its outline; a composition keeps only its
    // type and description (its other keywords say little without its branches). Decided before
    // anything is written: deleting keys afterwards left most published nodes in dictionary mode.
    const over = budget.left < count;
    const bare =
      over &&
      Boolean(from.anyOf || from.oneOf || from.allOf) &&
      everyChildResolves(from, propKeys, hasItems, hasMore, lists, deref);
    // What describes without constraining (type, format, const, nullable, a short enum) is kept.
    if (from.type !== undefined) into.type = from.type;
    if (!bare) {
      if (from.format !== undefined) into.format = from.format;
      if (from.const !== undefined) into.const = from.const;
      if (from.nullable !== undefined) into.nullable = from.nullable;
      if (Array.isArray(from.enum) && from.enum.length <= MAX_ENUM) into.enum = from.enum;
    }
    if (depth <= describeDepth && typeof from.description === 'string') {
      const d = from.description;
      into.description = d.length > descriptionMax ? `${d.slice(0, descriptionMax - 1).trimEnd()}…` : d;
    }
    if (over) continue;
    let outProps: Record<string, S> | undefined;
    if (propKeys) {
      outProps = {};
      into.properties = outProps;
      if (Array.isArray(from.required)) into.required = from.required;
    }
    const outLists: S[][] = [];
    for (const { key } of lists) {
      const out: S[] = [];
      into[key] = out;
      outLists.push(out);
    }
    if (count === 0) continue;
    budget.left -= count;
    const keep = (raw: unknown, next: S): void => {
      const s = deref(raw);
      if (s) queue.push({ from: s, into: next, depth: depth + 1 });
    };
    if (propKeys) {
      for (const k of propKeys) {
        const next: S = {};
        if (k === '__proto__') setOwn(outProps!, k, next);
        else outProps![k] = next;
        keep(props![k], next);
      }
    }
    if (hasItems) {
      const next: S = {};
      into.items = next;
      keep(from.items, next);
    }
    if (hasMore) {
      const next: S = {};
      into.additionalProperties = next;
      keep(from.additionalProperties, next);
    }
    lists.forEach(({ list }, j) => {
      const out = outLists[j]!;
      for (let i = 0; i < list.length; i++) {
        const next: S = {};
        out[i] = next;
        keep(list[i], next);
      }
    });
  }
  return root as JsonSchemaObject;
}

/** Enumerations longer than this are not published (the gateway still checks them). */
export const MAX_PUBLISHED_ENUM = 40;
/** Argument descriptions are published up to here, cut at a sentence (else a word) boundary. */
export const MAX_PUBLISHED_ARG_DESCRIPTION = 120;

/**
 * The published input schema: complete — every constraint the model must meet — except what costs a
 * model's context without helping it call: enumerations too long to read (a spec can list 50,000
 * values; Asana's `opt_fields` list every field) become a note, and descriptions keep their opening
 * sentences up to MAX_PUBLISHED_ARG_DESCRIPTION characters (Kubernetes' list parameters carry 300
 * characters each). The gateway validates against the full schema; its errors name the field and,
 * for an enumeration, the first values.
 */
export function economizeInput(schema: JsonSchemaObject): JsonSchemaObject {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      let changed = false;
      const out = v.map((x) => {
        const y = walk(x);
        if (y !== x) changed = true;
        return y;
      });
      return changed ? out : v;
    }
    if (!v || typeof v !== 'object') return v;
    const o = v as S;
    let out: S | undefined;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (k === 'enum' && Array.isArray(x) && x.length > MAX_PUBLISHED_ENUM) {
        out ??= { ...o };
        delete out.enum;
        const note = `One of ${x.length} values, e.g. ${x
          .slice(0, 5)
          .map((e) => JSON.stringify(e))
          .join(', ')} (the full list is checked by the gateway).`;
        out.description = typeof o.description === 'string' ? `${shortened(o.description)} ${note}` : note;
        continue;
      }
      if (ARRAY_ONLY.has(k) && typeof o.type === 'string' && o.type !== 'array') {
        // A no-op on a value of another type (Kubernetes puts `uniqueItems` on every parameter).
        out ??= { ...o };
        delete out[k];
        continue;
      }
      if (k === 'description' && typeof x === 'string' && !(out && out.description !== x)) {
        const d = shortened(x);
        if (d !== x) {
          out ??= { ...o };
          out.description = d;
        }
        continue;
      }
      const y = walk(x);
      if (y !== x) {
        out ??= { ...o };
        setOwn(out, k, y);
      }
    }
    return out ?? o;
  };
  return walk(schema) as JsonSchemaObject;
}

/** Keywords that constrain arrays only: said of a string or a number, they constrain nothing. */
const ARRAY_ONLY = new Set(['uniqueItems', 'minItems', 'maxItems']);

/** A published argument description: its opening sentences within the budget. */
function shortened(d: string): string {
  return d.length <= MAX_PUBLISHED_ARG_DESCRIPTION ? d : cut(d);
}
// Once per text: specs repeat their parameter descriptions on every operation.
const cut = memoByText((d) => cutAtBoundary(d, MAX_PUBLISHED_ARG_DESCRIPTION), 20_000);
