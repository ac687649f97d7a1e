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

/** Per format, strings it accepts, the most telling first and then shorter ones (for tight `maxLength`s). */
const FORMATS: Record<string, readonly string[]> = {
  'date-time': ['2024-01-01T00:00:00Z'],
  date: ['2024-01-01'],
  time: ['00:00:00Z'],
  duration: ['P1D'],
  email: ['user@example.com', 'a@b.io'],
  'idn-email': ['user@example.com', 'a@b.io'],
  hostname: ['example.com', 'a.io', 'a'],
  'idn-hostname': ['example.com', 'a.io', 'a'],
  ipv4: ['192.0.2.1', '0.0.0.0'],
  ipv6: ['2001:db8::1', '::1'],
  uri: ['https://example.com', 'https://a.io', 'a:b'],
  url: ['https://example.com', 'https://a.io'],
  iri: ['https://example.com', 'https://a.io', 'a:b'],
  'uri-reference': ['https://example.com', '/a', 'a'],
  'iri-reference': ['https://example.com', '/a', 'a'],
  'uri-template': ['https://example.com', '/a', 'a'],
  'json-pointer': ['/a'],
  'relative-json-pointer': ['0'],
  uuid: ['00000000-0000-4000-8000-000000000000'],
  regex: ['.*'],
  byte: ['AAAA'],
  int32: ['0'],
  int64: ['0'],
  decimal: ['0'],
  double: ['0'],
  float: ['0'],
};

/** Formats whose strings can be lengthened to exactly `n` characters (for a `minLength` above the samples). */
const STRETCH: Record<string, (n: number) => string | undefined> = {
  email: (n) => (n >= 6 ? `${'a'.repeat(n - 5)}@b.io` : undefined),
  'idn-email': (n) => (n >= 6 ? `${'a'.repeat(n - 5)}@b.io` : undefined),
  hostname: (n) => hostOf(n),
  'idn-hostname': (n) => hostOf(n),
  uri: (n) => (n >= 13 ? `https://a.io/${'a'.repeat(n - 13)}` : undefined),
  url: (n) => (n >= 13 ? `https://a.io/${'a'.repeat(n - 13)}` : undefined),
  iri: (n) => (n >= 13 ? `https://a.io/${'a'.repeat(n - 13)}` : undefined),
  'uri-reference': (n) => (n >= 1 ? `/${'a'.repeat(n - 1)}` : undefined),
  'iri-reference': (n) => (n >= 1 ? `/${'a'.repeat(n - 1)}` : undefined),
  'uri-template': (n) => (n >= 1 ? `/${'a'.repeat(n - 1)}` : undefined),
  ipv4: (n) =>
    [
      '0.0.0.0',
      '10.0.0.0',
      '100.0.0.0',
      '100.10.0.0',
      '100.100.0.0',
      '100.100.10.0',
      '100.100.100.0',
      '100.100.100.10',
      '100.100.100.100',
    ][n - 7],
};

/** A hostname of exactly `n` characters: labels of at most 63, dot-separated, 253 at most. */
function hostOf(n: number): string | undefined {
  if (n < 1 || n > 253) return undefined;
  const labels: string[] = [];
  let left = n;
  while (left > 64) {
    labels.push('a'.repeat(63));
    left -= 64;
  }
  labels.push('a'.repeat(left));
  return labels.join('.');
}

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
  /** Which item of a `uniqueItems` array is being built: leaves vary by it so the items differ. */
  private ordinal = 0;
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
      const fits = flat.enum.filter((v) => fitsType(v, flat.type));
      const fit = fits[Math.min(this.ordinal, fits.length - 1)];
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
        return this.ordinal % 2 === 0;
      case 'integer':
      case 'number':
        return numberFor(flat, typeOf(flat) === 'integer', this.ordinal);
      case 'string':
        return stringFor(flat, this.ordinal);
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
    const outer = this.ordinal;
    try {
      for (let i = 0; i < n; i++) {
        const item = i < prefix.length ? prefix[i]! : (s.items ?? true);
        if (s.uniqueItems === true) this.ordinal = i;
        out.push(this.build(item, depth + 1));
      }
    } finally {
      this.ordinal = outer;
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

function numberFor(s: JsonSchemaObject, integer: boolean, ordinal = 0): number {
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  const min = num(s.minimum);
  const max = num(s.maximum);
  const xmin = num(s.exclusiveMinimum);
  const xmax = num(s.exclusiveMaximum);
  const step =
    num(s.multipleOf) !== undefined && (s.multipleOf as number) > 0 ? (s.multipleOf as number) : undefined;
  const multiple = (v: number) => step === undefined || Math.abs(v / step - Math.round(v / step)) < 1e-9;
  const ok = (v: number) =>
    Number.isFinite(v) &&
    (min === undefined || v >= min) &&
    (xmin === undefined || v > xmin) &&
    (max === undefined || v <= max) &&
    (xmax === undefined || v < xmax) &&
    (!integer || Number.isInteger(v)) &&
    multiple(v);
  // Zero when allowed, else the lowest allowed value, else anything inside the bounds.
  const unit = step ?? 1;
  const lower = [min, xmin === undefined ? undefined : xmin + unit].filter((x) => x !== undefined);
  const upper = [max, xmax === undefined ? undefined : xmax - unit].filter((x) => x !== undefined);
  const lo = Math.max(...lower, Number.NEGATIVE_INFINITY);
  const hi = Math.min(...upper, Number.POSITIVE_INFINITY);
  const tries = [0, ...lower, ...(lower.length && upper.length ? [(lo + hi) / 2] : []), ...upper];
  if (xmin !== undefined && xmax !== undefined) tries.push((xmin + xmax) / 2);
  for (const t of tries) {
    const snap = step ?? (integer ? 1 : undefined);
    const cands =
      snap === undefined ? [t] : [Math.ceil(t / snap - 1e-9) * snap, Math.floor(t / snap + 1e-9) * snap];
    const base = cands.find(ok);
    if (base === undefined) continue;
    // The n-th distinct value: n steps up from the first allowed one, else n steps down.
    for (const v of ordinal === 0 ? [base] : [base + ordinal * unit, base - ordinal * unit])
      if (ok(v)) return v + 0; // never -0
    throw new NoExample();
  }
  throw new NoExample();
}

function stringFor(s: JsonSchemaObject, ordinal = 0): string {
  const v = firstString(s);
  if (ordinal === 0) return v;
  // The n-th distinct string: the ordinal written over the end of the text (before an '@' or a
  // uuid's last digits keep their shape), or appended; the caller's checker has the last word.
  const o = String(ordinal + 1);
  const at = v.indexOf('@');
  const tries = v.startsWith('2024-')
    ? [String(2024 + ordinal) + v.slice(4)] // dates and date-times: another year
    : at > 0
      ? [v.slice(0, at) + o + v.slice(at)]
      : [v.slice(0, v.length - o.length) + o, v + o].filter((x) => x !== v);
  const maxLength = typeof s.maxLength === 'number' ? s.maxLength : Number.POSITIVE_INFINITY;
  const minLength = typeof s.minLength === 'number' ? s.minLength : 0;
  const re = typeof s.pattern === 'string' ? compileLinear(s.pattern) : undefined;
  for (const x of tries)
    if (x.length >= minLength && x.length <= maxLength && (!re || re.matcher(x).find())) return x;
  throw new NoExample();
}

function firstString(s: JsonSchemaObject): string {
  const minLength = typeof s.minLength === 'number' ? s.minLength : 0;
  const maxLength = typeof s.maxLength === 'number' ? s.maxLength : Number.POSITIVE_INFINITY;
  const fmts = typeof s.format === 'string' ? FORMATS[s.format] : undefined;
  const fits = (x: string) => x.length >= minLength && x.length <= maxLength;
  const pad = (x: string) => (x.length >= minLength ? x : x + 'a'.repeat(minLength - x.length));
  if (typeof s.pattern !== 'string') {
    // A known format: one of its own strings (padding would break it); otherwise plain text.
    const v = fmts
      ? (fmts.find(fits) ?? STRETCH[s.format as string]?.(minLength))
      : pad('string'.slice(0, Math.max(minLength, Math.min(6, maxLength))));
    if (v === undefined || !fits(v)) throw new NoExample();
    return v;
  }
  const re = compileLinear(s.pattern);
  if (!re) throw new NoExample();
  // A format the builder knows leaves its own candidates: the pattern must accept one.
  const tries: string[] = fmts ? [...fmts] : ['string', ...PATTERN_TRIES];
  const fromPattern = fmts ? undefined : sampleOf(s.pattern);
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
