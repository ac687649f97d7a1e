import { Ajv2020, addFormats, type ErrorObject, type ValidateFunction } from '../lib/ajv.js';
import { linearRegExp } from '../lib/linear-regexp.js';
import {
  type JsonSchema,
  type JsonSchemaObject,
  SUBSCHEMA_KEYWORDS,
  SUBSCHEMA_LIST_KEYWORDS,
  SUBSCHEMA_MAP_KEYWORDS,
} from '../model/json-schema.js';

/** The keyword a `$ref` into `$defs` becomes in a lazily compiled schema (`compileLazily`). */
const LAZY_REF = 'x-warden-lazy-ref';

/**
 * One Ajv instance per catalogue, configured for untrusted arguments: no type coercion, no
 * defaults injected, strict about the schema's own keywords (the converter emits only 2020-12),
 * lenient about type-keyword pairing that real specs leave implicit. Formats outside ajv-formats'
 * set (`int64`, `binary`, `uri-template`…) are annotations.
 */
export function createSchemaCompiler(formats: readonly string[]) {
  const ajv = new Ajv2020({
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    allErrors: true,
    coerceTypes: false,
    useDefaults: false,
    unicodeRegExp: false,
    validateSchema: false,
    // Ajv would otherwise keep every compiled schema forever, keyed by the schema object.
    addUsedSchema: false,
    // Spec patterns run on RE2: linear time whatever the pattern (no ReDoS from a hostile spec).
    // No tidying pass over the generated code (unused names, inlined constants): it was about half
    // of a schema's compile, which a tool's first call waits for, and the checks it emits are the
    // same (validation time unchanged within noise, issue 22).
    code: { regExp: linearRegExp, optimize: false },
  });
  addFormats(ajv);
  for (const f of formats) if (!ajv.formats[f]) ajv.addFormat(f, true);
  // An annotation only (the operator's data-class tag, kept in output schemas for masking).
  ajv.addKeyword({ keyword: 'x-data-class', schemaType: 'string' });
  // An annotation only (OpenAPI's discriminator, kept in input schemas to explain branch errors).
  ajv.addKeyword({ keyword: 'x-discriminator', schemaType: 'object' });
  const defs = new LazyDefs(ajv);
  return {
    compile(schema: JsonSchemaObject): ValidateFunction {
      return ajv.compile(schema);
    },
    /**
     * The same check, with each `$defs` schema compiled when data first reaches it, once per
     * compiler, and shared by every schema that refers to it. Stripe's output schemas reach 500
     * definitions each: compiled whole, a tool's first result waited 1 to 13 s. What differs from
     * `compile` is only the `schemaPath` of errors found inside a definition (it names the reference).
     * A schema this cannot treat so (see `LazyDefs.fits`) is compiled whole: its root at once, a
     * definition when data first reaches it (walking all 512 of a Stripe closure up front was a
     * third of a first call); the value is then checked again by the whole compile, which this
     * schema uses from then on.
     */
    compileLazily(schema: JsonSchemaObject): Check {
      if (!defs.fits(schema)) return ajv.compile(schema);
      const lazy = ajv.compile(defs.rewrite(schema));
      let whole: ValidateFunction | undefined;
      const check: Check = (data) => {
        if (whole === undefined) {
          try {
            const ok = lazy(data);
            check.errors = lazy.errors;
            return ok;
          } catch (e) {
            if (!(e instanceof UnfitDefinition)) throw e;
            whole = ajv.compile(schema);
          }
        }
        const ok = whole(data);
        check.errors = whole.errors;
        return ok;
      };
      return check;
    },
  };
}

/** A compiled check: the verdict, and after a refusal the errors of that value. */
export interface Check {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** A definition reached that cannot be compiled apart (`LazyDefs.fits`): the schema is compiled whole. */
class UnfitDefinition extends Error {}

type Ajv = InstanceType<typeof Ajv2020>;
type S = Record<string, unknown>;

/** Keywords whose value is a schema, a list of schemas, or a map of names to schemas. */
const ONE = new Set<string>(['items', ...SUBSCHEMA_KEYWORDS]);
const LIST = new Set<string>(SUBSCHEMA_LIST_KEYWORDS);
const MAP = new Set<string>(['properties', ...SUBSCHEMA_MAP_KEYWORDS]);
/**
 * What a definition compiled on its own could not mean the same: evaluation that looks across
 * references (`unevaluated*`), references not into `$defs`, and anything that names a scope.
 */
const UNFIT = new Set([
  'unevaluatedProperties',
  'unevaluatedItems',
  '$dynamicRef',
  '$recursiveRef',
  '$id',
  '$anchor',
  '$dynamicAnchor',
  '$recursiveAnchor',
  '$schema',
  LAZY_REF,
]);

/**
 * The `$defs` of the schemas compiled lazily: each definition (by identity) gets an id, and the
 * keyword `LAZY_REF` with that id validates against the definition compiled on first use. Refs are
 * resolved by key in the `$defs` they came with; a key must mean one schema for the compiler's
 * whole life (a catalogue's closures always agree), else the schema is compiled whole.
 */
class LazyDefs {
  private readonly ids = new WeakMap<object, string>();
  private readonly entries = new Map<
    string,
    { def: JsonSchema; dict: Record<string, JsonSchema>; fn?: ValidateFunction }
  >();
  private readonly byKey = new Map<string, JsonSchema>();
  private readonly fitness = new WeakMap<object, boolean>();

  constructor(private readonly ajv: Ajv) {
    const self = this;
    ajv.addKeyword({
      keyword: LAZY_REF,
      schemaType: 'string',
      errors: true,
      validate: function lazyRef(id: string, data: unknown, _parent?: unknown, cxt?: unknown): boolean {
        const fn = self.validator(id);
        // With the caller's data context the errors carry their full instance path.
        if (fn(data, cxt as never)) return true;
        (lazyRef as { errors?: ErrorObject[] }).errors = fn.errors ?? [];
        return false;
      },
    });
  }

  /**
   * Whether the schema's root keeps its meaning when its definitions are compiled apart, and its
   * definition keys mean what they meant before. Each definition's own tree is checked when data
   * first reaches it (`validator`), not here: most are never reached.
   */
  fits(schema: JsonSchemaObject): boolean {
    const dict = (schema.$defs ?? {}) as Record<string, JsonSchema>;
    for (const [k, d] of Object.entries(dict)) {
      const known = this.byKey.get(k);
      if (known !== undefined && known !== d) return false;
    }
    if (!this.fit(schema, true)) return false;
    for (const [k, d] of Object.entries(dict)) this.byKey.set(k, d);
    return true;
  }

  /** The schema with its `$ref`s into `$defs` turned into lazy references, and no `$defs`. */
  rewrite(schema: JsonSchemaObject): JsonSchemaObject {
    return this.copy(schema, (schema.$defs ?? {}) as Record<string, JsonSchema>, true) as JsonSchemaObject;
  }

  private validator(id: string): ValidateFunction {
    const e = this.entries.get(id);
    // Never expected (ids come from `rewrite`): refusing is the safe answer.
    if (!e) throw new Error(`lazy schema reference ${id} is unknown`);
    // Thrown through the caller's validation to `compileLazily`'s check, which compiles whole.
    if (!e.fn && !this.fit(e.def, false)) throw new UnfitDefinition(id);
    e.fn ??= this.ajv.compile(
      typeof e.def === 'boolean' ? e.def : (this.copy(e.def, e.dict, false) as JsonSchemaObject),
    );
    return e.fn;
  }

  private idOf(def: JsonSchema, dict: Record<string, JsonSchema>): string {
    if (typeof def === 'boolean') {
      const id = `b:${def}`;
      if (!this.entries.has(id)) this.entries.set(id, { def, dict });
      return id;
    }
    let id = this.ids.get(def);
    if (id === undefined) {
      id = `d:${this.entries.size}`;
      this.ids.set(def, id);
      this.entries.set(id, { def, dict });
    }
    return id;
  }

  /** A copy with `$ref: "#/$defs/K"` replaced by the lazy keyword (values of other keywords kept as they are). */
  private copy(s: JsonSchema, dict: Record<string, JsonSchema>, root: boolean): JsonSchema {
    if (typeof s !== 'object' || s === null) return s;
    const out: S = {};
    for (const [k, v] of Object.entries(s as S)) {
      if (k === '$defs' && root) continue;
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
        const target = dict[decodeToken(v.slice('#/$defs/'.length))];
        // An unknown key stays a `$ref`: Ajv refuses to compile it, as it would have before.
        if (target === undefined) setOwn(out, k, v);
        else out[LAZY_REF] = this.idOf(target, dict);
      } else if (ONE.has(k)) setOwn(out, k, this.child(v as JsonSchema, dict));
      else if (LIST.has(k) && Array.isArray(v))
        setOwn(
          out,
          k,
          v.map((x) => this.child(x as JsonSchema, dict)),
        );
      else if (MAP.has(k) && v && typeof v === 'object') {
        const m: S = {};
        for (const [name, sub] of Object.entries(v as S))
          setOwn(m, name, this.child(sub as JsonSchema, dict));
        setOwn(out, k, m);
      } else setOwn(out, k, v);
    }
    return out as JsonSchemaObject;
  }

  /**
   * A subschema in place: one that has branches or properties of its own is compiled when data
   * reaches it, like a definition (a `oneOf` of twenty large objects compiled whole took 300 ms).
   */
  private child(s: JsonSchema, dict: Record<string, JsonSchema>): JsonSchema {
    if (typeof s !== 'object' || s === null || !hasBranches(s as S)) return this.copy(s, dict, false);
    return { [LAZY_REF]: this.idOf(s, dict) } as JsonSchemaObject;
  }

  /** No keyword of UNFIT and no `$ref` but into `$defs`, anywhere in one schema's own tree (definitions memoised). */
  private fit(s: JsonSchema, root: boolean): boolean {
    if (typeof s !== 'object' || s === null) return true;
    if (root) return fitTree(s, true);
    let ok = this.fitness.get(s);
    if (ok === undefined) {
      ok = fitTree(s, false);
      this.fitness.set(s, ok);
    }
    return ok;
  }
}

function fitTree(s: JsonSchema, root: boolean): boolean {
  if (typeof s !== 'object' || s === null) return true;
  for (const [k, v] of Object.entries(s as S)) {
    if (UNFIT.has(k)) return false;
    if (k === '$ref' && !(typeof v === 'string' && v.startsWith('#/$defs/'))) return false;
    if (k === '$defs' && !root) return false;
    if (ONE.has(k) && !fitTree(v as JsonSchema, false)) return false;
    if (LIST.has(k) && Array.isArray(v) && !v.every((x) => fitTree(x as JsonSchema, false))) return false;
    if (
      MAP.has(k) &&
      v &&
      typeof v === 'object' &&
      !Object.values(v as S).every((x) => fitTree(x as JsonSchema, false))
    )
      return false;
  }
  return true;
}

function hasBranches(s: S): boolean {
  return (
    s.properties !== undefined ||
    s.patternProperties !== undefined ||
    Array.isArray(s.allOf) ||
    Array.isArray(s.anyOf) ||
    Array.isArray(s.oneOf) ||
    Array.isArray(s.prefixItems)
  );
}

function decodeToken(t: string): string {
  return decodeURIComponent(t).replace(/~1/g, '/').replace(/~0/g, '~');
}

/** A key named `__proto__` (a spec may have one) stays a key, not a prototype. */
function setOwn(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
