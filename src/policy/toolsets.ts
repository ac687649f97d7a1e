import { WardenError } from '../errors/index.js';
import type { Catalog, Tool } from '../model/catalog.js';
import { didYouMean } from './check.js';
import { compileMatch } from './evaluate.js';
import type { PolicyDoc } from './schema.js';

/**
 * Toolsets: named groups of tools, so a 1,000-operation API can be served a slice at a time
 * (`serve --toolsets pulls,issues`). Every OpenAPI tag is one (named by its slug); an operation with
 * no tag falls in the group of its first meaningful path segment (`/v1/customers/{id}` →
 * `customers`), so untagged specs such as Stripe's still have useful groups. An API with one tag or
 * none (RPC-style APIs often have a single tag) is grouped by path prefix too, its one tag kept as a
 * toolset beside them. Meaningful: version segments (`v1`, `2.0`, `api`, `rest`) and a prefix every
 * path of the API shares (`/bank/accounts/get`, `/bank/payments/list`) are skipped, and an RPC
 * segment keeps its namespace (`/chat.postMessage` → `chat`). The policy may define more, or redefine
 * one, under `toolsets:` with the rules' match syntax.
 *
 * In an API set, each API is a toolset of its own (named by the API), and the automatic groups are
 * named `<api>:<tag>` (`crm:customers`, `billing:customers`): two APIs with the same tag stay two
 * groups, and a policy toolset can still gather tools across APIs.
 */
export interface Toolset {
  name: string;
  description: string;
  source: 'api' | 'tag' | 'path' | 'policy';
  tools: string[];
}

/** `Pull Requests` → `pull-requests`. */
export function slug(s: string): string {
  return s
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
}

const VERSION_SEGMENT = /^(v?\d+(\.\d+)*|api|rest)$/i;

type Automatic = { name: string; source: 'api' | 'tag' | 'path'; label: string; api?: string };

/**
 * The automatic toolsets of a tool: its tags, or else its first meaningful path segment; in an API
 * set, its API too, and the others carry the API's name in front.
 */
function automatic(t: Tool, shape: ApiShape): Automatic[] {
  const own = groups(t, shape);
  if (t.api === undefined) return own;
  return [
    { name: t.api, source: 'api', label: t.api },
    ...own.map((g) => ({ ...g, name: `${t.api}:${g.name}`, api: t.api })),
  ];
}

/** What path grouping needs to know about the API a tool belongs to. */
interface ApiShape {
  /** One tag or none in the whole API: its tools are grouped by path prefix. */
  byPath: boolean;
  /** Leading meaningful segments every path of the API shares, skipped when grouping. */
  common: number;
}

function groups(t: Tool, shape: ApiShape): Automatic[] {
  const tags = t.source.tags
    .map((tag) => ({ name: slug(tag), source: 'tag' as const, label: tag }))
    .filter((x) => x.name);
  if (tags.length && !shape.byPath) return tags;
  const segs = meaningful(t.source.path);
  const seg = segs[Math.min(shape.common, segs.length - 1)];
  // An RPC method segment keeps its namespace: `chat.postMessage` → `chat`.
  const key = seg && /^[A-Za-z_][\w-]*\./.test(seg) ? seg.slice(0, seg.indexOf('.')) : seg;
  const name = key ? slug(key) : '';
  const label = `/${[...segs.slice(0, shape.common), key].join('/')}`;
  // The one tag stays a toolset (a name already in use keeps working); a path group of the same
  // name is the same group.
  return name && !tags.some((x) => x.name === name) ? [...tags, { name, source: 'path', label }] : tags;
}

/** The literal path segments that can name a group: no templates, no version segments. */
function meaningful(path: string): string[] {
  return path.split('/').filter((s) => s && !s.startsWith('{') && !VERSION_SEGMENT.test(s));
}

/** Per API (`undefined`: a single spec), whether to group by path and the shared prefix to skip. */
function shapes(tools: readonly Tool[]): Map<string | undefined, ApiShape> {
  const byApi = new Map<string | undefined, Tool[]>();
  for (const t of tools) {
    const list = byApi.get(t.api) ?? [];
    list.push(t);
    byApi.set(t.api, list);
  }
  const out = new Map<string | undefined, ApiShape>();
  for (const [api, list] of byApi) {
    const byPath = new Set(list.flatMap((t) => t.source.tags.map(slug).filter(Boolean))).size <= 1;
    const grouped = byPath ? list : list.filter((t) => !t.source.tags.some((tag) => slug(tag)));
    out.set(api, { byPath, common: commonPrefix(grouped.map((t) => meaningful(t.source.path))) });
  }
  return out;
}

/** How many leading segments all paths share, leaving each path at least one segment of its own. */
function commonPrefix(paths: readonly string[][]): number {
  if (paths.length < 2) return 0;
  let n = 0;
  for (;;) {
    const seg = paths[0]![n];
    if (seg === undefined || !paths.every((p) => p.length > n + 1 && p[n] === seg)) return n;
    n++;
  }
}

function describe(a: Automatic): string {
  if (a.source === 'api') return `Every operation of API "${a.label}"`;
  const of = a.api !== undefined ? ` (API "${a.api}")` : '';
  return a.source === 'tag' ? `Operations tagged "${a.label}"${of}` : `Operations under ${a.label}${of}`;
}

export function listToolsets(catalog: Catalog, doc: PolicyDoc | undefined): Toolset[] {
  const sets = new Map<string, Toolset>();
  const shapeOf = shapes(catalog.tools);
  for (const t of catalog.tools)
    for (const a of automatic(t, shapeOf.get(t.api)!)) {
      let s = sets.get(a.name);
      if (!s) {
        s = {
          name: a.name,
          description: describe(a),
          source: a.source,
          tools: [],
        };
        sets.set(a.name, s);
      }
      s.tools.push(t.name);
    }
  for (const [name, def] of Object.entries(doc?.toolsets ?? {})) {
    const tests = def.match.map((m) => compileMatch(m));
    sets.set(name, {
      name,
      description: def.description ?? `Defined in the policy (${def.match.length} match rule(s))`,
      source: 'policy',
      tools: catalog.tools.filter((t) => tests.some((f) => f(t))).map((t) => t.name),
    });
  }
  return [...sets.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** `crm:Pull Requests` → `crm:pull-requests`: the API's name and the group's slug, each on its side. */
function slugged(name: string): string {
  const at = name.indexOf(':');
  return at < 0 ? slug(name) : `${name.slice(0, at).trim().toLowerCase()}:${slug(name.slice(at + 1))}`;
}

/**
 * The tool names in the requested toolsets. An unknown name is a start-up error with the closest
 * match, never a silently empty server.
 */
export function selectToolsets(
  all: readonly Toolset[],
  requested: readonly string[],
  /** After start-up (a spec or policy reload), an unknown name is reported here and skipped. */
  onUnknown?: (message: string) => void,
): Set<string> {
  const byName = new Map(all.map((s) => [s.name, s]));
  const names = all.map((s) => s.name);
  const out = new Set<string>();
  for (const raw of requested) {
    const want = raw.trim();
    const set = byName.get(want) ?? byName.get(slugged(want));
    if (!set) {
      const message = `no toolset named "${want}"${didYouMean(want, names)}; list them with \`mcp-warden toolsets <spec>\``;
      if (!onUnknown) throw new WardenError('CONFIG_INVALID', message);
      onUnknown(message);
      continue;
    }
    for (const t of set.tools) out.add(t);
  }
  return out;
}
