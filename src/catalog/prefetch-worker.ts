/**
 * The entry of the spec-loading worker thread (../openapi/prefetch.ts starts it; the bundle writes it
 * as dist/openapi/load-worker.js, scripts/bundle-cli.mjs). The loading is ../openapi/load-worker.ts;
 * this floor adds the catalogue, which that one may not import: the snapshot of the catalogue built
 * from the loaded spec, stored in the spec cache after the hand-over (./snapshot.ts). The catalogue's
 * modules are imported only then, so the worker's start loads the loader alone.
 */
import { runLoadWorker } from '../openapi/load-worker.js';

/** The worker's work; settled once it is done (./launch-worker.ts then writes the code cache). */
export const done = runLoadWorker(async (spec) => {
  const { buildCatalog } = await import('./build.js');
  const { snapshotCatalog } = await import('./snapshot.js');
  return snapshotCatalog(buildCatalog(spec), spec);
});
