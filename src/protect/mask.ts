import { cachedWords, classifyField, classifyProperty, type TagClass } from '../classify/data-classes.js';
import type { DataClass } from '../model/catalog.js';
import { type DefsLookup, defsOf, type JsonSchema, type JsonSchemaObject } from '../model/json-schema.js';
import { carryCut, cutOf } from './caps.js';
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

/**
 * What masking does at one schema node; built once per node and reused for every response. A node's
 * own fields are classified when it is built; the plans below it (`Later`) are built when data first
 * reaches them: a large API's schemas reach thousands of definitions, and a response visits few.
 */
interface Plan {
  props: Map<string, { hit?: Hit; child: Later }>;
  patterns: Array<{ re: RegExp; child: Later }>;
  additional: Later | undefined;
  items: Later | undefined;
  prefixItems: Later[];
}

/** The plans of a subschema, built on first use (`SchemaMasker.kids`). */
interface Later {
  readonly s: JsonSchema;
  readonly words: string[];
  readonly depth: number;
  plans?: Plan[];
}

const NO_PLANS: Plan[] = [];

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
  private readonly plans = new Map<JsonSchema, Map<string, Plan[]>>();
  /**
   * Built on the first `mask`, not with the masker: listing tools needs only `published()`, and most
   * tools of a large API are never called (building every plan was a quarter of a start-up).
   */
  private root: Plan[] | undefined;

  constructor(
    private readonly schema: JsonSchemaObject,
    private readonly rules: MaskRules,
    /** The definitions, when the schema comes without its `$defs` (a catalogue's lookup). */
    defs?: DefsLookup,
  ) {
    this.defs = defs ?? defsOf((schema.$defs as Record<string, JsonSchema> | undefined) ?? {});
  }

  /**
   * A masked copy (unchanged branches are shared, not copied). Items `precut` cut off an array are
   * walked for `counts` only: what masking counts stays what the upstream sent.
   */
  mask(value: unknown, counts?: RedactionCounts): unknown {
    this.root ??= this.plansFor(this.schema, [], 0);
    return this.apply(value, this.root, counts, 0, '', false);
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
    /** Counts only: nothing is copied and `value` comes back as it is. */
    dry: boolean,
  ): unknown {
    if (value === null || typeof value !== 'object' || depth > 64) return value;
    if (Array.isArray(value)) {
      // Common case: no tuple schema, so every item has the same plans (computed once, not per item).
      const tuple = plans.some((p) => p.prefixItems.length > 0);
      const same = tuple
        ? undefined
        : plans.length === 1
          ? this.kids(plans[0]!.items)
          : plans.flatMap((p) => this.kids(p.items));
      const childAt = (i: number) =>
        same ?? plans.flatMap((p) => this.kids(i < p.prefixItems.length ? p.prefixItems[i] : p.items));
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const v = this.apply(value[i], childAt(i), counts, depth + 1, parentName, dry);
        if (v !== value[i] && !dry) {
          out ??= value.slice();
          out[i] = v;
        }
      }
      const cut = cutOf(value);
      if (cut && counts)
        for (let i = 0; i < cut.tail.length; i++)
          this.apply(cut.tail[i], childAt(value.length + i), counts, depth + 1, parentName, true);
      if (out) carryCut(value, out);
      return out ?? value;
    }
    const obj = value as Record<string, unknown>;
    const tags = this.rules.fields.size > 0 ? this.rules.fields : undefined;
    // Copy-on-write without `delete` (which would turn the copy into a slow dictionary object): the
    // copy is started at the first change, with the keys seen so far, and filled as the walk goes.
    const keys = Object.keys(obj);
    let out: Record<string, unknown> | undefined;
    for (let ki = 0; ki < keys.length; ki++) {
      const key = keys[ki]!;
      let hit: Hit | undefined;
      let declared = false;
      // The plans below this key: a list, or (one plan, the common case) one `Later` resolved only
      // if the value is an object or array.
      let child: Plan[] | undefined;
      let later: Later | undefined;
      if (plans.length === 1) {
        const p = plans[0]!;
        const prop = p.props.get(key);
        if (prop) {
          declared = true;
          hit = prop.hit;
          later = prop.child;
        } else if (p.patterns.length) child = this.keyPlans(p, key);
        else later = p.additional;
      } else {
        child = [];
        for (const p of plans) {
          const prop = p.props.get(key);
          if (prop) {
            declared = true;
            if (prop.hit && (!hit || SEVERITY[prop.hit.class] > SEVERITY[hit.class])) hit = prop.hit;
            child.push(...this.kids(prop.child));
          } else child.push(...(p.patterns.length ? this.keyPlans(p, key) : this.kids(p.additional)));
        }
      }
      const v = obj[key];
      if (!declared) hit = this.nameHit(key, v, parentName);
      const tagged = tags?.get(key);
      if (tagged === 'none') hit = undefined;
      else if (tagged) hit = TAG_HITS[tagged];
      const action = hit ? this.rules.actions[hit.class] : 'allow';
      if (action === 'drop') {
        if (!dry) out ??= copyUpTo(obj, keys, ki);
        if (counts) {
          const ck = (hit as Partial<ReturnType<typeof makeHit>>).dropped ?? countKey('dropped', hit!.class);
          counts[ck] = (counts[ck] ?? 0) + 1;
        }
        continue;
      }
      let next: unknown;
      if (action === 'mask') {
        if (dry) {
          if (counts && maskChanges(v, hit!.kind)) {
            const ck = (hit as Partial<ReturnType<typeof makeHit>>).masked ?? countKey('masked', hit!.kind);
            counts[ck] = (counts[ck] ?? 0) + 1;
          }
          continue;
        }
        next = maskValue(v, hit!.kind);
        if (counts && next !== v) {
          const ck = (hit as Partial<ReturnType<typeof makeHit>>).masked ?? countKey('masked', hit!.kind);
          counts[ck] = (counts[ck] ?? 0) + 1;
        }
      } else
        next =
          v !== null && typeof v === 'object'
            ? this.apply(v, child ?? this.kids(later), counts, depth + 1, key, dry)
            : v;
      if (dry) continue;
      if (next !== v) out ??= copyUpTo(obj, keys, ki);
      if (out) setKey(out, key, next);
    }
    return out ?? obj;
  }

  /** The plans for a key a plan does not name: its matching patternProperties, else additionalProperties. */
  private keyPlans(p: Plan, key: string): Plan[] {
    const out: Plan[] = [];
    for (const pat of p.patterns) if (pat.re.test(key)) out.push(...this.kids(pat.child));
    return out.length ? out : this.kids(p.additional);
  }

  /** The plans of a subschema, built the first time data reaches it. */
  private kids(l: Later | undefined): Plan[] {
    if (!l) return NO_PLANS;
    l.plans ??= this.plansFor(l.s, l.words, l.depth);
    return l.plans;
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
    return this.publish(false).schema;
  }

  /**
   * `published()` without its `$defs`, and each published definition by key, converted on first
   * request: publishing an outline (catalog/economy.ts) reads a few definitions of closures of
   * hundreds, and converting them all was most of Stripe's first `tools/list`.
   */
  publishedOutline(): { schema: JsonSchemaObject; def: (key: string) => JsonSchema | undefined } {
    return this.publish(true);
  }

  private publish(outline: boolean): {
    schema: JsonSchemaObject;
    def: (key: string) => JsonSchema | undefined;
  } {
    // Definitions are shared by many tools: each is converted once per set of masking rules.
    let defsMemo = PUBLISHED.get(this.rules);
    if (!defsMemo) {
      defsMemo = new WeakMap();
      PUBLISHED.set(this.rules, defsMemo);
    }
    const memo = defsMemo;
    const convertDef = (name: string, d: JsonSchemaObject, depth: number): JsonSchemaObject => {
      let c = memo.get(d);
      if (!c) {
        c = convert(d, cachedWords(name), depth) as JsonSchemaObject;
        memo.set(d, c);
      }
      return c;
    };
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
          // The outline's definitions are converted on request (`def` below).
          if (outline && depth === 0) continue;
          out.$defs = Object.fromEntries(
            Object.entries(v as Record<string, JsonSchema>).map(([name, d]) =>
              typeof d !== 'object' || d === null ? [name, d] : [name, convertDef(name, d, depth + 1)],
            ),
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
    const schema = convert(this.schema, [], 0) as JsonSchemaObject;
    // As the root's `$defs` entries are converted (at depth 1): the same memo, the same objects.
    const def = (key: string): JsonSchema | undefined => {
      const d = this.defs(key);
      return typeof d !== 'object' || d === null ? d : convertDef(key, d, 1);
    };
    return { schema, def };
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
    if (cached) return cached;
    // Registered before its combinators are followed, so a schema that reaches itself through
    // `allOf`/`anyOf`/`oneOf` ends in a cycle, not a loop; replaced by the whole list below, so every
    // path to this node gets the same plans (the plan and its combinators' plans).
    const plan: Plan = {
      props: new Map(),
      patterns: [],
      additional: undefined,
      items: undefined,
      prefixItems: [],
    };
    if (!byWords) {
      byWords = new Map();
      this.plans.set(s, byWords);
    }
    byWords.set(wordsKey, [plan]);
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
          child: { s: sub, words: cachedWords(name), depth: depth + 1 },
        });
      }
    const pp = s.patternProperties as Record<string, JsonSchema> | undefined;
    if (pp && typeof pp === 'object')
      for (const [pattern, sub] of Object.entries(pp)) {
        try {
          plan.patterns.push({
            re: new RegExp(pattern, 'u'),
            child: { s: sub, words: parentWords, depth: depth + 1 },
          });
        } catch {
          /* the catalogue already dropped unusable patterns */
        }
      }
    if (s.additionalProperties && typeof s.additionalProperties === 'object')
      plan.additional = { s: s.additionalProperties, words: parentWords, depth: depth + 1 };
    if (s.items !== undefined) plan.items = { s: s.items, words: parentWords, depth: depth + 1 };
    if (Array.isArray(s.prefixItems))
      plan.prefixItems = (s.prefixItems as JsonSchema[]).map((x) => ({
        s: x,
        words: parentWords,
        depth: depth + 1,
      }));
    const all = extra.length ? [plan, ...extra] : [plan];
    byWords.set(wordsKey, all);
    return all;
  }
}

/** A new object with the first `upTo` of `keys` of `obj` (where a copy-on-write walk starts its copy). */
function copyUpTo(
  obj: Record<string, unknown>,
  keys: readonly string[],
  upTo: number,
): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let j = 0; j < upTo; j++) setKey(o, keys[j]!, obj[keys[j]!]);
  return o;
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

/**
 * Whether `maskValue` would change `v` (so a count-only walk counts what masking would), without
 * building the masked value where the answer is sure: every placeholder holds a `*` or starts with
 * `[`, except initials and an address it cannot shorten, which are computed.
 */
function maskChanges(v: unknown, kind: string): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v !== 'string') return true;
  if (v.length === 0) return false;
  // Initials always hold a `.` (or are `***`); an address with a `.` changes iff it ends in `.<digits>`.
  if (kind === 'person-name') return (!v.includes('.') && v !== '***') || maskValue(v, kind) !== v;
  if (kind === 'ip-address') return v.includes('.') ? /\.\d{1,3}$/.test(v) : maskValue(v, kind) !== v;
  if (!v.includes('*') && v.charCodeAt(0) !== 91) return true;
  return maskValue(v, kind) !== v;
}

/** A masked value keeps a hint for the agent (a domain, the last digits, initials), never the value. */
export function maskValue(v: unknown, kind: string): unknown {
  if (v === null || v === undefined) return v;
  if (Array.isArray(v)) {
    const out = v
      .slice(0, 1000)
      .map((x) => (x === null ? null : typeof x === 'string' ? maskValue(x, kind) : `[MASKED:${kind}]`));
    carryCut(v, out, 1000);
    return out;
  }
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
export function maskerFor(outputSchema: JsonSchemaObject, rules: MaskRules, defs?: DefsLookup): SchemaMasker {
  let byRules = MASKERS.get(outputSchema);
  if (!byRules) {
    byRules = new Map();
    MASKERS.set(outputSchema, byRules);
  }
  let m = byRules.get(rules);
  if (!m) {
    m = new SchemaMasker(outputSchema, rules, defs);
    byRules.set(rules, m);
  }
  return m;
}

/** Classification by name alone, for JSON no schema describes (untyped responses, error bodies). */
export function maskUntyped(value: unknown, rules: MaskRules, counts?: RedactionCounts): unknown {
  return maskerFor(UNTYPED, rules).mask(value, counts);
}
const UNTYPED: JsonSchemaObject = {};
