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

/** Keywords that describe without constraining, kept on every node kept (cheap and useful). */
const KEEP = new Set(['type', 'format', 'const', 'nullable']);
const MAX_ENUM = 20;
/** What a node lists of its children: dropped when the budget cannot cover them. */
const OUTLINE = ['properties', 'required', 'items', 'additionalProperties', 'anyOf', 'oneOf', 'allOf'];

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
  while (queue.length > 0) {
    const { from, into, depth } = queue.shift()!;
    for (const k of KEEP) if (from[k] !== undefined) into[k] = from[k];
    if (Array.isArray(from.enum) && from.enum.length <= MAX_ENUM) into.enum = from.enum;
    if (depth <= describeDepth && typeof from.description === 'string') {
      const d = from.description;
      into.description = d.length > descriptionMax ? `${d.slice(0, descriptionMax - 1).trimEnd()}…` : d;
    }
    // Children are dereferenced only when they are kept (or a composition's are checked): a `$ref`
    // costs a definition's conversion when the defs come from `o.defs`.
    const children: Array<{ raw: unknown; put: (v: S) => void }> = [];
    const props = from.properties as Record<string, unknown> | undefined;
    if (props && typeof props === 'object') {
      const out: Record<string, S> = {};
      into.properties = out;
      for (const [k, v] of Object.entries(props)) children.push({ raw: v, put: (x) => setOwn(out, k, x) });
      if (Array.isArray(from.required)) into.required = from.required;
    }
    if (from.items !== undefined && typeof from.items === 'object')
      children.push({ raw: from.items, put: (x) => (into.items = x) });
    if (from.additionalProperties !== undefined && typeof from.additionalProperties === 'object')
      children.push({ raw: from.additionalProperties, put: (x) => (into.additionalProperties = x) });
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      const list = from[key];
      if (!Array.isArray(list)) continue;
      const out: S[] = [];
      into[key] = out;
      list.forEach((v, i) => {
        children.push({ raw: v, put: (x) => (out[i] = x) });
      });
    }
    if (children.length === 0) continue;
    if (budget.left >= children.length) {
      budget.left -= children.length;
      for (const c of children) {
        const next: S = {};
        c.put(next);
        const s = deref(c.raw);
        if (s) queue.push({ from: s, into: next, depth: depth + 1 });
      }
    } else {
      // Out of budget: this node keeps its own keywords and loses its outline; a composition keeps
      // only its type and description (its other keywords say little without its branches).
      for (const key of OUTLINE) delete into[key];
      if ((from.anyOf || from.oneOf || from.allOf) && children.every((c) => deref(c.raw) !== undefined))
        for (const k of Object.keys(into)) if (k !== 'description' && k !== 'type') delete into[k];
    }
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
    for (const [k, x] of Object.entries(o)) {
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
  return d.length <= MAX_PUBLISHED_ARG_DESCRIPTION ? d : cutAtBoundary(d, MAX_PUBLISHED_ARG_DESCRIPTION);
}
