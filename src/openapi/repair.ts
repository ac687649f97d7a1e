import { toPointer } from './parse.js';

/**
 * Real specs break the OpenAPI meta-schema in ways that cannot change what a tool does: a response
 * range written `4xx`, a boolean `required` inside a schema, 3.1 keywords in a 3.0 document… Refusing
 * them would refuse most big official specs. Each kind below is either repaired in place, before the
 * meta-schema check, into the form the catalogue reads the same way, or left as it is and reported
 * (the catalogue already reads it as the author meant). Anything else the meta-schema refuses is
 * still refused, and so is what would make a tool ambiguous or unsafe (see validate.ts).
 */
export type DeviationKind =
  | 'status-range-case'
  | 'path-param-not-required'
  | 'schema-required-boolean'
  | 'schema-required-empty'
  | 'schema-type-array'
  | 'schema-examples'
  | 'schema-const'
  | 'schema-exclusive-bound'
  | 'schema-nullable-3.1'
  | 'param-enum-type'
  | 'example-and-examples'
  | 'info-incomplete'
  | 'ref-siblings-ignored';

export interface SpecDeviation {
  kind: DeviationKind;
  /** `repaired`: rewritten before validation; `ignored`: kept, the catalogue reads it as meant. */
  action: 'repaired' | 'ignored';
  /** What was found and what was done, in one line. */
  message: string;
  count: number;
  /** JSON pointers of the first places (at most MAX_WHERE), in document order. */
  where: string[];
}

export const MAX_WHERE = 10;

const KINDS: Record<DeviationKind, { action: SpecDeviation['action']; message: string }> = {
  'status-range-case': {
    action: 'repaired',
    message: 'response status ranges written in lower case (4xx) read as 4XX',
  },
  'path-param-not-required': {
    action: 'repaired',
    message:
      'path parameters not marked `required: true` marked required (a path template always needs them)',
  },
  'schema-required-boolean': {
    action: 'repaired',
    message: 'boolean `required` inside a schema (not a list of property names) removed',
  },
  'schema-required-empty': { action: 'repaired', message: 'empty `required: []` lists removed' },
  'schema-type-array': {
    action: 'repaired',
    message: 'OpenAPI 3.1 `type: [..]` lists in a 3.0 spec rewritten as `type` + `nullable` or `anyOf`',
  },
  'schema-examples': {
    action: 'repaired',
    message:
      'JSON Schema `examples` inside 3.0/2.0 schemas removed (documentation only; they have `example`)',
  },
  'schema-const': {
    action: 'repaired',
    message: '`const` inside 3.0/2.0 schemas rewritten as a one-value `enum`',
  },
  'schema-exclusive-bound': {
    action: 'repaired',
    message:
      "`exclusiveMinimum`/`exclusiveMaximum` in the other version's form (number in 3.0, boolean in 3.1) rewritten",
  },
  'schema-nullable-3.1': {
    action: 'ignored',
    message: 'OpenAPI 3.0 `nullable: true` in a 3.1 spec honoured (the value may be null)',
  },
  'param-enum-type': {
    action: 'repaired',
    message: "parameter `enum` values of another type than the parameter's (1 for a string) converted",
  },
  'example-and-examples': {
    action: 'repaired',
    message: 'both `example` and `examples` given (documentation only): `example` removed',
  },
  'info-incomplete': {
    action: 'repaired',
    message: 'missing or non-string `info.title`/`info.version`, or a license without a name, filled in',
  },
  'ref-siblings-ignored': {
    action: 'ignored',
    message:
      'keywords beside a `$ref` in a 3.0/2.0 schema ignored, as OpenAPI 3.0 says (only `nullable` is honoured)',
  },
};

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const SCHEMA_ONE = [
  'items',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
];
const SCHEMA_LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SCHEMA_MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SUB_KEYS = [...SCHEMA_ONE, ...SCHEMA_LIST, ...SCHEMA_MAP];
const SUB_ORDER = new Map(SUB_KEYS.map((k, i) => [k, i]));
// Siblings of a 3.0 `$ref` that say nothing a tool would enforce.
const QUIET_SIBLINGS = new Set([
  'description',
  'summary',
  'title',
  'nullable',
  'example',
  'readOnly',
  'writeOnly',
]);
// Data, not spec structure: never walked.
const DATA_KEYS = new Set(['example', 'examples', 'default', 'enum', 'const', 'x-examples']);

type Obj = Record<string, unknown>;
type Dialect = '2.0' | '3.0' | '3.1';

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Walks the document once, repairing in place; returns one entry per kind found, in a fixed order. */
export function repairSpec(doc: Obj, dialect: Dialect): SpecDeviation[] {
  const r = new Repairer(dialect);
  r.info(doc);
  r.walk(doc, 'other', undefined);
  return r.result();
}

/** One warning line per kind: what, how many, and where (capped). */
export function deviationWarning(d: SpecDeviation): string {
  const more = d.count > d.where.length ? `, …and ${d.count - d.where.length} more` : '';
  return `spec deviation ${d.kind} (${d.action}, ${d.count}×): ${d.message} — at ${d.where.join(', ')}${more}`;
}

class Repairer {
  private readonly found = new Map<DeviationKind, { count: number; where: string[] }>();
  private readonly seen = new WeakSet<object>();
  private readonly path: string[] = [];

  constructor(private readonly dialect: Dialect) {}

  result(): SpecDeviation[] {
    return (Object.keys(KINDS) as DeviationKind[]).flatMap((kind) => {
      const f = this.found.get(kind);
      return f ? [{ kind, ...KINDS[kind], count: f.count, where: f.where }] : [];
    });
  }

  private note(kind: DeviationKind, ...tail: string[]): void {
    const f = this.found.get(kind) ?? { count: 0, where: [] };
    this.found.set(kind, f);
    f.count++;
    if (f.where.length < MAX_WHERE) f.where.push(toPointer([...this.path, ...tail]) || '/');
  }

  private child(key: string, node: unknown, as: 'other' | 'schema' | 'parameter'): void {
    this.path.push(key);
    this.walk(node, as, key);
    this.path.pop();
  }

  info(doc: Obj): void {
    if (doc.info === undefined) doc.info = {};
    const info = doc.info;
    if (!isObj(info)) return;
    this.path.push('info');
    for (const k of ['title', 'version'] as const) {
      if (typeof info[k] === 'string') continue;
      info[k] = info[k] === undefined || info[k] === null ? '' : String(info[k]);
      this.note('info-incomplete', k);
    }
    if (isObj(info.license) && typeof info.license.name !== 'string') {
      info.license.name = typeof info.license.url === 'string' ? info.license.url : 'unnamed';
      this.note('info-incomplete', 'license');
    }
    this.path.pop();
  }

  /** `as`: what the node is; `key`: the name it sits under (an operation sits under its method). */
  walk(node: unknown, as: 'other' | 'schema' | 'parameter', key: string | undefined): void {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) this.child(String(i), node[i], as);
      return;
    }
    if (!isObj(node) || this.seen.has(node)) return;
    this.seen.add(node);
    if (as === 'schema') {
      this.schema(node);
      return;
    }
    if (as === 'parameter') this.parameter(node);
    this.exampleAndExamples(node);
    // Object.keys, not Object.entries: no pair allocated per property (issue 22). The values are read
    // as the walk reaches them, as the entries would have been: a repair only rewrites below a key.
    const keys = Object.keys(node);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = node[k];
      if (v === null || typeof v !== 'object' || DATA_KEYS.has(k) || k.startsWith('x-')) continue;
      if (k === 'schema') this.child(k, v, 'schema');
      else if ((k === 'schemas' || k === 'definitions') && isObj(v)) this.schemaMap(k, v);
      else if (k === 'parameters') this.parameters(v);
      else if (k === 'responses' && key !== undefined && METHODS.has(key) && isObj(v)) {
        this.statusRanges(v);
        this.child(k, v, 'other');
      } else this.child(k, v, 'other');
    }
  }

  private schemaMap(key: string, m: Obj): void {
    this.path.push(key);
    const names = Object.keys(m);
    for (let i = 0; i < names.length; i++) this.child(names[i]!, m[names[i]!], 'schema');
    this.path.pop();
  }

  private parameters(v: object): void {
    this.path.push('parameters');
    const entries = Array.isArray(v) ? v.map((p, i) => [String(i), p] as const) : Object.entries(v);
    for (const [k, p] of entries) this.child(k, p, 'parameter');
    this.path.pop();
  }

  private statusRanges(responses: Obj): void {
    if (this.dialect === '2.0') return;
    for (const k of Object.keys(responses)) {
      if (!/^[1-5]xx$/.test(k)) continue;
      this.note('status-range-case', 'responses', k);
      const upper = k.toUpperCase();
      // Both spellings: the upper-case one is the valid one and wins.
      if (!Object.hasOwn(responses, upper)) responses[upper] = responses[k];
      delete responses[k];
    }
  }

  private exampleAndExamples(node: Obj): void {
    if (this.dialect === '2.0' || !('example' in node) || !('examples' in node) || '$ref' in node) return;
    this.note('example-and-examples');
    delete node.example;
  }

  private parameter(p: Obj): void {
    if (typeof p.$ref === 'string') return;
    if (p.in === 'path' && p.required !== true) {
      this.note('path-param-not-required');
      p.required = true;
    }
    // 2.0 non-body parameters carry their type inline; 3.x ones in `schema` (a shared $ref is left alone).
    const holder =
      this.dialect === '2.0' ? (p.in === 'body' ? undefined : p) : isObj(p.schema) ? p.schema : undefined;
    if (holder && typeof holder.$ref !== 'string' && Array.isArray(holder.enum)) {
      const fixed = enumOfType(holder.enum, holder.type);
      if (fixed) {
        holder.enum = fixed;
        this.note('param-enum-type', ...(holder === p ? [] : ['schema']), 'enum');
      }
    }
  }

  private schema(s: Obj): void {
    if (typeof s.$ref === 'string' && this.dialect !== '3.1') this.refSiblings(s);
    this.schemaKeywords(s);
    // The subschema keywords the schema has, visited in the fixed order of SUB_KEYS (SCHEMA_ONE, then
    // SCHEMA_LIST, then SCHEMA_MAP). Found from its own few keys: seventeen lookups of mostly absent
    // keys on objects of a thousand shapes cost a big spec's walk a third of its time (issue 22).
    const keys = Object.keys(s);
    let found: number[] | undefined;
    for (let i = 0; i < keys.length; i++) {
      const at = SUB_ORDER.get(keys[i]!);
      if (at === undefined) continue;
      if (found) found.push(at);
      else found = [at];
    }
    if (found === undefined) return;
    if (found.length > 1) found.sort((a, b) => a - b);
    for (const at of found) {
      const k = SUB_KEYS[at]!;
      const v = s[k];
      if (at < SCHEMA_ONE.length) {
        if (isObj(v) || Array.isArray(v)) this.child(k, v, 'schema');
      } else if (at < SCHEMA_ONE.length + SCHEMA_LIST.length) {
        if (Array.isArray(v)) this.child(k, v, 'schema');
      } else if (isObj(v)) this.schemaMap(k, v);
    }
  }

  private refSiblings(s: Obj): void {
    if (Object.keys(s).some((k) => k !== '$ref' && !k.startsWith('x-') && !QUIET_SIBLINGS.has(k)))
      this.note('ref-siblings-ignored');
  }

  private schemaKeywords(s: Obj): void {
    if (typeof s.required === 'boolean') {
      delete s.required;
      this.note('schema-required-boolean', 'required');
    } else if (Array.isArray(s.required) && s.required.length === 0 && this.dialect !== '3.1') {
      delete s.required;
      this.note('schema-required-empty', 'required');
    }
    if (this.dialect === '3.1') {
      if (s.nullable === true) this.note('schema-nullable-3.1', 'nullable');
      this.exclusiveBounds31(s);
      return;
    }
    // 2.0's schema is draft-04's, where a list of types is valid.
    if (Array.isArray(s.type) && this.dialect === '3.0') this.typeList(s);
    if ('examples' in s) {
      delete s.examples;
      this.note('schema-examples', 'examples');
    }
    if ('const' in s) {
      s.enum = [s.const];
      delete s.const;
      this.note('schema-const', 'const');
    }
    this.exclusiveBounds30(s);
  }

  private typeList(s: Obj): void {
    const types = [...new Set((s.type as unknown[]).filter((t): t is string => typeof t === 'string'))];
    const real = types.filter((t) => t !== 'null');
    this.note('schema-type-array', 'type');
    delete s.type;
    if (types.includes('null')) s.nullable = true;
    if (real.length === 1) s.type = real[0];
    else if (real.length > 1) {
      const alternatives = real.map((t) => ({ type: t }));
      if (Array.isArray(s.anyOf))
        s.allOf = [...(Array.isArray(s.allOf) ? s.allOf : []), { anyOf: alternatives }];
      else s.anyOf = alternatives;
    }
  }

  /** 3.0: `exclusiveMinimum: 5` (3.1's form) → `minimum: 5, exclusiveMinimum: true`, keeping the stricter bound. */
  private exclusiveBounds30(s: Obj): void {
    for (const [ex, inc, stricter] of BOUNDS) {
      const v = s[ex];
      if (typeof v !== 'number') continue;
      this.note('schema-exclusive-bound', ex);
      const cur = s[inc];
      if (typeof cur === 'number' && !stricter(v, cur)) delete s[ex];
      else {
        s[inc] = v;
        s[ex] = true;
      }
    }
  }

  /** 3.1: `minimum: 5, exclusiveMinimum: true` (3.0's form) → `exclusiveMinimum: 5`. */
  private exclusiveBounds31(s: Obj): void {
    for (const [ex, inc] of BOUNDS) {
      const v = s[ex];
      if (typeof v !== 'boolean') continue;
      this.note('schema-exclusive-bound', ex);
      if (v && typeof s[inc] === 'number') {
        s[ex] = s[inc];
        delete s[inc];
      } else delete s[ex];
    }
  }
}

// [exclusive keyword, inclusive keyword, "is the exclusive value at least as strict as the inclusive one"]
const BOUNDS: Array<[string, string, (ex: number, inc: number) => boolean]> = [
  ['exclusiveMinimum', 'minimum', (ex, inc) => ex >= inc],
  ['exclusiveMaximum', 'maximum', (ex, inc) => ex <= inc],
];

/**
 * A parameter's enum in the parameter's own type (on the wire every value is text): numbers and
 * booleans for a string parameter become strings; numeric strings for a number parameter, numbers.
 * Undefined when nothing needs converting or when a value cannot be converted (then the meta-schema
 * and the catalogue see it unchanged).
 */
function enumOfType(values: unknown[], type: unknown): unknown[] | undefined {
  const convert = (v: unknown): unknown => {
    if (type === 'string') return typeof v === 'number' || typeof v === 'boolean' ? String(v) : v;
    if ((type === 'integer' || type === 'number') && typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) && (type === 'number' || Number.isInteger(n)) ? n : v;
    }
    if (type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
    return v;
  };
  const out = values.map(convert);
  return out.some((v, i) => v !== values[i]) ? out : undefined;
}
