/**
 * The worker thread of ./prefetch.ts: loads one spec with `loadSpec` and posts the result back
 * (structured clone keeps shared subtrees, `undefined` and non-finite numbers as they are). A
 * failure posts only `{ ok: false }`: the main thread then loads the spec itself and reports the
 * error exactly as it would have.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadSpec } from './load.js';
import type { PrefetchOptions, PrefetchResult } from './prefetch.js';

const { source, options } = workerData as { source: string; options: PrefetchOptions };
const progress: string[] = [];
let result: PrefetchResult;
try {
  const spec = await loadSpec(source, { ...options, onProgress: (m) => progress.push(m) });
  result = { ok: true, spec, progress };
} catch {
  result = { ok: false };
}
try {
  parentPort?.postMessage(result);
} catch {
  // Something in the spec cannot be cloned: the main thread loads it itself.
  parentPort?.postMessage({ ok: false } satisfies PrefetchResult);
}
