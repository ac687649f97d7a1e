/**
 * The worker thread of ./prefetch.ts (its entry is ../catalog/prefetch-worker.ts, which hands in
 * the catalogue's part: this floor may not import the catalogue): loads one spec with `loadSpec` and posts the result back
 * (packed by ./spec-transfer.ts as its cache entry's payload would be: JSON when that is exact, else
 * V8's serialisation). An
 * OpenAPI 3 spec is posted before its meta-schema validation (`beforeValidation`), so the main
 * thread receives it (a tenth of a second for Stripe) while this thread validates; the last
 * message then says only whether the load succeeded. A failure posts only `{ ok: false }`: the
 * main thread then loads the spec itself and reports the error exactly as it would have.
 *
 * After the hand-over this thread writes the spec's cache entry (the document's JSON texts made for
 * the hand-over, not made again) and exits. When that entry has no
 * catalogue snapshot, another one of these threads, started with `catalogOnly` after the first list
 * (./prefetch.ts `storeCatalogSnapshot`, also used for a spec the main thread loaded itself), loads
 * the entry back, builds the catalogue and stores its snapshot (../catalog/snapshot.ts); the next
 * start restores it instead of building. That thread posts nothing.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sendCacheWarnings } from './cache.js';
import { type LoadedSpec, type LoadOptions, loadSpec } from './load.js';
import type { PrefetchMessage, PrefetchOptions } from './prefetch.js';
import { type EncodedDoc, type PackedSpec, packCached, packSpec } from './spec-transfer.js';

/** A loaded spec's catalogue snapshot, or undefined when it cannot be made. */
export type MakeSnapshot = (spec: LoadedSpec) => Promise<Uint8Array | undefined>;

/** The worker's work, as its entry starts it (see above). */
export async function runLoadWorker(makeSnapshot: MakeSnapshot): Promise<void> {
  const { source, options, catalogOnly, replace } = workerData as {
    source: string;
    options: PrefetchOptions;
    catalogOnly?: boolean;
    /** With `catalogOnly`: the snapshot beside the entry did not restore; a new one replaces it. */
    replace?: boolean;
  };
  // This thread's stderr is not the process's (./prefetch.ts): the main thread writes these.
  const stderr: string[] = [];
  sendCacheWarnings((line) => stderr.push(line));
  const storeCatalog: StoreCatalog = (store, spec) =>
    storeSnapshot(source, options, makeSnapshot, store, spec);
  if (catalogOnly)
    await storeOnly(source, replace ? { ...options, replaceCatalog: true } : options, storeCatalog);
  else await prefetch(source, options, stderr);
}

/**
 * Makes the snapshot of `spec` and stores it through `store`, the session that produced `spec`.
 * Without `spec` (a hit's bytes went to the main thread) the cached spec is loaded again, and only
 * that load's own session may store: the files may have changed since the first read, and a
 * snapshot of the new version filed beside the old entry would be restored when the old version
 * comes back (a revert, a branch switch), with the new version's servers and exposure.
 */
export async function storeSnapshot(
  source: string,
  options: PrefetchOptions,
  makeSnapshot: MakeSnapshot,
  store: (snapshot: Uint8Array) => void,
  spec?: LoadedSpec,
): Promise<void> {
  try {
    let s = spec;
    let into: ((snapshot: Uint8Array) => void) | undefined = store;
    if (!s) {
      into = undefined;
      s = await loadSpec(source, {
        ...options,
        onCatalogMissing: (again) => {
          into = again;
        },
      });
    }
    if (!into) return;
    const snapshot = await makeSnapshot(s);
    if (snapshot) into(snapshot);
  } catch {
    // A spec the catalogue cannot be built from fails on the main thread, as it does anyway.
  }
}

type StoreCatalog = (store: (snapshot: Uint8Array) => void, spec?: LoadedSpec) => Promise<void>;

/**
 * `catalogOnly`: the spec again (a cache hit by now), and its snapshot stored if it has none (with
 * `replaceCatalog`: in place of the one it has, which did not restore).
 */
async function storeOnly(source: string, options: LoadOptions, storeCatalog: StoreCatalog) {
  let store: ((snapshot: Uint8Array) => void) | undefined;
  try {
    const spec = await loadSpec(source, {
      ...options,
      onCatalogMissing: (s) => {
        store = s;
      },
    });
    if (store) await storeCatalog(store, spec);
  } catch {
    // Nothing to store: the main thread has its own load.
  }
}

/**
 * The prefetch: the spec posted to the main thread, its cache entry written, and `storing` said
 * when that entry has no catalogue snapshot (./prefetch.ts has one stored after the first list).
 */
async function prefetch(source: string, options: PrefetchOptions, stderr: string[]): Promise<void> {
  const progress: string[] = [];
  const post = (m: PrefetchMessage, transfer: ArrayBuffer[] = []) => parentPort?.postMessage(m, transfer);
  let sent = false;
  let result: PrefetchMessage;
  let tail: ArrayBuffer[] = [];
  let cached: { packed: PackedSpec; transfer: ArrayBuffer[] } | undefined;
  // The cache holds (or will hold) this spec without a catalogue snapshot: ./prefetch.ts has one made.
  let snapshotMissing = false;
  let storeEntry: ((encoded?: EncodedDoc) => void) | undefined;
  // The document's JSON form made for the hand-over: the cache entry stores the same texts.
  let encoded: EncodedDoc | undefined;
  try {
    const spec = await loadSpec(source, {
      ...options,
      deferStore: (s) => {
        storeEntry = s;
      },
      onProgress: (m) => progress.push(m),
      onCachedBytes: (hit) => {
        cached = packCached(hit);
      },
      onCatalogMissing: () => {
        snapshotMissing = true;
      },
      onLongLoad: () => post({ longLoad: true }),
      beforeValidation: (s) => {
        try {
          const p = packSpec(s);
          encoded = p.encoded;
          post({ early: p.packed }, p.transfer);
          sent = true;
        } catch {
          // Something in the spec cannot be cloned: the last message fails the same way.
        }
      },
    });
    const storing = snapshotMissing ? { storing: true as const } : {};
    if (cached) {
      result = { ok: true, spec: cached.packed, progress, stderr, ...storing };
      tail = cached.transfer;
    } else {
      if (sent) result = { ok: true, progress, stderr, ...storing };
      else {
        const p = packSpec(spec);
        encoded = p.encoded;
        result = { ok: true, spec: p.packed, progress, stderr, ...storing };
        tail = p.transfer;
      }
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
  // The cache entry of a spec loaded here, written now that the main thread has it (the cache
  // never fails a load: what it cannot write it leaves unwritten).
  try {
    // `encoded` is of the document handed over; the store uses it only if that is the one it stores.
    storeEntry?.(encoded);
  } catch {
    // Nothing to do: the next start loads the spec again.
  }
  // Nothing more here: the snapshot is made after the first list by a fresh worker that reads this
  // entry back (./prefetch.ts). Kept waiting for the list, this thread's heap (its copy of the spec,
  // the parse's garbage: Stripe 107 MB, Kubernetes 69 MB at the list) sat beside the main thread's
  // and took a cold start's RSS over 200 MB; its exit frees all of it.
}
