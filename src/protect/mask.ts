import { cachedWords, classifyField, classifyProperty, type TagClass } from '../classify/data-classes.js';
import type { DataClass } from '../model/catalog.js';
import { type DefsLookup, defsOf, type JsonSchema, type JsonSchemaObject } from '../model/json-schema.js';
import type { RedactionCounts } from './detect.js';

export type MaskAction = 'allow' | 'mask' | 'drop';

export interface MaskRules {
  /** What to do with each class. Defaults: secret dropped, PII and financial masked. */
  actions: Readonly<Record<DataClass, MaskAction>>;
  /** Operator tags by property name (policy `fields`): they win over the spec and the rule table. */
  fields: ReadonlyMap<string, TagClass>;
}

export const DEFAULT_ACTIONS: Readonly<Record<DataClass, MaskAction>> = {
  secret: 'drop',
  pii: 'mask',
  financial: 'mask',
};

const SEVERITY: Record<DataClass, number> = { secret: 3, financial: 2, pii: 1 };

const RULES = new Map<string, MaskRules>();
/** One shared rules object per distinct configuration, so maskers and published schemas are reused. */
export function maskRules(
  actions: Partial<Record<DataClass, MaskAction>> | undefined,
  fields: Record<string, TagClass> | undefined,
): MaskRules {
  const a = { ...DEFAULT_ACTIONS, ...(actions ?? {}) };
  const f = Object.entries(fields ?? {}).sort(([x], [y]) => (x < y ? -1 : 1));
  const key = JSON.stringify([a, f]);
  let r = RULES.get(key);
  if (!r) {
    r = { actions: a, fields: new Map(f) };
    if (RULES.size < 10_000) RULES.set(key, r);
  }
  return r;
}

interface Hit {
  class: DataClass;
  kind: string;
}

/** Hits are shared and immutable; their count keys are built with them, not per field. */
function makeHit(cls: DataClass, kind: string): Hit & { masked: string; dropped: string } {
  return { class: cls, kind, masked: countKey('masked', kind), dropped: countKey('dropped', cls) };
}

const COUNT_KEYS = new Map<string, string>();
/** `masked:email`, `dropped:secret`: built once per name, not per field of every response. */
function countKey(prefix: 'masked' | 'dropped', name: string): string {
  const k = `${prefix}\0${name}`;
  let v = COUNT_KEYS.get(k);
  if (!v) {
    v = `${prefix}:${name}`;
    COUNT_KEYS.set(k, v);
  }
  return v;
}

/** What masking does at one schema node; built once per node and reused for every response. */
interface Plan {
  props: Map<string, { hit?: Hit; child: Plan[] }>;
  patterns: Array<{ re: RegExp; child: Plan[] }>;
  additional: Plan[];
  items: Plan[];
  prefixItems: Plan[][];
}

const TAG_HITS = {
  pii: makeHit('pii', 'pii'),
  secret: makeHit('secret', 'secret'),
  financial: makeHit('financial', 'financial'),
} as const;

const PUBLISHED = new WeakMap<MaskRules, WeakMap<object, JsonSchemaObject>>();

/** String constraints a placeholder could break, and the operator's tags (not for clients). */
const RELAXED = new Set(['x-data-class', 'format', 'pattern', 'minLength', 'maxLength']);
const SUBSCHEMA_KEYS = new Set([
  'items',
  'prefixItems',
  'additionalProperties',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedProperties',
  'unevaluatedItems',
]);

/**
 * Masks a response by its schema: walks the data and the tool's output schema together (through
 * arrays, `$ref`-shared definitions, `allOf`/`anyOf`/`oneOf`, `additionalProperties` and
 * `patternProperties`), and applies the tool's action to every classified field: `drop` removes it,
 * `mask` keeps a hint of it (`j***@example.org`, `**** **** **** 1111`, initials), `allow` leaves it.
 * Never throws on data that does not fit the schema: what the schema does not describe is left to
 * detection by value. `published()` is the output schema the masked data is valid against.
 */
export class SchemaMasker {
  private readonly defs: DefsLookup;
  private readonly plans = new Map<JsonSchema, Map<string, Plan>>();
  private readonly root: Plan[];

  constructor(
    private readonly schema: JsonSchemaObject,
    private readonly rules: MaskRules,
  ) {
    this.defs = defsOf((schema.$defs as Record<string, JsonSchema> | undefined) ?? {});
    this.root = this.plansFor(schema, [], 0);
  }

  /** A masked copy (unchanged branches are shared, not copied). */
  mask(value: unknown, counts?: RedactionCounts): unknown {
    return this.apply(value, this.root, counts, 0, '');
  }

  /**
   * `plans` empty means the schema says nothing here (an untyped response, a free-form object): keys
   * are then classified by name alone, so `{"password": …}` is dropped even where no schema names it.
   */
  private apply(
    value: unknown,
    plans: Plan[],
    counts: RedactionCounts | undefined,
    depth: number,
    parentName: string,
  ): unknown {
    if (value === null || typeof value !== 'object' || depth > 64) return value;
    if (Array.isArray(value)) {
      // Common case: no tuple schema, so every item has the same plans (computed once, not per item).
      const tuple = plans.some((p) => p.prefixItems.length > 0);
      const same = tuple ? undefined : plans.length === 1 ? plans[0]!.items : plans.flatMap((p) => p.items);
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const child =
          same ?? plans.flatMap((p) => (i < p.prefixItems.length ? (p.prefixItems[i] ?? []) : p.items));
        const v = this.apply(value[i], child, counts, depth + 1, parentName);
        if (v !== value[i]) {
          out ??= value.slice();
          out[i] = v;
        }
      }
      return out ?? value;
    }
    const obj = value as Record<string, unknown>;
    const tags = this.rules.fields.size > 0 ? this.rules.fields : undefined;
    // Copy-on-write without `delete` (which would turn the copy into a slow dictionary object): the
    // copy is started at the first change, with the keys seen so far, and filled as the walk goes.
    const keys = Object.keys(obj);
    let out: Record<string, unknown> | undefined;
    const startCopy = (upTo: number) => {
      const o: Record<string, unknown> = {};
      for (let j = 0; j < upTo; j++) setKey(o, keys[j]!, obj[keys[j]!]);
      return o;
    };
    for (let ki = 0; ki < keys.length; ki++) {
      const key = keys[ki]!;
      let hit: Hit | undefined;
      let declared = false;
      let child: Plan[];
      if (plans.length === 1) {
        const p = plans[0]!;
        const prop = p.props.get(key);
        if (prop) {
          declared = true;
          hit = prop.hit;
          child = prop.child;
        } else child = p.patterns.length ? this.keyPlans(p, key) : p.additional;
      } else {
        child = [];
        for (const p of plans) {
          const prop = p.props.get(key);
          if (prop) {
            declared = true;
            if (prop.hit && (!hit || SEVERITY[prop.hit.class] > SEVERITY[hit.class])) hit = prop.hit;
            child.push(...prop.child);
          } else child.push(...(p.patterns.length ? this.keyPlans(p, key) : p.additional));
        }
      }
      const v = obj[key];
      if (!declared) hit = this.nameHit(key, v, parentName);
      const tagged = tags?.get(key);
      if (tagged === 'none') hit = undefined;
      else if (tagged) hit = TAG_HITS[tagged];
      const action = hit ? this.rules.actions[hit.class] : 'allow';
      if (action === 'drop') {
        out ??= startCopy(ki);
        if (counts) {
          const ck = (hit as Partial<ReturnType<typeof makeHit>>).dropped ?? countKey('dropped', hit!.class);
          counts[ck] = (counts[ck] ?? 0) + 1;
        }
        continue;
      }
      let next: unknown;
      if (action === 'mask') {
        next = maskValue(v, hit!.kind);
        if (counts && next !== v) {
          const ck = (hit as Partial<ReturnType<typeof makeHit>>).masked ?? countKey('masked', hit!.kind);
          counts[ck] = (counts[ck] ?? 0) + 1;
        }
      } else next = v !== null && typeof v === 'object' ? this.apply(v, child, counts, depth + 1, key) : v;
      if (next !== v) out ??= startCopy(ki);
      if (out) setKey(out, key, next);
    }
    return out ?? obj;
  }

  /** The plans for a key a plan does not name: its matching patternProperties, else additionalProperties. */
  private keyPlans(p: Plan, key: string): Plan[] {
    const out: Plan[] = [];
    for (const pat of p.patterns) if (pat.re.test(key)) out.push(...pat.child);
    return out.length ? out : p.additional;
  }

  private readonly nameHits = new Map<string, Hit | null>();

  /** Classification of a key no schema names, by its name (memoised: keys repeat across items). */
  private nameHit(key: string, v: unknown, parentName: string): Hit | undefined {
    const type = typeOfValue(v);
    const items = Array.isArray(v) ? itemTypesOf(v) : undefined;
    const memoKey = `${key}\0${parentName}\0${type}:${items ?? ''}`;
    let hit = this.nameHits.get(memoKey);
    if (hit === undefined) {
      hit = nameHit(key, type, parentName ? cachedWords(parentName) : [], items) ?? null;
      if (this.nameHits.size < 20_000) this.nameHits.set(memoKey, hit);
    }
    return hit ?? undefined;
  }

  /**
   * The output schema to publish: dropped fields removed (and no longer required), masked fields
   * turned into strings, and string constraints (format, pattern, lengths) relaxed, because detection
   * by value may put a placeholder into any string.
   */
  published(): JsonSchemaObject {
    // Definitions are shared by many tools: each is converted once per set of masking rules.
    let defsMemo = PUBLISHED.get(this.rules);
    if (!defsMemo) {
      defsMemo = new WeakMap();
      PUBLISHED.set(this.rules, defsMemo);
    }
    const memo = defsMemo;
    const convert = (s: JsonSchema, parentWords: string[], depth: number): JsonSchema => {
      if (typeof s !== 'object' || s === null || depth > 64) return s;
      const dropped = new Set<string>();
      const out: JsonSchemaObject = {};
      for (const [k, v] of Object.entries(s)) {
        if (RELAXED.has(k)) continue;
        if (k === 'properties' && v && typeof v === 'object') {
          const props: Record<string, JsonSchema> = {};
          for (const [name, sub] of Object.entries(v as Record<string, JsonSchema>)) {
            const hit = this.hitFor(name, sub, parentWords);
            const action = hit ? this.rules.actions[hit.class] : 'allow';
            if (action === 'drop') dropped.add(name);
            else if (action === 'mask')
              props[name] = {
                type: ['string', 'null', 'array'],
                items: { type: ['string', 'null'] },
                description: `${hit!.class} (${hit!.kind}), masked by mcp-warden`,
              };
            else props[name] = convert(sub, cachedWords(name), depth + 1);
          }
          out.properties = props;
        } else if (k === '$defs') {
          out.$defs = Object.fromEntries(
            Object.entries(v as Record<string, JsonSchema>).map(([name, d]) => {
              if (typeof d !== 'object' || d === null) return [name, d];
              let c = memo.get(d);
              if (!c) {
                c = convert(d, cachedWords(name), depth + 1) as JsonSchemaObject;
                memo.set(d, c);
              }
              return [name, c];
            }),
          );
        } else if (k === 'patternProperties') {
          out[k] = Object.fromEntries(
            Object.entries(v as Record<string, JsonSchema>).map(([name, d]) => [
              name,
              orMasked(convert(d, parentWords, depth + 1)),
            ]),
          );
        } else if (k === 'additionalProperties') {
          // Keys no `properties` names are classified by name: their values may come back masked.
          out[k] = orMasked(convert(v as JsonSchema, parentWords, depth + 1));
        } else if (SUBSCHEMA_KEYS.has(k)) {
          out[k] = Array.isArray(v)
            ? v.map((x) => convert(x as JsonSchema, parentWords, depth + 1))
            : convert(v as JsonSchema, parentWords, depth + 1);
        } else out[k] = v;
      }
      if (dropped.size && Array.isArray(out.required)) {
        const req = out.required.filter((r) => !dropped.has(r));
        if (req.length) out.required = req;
        else delete out.required;
      }
      return out;
    };
    return convert(this.schema, [], 0) as JsonSchemaObject;
  }

  private hitFor(name: string, sub: JsonSchema, parentWords: string[]): Hit | undefined {
    const tagged = this.rules.fields.get(name);
    if (tagged === 'none') return undefined;
    if (tagged) return TAG_HITS[tagged];
    let best: Hit | undefined;
    for (const h of classifyProperty(name, sub, parentWords, this.defs))
      if (!best || SEVERITY[h.class] > SEVERITY[best.class]) best = makeHit(h.class, h.kind);
    return best;
  }

  /** The plans of a schema node (several, when combinators or a `$ref` lead to more than one). */
  private plansFor(s: JsonSchema, parentWords: string[], depth: number): Plan[] {
    if (typeof s !== 'object' || s === null || depth > 48) return [];
    if (typeof s.$ref === 'string') {
      const key = s.$ref.slice('#/$defs/'.length);
      const target = this.defs(key);
      return target === undefined ? [] : this.planOf(target, cachedWords(key), depth + 1);
    }
    return this.planOf(s, parentWords, depth);
  }

  private planOf(s: JsonSchema, parentWords: string[], depth: number): Plan[] {
    if (typeof s !== 'object' || s === null) return [];
    const wordsKey = parentWords.join(' ');
    let byWords = this.plans.get(s);
    const cached = byWords?.get(wordsKey);
    if (cached) return [cached];
    // Registered before its children are built, so recursive schemas end in a cycle, not a loop.
    const plan: Plan = { props: new Map(), patterns: [], additional: [], items: [], prefixItems: [] };
    if (!byWords) {
      byWords = new Map();
      this.plans.set(s, byWords);
    }
    byWords.set(wordsKey, plan);
    const extra: Plan[] = [];
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = s[k];
      if (Array.isArray(list))
        for (const sub of list) extra.push(...this.plansFor(sub as JsonSchema, parentWords, depth + 1));
    }
    if (s.properties)
      for (const [name, sub] of Object.entries(s.properties)) {
        const hit = this.hitFor(name, sub, parentWords);
        plan.props.set(name, {
          ...(hit ? { hit } : {}),
          child: this.plansFor(sub, cachedWords(name), depth + 1),
        });
      }
    const pp = s.patternProperties as Record<string, JsonSchema> | undefined;
    if (pp && typeof pp === 'object')
      for (const [pattern, sub] of Object.entries(pp)) {
        try {
          plan.patterns.push({
            re: new RegExp(pattern, 'u'),
            child: this.plansFor(sub, parentWords, depth + 1),
          });
        } catch {
          /* the catalogue already dropped unusable patterns */
        }
      }
    if (s.additionalProperties && typeof s.additionalProperties === 'object')
      plan.additional = this.plansFor(s.additionalProperties, parentWords, depth + 1);
    if (s.items !== undefined) plan.items = this.plansFor(s.items, parentWords, depth + 1);
    if (Array.isArray(s.prefixItems))
      plan.prefixItems = (s.prefixItems as JsonSchema[]).map((x) => this.plansFor(x, parentWords, depth + 1));
    return extra.length ? [plan, ...extra] : [plan];
  }
}

/** `o[key] = v`, except that a `__proto__` key (JSON.parse makes it an own key) stays a plain key. */
function setKey(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}

const MASKED_SCHEMA: JsonSchemaObject = {
  type: ['string', 'null', 'array'],
  items: { type: ['string', 'null'] },
};

function orMasked(s: JsonSchema): JsonSchema {
  if (s === true || s === false) return s;
  return { anyOf: [s, MASKED_SCHEMA] };
}

/** Classification of a key that no schema describes: by its name and its value's type. */
function nameHit(key: string, type: string, parentWords: string[], items?: string): Hit | undefined {
  const found = classifyField({
    name: key,
    words: cachedWords(key),
    parentWords,
    type: [type],
    ...(items ? { items: items.split(',') } : {}),
    description: '',
  });
  let best: Hit | undefined;
  for (const h of found)
    if (!best || SEVERITY[h.class] > SEVERITY[best.class]) best = { class: h.class, kind: h.kind };
  return best;
}

/** A JSON value's schema type name (`null`, `array`, `object`, `string`…). */
export function typeOfValue(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** The distinct types of an array's first items, sorted and joined (`string`, `number,string`). */
export function itemTypesOf(v: readonly unknown[]): string {
  const types = new Set<string>();
  for (let i = 0; i < Math.min(v.length, 16); i++) types.add(typeOfValue(v[i]));
  return [...types].sort().join(',');
}

/** A masked value keeps a hint for the agent (a domain, the last digits, initials), never the value. */
export function maskValue(v: unknown, kind: string): unknown {
  if (v === null || v === undefined) return v;
  if (Array.isArray(v))
    return v
      .slice(0, 1000)
      .map((x) => (x === null ? null : typeof x === 'string' ? maskValue(x, kind) : `[MASKED:${kind}]`));
  if (typeof v !== 'string') return `[MASKED:${kind}]`;
  if (v.length === 0) return v;
  switch (kind) {
    case 'email': {
      const at = v.lastIndexOf('@');
      return at > 0 ? `${firstChar(v)}***@${v.slice(at + 1, at + 254)}` : `${firstChar(v)}***`;
    }
    case 'phone':
      return keepLastDigits(v.slice(0, 64), 2);
    case 'person-name': {
      let out = '';
      let n = 0;
      for (const w of v.split(' ')) {
        if (w === '') continue;
        out += `${n ? ' ' : ''}${firstChar(w).toUpperCase()}.`;
        if (++n === 6) break;
      }
      return out || '***';
    }
    case 'national-id': {
      const d = lastDigits(v, 4);
      return d.length === 4 ? `***-**-${d}` : '***';
    }
    case 'card-number': {
      const d = lastDigits(v, 4);
      return d.length === 4 && digitCount(v) >= 12 ? `**** **** **** ${d}` : '***';
    }
    case 'bank-account':
      return v.length > 4 ? `****${v.replace(/\s/g, '').slice(-4)}` : '****';
    case 'date-of-birth':
      return /^\d{4}/.test(v) ? `${v.slice(0, 4)}-**-**` : '[MASKED:date-of-birth]';
    case 'ip-address':
      return v.includes('.') ? v.replace(/\.\d{1,3}$/, '.***') : `${v.split(':')[0]}:****`;
    case 'address':
      return '[MASKED:address]';
    default:
      return `${firstChar(v)}***`;
  }
}

/** The first character, whole (a surrogate pair is not split). */
function firstChar(s: string): string {
  const c = s.codePointAt(0);
  return c === undefined ? '' : String.fromCodePoint(c);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (isDigit(s.charCodeAt(i))) n++;
  return n;
}

function lastDigits(s: string, n: number): string {
  let out = '';
  for (let i = s.length - 1; i >= 0 && out.length < n; i--) if (isDigit(s.charCodeAt(i))) out = s[i] + out;
  return out;
}

/** Every digit but the last `keep` becomes `*`; with too few digits to hide anything, all of it. */
function keepLastDigits(s: string, keep: number): string {
  const total = digitCount(s);
  if (total <= 4) return '***';
  let seen = 0;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) out += ++seen > total - keep ? s[i] : '*';
    else out += s[i];
  }
  return out;
}

const MASKERS = new WeakMap<object, Map<MaskRules, SchemaMasker>>();
/** The masker of a tool's output schema under some rules (built once, shared by views). */
export function maskerFor(outputSchema: JsonSchemaObject, rules: MaskRules): SchemaMasker {
  let byRules = MASKERS.get(outputSchema);
  if (!byRules) {
    byRules = new Map();
    MASKERS.set(outputSchema, byRules);
  }
  let m = byRules.get(rules);
  if (!m) {
    m = new SchemaMasker(outputSchema, rules);
    byRules.set(rules, m);
  }
  return m;
}

/** Classification by name alone, for JSON no schema describes (untyped responses, error bodies). */
export function maskUntyped(value: unknown, rules: MaskRules, counts?: RedactionCounts): unknown {
  return maskerFor(UNTYPED, rules).mask(value, counts);
}
const UNTYPED: JsonSchemaObject = {};
