import { exampleOf } from '../catalog/example.js';
import { relaxOverlappingOneOfs } from '../catalog/one-of.js';
import { createSchemaCompiler } from '../catalog/validator.js';
import { CONFIRM_ARG } from '../control/view.js';
import { WardenError } from '../errors/index.js';
import type { ErrorObject, ValidateFunction } from '../lib/ajv.js';
import type { Catalog, Tool } from '../model/catalog.js';
import type { JsonSchema, JsonSchemaObject } from '../model/json-schema.js';
import type { CallContext } from './context.js';

export interface ValidateOptions {
  catalog: Pick<Catalog, 'formats'>;
  /** At most this many problems are listed in one error (the first ones matter most). */
  maxProblems?: number;
  /** Bounds of the key walk (default KEY_WALK_BUDGET); arguments past them are refused. */
  keyWalk?: KeyWalkBudget;
}

/**
 * Writes `ctx.args`. Arguments are checked against the tool's input schema with Ajv, compiled on a
 * tool's first call (Stripe has hundreds of tools; compiling them all would cost seconds at
 * start-up). No coercion and no defaults: what reaches the upstream is exactly what was checked.
 */
export function createValidate(options: ValidateOptions) {
  const compiler = createSchemaCompiler(options.catalog.formats);
  const cache = new WeakMap<Tool, { check: ValidateFunction; schema: JsonSchemaObject }>();
  const branchChecks = new WeakMap<readonly JsonSchema[], ValidateFunction[]>();
  const maxProblems = options.maxProblems ?? 6;
  const budget = options.keyWalk ?? KEY_WALK_BUDGET;

  return function validate(ctx: CallContext): void {
    const tool = ctx.tool!;
    const raw = ctx.input.arguments === undefined ? {} : ctx.input.arguments;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new WardenError('INVALID_ARGUMENT', 'Invalid arguments: the arguments must be a JSON object.');
    }
    // Before Ajv: its walk is recursive, and it would accept a polluting key the schema allows.
    const walk = walkKeys(raw, budget);
    if (walk.kind !== 'clean') throw keyWalkRefusal(tool, walk);
    let args = raw as Record<string, unknown>;
    if (ctx.decision?.decision.confirm && CONFIRM_ARG in args) {
      // The confirmation token is the gateway's, not the API's: the confirm stage reads it from the input.
      const { [CONFIRM_ARG]: _token, ...rest } = args;
      args = rest;
    }
    let compiled = cache.get(tool);
    if (!compiled) {
      // A `oneOf` whose open branches overlap would refuse every value meant for them: those
      // branches are checked as `anyOf` (src/catalog/one-of.ts); every other `oneOf` stays strict.
      const schema = relaxOverlappingOneOfs(tool.inputSchema);
      compiled = { check: compiler.compile(schema), schema };
      cache.set(tool, compiled);
    }
    const { check, schema } = compiled;
    if (!check(args)) {
      const errors = [...(check.errors ?? [])];
      const problems = explainOrDescribe(errors, tool, maxProblems, () =>
        explainErrors({
          errors,
          tool,
          schema,
          args,
          max: maxProblems,
          check,
          branchCheck: (node, keyword, i) => {
            const branches = node[keyword] as readonly JsonSchema[];
            let list = branchChecks.get(branches);
            if (!list) {
              list = [];
              branchChecks.set(branches, list);
            }
            if (!list[i]) {
              const { [keyword]: _branches, $defs: _defs, ...beside } = node;
              const allOf = [...((beside.allOf as JsonSchema[] | undefined) ?? []), branches[i]!];
              list[i] = compiler.compile({ ...beside, allOf, $defs: schema.$defs ?? {} });
            }
            return list[i]!;
          },
        }),
      );
      throw new WardenError('INVALID_ARGUMENT', `Invalid arguments for ${tool.name}.`, { details: problems });
    }
    ctx.args = args;
  };
}

/** Ajv errors in words a model can act on: which field, what was expected, what to do. */
export function describeErrors(errors: readonly ErrorObject[], tool: Tool, max: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const known = Object.keys((tool.inputSchema.properties as Record<string, unknown> | undefined) ?? {});
  // Branch errors of anyOf/oneOf repeat each alternative; the summary error says it once.
  const branchy = errors.some((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  for (const e of errors) {
    if (branchy && e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && isInsideBranch(e, errors)) continue;
    const line = describe(e, known);
    if (line === undefined || seen.has(line)) continue;
    seen.add(line);
    out.push(line);
    if (out.length >= max) break;
  }
  if (out.length === 0) out.push('the arguments do not match the tool input schema');
  return out;
}

/**
 * The explanation, or, if building it fails on a schema shape it did not foresee, the plain list:
 * the call is refused either way, only less specifically.
 */
function explainOrDescribe(
  errors: ErrorObject[],
  tool: Tool,
  max: number,
  explain: () => string[],
): string[] {
  try {
    return explain();
  } catch {
    return describeErrors(errors, tool, max);
  }
}

/** What `explainErrors` works from: the failed check, its schema, and compiled branch checks. */
export interface ExplainInput {
  errors: ErrorObject[];
  tool: Tool;
  /** The schema `check` was compiled from (the tool's input schema, overlaps relaxed). */
  schema: JsonSchemaObject;
  args: Record<string, unknown>;
  max: number;
  /** The compiled check of the whole schema (verifies the example). */
  check: (value: unknown) => boolean;
  /**
   * The compiled check of branch i of a `oneOf`/`anyOf` list with the keywords beside it (cached by
   * the caller): what a value meant for that branch must satisfy.
   */
  branchCheck: (node: JsonSchemaObject, keyword: 'oneOf' | 'anyOf', i: number) => ValidateFunction;
}

/** `oneOf`/`anyOf` errors analysed per call at most, and branches examined per error. */
const BRANCH_ERRORS_MAX = 2;
const BRANCHES_MAX = 24;
/** Longest example shown (JSON characters); a longer one is left out rather than cut. */
const EXAMPLE_MAX = 800;

/**
 * Ajv errors in words a model can act on, for a tool's arguments: a failed `oneOf`/`anyOf` names the
 * branch that fits best (the one a discriminating `const`/`enum` property selects, else the one with
 * fewest problems) and what it lacks or rejects; the last line is a minimal valid example of the
 * argument, built from the schema only (never from the arguments, which may hold secrets).
 */
export function explainErrors(input: ExplainInput): string[] {
  const { errors, tool, max } = input;
  const branchErrors = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
    .sort((a, b) => a.instancePath.length - b.instancePath.length);
  const chosen = new Map<readonly JsonSchema[], number>();
  const lines: string[] = [];
  const explained: ErrorObject[] = [];
  for (const e of branchErrors.slice(0, BRANCH_ERRORS_MAX)) {
    const found = explainBranches(e, input);
    if (!found) continue;
    chosen.set(found.branches, found.index);
    explained.push(e);
    lines.push(...found.lines);
  }
  // The branch analysis covers everything at and under the place it explains (each branch is
  // checked with the keywords beside it); Ajv's own errors there repeat every branch's.
  const covered = (e: ErrorObject) =>
    explained.some(
      (x) => e.instancePath === x.instancePath || e.instancePath.startsWith(`${x.instancePath}/`),
    );
  const rest = errors.filter((e) => !covered(e));
  const described = rest.length > 0 || lines.length === 0 ? describeErrors(rest, tool, max) : [];
  const out = [...lines, ...described.filter((d) => !lines.includes(d))].slice(0, max);
  const example = exampleLine(errors, input, chosen);
  if (example) out.push(example);
  return out;
}

interface BranchChoice {
  branches: readonly JsonSchema[];
  index: number;
  lines: string[];
}

function explainBranches(e: ErrorObject, input: ExplainInput): BranchChoice | undefined {
  const node = branchesOf(e, input.schema);
  const keyword = e.keyword as 'oneOf' | 'anyOf';
  const branches = node?.[keyword] as JsonSchema[] | undefined;
  if (!node || !Array.isArray(branches) || branches.length === 0 || branches.length > BRANCHES_MAX)
    return undefined;
  const value = valueAt(input.args, e.instancePath);
  const n = branches.length;
  const where = field(e.instancePath);
  const passing = (e.params as { passingSchemas?: number[] | null }).passingSchemas;
  if (Array.isArray(passing) && passing.length > 1) {
    const names = passing.map((i) => branchName(branches[i]!, i, n, input.schema));
    return {
      branches,
      index: passing[0]!,
      lines: [
        `${where} matches more than one of the ${n} allowed shapes (${names.join(', ')}); add the properties that tell one apart`,
      ],
    };
  }
  const disc = discriminatorOf(branches, input.schema) ?? declaredDiscriminator(node, branches, input.schema);
  let index: number | undefined;
  let problems: string[] | undefined;
  const selected = !!disc && value !== null && typeof value === 'object' && disc.property in value;
  if (disc && selected) {
    const v = (value as Record<string, unknown>)[disc.property];
    index = disc.values.findIndex((vs) => vs.some((x) => JSON.stringify(x) === JSON.stringify(v)));
    if (index < 0)
      return {
        branches,
        index: 0,
        lines: [
          `${field(e.instancePath, disc.property)} must be one of: ${list(disc.values.flat())} (it selects which of the ${n} allowed shapes applies)`,
        ],
      };
  }
  // Fewest problems wins; ties go to the earlier branch.
  const candidates = index === undefined ? branches.map((_, i) => i) : [index];
  let best = Number.POSITIVE_INFINITY;
  for (const i of candidates) {
    const check = input.branchCheck(node, keyword, i);
    if (check(value)) continue;
    const errs = (check.errors ?? []).map((x) => ({ ...x, instancePath: e.instancePath + x.instancePath }));
    if (errs.length < best) {
      best = errs.length;
      index = i;
      problems = describeErrors(errs, input.tool, input.max);
    }
  }
  if (index === undefined || problems === undefined) return undefined;
  const name = branchName(branches[index]!, index, n, input.schema);
  const how = e.keyword === 'oneOf' ? 'exactly one' : 'one';
  const by = disc && selected ? ` (selected by ${field(e.instancePath, disc.property)})` : '';
  return {
    branches,
    index,
    lines: [
      `${where} must match ${how} of the ${n} allowed shapes; the closest is ${name}${by}:`,
      ...problems,
    ],
  };
}

/**
 * When no property is pinned per branch (those values are exact, and win): the spec's own
 * discriminator (kept as `x-discriminator`): the values that select each branch, from
 * the mapping (targets matched by schema name), else the branch's schema name (OpenAPI's implicit
 * mapping), else — a mapping with one entry per branch none of whose names match, as bundling
 * leaves external files — the mapping's order. Undefined when a branch is left without a value.
 */
function declaredDiscriminator(
  node: JsonSchemaObject,
  branches: readonly JsonSchema[],
  root: JsonSchemaObject,
): { property: string; values: unknown[][] } | undefined {
  const d = node['x-discriminator'] as
    | { propertyName?: unknown; mapping?: Record<string, string> }
    | undefined;
  if (!d || typeof d.propertyName !== 'string') return undefined;
  const mapping = Object.entries(d.mapping ?? {});
  const namesOf = (b: JsonSchema): string[] => {
    const o = typeof b === 'object' ? b : undefined;
    const ref = typeof o?.$ref === 'string' ? o.$ref.slice('#/$defs/'.length) : undefined;
    const title = resolved(b, root)?.title;
    return [ref, ref?.split('.').pop(), typeof title === 'string' ? title : undefined].filter(
      (x): x is string => !!x,
    );
  };
  // No branch named by the mapping, one entry per branch: bundled external files; take the order.
  const matchedAny = branches.some((b) => mapping.some(([, t]) => namesOf(b).includes(t)));
  if (mapping.length > 0 && !matchedAny && mapping.length === branches.length)
    return { property: d.propertyName, values: mapping.map(([value]) => [value]) };
  const values = branches.map((b) => {
    const names = namesOf(b);
    const mapped = mapping.filter(([, target]) => names.includes(target)).map(([value]) => value);
    if (mapped.length) return mapped;
    const own = typeof b === 'object' && typeof b.$ref === 'string' ? names[0] : undefined;
    return own !== undefined && !mapping.some(([, t]) => t === own) ? [own] : [];
  });
  if (values.every((v) => v.length > 0)) return { property: d.propertyName, values };
  return undefined;
}

/**
 * A property every branch pins to its own `const`/`enum` values, none shared: it says which branch
 * a value means (OpenAPI's `discriminator` is an annotation the converter drops; this is what is left).
 */
function discriminatorOf(
  branches: readonly JsonSchema[],
  root: JsonSchemaObject,
): { property: string; values: unknown[][] } | undefined {
  const pinned = branches.map((b) => pinnedProperties(b, root, 0));
  const first = pinned[0];
  if (!first) return undefined;
  for (const property of first.keys()) {
    const values = pinned.map((p) => p?.get(property));
    if (values.some((v) => v === undefined)) continue;
    const all = values.flat().map((v) => JSON.stringify(v));
    if (new Set(all).size === all.length) return { property, values: values as unknown[][] };
  }
  return undefined;
}

function pinnedProperties(
  s: JsonSchema,
  root: JsonSchemaObject,
  depth: number,
): Map<string, unknown[]> | undefined {
  const o = resolved(s, root);
  if (!o || depth > 4) return undefined;
  const out = new Map<string, unknown[]>();
  for (const [k, p] of Object.entries((o.properties as Record<string, JsonSchema> | undefined) ?? {})) {
    const r = resolved(p, root);
    if (r && 'const' in r) out.set(k, [r.const]);
    else if (r && Array.isArray(r.enum) && r.enum.length > 0 && r.enum.length <= 20) out.set(k, r.enum);
  }
  for (const part of (o.allOf as JsonSchema[] | undefined) ?? []) {
    const more = pinnedProperties(part, root, depth + 1);
    for (const [k, v] of more ?? []) if (!out.has(k)) out.set(k, v);
  }
  return out;
}

function resolved(s: JsonSchema, root: JsonSchemaObject): JsonSchemaObject | undefined {
  let cur: JsonSchema | undefined = s;
  for (let i = 0; i < 8 && typeof cur === 'object' && typeof cur.$ref === 'string'; i++)
    cur = (root.$defs as Record<string, JsonSchema> | undefined)?.[cur.$ref.slice('#/$defs/'.length)];
  return typeof cur === 'object' ? cur : undefined;
}

/** A branch by its title, else the schema it names, else its number. */
function branchName(b: JsonSchema, i: number, n: number, root: JsonSchemaObject): string {
  const o = typeof b === 'object' ? b : undefined;
  const title = typeof o?.title === 'string' ? o.title : resolved(b, root)?.title;
  if (typeof title === 'string' && title) return `shape ${i + 1} of ${n} ("${clip(title, 60)}")`;
  const ref = typeof o?.$ref === 'string' ? o.$ref.slice('#/$defs/'.length) : '';
  if (/^[A-Za-z0-9_-]{1,60}$/.test(ref)) return `shape ${i + 1} of ${n} ("${ref}")`;
  return `shape ${i + 1} of ${n}`;
}

/** The last line: a valid example of the argument the first error is about (or of all arguments). */
function exampleLine(
  errors: readonly ErrorObject[],
  input: ExplainInput,
  chosen: Map<readonly JsonSchema[], number>,
): string | undefined {
  const props = (input.schema.properties as Record<string, JsonSchema> | undefined) ?? {};
  const first = errors[0];
  if (!first) return undefined;
  // A missing argument is reported at the root: the example is of that argument.
  const token =
    first.instancePath === '' && first.keyword === 'required'
      ? String((first.params as { missingProperty?: unknown }).missingProperty)
      : first.instancePath.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~');
  const arg = token !== undefined && Object.hasOwn(props, token) ? token : undefined;
  const required = [...new Set([...(input.schema.required ?? []), ...(arg ? [arg] : [])])];
  const built = exampleOf({ ...input.schema, required }, input.schema, {
    prefer: (branches) => chosen.get(branches),
    check: input.check,
  });
  if (!built) return undefined;
  const value = arg ? (built.value as Record<string, unknown>)[arg] : built.value;
  const text = JSON.stringify(value);
  if (text === undefined || text.length > EXAMPLE_MAX) return undefined;
  return arg ? `example of a valid ${field('', arg)}: ${text}` : `example of valid arguments: ${text}`;
}

/**
 * The branch list an error is about. Its `schemaPath` is relative to the referenced schema Ajv
 * compiled it in (`#/oneOf` inside `$defs/Pet`), so when it does not lead there from the root, the
 * schema is followed along the value's path instead ($refs, allOf parts, properties, items).
 */
function branchesOf(e: ErrorObject, root: JsonSchemaObject): JsonSchemaObject | undefined {
  const direct = schemaAt(root, e.schemaPath.slice(0, -`/${e.keyword}`.length));
  if (Array.isArray(direct?.[e.keyword]) && e.schemaPath.length > `#/${e.keyword}`.length) return direct;
  let here: JsonSchemaObject[] = [root];
  const tokens = e.instancePath
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  for (const t of [...tokens, undefined]) {
    const all = expand(here, root);
    if (t === undefined) {
      return all.find((n) => Array.isArray(n[e.keyword]));
    }
    here = [];
    for (const n of all) {
      const props = n.properties as Record<string, JsonSchema> | undefined;
      const sub = /^\d+$/.test(t)
        ? (n.items as JsonSchema | undefined)
        : props && Object.hasOwn(props, t)
          ? props[t]
          : undefined;
      if (typeof sub === 'object') here.push(sub);
    }
  }
  return undefined;
}

/** The schemas that apply at one place: each with its $ref targets and allOf parts (bounded). */
function expand(nodes: JsonSchemaObject[], root: JsonSchemaObject): JsonSchemaObject[] {
  const out: JsonSchemaObject[] = [];
  const queue = [...nodes];
  while (queue.length > 0 && out.length < 64) {
    const n = queue.shift()!;
    if (out.includes(n)) continue;
    out.push(n);
    const target = typeof n.$ref === 'string' ? resolved(n, root) : undefined;
    if (target) queue.push(target);
    for (const p of (n.allOf as JsonSchema[] | undefined) ?? []) if (typeof p === 'object') queue.push(p);
  }
  return out;
}

function schemaAt(root: JsonSchemaObject, pointer: string): JsonSchemaObject | undefined {
  let cur: unknown = root;
  for (const raw of pointer.replace(/^#/, '').split('/').slice(1)) {
    const t = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, t)) return undefined;
    cur = (cur as Record<string, unknown>)[t];
  }
  return cur !== null && typeof cur === 'object' && !Array.isArray(cur)
    ? (cur as JsonSchemaObject)
    : undefined;
}

function valueAt(args: unknown, pointer: string): unknown {
  let cur = args;
  for (const raw of pointer.split('/').slice(1)) {
    const t = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, t)) return undefined;
    cur = (cur as Record<string, unknown>)[t];
  }
  return cur;
}

function isInsideBranch(e: ErrorObject, all: readonly ErrorObject[]): boolean {
  return all.some(
    (b) =>
      (b.keyword === 'anyOf' || b.keyword === 'oneOf') &&
      e.schemaPath.startsWith(b.schemaPath.slice(0, b.schemaPath.length - b.keyword.length)) &&
      e.schemaPath !== b.schemaPath,
  );
}

function field(instancePath: string, child?: string): string {
  const tokens = instancePath
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) tokens.push(child);
  if (tokens.length === 0) return 'arguments';
  let s = '';
  for (const t of tokens) s += /^\d+$/.test(t) ? `[${t}]` : s ? `.${t}` : t;
  return `'${clip(s, 120)}'`;
}

function clip(s: string, n: number): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > n ? `${clean.slice(0, n)}…` : clean;
}

function list(values: unknown[], n = 10): string {
  const shown = values.slice(0, n).map((v) => clip(JSON.stringify(v) ?? String(v), 60));
  return shown.join(', ') + (values.length > n ? `, … (${values.length} in all)` : '');
}

function describe(e: ErrorObject, known: string[]): string | undefined {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${field(e.instancePath, String(p.missingProperty))} is required`;
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      if (e.instancePath === '')
        return `${field('', name)} is not an argument of this tool${known.length ? ` (it takes: ${list(known, 20)})` : ' (it takes none)'}`;
      return `${field(e.instancePath, name)} is not an allowed property here`;
    }
    case 'unevaluatedProperties':
      return `${field(e.instancePath, String(p.unevaluatedProperty))} is not an allowed property here`;
    case 'type':
      return `${field(e.instancePath)} must be ${article(String(p.type))}`;
    case 'enum':
      return `${field(e.instancePath)} must be one of: ${list((p.allowedValues as unknown[]) ?? [])}`;
    case 'const':
      return `${field(e.instancePath)} must be exactly ${list([p.allowedValue])}`;
    case 'format':
      return `${field(e.instancePath)} must be a valid ${clip(String(p.format), 40)}`;
    case 'pattern':
      return `${field(e.instancePath)} must match the pattern ${clip(String(p.pattern), 80)}`;
    case 'minLength':
    case 'maxLength':
      return `${field(e.instancePath)} must be ${e.keyword === 'minLength' ? 'at least' : 'at most'} ${p.limit} characters long`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${field(e.instancePath)} must be ${String(p.comparison)} ${String(p.limit)}`;
    case 'multipleOf':
      return `${field(e.instancePath)} must be a multiple of ${String(p.multipleOf)}`;
    case 'minItems':
    case 'maxItems':
      return `${field(e.instancePath)} must have ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${p.limit} items`;
    case 'uniqueItems':
      return `${field(e.instancePath)} must not contain duplicate items`;
    case 'minProperties':
    case 'maxProperties':
      return `${field(e.instancePath)} must have ${e.keyword === 'minProperties' ? 'at least' : 'at most'} ${p.limit} properties`;
    case 'anyOf':
    case 'oneOf':
      return `${field(e.instancePath)} must match ${e.keyword === 'oneOf' ? 'exactly one' : 'at least one'} of the allowed shapes (see the tool's input schema)`;
    case 'not':
      return `${field(e.instancePath)} has a value that is not allowed`;
    case 'if':
      return undefined;
    default:
      return `${field(e.instancePath)} is invalid (${clip(e.keyword, 30)})`;
  }
}

function article(type: string): string {
  const parts = type
    .split(',')
    .map((t) => (t === 'integer' || t === 'object' || t === 'array' ? `an ${t}` : `a ${t}`));
  return parts.join(' or ');
}

/** How far the key walk goes; past either bound the call is refused, never let through unchecked. */
export interface KeyWalkBudget {
  /** Values (objects, arrays and primitives alike) examined at most. */
  maxValues: number;
  /** Deepest nesting examined (the arguments object itself is level 0). */
  maxDepth: number;
}

/** 100,000 values and 64 levels: the HTTP frame cap's depth, and far more values than a model writes. */
export const KEY_WALK_BUDGET: KeyWalkBudget = { maxValues: 100_000, maxDepth: 64 };

/** What the key walk found: nothing, a polluting key, or a budget it could not finish within. */
export type KeyWalk =
  | { kind: 'clean' }
  | { kind: 'polluting'; path: string }
  | { kind: 'too-many-values'; limit: number }
  | { kind: 'too-deep'; limit: number };

/**
 * Walks every key of the arguments for one that could pollute a prototype downstream (`__proto__`
 * anywhere, or `prototype` under `constructor`): many upstreams parse `a[__proto__][x]=1` query
 * strings or merge JSON bodies into objects. Iterative and bounded: when a budget runs out the
 * answer says so, and the caller refuses, since an unchecked rest could hide such a key.
 */
export function walkKeys(value: unknown, budget: KeyWalkBudget = KEY_WALK_BUDGET): KeyWalk {
  const tooMany = { kind: 'too-many-values', limit: budget.maxValues } as const;
  const stack: Pending[] = [{ v: value, depth: 0, key: '', up: undefined }];
  // Values are counted as they are queued, so a huge array is refused before it is copied.
  let queued = 1;
  if (queued > budget.maxValues) return tooMany;
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { v, depth } = top;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= budget.maxDepth) return { kind: 'too-deep', limit: budget.maxDepth };
    const keys = Array.isArray(v) ? undefined : Object.keys(v);
    const items = v as unknown[];
    queued += keys ? keys.length : items.length;
    if (queued > budget.maxValues) return tooMany;
    if (!keys) {
      for (let i = 0; i < items.length; i++) stack.push({ v: items[i], depth: depth + 1, key: i, up: top });
      continue;
    }
    for (const k of keys) {
      const next = { v: (v as Record<string, unknown>)[k], depth: depth + 1, key: k, up: top };
      if (k === '__proto__' || (k === 'prototype' && top.key === 'constructor'))
        return { kind: 'polluting', path: pathOf(next) };
      stack.push(next);
    }
  }
  return { kind: 'clean' };
}

/** A value waiting in the key walk; its path is spelt out only if it is reported. */
interface Pending {
  v: unknown;
  depth: number;
  /** Its key in its parent object, or its index in its parent array. */
  key: string | number;
  up: Pending | undefined;
}

function pathOf(p: Pending): string {
  const keys: Array<string | number> = [];
  for (let q: Pending | undefined = p; q?.up; q = q.up) keys.push(q.key);
  let s = '';
  for (const k of keys.reverse()) s += typeof k === 'number' ? `[${k}]` : s ? `.${k}` : k;
  return s;
}

/** The refusal for a key walk that did not come back clean. */
function keyWalkRefusal(tool: Tool, walk: Exclude<KeyWalk, { kind: 'clean' }>): WardenError {
  const why =
    walk.kind === 'polluting'
      ? `'${clip(walk.path, 120)}' is not allowed: keys that reach an object's prototype are refused anywhere in the arguments`
      : walk.kind === 'too-deep'
        ? `the arguments nest deeper than ${walk.limit} levels, the most the gateway checks; flatten them`
        : `the arguments hold more than ${walk.limit} values, the most the gateway checks in one call; send fewer at a time`;
  return new WardenError('INVALID_ARGUMENT', `Invalid arguments for ${tool.name}.`, { details: [why] });
}
