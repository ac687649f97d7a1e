import { compileLinear } from '../lib/linear-regexp.js';
import { defsOf, type JsonSchema, type JsonSchemaObject } from '../model/json-schema.js';

/**
 * A minimal valid value for a schema, built from the schema alone (never from a caller's arguments,
 * which may hold secrets): required properties only, the first fitting `enum` value, `const`,
 * format-appropriate strings, the lowest allowed numbers and lengths. Bounded in depth and nodes.
 * `oneOf`/`anyOf` take the preferred branch first; when a checker is given, a few branch choices are
 * tried and the first value it accepts wins, otherwise there is no example (never a wrong one).
 */
export interface ExampleOptions {
  /** The branch to try first in a `oneOf`/`anyOf` list (0-based), e.g. the one an error names. */
  prefer?: (branches: readonly JsonSchema[]) => number | undefined;
  /** Accepts only values valid for the whole schema (the compiled validator). */
  check?: (value: unknown) => boolean;
  /** Nesting depth at most (default 12). */
  maxDepth?: number;
  /** Schema nodes visited at most per attempt (default 2,000). */
  maxNodes?: number;
  /** Branch choices tried at most when a checker refuses (default 8). */
  attempts?: number;
}

class NoExample extends Error {}

const FORMATS: Record<string, string> = {
  'date-time': '2024-01-01T00:00:00Z',
  date: '2024-01-01',
  time: '00:00:00Z',
  duration: 'P1D',
  email: 'user@example.com',
  'idn-email': 'user@example.com',
  hostname: 'example.com',
  'idn-hostname': 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  uri: 'https://example.com',
  url: 'https://example.com',
  iri: 'https://example.com',
  'uri-reference': 'https://example.com',
  'iri-reference': 'https://example.com',
  'uri-template': 'https://example.com',
  'json-pointer': '/a',
  'relative-json-pointer': '0',
  uuid: '00000000-0000-4000-8000-000000000000',
  regex: '.*',
  byte: 'AAAA',
  int32: '0',
  int64: '0',
  decimal: '0',
  double: '0',
  float: '0',
};

/** Strings tried against a `pattern` (after the format's own), simplest first. */
const PATTERN_TRIES = [
  'a',
  'A',
  '0',
  '1',
  'aa',
  'a1',
  'A1',
  'a-1',
  'abc',
  'ABC',
  '123',
  'a.b',
  'a_b',
  'a@b.c',
];

/** The example, or undefined when none could be built (or none the checker accepts). */
export function exampleOf(
  schema: JsonSchema,
  root: JsonSchemaObject = schema as JsonSchemaObject,
  options: ExampleOptions = {},
): { value: unknown } | undefined {
  const attempts = options.check ? (options.attempts ?? 8) : 1;
  for (let k = 0; k < attempts; k++) {
    try {
      const value = new Builder(root, options, k).build(schema, 0);
      if (!options.check || options.check(value)) return { value };
    } catch (e) {
      if (!(e instanceof NoExample)) throw e;
    }
  }
  return undefined;
}

class Builder {
  private nodes = 0;
  private readonly defs;
  private readonly maxDepth: number;
  private readonly maxNodes: number;

  constructor(
    root: JsonSchemaObject,
    private readonly options: ExampleOptions,
    /** Which rotation of branch choices this attempt makes. */
    private readonly variant: number,
  ) {
    this.defs = defsOf((root.$defs as Record<string, JsonSchema> | undefined) ?? {});
    this.maxDepth = options.maxDepth ?? 12;
    this.maxNodes = options.maxNodes ?? 2000;
  }

  build(s: JsonSchema, depth: number): unknown {
    if (++this.nodes > this.maxNodes || depth > this.maxDepth) throw new NoExample();
    if (s === true) return null;
    if (s === false) throw new NoExample();
    const flat = this.flatten(s, 0);
    if ('const' in flat) return flat.const;
    const branches = (flat.oneOf ?? flat.anyOf) as JsonSchema[] | undefined;
    if (Array.isArray(branches) && branches.length > 0) {
      const { oneOf: _o, anyOf: _a, ...rest } = flat;
      const pick = this.pick(branches);
      return this.build({ allOf: [rest, branches[pick]!] }, depth + 1);
    }
    if (Array.isArray(flat.enum)) {
      const fit = flat.enum.find((v) => fitsType(v, flat.type));
      if (fit === undefined && !flat.enum.some((v) => v === undefined)) {
        if (flat.enum.length === 0) throw new NoExample();
        return flat.enum[0];
      }
      return fit;
    }
    switch (typeOf(flat)) {
      case 'null':
        return null;
      case 'boolean':
        return true;
      case 'integer':
      case 'number':
        return numberFor(flat, typeOf(flat) === 'integer');
      case 'string':
        return stringFor(flat);
      case 'array':
        return this.array(flat, depth);
      case 'object':
        return this.object(flat, depth);
      default:
        return null;
    }
  }

  private pick(branches: readonly JsonSchema[]): number {
    const first = this.options.prefer?.(branches) ?? 0;
    return (first + this.variant) % branches.length;
  }

  /** Resolves `$ref`s and folds `allOf` into one schema (properties merged, bounds tightened). */
  private flatten(s: JsonSchema, depth: number): JsonSchemaObject {
    if (s === true) return {};
    if (s === false || depth > 16) throw new NoExample();
    let out: JsonSchemaObject = { ...s };
    const parts: JsonSchema[] = [];
    if (typeof s.$ref === 'string') {
      const target = this.defs(s.$ref.slice('#/$defs/'.length));
      if (target === undefined) throw new NoExample();
      parts.push(target);
      delete out.$ref;
    }
    if (Array.isArray(s.allOf)) {
      parts.push(...(s.allOf as JsonSchema[]));
      delete out.allOf;
    }
    for (const p of parts) out = merge(out, this.flatten(p, depth + 1));
    return out;
  }

  private array(s: JsonSchemaObject, depth: number): unknown[] {
    const n = typeof s.minItems === 'number' ? s.minItems : 0;
    if (n > 16) throw new NoExample();
    const prefix = (s.prefixItems as JsonSchema[] | undefined) ?? [];
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const item = i < prefix.length ? prefix[i]! : (s.items ?? true);
      out.push(this.build(item, depth + 1));
    }
    if (s.uniqueItems === true && new Set(out.map((v) => JSON.stringify(v))).size < out.length)
      throw new NoExample();
    if (s.contains !== undefined) throw new NoExample();
    return out;
  }

  private object(s: JsonSchemaObject, depth: number): Record<string, unknown> {
    const props = (s.properties ?? {}) as Record<string, JsonSchema>;
    const keys = [...new Set(s.required ?? [])];
    // Required by a property that is present (dependentRequired), transitively.
    const dep = (s.dependentRequired ?? {}) as Record<string, string[]>;
    for (let i = 0; i < keys.length; i++)
      for (const d of dep[keys[i]!] ?? []) if (!keys.includes(d)) keys.push(d);
    const min = typeof s.minProperties === 'number' ? s.minProperties : 0;
    for (const k of Object.keys(props)) if (keys.length < min && !keys.includes(k)) keys.push(k);
    if (keys.length < min || keys.length > 64) throw new NoExample();
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      let sub: JsonSchema | undefined = Object.hasOwn(props, k) ? props[k] : undefined;
      if (sub === undefined) {
        if (s.additionalProperties === false || s.unevaluatedProperties === false) throw new NoExample();
        sub = (s.additionalProperties as JsonSchema | undefined) ?? true;
      }
      out[k] = this.build(sub, depth + 1);
    }
    return out;
  }
}

/** `allOf` parts as one schema: properties and requirements joined, bounds tightened, branches kept. */
function merge(a: JsonSchemaObject, b: JsonSchemaObject): JsonSchemaObject {
  const out: JsonSchemaObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const mine = out[k];
    if (mine === undefined) {
      out[k] = v;
      continue;
    }
    switch (k) {
      case 'properties': {
        const p = { ...(mine as Record<string, JsonSchema>) };
        for (const [name, sub] of Object.entries(v as Record<string, JsonSchema>))
          p[name] = p[name] === undefined ? sub : { allOf: [p[name]!, sub] };
        out.properties = p;
        break;
      }
      case 'required':
        out.required = [...new Set([...(mine as string[]), ...(v as string[])])];
        break;
      case 'type': {
        const x = ([] as string[]).concat(mine as string);
        const y = ([] as string[]).concat(v as string);
        const both = x.filter((t) => y.includes(t) || (t === 'integer' && y.includes('number')));
        for (const t of y) if (t === 'integer' && x.includes('number') && !both.includes(t)) both.push(t);
        if (both.length === 0) throw new NoExample();
        out.type = both;
        break;
      }
      case 'enum':
        out.enum = (mine as unknown[]).filter((m) => (v as unknown[]).some((n) => same(m, n)));
        break;
      case 'const':
        if (!same(mine, v)) throw new NoExample();
        break;
      case 'minimum':
      case 'exclusiveMinimum':
      case 'minLength':
      case 'minItems':
      case 'minProperties':
        out[k] = Math.max(mine as number, v as number);
        break;
      case 'maximum':
      case 'exclusiveMaximum':
      case 'maxLength':
      case 'maxItems':
      case 'maxProperties':
        out[k] = Math.min(mine as number, v as number);
        break;
      case 'oneOf':
      case 'anyOf':
        // Two alternatives at one level: the second becomes a nested part of the first's branches.
        out[k] = (mine as JsonSchema[]).map((m) => ({ allOf: [m, { [k]: v }] }));
        break;
      case 'additionalProperties':
      case 'unevaluatedProperties':
        if (mine === false || v === false) out[k] = false;
        else out[k] = { allOf: [mine, v] };
        break;
      case 'items':
        out.items = { allOf: [mine, v] };
        break;
      case 'description':
      case 'title':
      case 'default':
        break;
      default:
        if (!same(mine, v)) out[k] = { __conflict: true };
    }
  }
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function typeOf(s: JsonSchemaObject): string | undefined {
  const types = ([] as string[]).concat((s.type as string | string[] | undefined) ?? []);
  if (types.length > 0) {
    const real = types.filter((t) => t !== 'null');
    if (real.length === 0) return 'null';
    // The keywords present say which type the author had in mind.
    if (real.includes('object') && (s.properties || s.required)) return 'object';
    if (real.includes('array') && (s.items || s.minItems)) return 'array';
    return real.includes('integer') ? (real.includes('string') && s.format ? 'string' : real[0]) : real[0];
  }
  if (s.properties || s.required || s.additionalProperties !== undefined || s.minProperties) return 'object';
  if (s.items || s.prefixItems || s.minItems) return 'array';
  if (s.minLength || s.maxLength || s.pattern || s.format) return 'string';
  if (s.minimum !== undefined || s.maximum !== undefined || s.multipleOf) return 'number';
  return undefined;
}

function fitsType(v: unknown, type: unknown): boolean {
  if (type === undefined) return true;
  const types = ([] as string[]).concat(type as string);
  return types.some((t) =>
    t === 'null'
      ? v === null
      : t === 'integer'
        ? Number.isInteger(v)
        : t === 'array'
          ? Array.isArray(v)
          : t === 'object'
            ? v !== null && typeof v === 'object' && !Array.isArray(v)
            : typeof v === t,
  );
}

function numberFor(s: JsonSchemaObject, integer: boolean): number {
  const min = s.minimum as number | undefined;
  const max = s.maximum as number | undefined;
  const xmin = s.exclusiveMinimum as number | undefined;
  const xmax = s.exclusiveMaximum as number | undefined;
  const step = typeof s.multipleOf === 'number' && s.multipleOf > 0 ? s.multipleOf : integer ? 1 : undefined;
  let v = 0;
  if (min !== undefined) v = Math.max(v, min);
  if (xmin !== undefined && v <= xmin) v = integer || step ? xmin + (step ?? 1) : xmin + 1;
  if ((min !== undefined || xmin !== undefined) === false) {
    if (max !== undefined && v > max) v = max;
    if (xmax !== undefined && v >= xmax) v = xmax - (step ?? 1);
  }
  if (step !== undefined) {
    v = Math.ceil(v / step - 1e-9) * step;
    if (xmin !== undefined && v <= xmin) v += step;
  }
  if (integer) v = Math.ceil(v);
  if ((max !== undefined && v > max) || (xmax !== undefined && v >= xmax)) throw new NoExample();
  return v + 0; // never -0
}

function stringFor(s: JsonSchemaObject): string {
  const minLength = typeof s.minLength === 'number' ? s.minLength : 0;
  const maxLength = typeof s.maxLength === 'number' ? s.maxLength : Number.POSITIVE_INFINITY;
  const fmt = typeof s.format === 'string' ? FORMATS[s.format] : undefined;
  const base: string = fmt ?? 'string';
  const fits = (x: string) => x.length >= minLength && x.length <= maxLength;
  const pad = (x: string) => (x.length >= minLength ? x : x + 'a'.repeat(minLength - x.length));
  if (typeof s.pattern !== 'string') {
    const v = fmt ? fmt : pad(base.slice(0, Math.max(minLength, Math.min(base.length, maxLength))));
    if (!fits(v)) throw new NoExample();
    return v;
  }
  const re = compileLinear(s.pattern);
  if (!re) throw new NoExample();
  // A format the builder knows leaves one candidate: the pattern must accept it.
  const tries: string[] = fmt ? [fmt] : [base, ...PATTERN_TRIES];
  const fromPattern = fmt ? undefined : sampleOf(s.pattern);
  if (fromPattern !== undefined) tries.unshift(fromPattern, fromPattern.repeat(2));
  for (const t of tries) {
    for (const x of [t, pad(t), t.repeat(Math.max(1, Math.ceil(minLength / t.length)))])
      if (fits(x) && re.matcher(x).find()) return x;
  }
  throw new NoExample();
}

/**
 * A string a simple pattern accepts, read off the pattern itself: literals, escapes, classes (their
 * first member), groups (their first alternative), each quantified atom repeated its minimum number
 * of times. Undefined for anything else; the caller checks the result against the real pattern.
 */
function sampleOf(pattern: string): string | undefined {
  let i = 0;
  const CLASS: Record<string, string> = { d: '0', w: 'a', s: ' ', D: 'a', W: '-', S: 'a' };
  const atom = (): string | undefined => {
    const c = pattern[i++]!;
    if (c === '\\') {
      const e = pattern[i++];
      if (e === undefined) return undefined;
      return CLASS[e] ?? (/[A-Za-z0-9]/.test(e) ? undefined : e);
    }
    if (c === '.') return 'a';
    if (c === '[') {
      if (pattern[i] === '^') return undefined;
      let first: string | undefined;
      while (i < pattern.length && pattern[i] !== ']') {
        let m = pattern[i++]!;
        if (m === '\\') {
          const e = pattern[i++] ?? '';
          m = CLASS[e] ?? (/[A-Za-z0-9]/.test(e) ? '' : e);
          if (!m) return undefined;
        }
        first ??= m;
      }
      i++;
      return first;
    }
    if (c === '(') {
      if (pattern[i] === '?') {
        if (pattern[i + 1] !== ':') return undefined;
        i += 2;
      }
      const inner = sequence(')');
      i++;
      return inner;
    }
    if ('*+?{|)'.includes(c)) return undefined;
    return c;
  };
  const sequence = (end?: string): string | undefined => {
    let out = '';
    while (i < pattern.length && pattern[i] !== end) {
      const c = pattern[i]!;
      if (c === '|') {
        // The first alternative is the sample; the rest is skipped to the end of the group.
        let depth = 0;
        while (i < pattern.length && !(depth === 0 && pattern[i] === end)) {
          if (pattern[i] === '\\') i++;
          else if (pattern[i] === '(') depth++;
          else if (pattern[i] === ')') depth--;
          i++;
        }
        return out;
      }
      if (c === '^' || c === '$') {
        i++;
        continue;
      }
      const a = atom();
      if (a === undefined) return undefined;
      let times = 1;
      const q = pattern[i];
      if (q === '*' || q === '?') times = 0;
      if (q === '*' || q === '+' || q === '?') i++;
      else if (q === '{') {
        const m = /^\{(\d+)(,\d*)?\}/.exec(pattern.slice(i));
        if (!m) return undefined;
        times = Number(m[1]);
        i += m[0].length;
      }
      if (pattern[i] === '?' || pattern[i] === '+') i++; // lazy or possessive
      if (times > 64) return undefined;
      out += a.repeat(times);
    }
    return out;
  };
  try {
    const out = sequence();
    return i >= pattern.length ? out : undefined;
  } catch {
    return undefined;
  }
}
