import { createHash } from 'node:crypto';
import { WardenError } from '../errors/index.js';
import { runsLinear } from '../lib/linear-regexp.js';
import {
  type DefsLookup,
  type JsonSchema,
  type JsonSchemaObject,
  SUBSCHEMA_KEYWORDS,
  SUBSCHEMA_LIST_KEYWORDS,
  SUBSCHEMA_MAP_KEYWORDS,
} from '../model/json-schema.js';
import type { Dialect } from '../openapi/load.js';
import { getByPointer, pointerTokens } from '../openapi/parse.js';
import { cleanDescription, cleanLine } from '../openapi/text.js';

/**
 * Converts OpenAPI Schema Objects (3.0's dialect, or 3.1's JSON Schema) into plain JSON Schema
 * 2020-12 that Ajv compiles in strict-schema mode and MCP clients understand:
 * - `$ref`s to anywhere in the (bundled) document become `#/$defs/<key>`; each referenced schema is
 *   converted once per mode and shared by every tool, so cycles cost nothing and memory stays flat;
 * - 3.0's `nullable` and boolean `exclusiveMinimum/Maximum` become their 2020-12 forms;
 * - OpenAPI-only and vendor keywords (`discriminator`, `xml`, `example`, `x-*`…) are dropped;
 * - `readOnly` properties are left out of inputs and `writeOnly` ones out of outputs (OAS semantics);
 * - every text is sanitised and capped (it reaches a model's context).
 */
export type SchemaMode = 'input' | 'output';

interface Def {
  key: string;
  schema: JsonSchema;
  deps: Set<string>;
}

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object', 'null']);
/** Keywords copied as they are (values are plain JSON). */
const PASS = new Set([
  'const',
  'default',
  'format',
  'minimum',
  'maximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'minContains',
  'maxContains',
  'contentMediaType',
  'contentEncoding',
  'deprecated',
  'readOnly',
  'writeOnly',
  'dependentRequired',
]);

export const SCHEMA_DESCRIPTION_MAX = 400;

export class SchemaConverter {
  private readonly defs = new Map<string, Def>();
  private readonly keys = new Map<string, string>();
  private readonly ptrByKey = new Map<string, string>();
  private readonly usedKeys = new Set<string>();
  /** `format` values met; the validator registers the unknown ones as annotations. */
  readonly formats = new Set<string>();
  readonly warnings: string[] = [];

  constructor(
    private readonly doc: unknown,
    private readonly dialect: Dialect,
  ) {}

  /**
   * Converts a root schema. Returns it with the pointers of the schemas it refers to directly;
   * every schema reachable from them is converted now (each once per spec, whichever tool reaches it
   * first), so a bad `$ref` anywhere fails the load, not a later call. `where` names the place for
   * error messages.
   */
  convert(schema: unknown, mode: SchemaMode, where: string): { schema: JsonSchema; deps: Set<string> } {
    const deps = new Set<string>();
    const root = this.node(schema, mode, deps, where, 0);
    this.prepare(deps, mode);
    return { schema: root, deps };
  }

  private readonly expanded = new Set<string>();

  private prepare(roots: Iterable<string>, mode: SchemaMode): void {
    const queue: string[] = [];
    for (const r of roots) if (!this.expanded.has(`${mode}:${r}`)) queue.push(r);
    while (queue.length > 0) {
      const ptr = queue.pop()!;
      const id = `${mode}:${ptr}`;
      if (this.expanded.has(id)) continue;
      this.expanded.add(id);
      for (const d of this.def(ptr, mode).deps) if (!this.expanded.has(`${mode}:${d}`)) queue.push(d);
    }
  }

  /** Closures already built, by mode and root list: tools with the same references share one. */
  private readonly closures = new Map<string, Record<string, JsonSchema>>();

  /**
   * The `$defs` a schema with these direct references needs, transitively (for self-contained
   * schemas). The same roots in the same order give the same object, not a copy: Stripe's 467
   * output schemas need only 138 distinct closures (of 323 schemas on average), so pinning digests
   * and memory hold each once. Callers must not modify it.
   */
  closure(roots: Iterable<string>, mode: SchemaMode): Record<string, JsonSchema> {
    const list = [...roots];
    const id = JSON.stringify([mode, list]);
    const known = this.closures.get(id);
    if (known) return known;
    const out: Record<string, JsonSchema> = {};
    const queue = list;
    const seen = new Set<string>(queue);
    while (queue.length > 0) {
      const ptr = queue.pop()!;
      const def = this.def(ptr, mode);
      out[def.key] = def.schema;
      for (const d of def.deps) {
        if (!seen.has(d)) {
          seen.add(d);
          queue.push(d);
        }
      }
    }
    this.closures.set(id, out);
    return out;
  }

  /** Looks up a converted schema by its `$defs` key (for walks that follow `#/$defs/…` refs). */
  lookup(mode: SchemaMode): DefsLookup {
    // Definitions found, by key: the classifier's walks ask for the same keys thousands of times,
    // and each ask built and hashed `mode:pointer`. A key names one pointer for good, a definition
    // is registered once (its schema is read on each ask); misses are not kept (converted later).
    const found = new Map<string, Def>();
    return (key) => {
      const known = found.get(key);
      if (known) return known.schema;
      const ptr = this.ptrByKey.get(key);
      if (ptr === undefined) return undefined;
      const def = this.defs.get(`${mode}:${ptr}`);
      if (def) found.set(key, def);
      return def?.schema;
    };
  }

  private def(ptr: string, mode: SchemaMode): Def {
    const id = `${mode}:${ptr}`;
    const cached = this.defs.get(id);
    if (cached) return cached;
    const target = getByPointer(this.doc, ptr);
    const def: Def = { key: this.keyFor(ptr), schema: {}, deps: new Set() };
    // Registered before converting, so a schema that refers to itself finds its own entry.
    this.defs.set(id, def);
    def.schema = this.node(target, mode, def.deps, ptr, 0);
    return def;
  }

  /** Whether following `$ref`s from this one comes back to a reference already followed. */
  /** By reference: asked at every `$ref` met in either mode, and the document does not change. */
  private readonly refLoops = new Map<string, boolean>();
  private isRefLoop(ref: string): boolean {
    let loop = this.refLoops.get(ref);
    if (loop === undefined) {
      loop = this.followsBack(ref);
      this.refLoops.set(ref, loop);
    }
    return loop;
  }

  private followsBack(ref: string): boolean {
    const seen = new Set<string>();
    let cur: string | undefined = ref;
    while (cur?.startsWith('#')) {
      if (seen.has(cur)) return true;
      seen.add(cur);
      const t: unknown = getByPointer(this.doc, cur);
      if (!t || typeof t !== 'object' || Array.isArray(t)) return false;
      const next: unknown = (t as Record<string, unknown>).$ref;
      cur = typeof next === 'string' ? next : undefined;
    }
    return false;
  }

  keyFor(ptr: string): string {
    const known = this.keys.get(ptr);
    if (known) return known;
    const tokens = pointerTokens(ptr);
    const base =
      tokens.length === 3 && tokens[0] === 'components' && tokens[1] === 'schemas'
        ? tokens[2]!
        : tokens.join('.');
    let key = base.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 100) || 'schema';
    if (this.usedKeys.has(key))
      key = `${key.slice(0, 90)}_${createHash('sha256').update(ptr).digest('hex').slice(0, 8)}`;
    this.usedKeys.add(key);
    this.keys.set(ptr, key);
    this.ptrByKey.set(key, ptr);
    return key;
  }

  private node(raw: unknown, mode: SchemaMode, deps: Set<string>, where: string, depth: number): JsonSchema {
    if (typeof raw === 'boolean') return raw;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return {};
    if (depth > 128) {
      throw new WardenError('SPEC_TOO_DEEP', 'a schema nests deeper than 128 levels', {
        location: { pointer: where },
      });
    }
    const s = raw as Record<string, unknown>;
    const out: JsonSchemaObject = {};

    if (typeof s.$ref === 'string') {
      const ref = s.$ref;
      let converted: JsonSchemaObject;
      if (ref.startsWith('#')) {
        // A reference already judged (`refLoops`) resolved then, and the document does not change.
        if (!this.refLoops.has(ref) && getByPointer(this.doc, ref) === undefined) {
          throw new WardenError('SPEC_REF_UNRESOLVED', `$ref ${ref} points to nothing`, {
            location: { pointer: where },
          });
        }
        if (this.isRefLoop(ref)) {
          // `A: { $ref: A }` (or A → B → A) names no schema at all; the validator would recurse forever.
          this.warnings.push(`${where}: $ref ${ref} only ever refers back to itself; treated as "any value"`);
          converted = {};
        } else {
          deps.add(ref);
          converted = { $ref: `#/$defs/${this.keyFor(ref)}` };
        }
      } else {
        this.warnings.push(`${where}: external $ref ${ref} was not bundled; treated as "any value"`);
        converted = {};
      }
      // 3.0 ignores siblings of $ref; 3.1 applies them. `nullable` next to a $ref is honoured in both
      // (authors mean it, and accepting null is the conservative reading for validation).
      if (this.dialect === '3.0')
        return s.nullable === true ? { anyOf: [converted, { type: 'null' }] } : converted;
      Object.assign(out, converted);
    }

    const ctx = (k: string) => `${where}/${k}`;
    // Keys, not entries: no pair array per key (this loop runs once per schema node of the spec).
    for (const k of Object.keys(s)) {
      const v = s[k];
      if (PASS.has(k)) {
        if (k === 'format' && typeof v === 'string') this.formats.add(v);
        out[k] = v;
      } else if (k === 'type') {
        const t = this.type(v);
        if (t !== undefined) out.type = t;
      } else if (k === 'description' && typeof v === 'string') {
        const d = this.description(v);
        if (d) out.description = d;
      } else if (k === 'title' && typeof v === 'string') {
        const t = cleanLine(v, 120);
        if (t) out.title = t;
      } else if (k === 'enum' && Array.isArray(v)) {
        out.enum = v;
      } else if (k === 'pattern' && typeof v === 'string') {
        if (!isUsableRegExp(v))
          this.warnings.push(
            `${ctx(k)}: pattern ${JSON.stringify(v).slice(0, 80)} is not a valid regular expression; ignored`,
          );
        else if (!isSafeRegExp(v))
          // Patterns run on a linear-time engine (RE2): lookarounds and backreferences do not exist there.
          this.warnings.push(
            `${ctx(k)}: pattern ${JSON.stringify(v).slice(0, 80)} uses a feature a linear-time engine cannot run with its JSON Schema meaning (lookaround, backreference, \\S beside other class items…); not enforced`,
          );
        else out.pattern = v;
      } else if (k === 'properties' && v && typeof v === 'object') {
        const props: Record<string, JsonSchema> = {};
        const m = v as Record<string, unknown>;
        for (const name of Object.keys(m)) {
          const sub = m[name];
          if (this.skipProperty(sub, mode)) continue;
          props[name] = this.node(sub, mode, deps, `${ctx(k)}/${name}`, depth + 1);
        }
        out.properties = props;
      } else if (k === 'required' && Array.isArray(v)) {
        out.required = v.filter((x): x is string => typeof x === 'string');
      } else if (k === 'items') {
        if (Array.isArray(v))
          out.prefixItems = v.map((x, i) => this.node(x, mode, deps, `${ctx(k)}/${i}`, depth + 1));
        else out.items = this.node(v, mode, deps, ctx(k), depth + 1);
      } else if (k === 'additionalItems' && Array.isArray(s.items)) {
        out.items = this.node(v, mode, deps, ctx(k), depth + 1);
      } else if ((SUBSCHEMA_KEYWORDS as readonly string[]).includes(k)) {
        out[k] = this.node(v, mode, deps, ctx(k), depth + 1);
      } else if ((SUBSCHEMA_LIST_KEYWORDS as readonly string[]).includes(k) && Array.isArray(v)) {
        if (v.length > 0) out[k] = v.map((x, i) => this.node(x, mode, deps, `${ctx(k)}/${i}`, depth + 1));
      } else if ((SUBSCHEMA_MAP_KEYWORDS as readonly string[]).includes(k) && v && typeof v === 'object') {
        const m: Record<string, JsonSchema> = {};
        for (const [name, sub] of Object.entries(v as Record<string, unknown>)) {
          if (k === 'patternProperties' && !(isUsableRegExp(name) && isSafeRegExp(name))) continue;
          m[name] = this.node(sub, mode, deps, `${ctx(k)}/${name}`, depth + 1);
        }
        out[k] = m;
      } else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && v !== undefined) {
        if (typeof v === 'number') out[k] = v;
        else if (v === true) {
          const bound = k === 'exclusiveMinimum' ? s.minimum : s.maximum;
          if (typeof bound === 'number') out[k] = bound;
        }
      } else if (k === 'discriminator' && mode === 'input') {
        // OpenAPI's discriminator is an annotation (no validation rides on it), kept in inputs under
        // a vendor name so an error on a `oneOf`/`anyOf` body can name the branch the value selects.
        const d = discriminatorOf(v);
        if (d) out['x-discriminator'] = d;
      } else if (
        k === 'x-data-class' &&
        mode === 'output' &&
        ['pii', 'secret', 'financial', 'none'].includes(v as string)
      ) {
        // The operator's own data-class tag: kept for masking (an annotation to clients and Ajv).
        out[k] = v;
      }
      // Everything else (x-*, discriminator, xml, externalDocs, example(s), nullable, $id, $schema,
      // $comment, definitions/$defs nested in the schema) is dropped or handled below.
    }

    // 3.0 exclusive bounds replace the inclusive ones.
    if (typeof out.exclusiveMinimum === 'number' && s.exclusiveMinimum === true) delete out.minimum;
    if (typeof out.exclusiveMaximum === 'number' && s.exclusiveMaximum === true) delete out.maximum;
    if (s.type === 'file') {
      out.type = 'string';
      out.format = 'binary';
      this.formats.add('binary');
    }
    if (out.required && out.properties) {
      // Properties dropped for this mode (readOnly in inputs) cannot stay required.
      const removed = Object.keys((s.properties as object) ?? {}).filter((p) => !(p in out.properties!));
      if (removed.length) out.required = out.required.filter((r) => !removed.includes(r));
    }
    if (out.required?.length === 0) delete out.required;

    if (s.nullable === true) return nullable(out);
    return out;
  }

  /** Cleaned once per text: the same description recurs across schemas and in both modes. */
  private readonly descriptions = new Map<string, string>();
  private description(v: string): string {
    let d = this.descriptions.get(v);
    if (d === undefined) {
      d = cleanDescription(v, SCHEMA_DESCRIPTION_MAX);
      this.descriptions.set(v, d);
    }
    return d;
  }

  private type(v: unknown): string | string[] | undefined {
    if (typeof v === 'string') return TYPES.has(v) ? v : v === 'file' ? 'string' : undefined;
    if (Array.isArray(v)) {
      const t = [...new Set(v.filter((x): x is string => typeof x === 'string' && TYPES.has(x)))];
      return t.length === 0 ? undefined : t.length === 1 ? t[0] : t;
    }
    return undefined;
  }

  private skipProperty(sub: unknown, mode: SchemaMode): boolean {
    if (!sub || typeof sub !== 'object') return false;
    const p = sub as Record<string, unknown>;
    return mode === 'input' ? p.readOnly === true : p.writeOnly === true;
  }
}

function nullable(out: JsonSchemaObject): JsonSchema {
  if (typeof out.type === 'string') {
    if (out.type !== 'null') out.type = [out.type, 'null'];
  } else if (Array.isArray(out.type)) {
    if (!out.type.includes('null')) out.type = [...out.type, 'null'];
  } else if (
    !out.enum &&
    Object.keys(out).some((k) => k === '$ref' || k === 'allOf' || k === 'anyOf' || k === 'oneOf')
  ) {
    return { anyOf: [out, { type: 'null' }] };
  }
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  return out;
}

/** Patterns compile the way the validator will run them (no `u` flag, as ECMA-262 regexes in specs expect). */
/**
 * Whether the validator can run the pattern: it runs every pattern on RE2 (linear time, so no shape
 * of pattern can cause catastrophic backtracking), which has no lookarounds or backreferences.
 */
export function isSafeRegExp(p: string): boolean {
  if (p.length > 1000) return false;
  let ok = safePatterns.get(p);
  if (ok === undefined) {
    ok = runsLinear(p);
    remember(safePatterns, p, ok);
  }
  return ok;
}

export function isUsableRegExp(p: string): boolean {
  let ok = usablePatterns.get(p);
  if (ok === undefined) {
    try {
      new RegExp(p);
      ok = true;
    } catch {
      ok = false;
    }
    remember(usablePatterns, p, ok);
  }
  return ok;
}

// Specs repeat their patterns (Stripe's id formats, every schema once per mode): each is compiled once.
const safePatterns = new Map<string, boolean>();
const usablePatterns = new Map<string, boolean>();
function remember(m: Map<string, boolean>, p: string, ok: boolean): void {
  if (m.size > 10_000) m.clear();
  m.set(p, ok);
}

/**
 * `{ propertyName, mapping? }` with each mapping target reduced to the schema name it ends with
 * (`#/components/schemas/Cat`, `Cat` and `models/pets.yml#/Cat` all name `Cat`): bundling rewrites
 * `$ref`s but never the mapping's strings, so names are what can still be matched to the branches.
 */
function discriminatorOf(v: unknown): { propertyName: string; mapping?: Record<string, string> } | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const { propertyName, mapping } = v as { propertyName?: unknown; mapping?: unknown };
  if (typeof propertyName !== 'string' || !propertyName) return undefined;
  const names: Record<string, string> = {};
  if (mapping && typeof mapping === 'object' && !Array.isArray(mapping)) {
    for (const [value, target] of Object.entries(mapping as Record<string, unknown>).slice(0, 200))
      if (typeof target === 'string') names[value] = target.split('/').pop()!.split('#').pop()!;
  }
  return Object.keys(names).length ? { propertyName, mapping: names } : { propertyName };
}
