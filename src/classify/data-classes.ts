import { memoByText } from '../lib/text-memo.js';
import type { DataClass, DataField } from '../model/catalog.js';
import {
  type DefsLookup,
  defsOf,
  type JsonSchema,
  type JsonSchemaObject,
  resolveLocal,
} from '../model/json-schema.js';
import { words } from '../openapi/text.js';

/** What a field rule sees: the property name's words, its schema, and the enclosing property's words. */
export interface FieldFacts {
  name: string;
  words: string[];
  parentWords: string[];
  type: string[];
  /** For an array: the types of its items, when known (a schema's `items`, or the values seen). */
  items?: string[];
  format?: string;
  description: string;
}

export interface DataRule {
  id: string;
  class: DataClass;
  kind: string;
  description: string;
  test(f: FieldFacts): string | undefined;
}

const has = (f: FieldFacts, ...w: string[]) => w.some((x) => f.words.includes(x));
const joined = (f: FieldFacts) => f.words.join('_');
/** A string, an untyped value, or a list of strings (`emails: [...]`, `passwords: [...]`). */
const isText = (f: FieldFacts) =>
  f.type.length === 0 ||
  f.type.includes('string') ||
  (f.type.includes('array') && (!f.items?.length || f.items.includes('string')));
/** Flags, counts and timestamps *about* a secret are not the secret (`has_password`, `token_expires_at`). */
const isMeta = (f: FieldFacts) =>
  !isText(f)
    ? true
    : has(
        f,
        'has',
        'is',
        'expires',
        'expiry',
        'expiration',
        'type',
        'url',
        'uri',
        'count',
        'length',
        'last4',
        'hint',
        'required',
        'set',
        'enabled',
        'changed',
        'updated',
        'created',
        'id',
      );
const PERSONISH = new Set([
  'customer',
  'customers',
  'user',
  'users',
  'person',
  'persons',
  'people',
  'owner',
  'contact',
  'contacts',
  'member',
  'members',
  'employee',
  'employees',
  'patient',
  'patients',
  'author',
  'committer',
  'billing',
  'shipping',
  'holder',
  'cardholder',
  'individual',
  'recipient',
  'sender',
  'representative',
  'beneficiary',
  'guest',
  'account',
  'profile',
  'details',
]);
const describes = (f: FieldFacts, re: RegExp) => isText(f) && re.test(f.description);

const PASSWORD_WORDS = new Set(['password', 'passwd', 'pwd', 'passphrase', 'passcode']);
const TOKEN_WORDS = new Set(['token', 'secret', 'jwt', 'bearer', 'credential']);
/** Singular forms of the plural nouns secret names use. */
const SINGULAR: Record<string, string> = {
  passwords: 'password',
  passwds: 'passwd',
  pwds: 'pwd',
  passphrases: 'passphrase',
  passcodes: 'passcode',
  tokens: 'token',
  secrets: 'secret',
  credentials: 'credential',
  creds: 'credential',
  keys: 'key',
  jwts: 'jwt',
  apikeys: 'apikey',
};
/** Secret nouns found glued to a word before them (`dbpassword`, `accesstoken`, `APIKEY`). */
const GLUED = /^([a-z0-9]+?)(password|passwd|passphrase|passcode|secret|token|credential)$/;
const GLUED_KEY = /^(api|private|secret|signing|access|encryption|master|client|webhook)(key)$/;
/** Words after a secret noun that say how it is written, not what it is (`private_key_pem`, `token_value`). */
const WRITTEN_AS = new Set([
  'pem',
  'der',
  'b64',
  'base64',
  'hex',
  'value',
  'raw',
  'encoded',
  'plain',
  'plaintext',
  'text',
  'str',
  'string',
  'data',
  'material',
  'bytes',
]);
/**
 * Words that make a field *about* a secret rather than the secret: its rules and limits
 * (`password_policy`, `password_min_length`), its name or where it is kept (`secret_name`, `secretRef`).
 */
const ABOUT_SECRET = new Set([
  'policy',
  'policies',
  'rule',
  'rules',
  'strength',
  'complexity',
  'requirement',
  'requirements',
  'min',
  'max',
  'minimum',
  'maximum',
  'age',
  'history',
  'format',
  'pattern',
  'regex',
  'score',
  'prompt',
  'label',
  'name',
  'ref',
  'reference',
  'path',
  'file',
  'field',
  'param',
  'parameter',
  'header',
  'redacted',
  'masked',
  'obfuscated',
  'preview',
  'prefix',
  'suffix',
]);
/** Objects and lists whose every value is a secret: `secrets.database`, `credentials.password`. */
const CONTAINER_WORDS = new Set(['secrets', 'secret', 'credentials', 'credential', 'creds', 'passwords']);
/** What describes a secret in such a container (kept): its name, kind, where it is for. */
const DESCRIBES_SECRET = [
  'name',
  'description',
  'label',
  'title',
  'note',
  'notes',
  'kind',
  'status',
  'state',
  'scope',
  'scopes',
  'provider',
  'service',
  'object',
  'owner',
  'project',
  'visibility',
  'version',
];

/**
 * A name's words as secret rules read them: each word singular, secret nouns glued to the word before
 * them split off (`dbpassword` → `db password`, `apikey` → `api key`), and trailing words that only
 * say how the value is written dropped (`private_key_pem` → `private key`).
 */
export function secretWords(words: readonly string[], list = false): string[] {
  // Three rules ask the same of one field's words (and one of its parent's) in one `runRules`.
  if (secretA?.words === words && secretA.list === list) return secretA.out;
  if (secretB?.words === words && secretB.list === list) return secretB.out;
  const out = splitSecretWords(words, list);
  secretB = secretA;
  secretA = { words, list, out };
  return out;
}

/** The last two answers of `secretWords` (a field's words and its parent's), forgotten by each `runRules`. */
type SecretWordsAnswer = { words: readonly string[]; list: boolean; out: string[] } | undefined;
let secretA: SecretWordsAnswer;
let secretB: SecretWordsAnswer;

function splitSecretWords(words: readonly string[], list: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const raw = words[i]!;
    // A plural name is a list of secrets when it holds a list (`passwords: [...]`); a plain string
    // named in the plural is usually a setting about them (`permissions.secrets: "write"`).
    const singular = i < words.length - 1 || list || raw === 'credentials' || raw === 'creds';
    const w = singular ? (SINGULAR[raw] ?? raw) : raw;
    const m = GLUED_KEY.exec(w) ?? (PASSWORD_WORDS.has(w) || TOKEN_WORDS.has(w) ? null : GLUED.exec(w));
    if (m) out.push(m[1]!, m[2]!);
    else out.push(w);
  }
  while (out.length > 1 && WRITTEN_AS.has(out[out.length - 1]!)) out.pop();
  return out;
}

const aboutSecret = (f: FieldFacts) => f.words.some((w) => ABOUT_SECRET.has(w));
const isList = (f: FieldFacts) => f.type.includes('array');

/**
 * The field classification table. A field matches on its name's words, its `format`, or a strong
 * phrase in its description; a rule's reason is shown to operators as is.
 */
export const DATA_RULES: readonly DataRule[] = [
  {
    id: 'pii-email',
    class: 'pii',
    kind: 'email',
    description: 'Email addresses: name has "email", or format email/idn-email.',
    test: (f) =>
      f.format === 'email' || f.format === 'idn-email'
        ? `format ${f.format}`
        : has(f, 'email', 'emails') && isText(f) && !isMeta(f)
          ? 'name says email'
          : describes(f, /\be-?mail address\b/i) && !isMeta(f)
            ? 'description says email address'
            : undefined,
  },
  {
    id: 'pii-phone',
    class: 'pii',
    kind: 'phone',
    description: 'Phone numbers: name has phone/mobile/telephone/fax/msisdn.',
    test: (f) =>
      has(f, 'phone', 'mobile', 'telephone', 'fax', 'msisdn', 'cellphone') && isText(f) && !isMeta(f)
        ? 'name says phone'
        : describes(f, /\bphone number\b/i) && !isMeta(f)
          ? 'description says phone number'
          : undefined,
  },
  {
    id: 'pii-name',
    class: 'pii',
    kind: 'person-name',
    description:
      'Person names: first/last/full/given/family/middle name, surname; a bare "name" inside a person-like object.',
    test: (f) => {
      if (!isText(f)) return undefined;
      const j = joined(f);
      if (
        /^(first|last|full|given|family|middle|maiden|legal|display)_?name$|^(surname|firstname|lastname|fullname)$/.test(
          j,
        )
      )
        return `name "${f.name}" is a person's name`;
      if (j === 'name' && f.parentWords.some((w) => PERSONISH.has(w)))
        return `"name" of a ${f.parentWords.join(' ')}`;
      // owner_name, customerName, contact_name: a person-like word, then "name".
      if (f.words.length === 2 && f.words[1] === 'name' && PERSONISH.has(f.words[0]!))
        return `name "${f.name}" is a ${f.words[0]}'s name`;
      return undefined;
    },
  },
  {
    id: 'pii-address',
    class: 'pii',
    kind: 'address',
    description: 'Postal addresses: address, street, line1/line2, postal code, zip.',
    test: (f) =>
      (has(f, 'address', 'street', 'line1', 'line2', 'postcode', 'zip', 'zipcode') ||
        /postal_code/.test(joined(f))) &&
      !has(f, 'ip', 'mac', 'email', 'wallet', 'url', 'web') &&
      !isMeta(f)
        ? 'name says postal address'
        : undefined,
  },
  {
    id: 'pii-birth-date',
    class: 'pii',
    kind: 'date-of-birth',
    description: 'Dates of birth: dob, birthdate, date_of_birth, birthday.',
    test: (f) =>
      has(f, 'dob', 'birthdate', 'birthday') || /birth/.test(joined(f))
        ? 'name says date of birth'
        : undefined,
  },
  {
    id: 'pii-national-id',
    class: 'pii',
    kind: 'national-id',
    description: 'National identifiers: ssn, social security, national id, passport, tax id, driver licence.',
    test: (f) => {
      const j = joined(f);
      return has(f, 'ssn', 'passport', 'nino') ||
        /social_security|national_id|tax_id|taxpayer|id_number|personal_id|driver_?s?_licen[cs]e|driving_licen[cs]e/.test(
          j,
        ) ||
        describes(f, /\bsocial security number\b/i)
        ? 'name says national identifier'
        : undefined;
    },
  },
  {
    id: 'pii-ip',
    class: 'pii',
    kind: 'ip-address',
    description: 'IP addresses: format ipv4/ipv6, or name ip / ip_address / remote_addr.',
    test: (f) =>
      f.format === 'ipv4' || f.format === 'ipv6'
        ? `format ${f.format}`
        : (joined(f) === 'ip' || /(^|_)ip_?(address|addr)$|remote_addr|client_ip/.test(joined(f))) &&
            isText(f)
          ? 'name says IP address'
          : undefined,
  },
  {
    id: 'secret-password',
    class: 'secret',
    kind: 'password',
    description: 'Passwords and passphrases, or format password.',
    test: (f) => {
      if (f.format === 'password') return 'format password';
      if (isMeta(f) || aboutSecret(f)) return undefined;
      return secretWords(f.words, isList(f)).some((w) => PASSWORD_WORDS.has(w)) ||
        describes(f, /^(the )?password\b/i)
        ? 'name says password'
        : undefined;
    },
  },
  {
    id: 'secret-token',
    class: 'secret',
    kind: 'token',
    description:
      'Tokens, secrets and credentials: a name ending in token/secret/credential, any case, plural or glued (access_token, client_secret, accessToken, SECRETS, credential).',
    test: (f) => {
      const w = secretWords(f.words, isList(f));
      // `id` marks metadata (`token_id`), except in OpenID Connect's `id_token`, itself a token.
      const idToken = isText(f) && w.join('_') === 'id_token';
      if (!idToken && (isMeta(f) || aboutSecret(f))) return undefined;
      return TOKEN_WORDS.has(w[w.length - 1] ?? '') ? `name "${f.name}" is a token or secret` : undefined;
    },
  },
  {
    id: 'secret-key',
    class: 'secret',
    kind: 'key',
    description:
      'Keys that grant access: api key, private key, secret key, signing key (not public keys or key ids).',
    test: (f) => {
      if (isMeta(f) || aboutSecret(f) || has(f, 'public', 'fingerprint')) return undefined;
      const j = secretWords(f.words, isList(f)).join('_');
      if (/(^|_)(api|private|secret|signing|access|encryption|master|client|webhook)_?key$|^apikey$/.test(j))
        return `name "${f.name}" is a key`;
      if (describes(f, /\b(api key|private key|secret key)\b/i) && /key/.test(j))
        return 'description says secret key';
      return undefined;
    },
  },
  {
    id: 'secret-in-container',
    class: 'secret',
    kind: 'secret',
    description:
      'Values inside an object or list named for secrets (secrets.database, credentials.password, passwords[*].value), except what describes them (name, type, id…).',
    test: (f) => {
      if (isMeta(f) || aboutSecret(f) || has(f, ...DESCRIBES_SECRET)) return undefined;
      const p = f.parentWords;
      const w = secretWords(p, true);
      const l = p[p.length - 1] ?? '';
      return CONTAINER_WORDS.has(l) ||
        (w.length > 1 && /(^|_)(api|private|secret|access)_key$/.test(w.join('_')))
        ? `"${f.name}" inside "${p.join('_')}"`
        : undefined;
    },
  },
  {
    id: 'financial-card',
    class: 'financial',
    kind: 'card-number',
    description:
      'Payment card numbers and security codes: card_number, pan, cc_number, cvc/cvv; "number" inside a card.',
    test: (f) => {
      const j = joined(f);
      if (/card_?number|cc_?number|credit_card|^pan$|primary_account_number/.test(j))
        return `name "${f.name}" is a card number`;
      if (has(f, 'cvc', 'cvv', 'cvv2', 'csc')) return `name "${f.name}" is a card security code`;
      if (j === 'number' && f.parentWords.some((w) => w === 'card' || w === 'cards'))
        return '"number" of a card';
      return describes(f, /\b(credit |debit |payment )?card number\b/i) && !isMeta(f)
        ? 'description says card number'
        : undefined;
    },
  },
  {
    id: 'financial-bank-account',
    class: 'financial',
    kind: 'bank-account',
    description: 'Bank identifiers: iban, account_number, routing_number, sort code, bsb.',
    test: (f) => {
      const j = joined(f);
      return has(f, 'iban', 'bsb') ||
        /account_?number|routing_?number|sort_?code|bank_account_?(no|num)/.test(j)
        ? `name "${f.name}" is a bank account identifier`
        : describes(f, /\b(iban|bank account number)\b/i) && !isMeta(f)
          ? 'description says bank account'
          : undefined;
    },
  },
];

/** The built-in secret rules (what the risk rules' top-level secret search runs). */
export const SECRET_RULES: readonly DataRule[] = DATA_RULES.filter((r) => r.class === 'secret');
const PREFILTERED = new Set(SECRET_RULES);
/**
 * A summary mode, not rules to run (see `classifyProperty`): a field's hits are the full table's,
 * computed only where `maySecret` says a secret rule can fire, none elsewhere. Its secret hits are
 * exactly the full table's (`maySecret` depends only on what `classifyField` memoises by).
 */
const SECRET_CANDIDATES: readonly DataRule[] = Object.freeze([]) as readonly DataRule[];

/**
 * Every word a secret rule keys on contains one of these: the password, token and key nouns, plural,
 * glued (`dbpassword`, `apikeys`) or not, and the container names (`secrets`, `creds`). A word
 * without any of them survives `secretWords` without any either (it only singularises, splits and
 * drops words), so no secret rule can fire on it.
 */
const SECRET_STEM = /pass|pwd|token|secret|jwt|bearer|credential|creds|key/;
const hasSecretStem = (ws: readonly string[]) => ws.some((w) => SECRET_STEM.test(w));
const secretStemNames = memoByText((name) => hasSecretStem(cachedWords(name)), 50_000);

/**
 * A necessary condition for a built-in secret rule to fire (false: none can, so they need not run):
 * `format: password`, a description starting "password" (the password rule's phrase), or a secret
 * stem in the field's name or its parent's. Exact by construction: each secret rule fires only on
 * one of these (test/classify/data-classes.test.ts checks it against the rules on generated fields).
 * Most of a response's fields have none, and the top-secret search of every tool runs only these rules.
 */
export function maySecret(
  name: string,
  parentWords: readonly string[],
  format: unknown,
  description: string,
): boolean {
  return (
    format === 'password' ||
    secretStemNames(name) ||
    hasSecretStem(parentWords) ||
    (description.length > 0 && PASSWORD_PHRASE.test(description))
  );
}
/** The password rule's description phrase, as `describes` tests it. */
const PASSWORD_PHRASE = /^(the )?password\b/i;

/**
 * Hits by the description's first 200 characters, then by the rest of the facts. Two levels: one key
 * of all of it was a new string of up to 250 characters to build and hash on every field a walk or a
 * masking plan meets (a tenth of Stripe's first list), where a description is mostly the same string
 * each time (its hash kept) and the rest is short.
 */
const memo = new Map<string, Map<string, Array<Omit<DataField, 'path'>>>>();
let memoSize = 0;

/** Classifies one field. Results for the default rule set are memoised: big specs repeat fields a lot. */
export function classifyField(
  f: FieldFacts,
  rules: readonly DataRule[] = DATA_RULES,
): Array<Omit<DataField, 'path'>> {
  if (rules !== DATA_RULES) return runRules(f, rules);
  const d = f.description.length > 200 ? f.description.slice(0, 200) : f.description;
  const key = `${f.name}\u0000${f.parentWords.join(' ')}\u0000${f.type.join(',')}:${f.items?.join(',') ?? ''}\u0000${f.format ?? ''}`;
  let byRest = memo.get(d);
  let hit = byRest?.get(key);
  if (!hit) {
    hit = runRules(f, rules);
    if (memoSize > 50_000) {
      memo.clear();
      memoSize = 0;
      byRest = undefined;
    }
    if (!byRest) {
      byRest = new Map();
      memo.set(d, byRest);
    }
    byRest.set(key, hit);
    memoSize++;
  }
  return hit;
}

function runRules(f: FieldFacts, rules: readonly DataRule[]): Array<Omit<DataField, 'path'>> {
  secretA = secretB = undefined;
  const out: Array<Omit<DataField, 'path'>> = [];
  // The built-in secret rules cannot fire without `maySecret` (a caller's own rules always run).
  const noSecret = !maySecret(f.name, f.parentWords, f.format, f.description);
  for (const r of rules) {
    if (noSecret && PREFILTERED.has(r)) continue;
    const reason = r.test(f);
    if (reason !== undefined) out.push({ class: r.class, kind: r.kind, rule: r.id, reason });
  }
  return out;
}

export interface WalkLimits {
  maxDepth: number;
  maxFields: number;
  /** Most `$ref` edges one walk may follow (keeps huge, deeply shared response graphs bounded). */
  maxEdges: number;
}
export const DEFAULT_WALK_LIMITS: WalkLimits = { maxDepth: 8, maxFields: 300, maxEdges: 500 };

type Hit = Omit<DataField, 'path'>;

/**
 * What `ResponseClassifier.mayFind` looks for. The parts must agree: `within` refuses a path prefix
 * only if it refuses every longer one and `want` refuses every field under it; a summary of a schema
 * met under `prefix` is cut to the relative paths `keep(rel, level(prefix))` admits, which must be
 * refused (with every longer one) only if `within` refuses `prefix + rel` for every prefix of that
 * level; and `want` accepts only hits of `rules` (summaries run no other rule).
 */
export interface FieldSearch {
  want(path: string, hit: Hit): boolean;
  within(prefix: string): boolean;
  level(prefix: string): number;
  keep(rel: string, level: number): boolean;
  rules: readonly DataRule[];
}
/** What one schema holds without following `$ref`s: classified fields, and the refs it leads to. */
interface Summary {
  fields: Array<{ rel: string; depth: number; hit: Hit }>;
  edges: Array<{ rel: string; depth: number; key: string }>;
}

/**
 * Classifies the fields of a response schema (with its `$defs`), recording a JSONPath for each hit.
 * Combinators are unions at the same path; arrays add `[*]`, maps add `.*`. Each `$defs` entry is
 * summarised once (its own fields, and where it refers on); a walk then only joins summaries, so
 * specs whose responses share hundreds of schemas (Stripe) stay cheap. A `$ref` already on the
 * current path is not re-entered, and depth, hits and edges are bounded: `truncated` says a budget
 * was reached.
 */
export class ResponseClassifier {
  private readonly summaries = new Map<string, Summary>();
  /**
   * Walk results by lookup and by the root's JSON: the root holds only `#/$defs/…` refs, so equal
   * text means an equal walk (each follows up to 500 refs on Stripe): many operations return the
   * same schema (GitHub's and Stripe's get/update pairs).
   */
  private readonly results = new WeakMap<
    DefsLookup,
    Map<string, { fields: DataField[]; truncated: boolean }>
  >();

  constructor(private readonly limits: WalkLimits = DEFAULT_WALK_LIMITS) {}

  classify(root: JsonSchema, defs: DefsLookup): { fields: DataField[]; truncated: boolean } {
    let byRoot = this.results.get(defs);
    if (!byRoot) {
      byRoot = new Map();
      this.results.set(defs, byRoot);
    }
    const key = JSON.stringify(root);
    let r = byRoot.get(key);
    if (!r) {
      r = this.walk(root, defs);
      byRoot.set(key, r);
    }
    // Each tool gets its own array (the field records are shared and never modified).
    return { fields: [...r.fields], truncated: r.truncated };
  }

  /** `mayFind` answers by search, lookup and root text, like `classify`. */
  private readonly found = new WeakMap<FieldSearch, WeakMap<DefsLookup, Map<string, boolean>>>();
  /** Summaries cut to what a search keeps, by search and key. */
  private readonly cut = new WeakMap<FieldSearch, Map<string, Summary>>();

  /**
   * Whether `classify` could list a field the search wants: false means it cannot (so the full walk
   * need not run to rule it out), true that it may (the caller then runs `classify` and reads the
   * answer there). It visits a superset of what `classify` visits where the search looks: the same
   * summaries (cut to `keep`), the same depth limit and no field or edge budget (those only cut
   * `classify`'s list, they add nothing to it). Past `budget` edges it answers true.
   */
  mayFind(root: JsonSchema, defs: DefsLookup, search: FieldSearch, budget = 2000): boolean {
    const byRoot = answersFor(this.found, search, defs);
    const key = JSON.stringify(root);
    let r = byRoot.get(key);
    if (r === undefined) {
      r = this.search(root, defs, search, budget);
      byRoot.set(key, r);
    }
    return r;
  }

  private search(root: JsonSchema, defs: DefsLookup, search: FieldSearch, budget: number): boolean {
    let edges = 0;
    const lim = this.limits;
    let cut = this.cut.get(search);
    if (!cut) {
      cut = new Map();
      this.cut.set(search, cut);
    }
    const summaries = cut;
    const summaryOf = (key: string, schema: JsonSchema, level: number): Summary => {
      const id = `${level}:${key}`;
      let s = summaries.get(id);
      if (!s) {
        s = summarize(schema, defs, cachedWords(key), {
          keep: (rel) => search.keep(rel, level),
          rules: search.rules,
        });
        summaries.set(id, s);
      }
      return s;
    };
    const visit = (summary: Summary, prefix: string, depth: number, onPath: Set<string>): boolean => {
      for (const f of summary.fields)
        if (depth + f.depth <= lim.maxDepth && search.want(prefix + f.rel, f.hit)) return true;
      for (const e of summary.edges) {
        if (onPath.has(e.key) || depth + e.depth > lim.maxDepth) continue;
        const path = prefix + e.rel;
        if (!search.within(path)) continue;
        const target = defs(e.key);
        if (target === undefined) continue;
        if (++edges > budget) return true;
        onPath.add(e.key);
        const hit = visit(summaryOf(e.key, target, search.level(path)), path, depth + e.depth, onPath);
        onPath.delete(e.key);
        if (hit) return true;
      }
      return false;
    };
    const level = search.level('$');
    return visit(
      summarize(root, defs, [], { keep: (rel) => search.keep(rel, level), rules: search.rules }),
      '$',
      0,
      new Set(),
    );
  }

  /**
   * The first field `classify` lists that `want` accepts: the same walk, in the same order and with
   * the same budgets, stopped there. What a rule that reads one such field needs (the risk rules'
   * `credential-response`), without walking the rest of a large response graph.
   */
  first(
    root: JsonSchema,
    defs: DefsLookup,
    want: (path: string, hit: Hit) => boolean,
  ): DataField | undefined {
    const key = JSON.stringify(root);
    let byRoot = this.results.get(defs);
    const done = byRoot?.get(key);
    if (done) return done.fields.find((f) => want(f.path, f));
    // Answers by predicate, lookup and root text, like `classify`: Stripe's responses that may hold
    // a secret repeat (`payment_source` four times), and each such walk follows up to 500 refs.
    const known = answersFor(this.firsts, want, defs);
    const hit = known.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.walk(root, defs, want);
    known.set(key, r.found ?? null);
    if (!r.found) {
      // A walk that never stopped is the whole walk: `classify` (the tool's lazy data classes)
      // answers from it instead of walking again.
      if (!byRoot) {
        byRoot = new Map();
        this.results.set(defs, byRoot);
      }
      byRoot.set(key, { fields: r.fields, truncated: r.truncated });
    }
    return r.found;
  }

  /** `first` answers by predicate, lookup and root text (null: the walk found none). */
  private readonly firsts = new WeakMap<
    (path: string, hit: Hit) => boolean,
    WeakMap<DefsLookup, Map<string, DataField | null>>
  >();

  /**
   * `first` for a predicate that accepts only hits of class `secret` (the risk rules' top-level
   * secret), without the full walk when it would find nothing. A walk of the same edges in the same
   * order, over summaries holding only the fields where a secret rule can fire (`maySecret`), answers
   * first: until the field budget is spent, `walk` takes exactly these edges (its field list does not
   * steer them), and after that it lists nothing new; so every field `walk` lists is met here, with the
   * same secret hits. Only when this walk meets one `want` accepts does `first` run. On Stripe the
   * responses that may hold a secret mostly spend the walk's 500 edges before reaching it, and the
   * full walk classified every field of hundreds of schemas to say so.
   */
  firstSecret(
    root: JsonSchema,
    defs: DefsLookup,
    want: (path: string, hit: Hit) => boolean,
  ): DataField | undefined {
    const key = JSON.stringify(root);
    if (!this.results.get(defs)?.has(key) && !this.firsts.get(want)?.get(defs)?.has(key)) {
      if (!this.mayStop(root, defs, want)) return undefined;
    }
    return this.first(root, defs, want);
  }

  /** Secret-candidate summaries (`SECRET_CANDIDATES`), by definition key. */
  private readonly candidates = new Map<string, Summary>();

  /** Whether `walk(root, defs, want)` can stop at a field (see `firstSecret`). */
  private mayStop(root: JsonSchema, defs: DefsLookup, want: (path: string, hit: Hit) => boolean): boolean {
    let edges = 0;
    const lim = this.limits;
    const cut = { rules: SECRET_CANDIDATES };
    const summaryOf = (key: string, schema: JsonSchema): Summary => {
      let s = this.candidates.get(key);
      if (!s) {
        s = summarize(schema, defs, cachedWords(key), cut);
        this.candidates.set(key, s);
      }
      return s;
    };
    // `walk`'s `join` without the field list: same depth checks, same edge order and budget.
    const join = (summary: Summary, prefix: string, depth: number, onPath: Set<string>): boolean => {
      for (const f of summary.fields)
        if (depth + f.depth <= lim.maxDepth && want(prefix + f.rel, f.hit)) return true;
      for (const e of summary.edges) {
        if (onPath.has(e.key)) continue;
        if (depth + e.depth > lim.maxDepth || ++edges > lim.maxEdges) continue;
        const target = defs(e.key);
        if (target === undefined) continue;
        onPath.add(e.key);
        const hit = join(summaryOf(e.key, target), prefix + e.rel, depth + e.depth, onPath);
        onPath.delete(e.key);
        if (hit) return true;
      }
      return false;
    };
    return join(summarize(root, defs, [], cut), '$', 0, new Set());
  }

  private walk(
    root: JsonSchema,
    defs: DefsLookup,
    stop?: (path: string, hit: Hit) => boolean,
  ): { fields: DataField[]; truncated: boolean; found?: DataField } {
    const fields: DataField[] = [];
    const seen = new Set<string>();
    let edges = 0;
    let truncated = false;
    let found: DataField | undefined;
    const lim = this.limits;
    const join = (summary: Summary, prefix: string, depth: number, onPath: Set<string>): void => {
      if (found) return;
      for (const f of summary.fields) {
        if (depth + f.depth > lim.maxDepth) {
          truncated = true;
          continue;
        }
        const path = prefix + f.rel;
        const id = `${path}|${f.hit.class}`;
        if (seen.has(id)) continue;
        if (fields.length >= lim.maxFields) {
          truncated = true;
          return;
        }
        seen.add(id);
        const field = { path, ...f.hit };
        fields.push(field);
        if (stop?.(path, f.hit)) {
          found = field;
          return;
        }
      }
      for (const e of summary.edges) {
        if (onPath.has(e.key)) continue;
        if (depth + e.depth > lim.maxDepth || ++edges > lim.maxEdges) {
          truncated = true;
          continue;
        }
        const target = defs(e.key);
        if (target === undefined) continue;
        onPath.add(e.key);
        join(this.summaryOf(e.key, target, defs), prefix + e.rel, depth + e.depth, onPath);
        onPath.delete(e.key);
        if (found) return;
      }
    };
    join(summarize(root, defs, []), '$', 0, new Set());
    return found ? { fields, truncated, found } : { fields, truncated };
  }

  private summaryOf(key: string, schema: JsonSchema, defs: DefsLookup): Summary {
    let s = this.summaries.get(key);
    if (!s) {
      s = summarize(schema, defs, cachedWords(key));
      this.summaries.set(key, s);
    }
    return s;
  }
}

/** Convenience for one-off use (tests); the catalogue shares one ResponseClassifier per spec. */
export function classifyResponseFields(
  root: JsonSchema,
  defs: Record<string, JsonSchema>,
  limits: WalkLimits = DEFAULT_WALK_LIMITS,
): { fields: DataField[]; truncated: boolean } {
  return new ResponseClassifier(limits).classify(root, defsOf(defs));
}

/**
 * A schema's own fields and refs; with `cut`, only at the paths it keeps and only the hits of its
 * rules (a search's summary).
 */
/** The answers kept for one question (`by`) over one lookup, by root text: made on first ask. */
function answersFor<K extends object, V>(
  memo: WeakMap<K, WeakMap<DefsLookup, Map<string, V>>>,
  by: K,
  defs: DefsLookup,
): Map<string, V> {
  let byDefs = memo.get(by);
  if (!byDefs) {
    byDefs = new WeakMap();
    memo.set(by, byDefs);
  }
  let answers = byDefs.get(defs);
  if (!answers) {
    answers = new Map();
    byDefs.set(defs, answers);
  }
  return answers;
}

function summarize(
  root: JsonSchema,
  defs: DefsLookup,
  topWords: string[],
  cut?: { keep?: (rel: string) => boolean; rules: readonly DataRule[] },
): Summary {
  const out: Summary = { fields: [], edges: [] };
  const keep = cut?.keep;
  const rules = cut?.rules ?? DATA_RULES;
  const walk = (s: JsonSchema, rel: string, parentWords: string[], depth: number): void => {
    if (typeof s !== 'object' || s === null || depth > 32) return;
    if (keep && !keep(rel)) return;
    if (typeof s.$ref === 'string') out.edges.push({ rel, depth, key: s.$ref.slice('#/$defs/'.length) });
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = s[k];
      if (Array.isArray(list)) for (const sub of list) walk(sub as JsonSchema, rel, parentWords, depth);
    }
    if (s.items !== undefined) walk(s.items, `${rel}[*]`, parentWords, depth + 1);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      walk(s.additionalProperties, `${rel}.*`, parentWords, depth + 1);
    }
    if (s.properties) {
      const props = s.properties;
      for (const name of Object.keys(props)) {
        const sub = props[name]!;
        const childRel = rel + propertyStep(name);
        // A path the cut leaves out is neither classified nor entered (`walk` would return at once).
        if (keep && !keep(childRel)) continue;
        for (const hit of classifyProperty(name, sub, parentWords, defs, rules))
          out.fields.push({ rel: childRel, depth: depth + 1, hit });
        walk(sub, childRel, cachedWords(name), depth + 1);
      }
    }
  };
  walk(root, '', topWords, 0);
  return out;
}

const steps = new Map<string, string>();
/** A property's step in a JSONPath (`.name`, or `["a name"]`), by name: the same names recur in every schema. */
function propertyStep(name: string): string {
  let step = steps.get(name);
  if (step === undefined) {
    step = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
    if (steps.size > 50_000) steps.clear();
    steps.set(name, step);
  }
  return step;
}

/** Data classes an operator may tag a field with (`x-data-class` in the spec, `fields` in the policy). */
export const TAG_CLASSES = ['pii', 'secret', 'financial', 'none'] as const;
export type TagClass = (typeof TAG_CLASSES)[number];

/**
 * Classifies one property of an object schema: an `x-data-class` tag on its schema wins (`none`
 * untags it); otherwise the rule table decides from its name, its enclosing name, type, format and
 * description. Used by the catalogue (scan reports) and by masking alike, so both agree.
 */
export function classifyProperty(
  name: string,
  sub: JsonSchema,
  parentWords: string[],
  defs: DefsLookup,
  rules: readonly DataRule[] = DATA_RULES,
): Array<Omit<DataField, 'path'>> {
  const target = resolveLocal(sub, defs);
  const tag =
    typeof sub === 'object' && typeof sub['x-data-class'] === 'string'
      ? sub['x-data-class']
      : typeof target === 'object' && typeof target['x-data-class'] === 'string'
        ? target['x-data-class']
        : undefined;
  if (tag === 'none') return [];
  if (tag === 'pii' || tag === 'secret' || tag === 'financial')
    return [
      { class: tag, kind: tag, rule: 'x-data-class', reason: `tagged x-data-class: ${tag} in the spec` },
    ];
  const description =
    typeof target === 'object' && typeof target.description === 'string' ? target.description : '';
  // The top-secret search runs only the secret rules, on every top-level property of every response:
  // without `maySecret` they answer nothing, so the facts need not be gathered.
  if (
    (rules === SECRET_RULES || rules === SECRET_CANDIDATES) &&
    !maySecret(name, parentWords, typeof target === 'object' ? target.format : undefined, description)
  )
    return NO_HITS;
  // Assigned, not spread: this runs for every property a response search or walk meets.
  const facts: FieldFacts = {
    name,
    words: cachedWords(name),
    parentWords,
    type: typesOf(target),
    description,
  };
  const items = itemTypes(target, defs);
  if (items !== undefined) facts.items = items;
  if (typeof target === 'object' && typeof target.format === 'string') facts.format = target.format;
  return classifyField(facts, rules === SECRET_CANDIDATES ? DATA_RULES : rules);
}

export const cachedWords: (s: string) => string[] = memoByText((s) => words(s), 50_000);

/** No hits (shared: callers only read the list). */
const NO_HITS: Array<Omit<DataField, 'path'>> = [];

/** The item types of an array schema, when it says (`passwords: {type: array, items: {type: string}}`). */
function itemTypes(s: JsonSchema, defs: DefsLookup): string[] | undefined {
  if (typeof s !== 'object' || s.items === undefined || typeof s.items !== 'object') return undefined;
  const items = typesOf(resolveLocal(s.items as JsonSchema, defs));
  return items.length ? items : undefined;
}

function typesOf(s: JsonSchema): string[] {
  if (typeof s !== 'object') return [];
  const t = (s as JsonSchemaObject).type;
  const list = typeof t === 'string' ? [t] : Array.isArray(t) ? t : [];
  if (list.length > 0) return list.filter((x) => x !== 'null');
  // `anyOf: [{type: string}, {type: null}]` is a nullable string.
  const any = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(any)) return any.flatMap((x) => typesOf(x));
  return [];
}
