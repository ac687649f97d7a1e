import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { buildCatalog } from '../catalog/build.js';
import type { Controller } from '../control/controller.js';
import { ToolSearch } from '../discover/search.js';
import { toWardenError, WardenError } from '../errors/index.js';
import type { Catalog } from '../model/catalog.js';
import type { Logger } from '../observe/log.js';
import { type LoadedSpec, type LoadOptions, loadSpec } from '../openapi/load.js';
import type { Pipeline } from '../pipeline/index.js';
import { resolveTargets, type UpstreamTarget } from '../upstream/base-url.js';

export interface ApiSource {
  /** Spec file path or URL. */
  spec: string;
  baseUrl?: string;
  load?: LoadOptions;
}

/** One API as served: its spec, its tools, and where each tool's requests go. */
export interface LoadedApi {
  spec: LoadedSpec;
  catalog: Catalog;
  targets: Map<Catalog['tools'][number], UpstreamTarget>;
}

/** Loads the spec, builds the catalogue and fixes every tool's upstream target. */
export async function loadApi(source: ApiSource): Promise<LoadedApi> {
  const spec = await loadSpec(source.spec, source.load ?? {});
  const catalog = buildCatalog(spec);
  const targets = resolveTargets(catalog.tools, {
    ...(source.baseUrl !== undefined ? { baseUrl: source.baseUrl } : {}),
    specSource: spec.source.location,
    docServers: catalog.servers,
  });
  return { spec, catalog, targets };
}

export interface ServedApiOptions {
  source: ApiSource;
  first: LoadedApi;
  controller: Controller;
  makePipeline: (api: LoadedApi) => Pipeline;
  logger: Logger;
}

/**
 * The API being served and its pipeline, replaced together when the spec is reloaded: the new
 * pipeline and catalogue are swapped in one synchronous step, so a call sees either the old pair or
 * the new one, never a mix. A spec that fails to load changes nothing.
 */
export class ServedApi {
  private current: Pipeline;
  private index: ToolSearch | undefined;

  constructor(private readonly o: ServedApiOptions) {
    this.current = o.makePipeline(o.first);
  }

  get pipeline(): Pipeline {
    return this.current;
  }

  /** Dynamic mode's index, built on the first search (and again after a reload). */
  search(): ToolSearch {
    this.index ??= new ToolSearch(this.o.controller.currentCatalog());
    return this.index;
  }

  async reload(actor: string): Promise<{ tools: number; pending: string[] }> {
    // A reloaded spec is read from where the first one was, with the first one's base URL rules.
    const next = await loadApi(this.o.source);
    const pipeline = this.o.makePipeline(next);
    // The catalogue first (it can refuse, e.g. when the change cannot be audited), then the pipeline,
    // in the same synchronous step: a call never sees the new one with the old view.
    this.o.controller.setCatalog(next.catalog, actor);
    this.current = pipeline;
    this.index = undefined;
    const pending = [...this.o.controller.pending().keys()];
    const tools = next.catalog.tools.length;
    this.o.logger.warn(
      { tools, pending: pending.slice(0, 20) },
      `spec reloaded: ${tools} tools, ${pending.length} waiting for approval`,
    );
    return { tools, pending };
  }

  /** Reloads a local spec file when it changes (debounced; reloads never overlap). */
  watch(): FSWatcher {
    if (/^https?:/i.test(this.o.source.spec))
      throw new WardenError(
        'USAGE',
        '--watch-spec needs a local spec file; reload a URL spec through the admin API',
      );
    const file = resolvePath(this.o.source.spec);
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const reload = () => {
      running = running.then(() =>
        this.reload('spec-watch').then(
          () => undefined,
          (e) => {
            const err = toWardenError(e);
            this.o.logger.warn(
              { code: err.code, err: err.message },
              'spec reload failed; the previous spec stays',
            );
          },
        ),
      );
    };
    return watch(dirname(file), { persistent: false }, (_e, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(reload, 300);
    });
  }
}
