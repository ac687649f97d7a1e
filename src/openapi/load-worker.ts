/**
 * The worker thread of ./prefetch.ts: loads one spec with `loadSpec` and posts the result back
 * (structured clone keeps shared subtrees, `undefined` and non-finite numbers as they are). An
 * OpenAPI 3 spec is posted before its meta-schema validation (`beforeValidation`), so the main
 * thread receives it (a tenth of a second for Stripe) while this thread validates; the last
 * message then says only whether the load succeeded. A Swagger 2.0 spec is posted before its
 * validation too, in its 2.0 form: the main thread validates it while this thread converts it, and
 * uses the conversion only if it is valid. A failure posts only `{ ok: false }`: the main thread
 * then loads the spec itself and reports the error exactly as it would have.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadSpec } from './load.js';
import type { PrefetchMessage, PrefetchOptions } from './prefetch.js';

const { source, options } = workerData as { source: string; options: PrefetchOptions };
const progress: string[] = [];
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
    // Swagger 2.0: the main thread validates the document while this thread converts it. If it
    // cannot be sent, this throws and the load fails here (nothing unvalidated is ever sent alone).
    validatesSwagger2: (s) => post({ swagger2: s }),
  });
  result = sent ? { ok: true, progress } : { ok: true, spec, progress };
} catch {
  result = { ok: false };
}
try {
  post(result);
} catch {
  // Something in the spec cannot be cloned: the main thread loads it itself.
  post({ ok: false });
}
