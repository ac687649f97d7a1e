import { dirname, resolve as resolvePath } from 'node:path';
import { buildCatalog } from '../catalog/build.js';
import { beginEarlyBuild, dropEarlyBuild, finishEarlyBuild } from '../catalog/early.js';
import { assignSetNames } from '../catalog/names.js';
import { restoreCatalog } from '../catalog/snapshot.js';
import type { Controller } from '../control/controller.js';
import { ToolSearch } from '../discover/search.js';
import { formatError, toWardenError, WardenError } from '../errors/index.js';
import { watchFileChanges } from '../lib/watched-file.js';
import type { Catalog, Tool } from '../model/catalog.js';
import type { Logger } from '../observe/log.js';
import { type LoadedSpec, type LoadOptions, loadSpec } from '../openapi/load.js';
import { storeCatalogSnapshot, whenEarlySpec, whileLoadingLong } from '../openapi/prefetch.js';
import { isDamagedCopy, takeCatalogSnapshot } from '../openapi/spec-transfer.js';
import type { CallInput, ToolResult } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/index.js';
import type { PolicyDoc } from '../policy/schema.js';
import { resolveTargets, type UpstreamTarget } from '../upstream/base-url.js';

export interface ApiSource {
  /** Spec file path or URL. */
  spec: string;
  baseUrl?: string;
  load?: LoadOptions;
}

/**
 * One API of what is served. A single `--spec` is the one-API case: no name, no prefix, its tools
 * named as the spec says. In an API set every API has a name and its tools carry its prefix.
 */
export interface ApiMember {
  /** Its name under `apis:` (or `--api name=…`); undefined for a single spec. */
  name?: string;
  /** What its tool names start with, before `_` (`""`: nothing). */
  prefix: string;
  /** Whether the gateway may start without it (false: a spec that fails takes only this API out). */
  required: boolean;
  source: ApiSource;
}

/** One API as served: its spec, its tools, and where each tool's requests go. */
export interface LoadedApi {
  spec: LoadedSpec;
  catalog: Catalog;
  targets: Map<Catalog['tools'][number], UpstreamTarget>;
  /**
   * How the catalogue came to be: restored from the spec cache's snapshot, begun while the prefetch
   * worker validated the spec (../catalog/early.ts), or built here after the load. Logged at debug.
   */
  built?: 'restored' | 'early' | 'here';
  /**
   * A big spec's load, step by step with the time each took (read from the cache, or parsed,
   * bundled, converted, validated: ../openapi/load.ts), as the loader reported it. Logged at debug.
   */
  progress?: string[];
}

/** How an API is loaded: at start-up, or again on a serving gateway (`reload`). */
interface LoadApiOptions {
  reload?: boolean;
  /**
   * Called when this thread has a while with nothing to do: the prefetch worker parses a YAML spec,
   * converts a Swagger 2.0 one or bundles its files (no cache entry serves it), and this thread
   * waits for it. Not on a reload.
   */
  whileWaiting?: () => void;
}

/** Loads the spec, builds the catalogue and fixes every tool's upstream target. */
export async function loadApi(source: ApiSource, o: LoadApiOptions = {}): Promise<LoadedApi> {
  try {
    return await loadApiOnce(source, o);
  } catch (e) {
    // A cached document's part that passed its checksum yet does not parse is read only now (parts
    // are parsed on first read): loaded again from the spec's files, and the entry replaced.
    if (!isDamagedCopy(e)) throw e;
    return loadApiOnce({ ...source, load: { ...source.load, specCache: 'refresh' } }, o);
  }
}

async function loadApiOnce(source: ApiSource, o: LoadApiOptions): Promise<LoadedApi> {
  // A reload runs on a serving gateway's main thread: the cache's synchronous hashing of every
  // $ref'd file and its store would hold calls up; the next start stores the new spec.
  const load = o.reload ? { ...source.load, specCache: false } : (source.load ?? {});
  // Loaded here (not by the prefetch worker, which stores snapshots itself) and cached without a
  // catalogue snapshot: a worker thread stores one after this start has built its own.
  let snapshotWanted = false;
  // A spec the prefetch worker loads (a big one, at a cold start): its catalogue is begun as soon as
  // the worker posts it, while the worker validates it (../catalog/early.ts).
  let early: LoadedSpec | undefined;
  const progress: string[] = [];
  if (!o.reload) {
    whenEarlySpec(source.spec, load, (s) => {
      early = s as LoadedSpec;
      beginEarlyBuild(early);
    });
    if (o.whileWaiting) whileLoadingLong(source.spec, load, o.whileWaiting);
  }
  let spec: LoadedSpec;
  try {
    spec = await loadSpec(source.spec, {
      ...load,
      onCatalogMissing: () => {
        snapshotWanted = true;
      },
      onProgress: (m) => progress.push(m),
    });
  } finally {
    // Found invalid: the spec was loaded again here (or not at all), and its early build is moot.
    if (early && early !== spec!) dropEarlyBuild(early);
  }
  // A spec from the cache may come with its catalogue's snapshot: restored, not built (issue 22).
  // A reload builds, as does a snapshot that does not fit.
  const snapshot = o.reload ? undefined : takeCatalogSnapshot(spec);
  const restored = snapshot && restoreCatalog(snapshot, spec);
  if (restored) dropEarlyBuild(spec);
  const begun = restored ? undefined : await finishEarlyBuild(spec);
  const catalog = restored || begun || buildCatalog(spec);
  // A snapshot that passed its checksum but does not restore (it does not fit the spec, or this code
  // cannot read it) is replaced by a good one: kept, it would have every later start build, until
  // the key changes.
  if (!o.reload && (snapshotWanted || (snapshot && !restored)))
    storeCatalogSnapshot(source.spec, load, { replace: !snapshotWanted });
  const targets = resolveTargets(catalog.tools, {
    ...(source.baseUrl !== undefined ? { baseUrl: source.baseUrl } : {}),
    specSource: spec.source.location,
    docServers: catalog.servers,
  });
  return {
    spec,
    catalog,
    targets,
    built: restored ? 'restored' : begun ? 'early' : 'here',
    ...(progress.length ? { progress } : {}),
  };
}

/**
 * The members of the policy's `apis:` (a spec path is relative to the policy file), in the order
 * written; `--api name=spec[,base-url]` flags give the same without a policy.
 */
export function apiMembers(doc: PolicyDoc, policyFile: string | undefined, load: LoadOptions): ApiMember[] {
  const base = policyFile !== undefined ? dirname(resolvePath(policyFile)) : process.cwd();
  return Object.entries(doc.apis ?? {}).map(([name, a]) => ({
    name,
    prefix: a.prefix ?? name,
    required: a.required,
    source: {
      spec: /^https?:\/\//i.test(a.spec) ? a.spec : resolvePath(base, a.spec),
      ...(a.baseUrl !== undefined ? { baseUrl: a.baseUrl } : {}),
      load,
    },
  }));
}

/**
 * What is served, from the command line and the policy: one `--spec` (the one-API case), `--api`
 * flags, or the policy's `apis:` — exactly one of them; mixing them is a usage error naming both.
 */
export function membersOf(
  o: {
    spec?: string;
    baseUrl?: string;
    apis?: ReadonlyArray<{ name: string; spec: string; baseUrl?: string }>;
    load?: LoadOptions;
  },
  doc: PolicyDoc,
  policyFile: string | undefined,
): ApiMember[] {
  const load = o.load ?? {};
  const flags = o.apis ?? [];
  if (o.spec !== undefined && flags.length)
    throw new WardenError('USAGE', 'give either --spec (one API) or --api name=spec (an API set), not both');
  if (doc.apis && (o.spec !== undefined || flags.length))
    throw new WardenError(
      'USAGE',
      `the policy describes an API set (apis:), so ${o.spec !== undefined ? '--spec' : '--api'} is not used: serve it with --policy alone, or remove apis: from the policy`,
    );
  if (o.spec !== undefined)
    return [
      {
        prefix: '',
        required: true,
        source: { spec: o.spec, ...(o.baseUrl !== undefined ? { baseUrl: o.baseUrl } : {}), load },
      },
    ];
  if (o.baseUrl !== undefined)
    throw new WardenError(
      'USAGE',
      '--base-url goes with --spec; in an API set each API has its own (apis.<name>.baseUrl, or --api name=spec,base-url)',
    );
  if (flags.length) {
    if (doc.credentials)
      throw new WardenError(
        'USAGE',
        'with --api, each API takes its credentials from MCP_WARDEN_CRED_<API>_<SCHEME>; to name them in the policy, describe the set under apis: and serve it with --policy alone',
      );
    const seen = new Set<string>();
    return flags.map((f) => {
      if (seen.has(f.name)) throw new WardenError('USAGE', `two --api flags are named "${f.name}"`);
      seen.add(f.name);
      return {
        name: f.name,
        prefix: f.name,
        // As in a policy's apis: a spec that cannot be loaded takes only its own API out.
        required: false,
        source: { spec: f.spec, ...(f.baseUrl !== undefined ? { baseUrl: f.baseUrl } : {}), load },
      };
    });
  }
  if (doc.apis) return apiMembers(doc, policyFile, load);
  throw new WardenError(
    'USAGE',
    'nothing to serve: give --spec <file|url>, --api name=spec[,base-url], or a --policy with apis:',
  );
}

/** What `/readyz`, the logs and the dashboard say about one API of the set. */
export interface ApiStatus {
  name: string;
  prefix: string;
  required: boolean;
  /** `serving`, or `out`: its spec could not be loaded (its tools are absent). */
  state: 'serving' | 'out';
  tools: number;
  /** Why it is out (a one-line error, no stack). */
  error?: string;
}

/** One API as the set holds it: the catalogue as built from its spec, and as served (named). */
interface Part {
  member: ApiMember;
  /** As built from the spec, tools named by the spec alone. */
  raw?: LoadedApi;
  /** As served: tools prefixed and marked with the API. */
  served?: LoadedApi;
  pipeline?: Pipeline;
  error?: string;
}

/** The APIs as loaded at start-up, before anything is served. */
export interface LoadedSet {
  parts: Part[];
  /** The catalogue served (for one spec, the spec's own). */
  catalog: Catalog;
}

/**
 * Loads every API at once (start-up takes as long as the slowest, not the sum). An API that fails is
 * a start-up error when it is required, else it is out: logged, and named by readiness.
 */
export async function loadApis(
  members: readonly ApiMember[],
  logger: Logger,
  /** See LoadApiOptions; one API only (the others would load on this thread meanwhile). */
  whileWaiting?: () => void,
): Promise<LoadedSet> {
  const alone = members.length === 1 && whileWaiting ? { whileWaiting } : {};
  const results = await Promise.allSettled(members.map((m) => loadApi(m.source, alone)));
  const parts: Part[] = members.map((member, i) => {
    const r = results[i]!;
    if (r.status === 'fulfilled') {
      const api = member.name !== undefined ? { api: member.name } : {};
      for (const m of r.value.progress ?? []) logger.debug({ ...api }, m);
      logger.debug({ ...api, tools: r.value.catalog.tools.length, built: r.value.built }, 'catalogue ready');
      return { member, raw: r.value };
    }
    const err = toWardenError(r.reason);
    if (member.name === undefined) throw err;
    if (member.required)
      throw new WardenError(err.code, `API ${member.name}: ${err.message}`, {
        ...(err.location ? { location: err.location } : {}),
        details: ['set `required: false` under apis.<name> to start without it', ...(err.details ?? [])],
      });
    logger.error(
      { api: member.name, code: err.code, err: formatError(err) },
      `API ${member.name} is out: its spec could not be loaded; its tools are not served`,
    );
    return { member, error: formatError(err) };
  });
  if (!parts.some((p) => p.raw))
    throw new WardenError('CONFIG_INVALID', 'no API of the set could be loaded; see the errors above');
  name(parts);
  return { parts, catalog: merged(parts) };
}

export interface ServedApiOptions {
  set: LoadedSet;
  controller: Controller;
  makePipeline: (api: LoadedApi) => Pipeline;
  logger: Logger;
}

/** What a reload did: the catalogue's size after it, and the tools waiting for approval. */
export interface ReloadResult {
  tools: number;
  pending: string[];
  /** In an API set: what happened to each API reloaded. */
  apis?: Record<string, { tools: number } | { error: string }>;
}

/**
 * The APIs being served, each with its own pipeline (its own breakers, bulkheads and retries, so
 * a hung API does not hold the others' calls), behind one router that sends a call to its tool's
 * API. A spec reload replaces only its API's part: the new pipeline and the merged catalogue are
 * swapped in one synchronous step, so a call sees either the old pair or the new one, never a mix;
 * the other APIs' tools and pipelines are the same objects as before. A spec that fails to load
 * changes nothing.
 */
export class ServedApi {
  private readonly parts: Part[];
  private readonly single: boolean;
  private byTool = new Map<string, Part>();
  private index: ToolSearch | undefined;
  private readonly router: Pipeline;

  constructor(private readonly o: ServedApiOptions) {
    this.parts = o.set.parts;
    this.single = this.parts.length === 1 && this.parts[0]!.member.name === undefined;
    for (const p of this.parts) if (p.served) p.pipeline = o.makePipeline(p.served);
    this.route();
    const first = () => this.parts.find((p) => p.pipeline)!.pipeline!;
    this.router = {
      call: (input: CallInput): Promise<ToolResult> =>
        // An unknown name goes to any pipeline: its first stage refuses it as for one spec.
        (this.byTool.get(input.name)?.pipeline ?? first()).call(input),
      get stages() {
        return first().stages;
      },
      close: async () => {
        for (const p of this.parts) await p.pipeline?.close();
      },
    };
  }

  get pipeline(): Pipeline {
    return this.single ? this.parts[0]!.pipeline! : this.router;
  }

  /** The APIs of a set and their state (empty for a single spec). */
  status(): ApiStatus[] {
    if (this.single) return [];
    return this.parts.map((p) => ({
      name: p.member.name!,
      prefix: p.member.prefix,
      required: p.member.required,
      state: p.served ? 'serving' : 'out',
      tools: p.served?.catalog.tools.length ?? 0,
      ...(p.error !== undefined ? { error: p.error } : {}),
    }));
  }

  /** For the start-up report: every upstream, every spec warning, every spec. */
  summary(): { specs: string[]; targets: UpstreamTarget[]; warnings: string[] } {
    const loaded = this.parts.filter((p) => p.served);
    return {
      specs: loaded.map((p) => p.served!.spec.source.location),
      targets: loaded.flatMap((p) => [...p.served!.targets.values()]),
      warnings: loaded.flatMap((p) =>
        p.served!.spec.warnings.map((w) => (p.member.name ? `${p.member.name}: ${w}` : w)),
      ),
    };
  }

  /** Dynamic mode's index, built on the first search (and again after a reload). */
  search(): ToolSearch {
    this.index ??= new ToolSearch(this.o.controller.currentCatalog());
    return this.index;
  }

  /**
   * Reloads a spec: the one spec, or in a set the API named (each API of the set, one after the
   * other, when none is). New and changed tools wait for approval.
   */
  async reload(actor: string, api?: string): Promise<ReloadResult> {
    if (this.single) {
      if (api !== undefined)
        throw new WardenError(
          'USAGE',
          'this gateway serves a single spec, not an API set: reload it without an API',
        );
      return this.reloadPart(this.parts[0]!, actor);
    }
    if (api !== undefined) {
      const part = this.parts.find((p) => p.member.name === api);
      if (!part)
        throw new WardenError(
          'USAGE',
          `no API named ${JSON.stringify(api.slice(0, 100))}; the set has ${this.parts.map((p) => p.member.name).join(', ')}`,
        );
      const r = await this.reloadPart(part, actor);
      return { ...r, apis: { [api]: { tools: part.served!.catalog.tools.length } } };
    }
    const apis: NonNullable<ReloadResult['apis']> = {};
    for (const part of this.parts) {
      try {
        await this.reloadPart(part, actor);
        apis[part.member.name!] = { tools: part.served!.catalog.tools.length };
      } catch (e) {
        apis[part.member.name!] = { error: formatError(toWardenError(e)) };
      }
    }
    return {
      tools: this.o.controller.currentCatalog().tools.length,
      pending: [...this.o.controller.pending().keys()],
      apis,
    };
  }

  private async reloadPart(part: Part, actor: string): Promise<{ tools: number; pending: string[] }> {
    const label = part.member.name !== undefined ? `API ${part.member.name}: ` : '';
    // A reloaded spec is read from where the first one was, with the first one's base URL rules.
    const raw = await loadApi(part.member.source, { reload: true }).catch((e: unknown) => {
      const err = toWardenError(e);
      throw label
        ? new WardenError(err.code, `${label}${err.message}`, err.location ? { location: err.location } : {})
        : err;
    });
    // Named with the set as it would be; only parts whose tools changed get a new pipeline.
    const before = this.parts.map((p) => ({
      raw: p.raw,
      served: p.served,
      pipeline: p.pipeline,
      error: p.error,
    }));
    const fresh = new Map<Part, Pipeline>();
    try {
      // Inside: a spec whose names cannot be told apart (hash clash) is refused like any bad spec,
      // and leaves the set as it was — not a stuck part that fails every later reload.
      part.raw = raw;
      const changed = name(this.parts);
      for (const p of changed) fresh.set(p, this.o.makePipeline(p.served!));
      // The catalogue first (it can refuse, e.g. when the change cannot be audited), then the
      // pipelines, in the same synchronous step: a call never sees the new one with the old view.
      this.o.controller.setCatalog(merged(this.parts), actor);
    } catch (e) {
      for (const [i, p] of this.parts.entries()) Object.assign(p, before[i]);
      for (const pl of fresh.values()) void pl.close();
      throw e;
    }
    for (const [p, pl] of fresh) p.pipeline = pl;
    delete part.error;
    this.route();
    this.index = undefined;
    const pending = [...this.o.controller.pending().keys()];
    const tools = part.served!.catalog.tools.length;
    this.o.logger.warn(
      {
        ...(part.member.name !== undefined ? { api: part.member.name } : {}),
        tools,
        pending: pending.slice(0, 20),
      },
      `${label}spec reloaded: ${tools} tools, ${pending.length} waiting for approval`,
    );
    return { tools, pending };
  }

  /**
   * Reloads each local spec file when it changes (debounced; reloads never overlap). A single URL
   * spec is a usage error; in a set, URL specs are reloaded through the admin API only.
   */
  watch(): { close(): void } {
    const local = this.parts.filter((p) => !/^https?:/i.test(p.member.source.spec));
    if (this.single && !local.length)
      throw new WardenError(
        'USAGE',
        '--watch-spec needs a local spec file; reload a URL spec through the admin API',
      );
    let running = Promise.resolve();
    const watchers: { close(): void }[] = local.flatMap((part) => {
      const file = resolvePath(part.member.source.spec);
      const reload = () => {
        running = running.then(() =>
          this.reloadPart(part, 'spec-watch').then(
            () => undefined,
            (e) => {
              const err = toWardenError(e);
              this.o.logger.warn(
                {
                  ...(part.member.name !== undefined ? { api: part.member.name } : {}),
                  code: err.code,
                  err: err.message,
                },
                part.served
                  ? 'spec reload failed; the previous spec stays'
                  : 'spec reload failed; the API stays out',
              );
            },
          ),
        );
      };
      // Polled, not a folder watch (see watchFileChanges): a file beside it written on every call
      // woke the folder watch each time. A missing file is polled too: it is reloaded once it appears.
      return [watchFileChanges(file, reload, { settleMs: 300 })];
    });
    return {
      close: () => {
        for (const w of watchers) w.close();
      },
    };
  }

  private route(): void {
    const byTool = new Map<string, Part>();
    for (const p of this.parts) for (const t of p.served?.catalog.tools ?? []) byTool.set(t.name, p);
    this.byTool = byTool;
  }
}

/**
 * Names the tools of every loaded part (`assignSetNames`), making `served` from `raw`. A part whose
 * names did not change keeps its served objects (so its pipeline stays); the parts that changed are
 * returned. A single spec is served as built.
 */
function name(parts: Part[]): Part[] {
  const loaded = parts.filter((p) => p.raw);
  if (parts.length === 1 && parts[0]!.member.name === undefined) {
    const p = parts[0]!;
    if (p.served === p.raw) return [];
    p.served = p.raw!;
    return [p];
  }
  const names = assignSetNames(
    loaded.map((p) => ({
      api: p.member.name!,
      prefix: p.member.prefix,
      tools: p.raw!.catalog.tools.map((t) => ({
        name: t.name,
        method: t.source.method,
        path: t.source.path,
      })),
    })),
  );
  const changed: Part[] = [];
  loaded.forEach((p, i) => {
    const want = names[i]!;
    const now = p.served;
    if (now && now.spec === p.raw!.spec && now.catalog.tools.every((t, j) => t.name === want[j])) return;
    p.served = renamed(p.raw!, p.member.name!, want);
    changed.push(p);
  });
  return changed;
}

/** The API's catalogue with its set names and its API marked on every tool (targets follow). */
function renamed(api: LoadedApi, apiName: string, names: readonly string[]): LoadedApi {
  const targets = new Map<Tool, UpstreamTarget>();
  const tools = api.catalog.tools.map((t, i) => {
    const tool: Tool = { ...t, name: names[i]!, api: apiName };
    const target = api.targets.get(t);
    if (target) targets.set(tool, target);
    return tool;
  });
  return { spec: api.spec, catalog: { ...api.catalog, tools }, targets };
}

/**
 * The catalogue served: one spec's own; for a set, every serving API's tools in the order of
 * `apis:`, titled by the set's names (`crm + billing + github`).
 */
function merged(parts: readonly Part[]): Catalog {
  if (parts.length === 1 && parts[0]!.member.name === undefined) return parts[0]!.served!.catalog;
  const loaded = parts.filter((p) => p.served);
  const each = (f: (c: Catalog, p: Part) => string) => loaded.map((p) => f(p.served!.catalog, p)).join(', ');
  return {
    title: parts.map((p) => p.member.name).join(' + '),
    apiVersion: each((c, p) => `${p.member.name} ${c.apiVersion}`),
    specVersion: [...new Set(loaded.map((p) => p.served!.catalog.specVersion))].join(', '),
    source: each((c) => c.source),
    servers: loaded.flatMap((p) => p.served!.catalog.servers),
    tools: loaded.flatMap((p) => p.served!.catalog.tools),
    formats: [...new Set(loaded.flatMap((p) => p.served!.catalog.formats))].sort(),
    warnings: loaded.flatMap((p) => p.served!.catalog.warnings.map((w) => `${p.member.name}: ${w}`)),
  };
}
