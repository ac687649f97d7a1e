import { type DefsLookup, defsOf, type JsonSchema, type JsonSchemaObject } from '../model/json-schema.js';

/**
 * `oneOf` bodies that refuse what their author meant to accept. When every value valid for one
 * branch is also valid for another (two open object branches that nothing tells apart), a value
 * meant for the first matches both, and `oneOf` refuses it: the tool can never be called that way.
 * Found at load (reported by `scan`), and validated with `anyOf` semantics for exactly those
 * branches (the branch that fits), never for `oneOf`s whose branches are told apart.
 */
export interface OneOfOverlap {
  /** Where the `oneOf` is: a JSON pointer into the tool's input schema (`/properties/body`, `/$defs/X`). */
  at: string;
  /** 1-based branch numbers: every value valid for `covered` is valid for `by` too. */
  covered: number;
  by: number;
}

/** Schema nodes walked at most per schema; past it nothing more is relaxed (strict `oneOf` stays). */
const NODE_BUDGET = 20_000;
/** `oneOf`s with more branches than this are left as they are (pairs are compared). */
const MAX_BRANCHES = 32;

/** The overlapping branch pairs of every `oneOf` in a schema (its `$defs` included). */
export function findOneOfOverlaps(root: JsonSchemaObject): OneOfOverlap[] {
  const out: OneOfOverlap[] = [];
  const defs = defsOf((root.$defs as Record<string, JsonSchema> | undefined) ?? {});
  walk(root, '', (node, at) => {
    for (const [i, j] of overlapsOf(node.oneOf as JsonSchema[], defs))
      out.push({ at, covered: i + 1, by: j + 1 });
  });
  return out;
}

/**
 * The schema with overlapping `oneOf` branches grouped into an `anyOf` (one group left: the `oneOf`
 * becomes an `anyOf`). Copy on write: the same object back when nothing overlaps, and shared
 * `$defs` objects are never modified.
 */
export function relaxOverlappingOneOfs(root: JsonSchemaObject): JsonSchemaObject {
  const defs = defsOf((root.$defs as Record<string, JsonSchema> | undefined) ?? {});
  const changed = new Map<string, JsonSchemaObject>();
  walk(root, '', (node, at) => {
    const pairs = overlapsOf(node.oneOf as JsonSchema[], defs);
    if (pairs.length > 0) changed.set(at, regroup(node, pairs));
  });
  if (changed.size === 0) return root;
  return rebuild(root, '', changed) as JsonSchemaObject;
}

function rebuild(node: unknown, at: string, changed: Map<string, JsonSchemaObject>): unknown {
  const own = changed.get(at);
  const base = own ?? node;
  if (base === null || typeof base !== 'object') return base;
  // Only the branches leading to a change are copied.
  const below = [...changed.keys()].some((k) => k.startsWith(`${at}/`));
  if (!below) return base;
  if (Array.isArray(base)) return base.map((x, i) => rebuild(x, `${at}/${i}`, changed));
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) copy[k] = rebuild(v, `${at}/${escapeToken(k)}`, changed);
  return copy;
}

function regroup(node: JsonSchemaObject, pairs: Array<[number, number]>): JsonSchemaObject {
  const branches = node.oneOf as JsonSchema[];
  const group = branches.map((_, i) => i);
  const find = (i: number): number => {
    if (group[i] !== i) group[i] = find(group[i]!);
    return group[i]!;
  };
  for (const [a, b] of pairs) group[find(a)] = find(b);
  const groups = new Map<number, JsonSchema[]>();
  branches.forEach((b, i) => {
    const g = find(i);
    groups.set(g, [...(groups.get(g) ?? []), b]);
  });
  const { oneOf: _, ...rest } = node;
  if (groups.size === 1) return { ...rest, anyOf: branches };
  return { ...rest, oneOf: [...groups.values()].map((g) => (g.length === 1 ? g[0]! : { anyOf: g })) };
}

function escapeToken(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Visits every object node holding a `oneOf`, with its pointer; bounded by NODE_BUDGET. */
function walk(root: JsonSchemaObject, at: string, visit: (node: JsonSchemaObject, at: string) => void): void {
  const stack: Array<[unknown, string]> = [[root, at]];
  let seen = 0;
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [node, where] = top;
    if (node === null || typeof node !== 'object') continue;
    if (++seen > NODE_BUDGET) return;
    if (Array.isArray(node)) {
      node.forEach((x, i) => {
        stack.push([x, `${where}/${i}`]);
      });
      continue;
    }
    const o = node as JsonSchemaObject;
    if (Array.isArray(o.oneOf) && o.oneOf.length <= MAX_BRANCHES) visit(o, where);
    for (const [k, v] of Object.entries(o)) {
      // Values of these keywords are data, not schemas.
      if (k === 'enum' || k === 'const' || k === 'default' || k === 'required' || k === 'examples') continue;
      if (v !== null && typeof v === 'object') stack.push([v, `${where}/${escapeToken(k)}`]);
    }
  }
}

/** Pairs [i, j] (0-based) where branch i's values are all valid for branch j. */
function overlapsOf(branches: JsonSchema[], defs: DefsLookup): Array<[number, number]> {
  const flat = branches.map((b) => flatObject(b, defs, 0));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i++)
    for (let j = 0; j < flat.length; j++) {
      const a = flat[i];
      const b = flat[j];
      if (i !== j && a && b && covers(b, a)) out.push([i, j]);
    }
  return out;
}

/** An object branch reduced to what decides its values; undefined when it has anything else. */
interface FlatObject {
  props: Map<string, string>;
  required: Set<string>;
  /** Properties outside `props` are allowed (with any value). */
  open: boolean;
  /** `type: object` somewhere: non-objects are refused. */
  typed: boolean;
}

/** Keywords an analysable object branch may hold (annotations and the object shape). */
const OBJECT_KEYS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'allOf',
  '$ref',
  'title',
  'description',
  'deprecated',
  'readOnly',
  'writeOnly',
  'default',
]);

function flatObject(s: JsonSchema, defs: DefsLookup, depth: number): FlatObject | undefined {
  if (typeof s !== 'object' || depth > 8) return undefined;
  if (Object.keys(s).some((k) => !OBJECT_KEYS.has(k))) return undefined;
  const flat: FlatObject = {
    props: new Map(),
    required: new Set(s.required ?? []),
    open: true,
    typed: false,
  };
  if (s.type !== undefined && s.type !== 'object') return undefined;
  let typed = s.type === 'object';
  const parts: JsonSchema[] = [...((s.allOf as JsonSchema[] | undefined) ?? [])];
  if (typeof s.$ref === 'string') {
    const target = defs(s.$ref.slice('#/$defs/'.length));
    if (target === undefined) return undefined;
    parts.push(target);
  }
  if (s.additionalProperties === false) flat.open = false;
  else if (s.additionalProperties !== undefined && s.additionalProperties !== true) return undefined;
  for (const [k, v] of Object.entries(s.properties ?? {})) flat.props.set(k, JSON.stringify(v));
  for (const p of parts) {
    const f = flatObject(p, defs, depth + 1);
    if (!f) return undefined;
    typed ||= f.typed;
    for (const r of f.required) flat.required.add(r);
    // Two parts constraining the same property, or a closed part: beyond this check, not claimed.
    for (const [k, v] of f.props) {
      if (flat.props.has(k) && flat.props.get(k) !== v) return undefined;
      flat.props.set(k, v);
    }
    if (!f.open) return undefined;
  }
  flat.typed = typed;
  return flat;
}

/** Whether every value valid for `a` is valid for `b` (sound: true only when certain). */
function covers(b: FlatObject, a: FlatObject): boolean {
  if (!b.open || (b.typed && !a.typed)) return false;
  for (const r of b.required) if (!a.required.has(r)) return false;
  for (const [k, v] of b.props) {
    if (v === '{}' || v === 'true') continue;
    const mine = a.props.get(k);
    if (mine === undefined ? a.open : mine !== v) return false;
  }
  return true;
}

/** The `scan` report's lines for overlapping `oneOf` branches: one per tool and place. */
export function oneOfWarnings(
  tools: ReadonlyArray<{ name: string; inputSchema: JsonSchemaObject }>,
): string[] {
  const out: string[] = [];
  for (const t of tools) {
    const byPlace = new Map<string, string[]>();
    for (const o of findOneOfOverlaps(t.inputSchema))
      byPlace.set(o.at, [...(byPlace.get(o.at) ?? []), `${o.covered} within ${o.by}`]);
    for (const [at, pairs] of byPlace)
      out.push(
        `${t.name}: oneOf at ${at || '/'} refuses values meant for one branch, which another branch accepts too (branch ${pairs.join(', ')}); calls are validated by the branch that fits (anyOf for those branches)`,
      );
  }
  return out;
}
