import { readFileSync } from 'node:fs';
import { stemmer } from 'stemmer';
import type { Catalog, Tool } from '../model/catalog.js';
import { words } from '../openapi/text.js';
import { ACTION_VERBS, type Action, DOMAIN_SYNONYMS, PERMANENT_WORDS } from './vocabulary.js';

/**
 * Ranked search over a catalogue's tools, for dynamic mode, from a user's own words.
 *
 * Each tool is indexed by field (name, action, resource, summary, path, tags, parameter and body
 * property names, description, API name), words split at case changes and punctuation and
 * Porter-stemmed, and scored BM25-style with a weight per field. Each query word is matched as
 * itself, or through a synonym: the curated API-domain list (vocabulary.ts, `credit` → balance) at
 * a lower weight, WordNet's (generated/synonyms.json) lower still; a word scores by its best
 * alternative, so synonyms never add up to more than the word itself would.
 *
 * Two rules then reorder: a tool whose action (read, create, update, delete) is the one the query's
 * verb asks for scores above tools where only the nouns co-occur; and a tool with a stronger effect
 * than the query asks for (read < write < delete < permanent delete) scores lower, so between two
 * matches "move a file to the trash" gets the reversible delete first, and only a query that asks
 * for the stronger effect ("permanently delete") gets the permanent one first.
 *
 * The index holds every tool; visibility is decided per query by the caller's view, so a hidden tool
 * never appears in results and one index serves every caller and every runtime switch.
 */
export interface SearchHit {
  name: string;
  score: number;
}

const STOP = new Set(
  'a an the of for to in on at by with from and or is are be my me i we you your our all any some this that these those it its please using via into about can could would will should do does did has have had there their them they one so just currently right now'.split(
    ' ',
  ),
);

/** Request verbs folded to one term on both sides of the match, so `remove` finds `delete`. */
const FOLD: Record<string, string> = {
  remove: 'delete',
  erase: 'delete',
  destroy: 'delete',
  drop: 'delete',
  cancel: 'delete',
  add: 'create',
  new: 'create',
  make: 'create',
  fetch: 'get',
  show: 'get',
  retrieve: 'get',
  read: 'get',
  view: 'get',
  lookup: 'get',
  edit: 'update',
  change: 'update',
  modify: 'update',
  patch: 'update',
  rename: 'update',
  set: 'update',
  find: 'search',
  query: 'search',
  enumerate: 'list',
  repository: 'repo',
  organization: 'org',
  organisation: 'org',
  pr: 'pull',
  configuration: 'config',
  information: 'info',
};

const LOOK = new Set(['check', 'see', 'look', 'view', 'show', 'which', 'what', 'who', 'how']);

/** A word as indexed and matched: folded, then Porter-stemmed. */
export function stem(w: string): string {
  const f = FOLD[w] ?? w;
  return stemmer(f);
}

const FOLD_STEMS = new Map(Object.entries(FOLD).map(([k, v]) => [stemmer(k), v]));
/** Memoised: a catalogue repeats its words thousands of times. */
const TERMS = new Map<string, string>();
function term(w: string): string {
  let t = TERMS.get(w);
  if (t === undefined) {
    const s = stem(w);
    const f = FOLD_STEMS.get(s);
    t = f ? stemmer(f) : s;
    if (TERMS.size < 50_000) TERMS.set(w, t);
  }
  return t;
}

/** WordNet synonyms, read once per process (a build step generates the file: nothing is fetched). */
let wordnet: Record<string, string[]> | undefined;
function synonyms(): Record<string, string[]> {
  wordnet ??= JSON.parse(
    readFileSync(new URL('../../generated/synonyms.json', import.meta.url), 'utf8'),
  ) as Record<string, string[]>;
  return wordnet;
}

const FIELDS = {
  api: 2,
  name: 3,
  action: 1.5,
  resource: 2.5,
  summary: 3,
  path: 1.5,
  tags: 1.5,
  params: 0.7,
  description: 0.6,
} as const;
type Field = keyof typeof FIELDS;

/** Weights of a query word's alternatives: itself, a curated synonym, a WordNet synonym, a prefix. */
const W_EXACT = 1;
const W_CURATED = 0.8;
const W_WORDNET = 0.35;
const W_PREFIX = 0.5;
/** Score factor for a tool doing the action the query asks for, and per level of stronger effect. */
const ACTION_BOOST = 1.4;
const EFFECT_PENALTY = 0.6;

interface Doc {
  fields: Map<Field, Map<string, number>>;
  lengths: Map<Field, number>;
  actions: Set<Action>;
  /** 0 read, 1 write, 2 delete, 3 permanent delete. */
  effect: number;
}

const PERMANENT_TEXT =
  /\b(permanent(ly)?|purge[sd]?|forever|irreversibl[ey]|irrevocabl[ey]|hard[- ]delete|cannot be undone|can(no|')t be (undone|recovered)|unrecoverable)\b/i;

function actionOfMethod(method: string): Action | undefined {
  if (method === 'get' || method === 'head') return 'read';
  if (method === 'post') return 'create';
  if (method === 'put' || method === 'patch') return 'update';
  if (method === 'delete') return 'delete';
  return undefined;
}

/** Property names of a JSON body (one level), which say what a POST writes. */
function bodyProps(t: Tool): string[] {
  const body = t.bindings.find((b) => b.in === 'body');
  const schema = body
    ? (t.inputSchema.properties?.[body.arg] as { properties?: object } | undefined)
    : undefined;
  return schema && typeof schema === 'object' && schema.properties ? Object.keys(schema.properties) : [];
}

function textFields(t: Tool): Record<Field, string> {
  const properties = (t.inputSchema.properties ?? {}) as Record<string, { enum?: unknown[] }>;
  // Parameter names, and the short values of enumerations: `state: open|closed` answers "open pull requests".
  const props = Object.entries(properties).map(([k, v]) =>
    [
      k,
      ...(Array.isArray(v?.enum) && v.enum.length <= 12 ? v.enum.filter((x) => typeof x === 'string') : []),
    ].join(' '),
  );
  const summary = t.title ?? t.description.split('\n')[0] ?? '';
  const method = t.source.method;
  const last = t.source.path.split('/').filter(Boolean).at(-1) ?? '';
  const action =
    method === 'get'
      ? last.startsWith('{')
        ? 'get'
        : 'list get'
      : method === 'post'
        ? 'create'
        : method === 'put' || method === 'patch'
          ? 'update'
          : method;
  return {
    api: t.api ?? '',
    name: t.name,
    action,
    // The last literal path segment is what the operation acts on: `/customers/{c}/sources` → sources.
    resource:
      t.source.path
        .split('/')
        .filter((s) => s && !s.startsWith('{'))
        .at(-1) ?? '',
    summary,
    path: `${method} ${t.source.path}`,
    tags: t.source.tags.join(' '),
    params: [...props, ...bodyProps(t)].join(' '),
    // The start of the description: the rest is mostly detail that drowns the signal.
    description: t.description.slice(0, 600),
  };
}

function docOf(t: Tool): Doc {
  const text = textFields(t);
  const fields = new Map<Field, Map<string, number>>();
  const lengths = new Map<Field, number>();
  for (const f of Object.keys(FIELDS) as Field[]) {
    const ws = words(text[f]).filter((w) => !STOP.has(w));
    // Repeats in a name or path (`/customers/{customer}/…`) say nothing more: count each word once.
    const list = f === 'description' ? ws : [...new Set(ws)];
    const tf = new Map<string, number>();
    for (const w of list) {
      const s = term(w);
      tf.set(s, (tf.get(s) ?? 0) + 1);
    }
    fields.set(f, tf);
    lengths.set(f, list.length);
  }
  // What the tool does: the verb its summary opens with and the first verb of its operation id or
  // name, else its method (an RPC-style `POST /conversations.list` lists, whatever its method says).
  // Only the first: `list-repos-starred` lists, it does not star.
  const actions = new Set<Action>();
  const lead = words(text.summary)[0];
  if (lead && ACTION_VERBS[lead] && !LOOK.has(lead)) actions.add(ACTION_VERBS[lead]);
  const verb = words(t.source.operationId ?? t.name).find((w) => ACTION_VERBS[w] && !LOOK.has(w));
  if (verb) actions.add(ACTION_VERBS[verb]!);
  const byMethod = actionOfMethod(t.source.method);
  if (actions.size === 0 && byMethod) actions.add(byMethod);
  // The effect: from the risk classes and the method, and "permanently"/"purge" in what it says.
  const classes = t.risk.classes;
  let effect =
    classes.includes('destructive') || t.source.method === 'delete'
      ? 2
      : classes.some((c) => c !== 'read')
        ? 1
        : 0;
  if (effect < 2 && actions.has('delete') && !actions.has('read')) effect = Math.max(effect, 1);
  if (PERMANENT_TEXT.test(`${t.name} ${summary(t)} ${t.description.slice(0, 300)}`))
    effect = Math.max(effect, 2) + 1;
  return { fields, lengths, actions, effect };
}

function summary(t: Tool): string {
  return t.title ?? t.description.split('\n')[0] ?? '';
}

/** One query word: alternatives, each a set of terms (a phrase like "direct message") and a weight. */
interface Group {
  alts: Array<{ terms: string[]; weight: number; prefix?: boolean }>;
}

/** An alternative ready to score: each of its terms with the indexed terms it stands for. */
interface Resolved {
  terms: string[][];
  weight: number;
}

export class ToolSearch {
  private readonly docs: Doc[];
  private readonly names: string[];
  private readonly df = new Map<string, number>();
  private readonly idf = new Map<string, number>();
  private readonly postings = new Map<string, Map<number, number>>();
  private readonly avg = new Map<Field, number>();
  private readonly vocabulary: string[];

  constructor(catalog: Catalog) {
    this.names = catalog.tools.map((t) => t.name);
    this.docs = catalog.tools.map(docOf);
    for (const d of this.docs) {
      const seen = new Set<string>();
      for (const tf of d.fields.values()) for (const k of tf.keys()) seen.add(k);
      for (const k of seen) this.df.set(k, (this.df.get(k) ?? 0) + 1);
    }
    for (const f of Object.keys(FIELDS) as Field[]) {
      const total = this.docs.reduce((n, d) => n + (d.lengths.get(f) ?? 0), 0);
      this.avg.set(f, Math.max(1, total / Math.max(1, this.docs.length)));
    }
    this.vocabulary = [...this.df.keys()];
    // BM25F-style: per field, a saturated term frequency normalised by the field's length, weighted.
    this.docs.forEach((d, i) => {
      const tfw = new Map<string, number>();
      for (const f of Object.keys(FIELDS) as Field[]) {
        for (const [t, tf] of d.fields.get(f)!) {
          const norm = tf / (tf + 1.2 * (0.25 + (0.75 * d.lengths.get(f)!) / this.avg.get(f)!));
          tfw.set(t, (tfw.get(t) ?? 0) + FIELDS[f] * norm);
        }
      }
      for (const [t, w] of tfw) {
        if (!this.postings.has(t)) this.postings.set(t, new Map());
        this.postings.get(t)!.set(i, w);
      }
    });
    for (const [t, df] of this.df) this.idf.set(t, Math.log(1 + (this.docs.length - df + 0.5) / (df + 0.5)));
  }

  /** The best `limit` tools for the words, among those `visible` allows. */
  search(query: string, visible: (name: string) => boolean, limit: number): SearchHit[] {
    const { groups, actions, effect } = this.parse(query);
    if (groups.length === 0) return [];
    // Once per query: the indexed terms each alternative stands for (a prefix stands for several).
    const resolved: Resolved[][] = groups.map((g) =>
      g.alts.map((a) => ({
        weight: a.weight,
        terms: a.terms.map((t) =>
          a.prefix ? this.vocabulary.filter((v) => v !== t && v.startsWith(t)) : this.df.has(t) ? [t] : [],
        ),
      })),
    );
    // Scores by postings: only the tools holding a term are touched. A word scores by its best
    // alternative; a phrase by the sum of its words over √(its length); a prefix by its best completion.
    const total = new Map<number, number>();
    for (const g of resolved) {
      const best = new Map<number, number>();
      for (const a of g) {
        const sum = new Map<number, number>();
        for (const expanded of a.terms) {
          const top = new Map<number, number>();
          for (const t of expanded) {
            const idf = this.idf.get(t)!;
            for (const [doc, tfw] of this.postings.get(t)!)
              top.set(doc, Math.max(top.get(doc) ?? 0, idf * tfw));
          }
          for (const [doc, v] of top) sum.set(doc, (sum.get(doc) ?? 0) + v);
        }
        for (const [doc, v] of sum)
          best.set(doc, Math.max(best.get(doc) ?? 0, (a.weight * v) / Math.sqrt(a.terms.length)));
      }
      for (const [doc, v] of best) total.set(doc, (total.get(doc) ?? 0) + v);
    }
    const hits: SearchHit[] = [];
    for (const [i, raw] of total) {
      const name = this.names[i]!;
      const d = this.docs[i]!;
      let score = raw;
      if (score <= 0 || !visible(name)) continue;
      if (actions.size > 0 && [...actions].some((a) => d.actions.has(a))) score *= ACTION_BOOST;
      if (d.effect > effect) score *= EFFECT_PENALTY ** (d.effect - effect);
      hits.push({ name, score });
    }
    hits.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
    return hits.slice(0, limit);
  }

  private parse(query: string): { groups: Group[]; actions: Set<Action>; effect: number } {
    const raw = words(query);
    const toks = raw.filter((w) => !STOP.has(w) || ACTION_VERBS[w] === 'read');
    // Two-word phrases of the curated list ("sign in", "block ip"), stop words included.
    const phrases = new Map<string, readonly string[]>();
    const plain = raw.filter((w) => !STOP.has(w) || DOMAIN_SYNONYMS[w]);
    for (let j = 0; j + 1 < raw.length; j++) {
      const p = DOMAIN_SYNONYMS[`${raw[j]} ${raw[j + 1]}`];
      if (p) phrases.set(raw[j]!, p);
    }
    for (let j = 0; j + 1 < plain.length; j++) {
      const p = DOMAIN_SYNONYMS[`${plain[j]} ${plain[j + 1]}`];
      if (p) phrases.set(plain[j]!, p);
    }
    const actions = new Set<Action>();
    let effect = -1;
    const groups: Group[] = [];
    const wn = synonyms();
    for (let i = 0; i < toks.length; i++) {
      const w = toks[i]!;
      const action = ACTION_VERBS[w] ?? ACTION_VERBS[stemmer(w)];
      if (action) {
        actions.add(action);
        effect = Math.max(effect, action === 'read' ? 0 : action === 'delete' ? 2 : 1);
      }
      if (PERMANENT_WORDS.has(w)) effect = 3;
      // Generic verbs of looking ("check", "show me") say what kind of action, not what to match.
      if (STOP.has(w) || LOOK.has(w)) {
        if (DOMAIN_SYNONYMS[w])
          groups.push({
            alts: DOMAIN_SYNONYMS[w].map((s) => ({ terms: words(s).map(term), weight: W_CURATED })),
          });
        continue;
      }
      const alts: Group['alts'] = [{ terms: [term(w)], weight: W_EXACT }];
      if (term(w).length >= 4) alts.push({ terms: [term(w)], weight: W_PREFIX, prefix: true });
      const phrase = phrases.get(w);
      for (const s of [...(DOMAIN_SYNONYMS[w] ?? []), ...(phrase ?? [])])
        alts.push({ terms: words(s).map(term), weight: W_CURATED });
      for (const s of wn[w] ?? wn[stemmer(w)] ?? []) alts.push({ terms: [term(s)], weight: W_WORDNET });
      groups.push({ alts });
    }
    // No verb: the user asks to see something, or did not say; nothing stronger than a write is asked.
    return { groups, actions, effect: effect < 0 ? 1 : effect };
  }
}
