/**
 * The worker thread of ./prefetch.ts: loads one spec with `loadSpec` and posts the result back
 * (structured clone keeps shared subtrees, `undefined` and non-finite numbers as they are). An
 * OpenAPI 3 spec is posted before its meta-schema validation (`beforeValidation`), so the main
 * thread receives it (a tenth of a second for Stripe) while this thread validates; the last
 * message then says only whether the load succeeded. A failure posts only `{ ok: false }`: the
 * main thread then loads the spec itself and reports the error exactly as it would have.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sendCacheWarnings } from './cache.js';
import { loadSpec } from './load.js';
import type { PrefetchMessage, PrefetchOptions } from './prefetch.js';

const { source, options } = workerData as { source: string; options: PrefetchOptions };
const progress: string[] = [];
// This thread's stderr is not the process's (./prefetch.ts): the main thread writes these.
const stderr: string[] = [];
sendCacheWarnings((line) => stderr.push(line));
const post = (m: PrefetchMessage) => parentPort?.postMessage(m);
let sent = false;
let result: PrefetchMessage;
try {
  const spec = await loadSpec(source, {
    ...options,
    onProgress: (m) => progress.push(m),
    beforeValidation: (s) => {
      try {
        post({ early: s });
        sent = true;
      } catch {
        // Something in the spec cannot be cloned: the last message fails the same way.
      }
    },
  });
  result = sent ? { ok: true, progress, stderr } : { ok: true, spec, progress, stderr };
} catch {
  result = { ok: false, stderr };
}
try {
  post(result);
} catch {
  // Something in the spec cannot be cloned: the main thread loads it itself.
  post({ ok: false, stderr });
}
