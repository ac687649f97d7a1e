/**
 * The worker thread of ./prefetch.ts: loads one spec with `loadSpec` and posts the result back
 * (packed by ./spec-transfer.ts: JSON when that is exact, else a structured clone). An
 * OpenAPI 3 spec is posted before its meta-schema validation (`beforeValidation`), so the main
 * thread receives it (a tenth of a second for Stripe) while this thread validates; the last
 * message then says only whether the load succeeded. A failure posts only `{ ok: false }`: the
 * main thread then loads the spec itself and reports the error exactly as it would have.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sendCacheWarnings } from './cache.js';
import { loadSpec } from './load.js';
import type { PrefetchMessage, PrefetchOptions } from './prefetch.js';
import { type PackedSpec, packCached, packSpec } from './spec-transfer.js';

const { source, options } = workerData as { source: string; options: PrefetchOptions };
const progress: string[] = [];
// This thread's stderr is not the process's (./prefetch.ts): the main thread writes these.
const stderr: string[] = [];
sendCacheWarnings((line) => stderr.push(line));
const post = (m: PrefetchMessage, transfer: ArrayBuffer[] = []) => parentPort?.postMessage(m, transfer);
let sent = false;
let result: PrefetchMessage;
let tail: ArrayBuffer[] = [];
let cached: { packed: PackedSpec; transfer: ArrayBuffer[] } | undefined;
try {
  const spec = await loadSpec(source, {
    ...options,
    onProgress: (m) => progress.push(m),
    onCachedBytes: (hit) => {
      cached = packCached(hit);
    },
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
  if (cached) {
    result = { ok: true, spec: cached.packed, progress, stderr };
    tail = cached.transfer;
  } else if (sent) result = { ok: true, progress, stderr };
  else {
    const { packed, transfer } = packSpec(spec);
    result = { ok: true, spec: packed, progress, stderr };
    tail = transfer;
  }
} catch {
  result = { ok: false, stderr };
}
try {
  post(result, tail);
} catch {
  // Something in the spec cannot be cloned: the main thread loads it itself.
  post({ ok: false, stderr });
}
