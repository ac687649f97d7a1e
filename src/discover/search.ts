import MiniSearch from 'minisearch';
import type { Catalog, Tool } from '../model/catalog.js';
import { words } from '../openapi/text.js';

/**
 * Ranked search over a catalogue's tools, for dynamic mode: BM25 (MiniSearch) over the name, the
 * summary, the path, the tags, the parameter names, the description and (in an API set) the API's
 * name, so "billing customers" prefers the billing API's tools; each field weighted by how
 * much it says about what the tool does. Words are split at case changes and punctuation
 * (`listPullRequests`, `pulls/list`, `{pull_number}`), lightly stemmed, and common request verbs
 * are folded together (`remove` finds `delete`), so a model can ask in plain words.
 *
 * The index holds every tool; visibility is decided per query by the caller's view, so a hidden tool
 * never appears in results and one index serves every caller and every runtime switch.
 */
export interface SearchHit {
  name: string;
  score: number;
}

const STOP = new Set(
  'a an the of for to in on at by with from and or is are be my me i we you your our all any some this that these those which what how do does can please using via into about it its'.split(
    ' ',
  ),
);

/** Verbs people use for the same request, folded to one term on both sides of the match. */
const VERBS: Record<string, string> = {
  remove: 'delete',
  erase: 'delete',
  destroy: 'delete',
  drop: 'delete',
  cancel: 'delete',
  add: 'create',
  new: 'create',
  make: 'create',
  post: 'create',
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
  // Nouns APIs abbreviate.
  repository: 'repo',
  organization: 'org',
  organisation: 'org',
  pr: 'pull',
  configuration: 'config',
  information: 'info',
};

/** Light suffix stripping, enough for plural and verb forms of API words (not a full stemmer). */
export function stem(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) return `${w.slice(0, -3)}y`;
  if (w.endsWith('sses')) return w.slice(0, -2);
  if (/(ches|shes|xes|zes)$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) return w.slice(0, -1);
  if (w.endsWith('ing') && w.length > 5) return w.slice(0, -3);
  if (w.endsWith('ed') && w.length > 4) return w.slice(0, -2);
  return w;
}

function term(w: string): string | null {
  if (STOP.has(w)) return null;
  const s = stem(w);
  return VERBS[w] ?? VERBS[s] ?? s;
}

interface Doc {
  id: number;
  api: string;
  name: string;
  action: string;
  resource: string;
  summary: string;
  path: string;
  tags: string;
  params: string;
  description: string;
}

function docOf(t: Tool, id: number): Doc {
  const properties = (t.inputSchema.properties ?? {}) as Record<string, { enum?: unknown[] }>;
  // Parameter names, and the short values of enumerations: `state: open|closed` answers "open pull requests".
  const props = Object.entries(properties).map(([k, v]) =>
    [
      k,
      ...(Array.isArray(v?.enum) && v.enum.length <= 12 ? v.enum.filter((x) => typeof x === 'string') : []),
    ].join(' '),
  );
  const summary = t.title ?? t.description.split('\n')[0] ?? '';
  return {
    id,
    api: t.api ?? '',
    name: t.name,
    action: actionOf(t.source.method, t.source.path),
    // The last literal path segment is what the operation acts on: `/customers/{c}/sources` → sources.
    resource:
      t.source.path
        .split('/')
        .filter((s) => s && !s.startsWith('{'))
        .at(-1) ?? '',
    summary,
    path: `${t.source.method} ${t.source.path}`,
    tags: t.source.tags.join(' '),
    params: props.join(' '),
    // The first paragraph: the rest of a long description is mostly detail that drowns the signal.
    description: t.description.slice(0, 600),
  };
}

/**
 * What the method and path say the operation does, in the words people use: a GET on a collection
 * (`GET /v1/customers`) lists, on an item (`…/{id}`) gets; POST creates; PUT/PATCH update.
 */
function actionOf(method: string, path: string): string {
  const last = path.split('/').filter(Boolean).at(-1) ?? '';
  switch (method) {
    case 'get':
      // A collection, or a singleton (`/v1/balance`): either may be what "get" or "list" means.
      return last.startsWith('{') ? 'get' : 'list get';
    case 'post':
      return 'create';
    case 'put':
    case 'patch':
      return 'update';
    case 'delete':
      return 'delete';
    default:
      return method;
  }
}

export class ToolSearch {
  private readonly index: MiniSearch<Doc>;
  private readonly names: string[];

  constructor(catalog: Catalog) {
    this.names = catalog.tools.map((t) => t.name);
    this.index = new MiniSearch<Doc>({
      fields: ['api', 'name', 'action', 'resource', 'summary', 'path', 'tags', 'params', 'description'],
      storeFields: [],
      // Repeats in a name or path (`/customers/{customer}/…`) say nothing more: count each word once.
      tokenize: (text, field) => (field === 'description' ? words(text) : [...new Set(words(text))]),
      processTerm: term,
      searchOptions: {
        boost: {
          api: 2,
          name: 3,
          action: 1.5,
          resource: 2.5,
          summary: 3,
          path: 1.5,
          tags: 1.5,
          params: 0.7,
          description: 0.6,
        },
        prefix: (w) => w.length >= 4,
        fuzzy: (w) => (w.length >= 6 ? 0.15 : false),
        combineWith: 'OR',
      },
    });
    this.index.addAll(catalog.tools.map(docOf));
  }

  /** The best `limit` tools for the words, among those `visible` allows. */
  search(query: string, visible: (name: string) => boolean, limit: number): SearchHit[] {
    const hits = this.index.search(query, {
      filter: (r) => visible(this.names[r.id as number]!),
    });
    return hits.slice(0, limit).map((h) => ({ name: this.names[h.id as number]!, score: h.score }));
  }
}
