import { fileURLToPath } from 'node:url';
import { workerData } from 'node:worker_threads';
import { runBundle, saveCodeCache } from '../lib/code-cache.js';

/**
 * The spec loader's worker thread as built (scripts/bundle-cli.mjs writes it as
 * dist/openapi/load-worker.js, where ../openapi/prefetch.ts starts it): runs ./prefetch-worker.ts's
 * bundle through V8's code cache (src/lib/code-cache.ts), whose cache is written once the worker's
 * work is done.
 */

/** The build's hash of the bundle (scripts/bundle-cli.mjs defines it). */
declare const WARDEN_WORKER_BUNDLE_ID: string;

const { done } = runBundle({
  file: fileURLToPath(new URL('./load-worker.bundle.cjs', import.meta.url)),
  id: WARDEN_WORKER_BUNDLE_ID,
  role: 'worker',
}) as { done: Promise<void> };
// A failed load still rejects (the main thread hears of it through the worker's 'error'). A
// snapshot's worker starts once the gateway serves, after it changed a V8 flag the code cache is
// keyed by (src/server/heap-growth.ts): only the loading worker, which runs before, writes it.
if (!(workerData as { catalogOnly?: boolean } | null)?.catalogOnly) void done.then(saveCodeCache);
