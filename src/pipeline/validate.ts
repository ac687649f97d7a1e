import { createSchemaCompiler } from '../catalog/validator.js';
import { CONFIRM_ARG } from '../control/view.js';
import { WardenError } from '../errors/index.js';
import type { ErrorObject, ValidateFunction } from '../lib/ajv.js';
import type { Catalog, Tool } from '../model/catalog.js';
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
  const cache = new WeakMap<Tool, ValidateFunction>();
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
    let check = cache.get(tool);
    if (!check) {
      check = compiler.compile(tool.inputSchema);
      cache.set(tool, check);
    }
    if (!check(args)) {
      const problems = describeErrors(check.errors ?? [], tool, maxProblems);
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
