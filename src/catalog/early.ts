/**
 * A big spec's catalogue begun before the spec is known to be valid (issue 22, target 1). The
 * prefetch worker (../openapi/prefetch.ts) posts the loaded spec before its meta-schema validation
 * (GitHub ~60 ms, Stripe ~90 ms; a Swagger 2.0 spec's converted document before the 2.0 document's
 * validation); the main thread used to wait for the verdict, then build the catalogue. Now it builds
 * meanwhile, a slice of operations per macrotask (requests are read between slices), and the result
 * is used only when the load succeeds with that same spec object (./build.ts `catalogBuilder` step
 * by step: the catalogue `buildCatalog` gives, or its error at the same operation). A spec found
 * invalid is loaded again on the main thread, which reports the loader's own error; the early
 * build is dropped.
 */
import type { Catalog, Tool } from '../model/catalog.js';
import type { LoadedSpec } from '../openapi/load.js';
import { type CatalogBuilder, catalogBuilder } from './build.js';

/** Operations per slice: a request arriving meanwhile waits for one slice at most. */
const SLICE = 40;

interface EarlyBuild {
  cancelled: boolean;
  /** Settles with the catalogue or the build's error, once the last slice ran (or it was dropped). */
  result: Promise<{ catalog: Catalog } | { error: unknown } | undefined>;
}

const builds = new WeakMap<object, EarlyBuild>();

/** Begins the catalogue of `spec` (the worker's, before its validation ended). */
export function beginEarlyBuild(spec: LoadedSpec): void {
  const b: EarlyBuild = { cancelled: false, result: Promise.resolve(undefined) };
  b.result = new Promise((resolve) => {
    let builder: CatalogBuilder;
    try {
      builder = catalogBuilder(spec);
    } catch (error) {
      return resolve({ error });
    }
    const tools: Tool[] = [];
    const step = (start: number) => {
      if (b.cancelled) return resolve(undefined);
      const end = Math.min(builder.ops.length, start + SLICE);
      try {
        for (let i = start; i < end; i++) tools.push(builder.tool(i));
        if (end < builder.ops.length) return void setImmediate(step, end);
        resolve({ catalog: builder.finish(tools) });
      } catch (error) {
        resolve({ error });
      }
    };
    step(0);
  });
  builds.set(spec, b);
}

/** Stops the early build of `spec`: the load gave another spec, or failed. */
export function dropEarlyBuild(spec: LoadedSpec): void {
  const b = builds.get(spec);
  builds.delete(spec);
  if (b) b.cancelled = true;
}

/**
 * The catalogue of the early build of `spec` (this very object); undefined when none was begun (the
 * caller builds it). Throws what `buildCatalog` would have thrown.
 */
export async function finishEarlyBuild(spec: LoadedSpec): Promise<Catalog | undefined> {
  const b = builds.get(spec);
  builds.delete(spec);
  const r = await b?.result;
  if (!r) return undefined;
  if ('error' in r) throw r.error;
  return r.catalog;
}
