/**
 * The worker thread of ./prefetch.ts: loads one spec with `loadSpec` and posts the result back
 * (structured clone keeps shared subtrees, `undefined` and non-finite numbers as they are). An
 * OpenAPI 3 spec is posted before its meta-schema validation (`beforeValidation`), so the main
 * thread receives it (a tenth of a second for Stripe) while this thread validates; the last
 * message then says only whether the load succeeded. A failure posts only `{ ok: false }`: the
 * main thread then loads the spec itself and reports the error exactly as it would have.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadSpec } from './load.js';
import type { PrefetchMessage, PrefetchOptions } from './prefetch.js';
import { packSpec } from './spec-transfer.js';

const { source, options } = workerData as { source: string; options: PrefetchOptions };
const progress: string[] = [];
const post = (m: PrefetchMessage, transfer: ArrayBuffer[] = []) => parentPort?.postMessage(m, transfer);
let sent = false;
let result: PrefetchMessage;
let tail: ArrayBuffer[] = [];
try {
  const spec = await loadSpec(source, {
    ...options,
    onProgress: (m) => progress.push(m),
    beforeValidation: (s) => {
      try {
        const { packed, transfer } = packSpec(s);
        post({ early: packed }, transfer);
        sent = true;
      } catch {
        // Something in the spec cannot be cloned: the last message fails the same way.
      }
    },
  });
  if (sent) result = { ok: true, progress };
  else {
    const { packed, transfer } = packSpec(spec);
    result = { ok: true, spec: packed, progress };
    tail = transfer;
  }
} catch {
  result = { ok: false };
}
try {
  post(result, tail);
} catch {
  // Something in the spec cannot be cloned: the main thread loads it itself.
  post({ ok: false });
}
