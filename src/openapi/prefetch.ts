import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { type PackedSpec, unpackSpec } from './spec-transfer.js';

/**
 * Loading a spec off the main thread while the main thread loads the rest of the program. `serve`
 * starts it from the command line before importing the server (a second of module loading on a
 * small machine), and `loadSpec` takes the result when it is asked for the same source with the same
 * options. Only a successful load is taken: on any failure `loadSpec` loads again itself, so every
 * error is reported exactly as without a prefetch, and at the same point of start-up.
 *
 * This module imports nothing of the loader, so starting the worker costs no module loading here.
 * The worker loads the loader's own modules a second time (about 120 KB of code: js-yaml and the
 * loader, not the MCP SDK nor the `yaml` package), so it is started only where it saves more than
 * that: a spec behind a URL (the download overlaps too) or a file of a megabyte or more. For a big
 * JSON file the parse is quick, but the checks after it are not (GitHub's 3.6 MB: about 0.3 s of
 * shape checks, repairs and meta-schema validation; Kubernetes' Swagger 2.0: over a second with the
 * conversion), and receiving the result costs the main thread a tenth of that. Small files load on
 * the main thread as before, even a Swagger 2.0 one: moving its converter to the worker was measured
 * to cost more CPU and time than it saved. So were (issue 22, third pass, same-run startup benches
 * on a shared machine) loading a small root file that pulls in many others (DigitalOcean's 2,850
 * files) on the worker, and, for a big Swagger 2.0 spec, validating the 2.0 document on the idle
 * main thread while the worker converts it: slower to the first list in two runs of three, and
 * 25-45 MB more RSS. What did pay (fourth pass): the worker converts a big 2.0 spec first and sends
 * it before validating the 2.0 document, as it does an OpenAPI 3 one (./load.ts).
 */

/** Local files below this size load on the main thread. */
export const PREFETCH_MIN_BYTES = 1024 * 1024;

/** Whether loading `source` on a worker thread is worth its cost (see above). */
export function worthPrefetching(source: string): boolean {
  if (/^https?:\/\//i.test(source)) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return false;
  try {
    const st = statSync(source);
    return st.isFile() && st.size >= PREFETCH_MIN_BYTES;
  } catch {
    return false;
  }
}

/**
 * The data options of `loadSpec` (its LoadOptions extends these), which a prefetch must match
 * (callbacks do not count). Declared here so this module imports nothing of the loader.
 */
export interface PrefetchOptions {
  /** Largest spec file (and largest sum of all files of a multi-file spec), in bytes. */
  maxBytes?: number;
  maxDepth?: number;
  /** Nodes in the parsed tree, aliases counted at each use. */
  maxNodes?: number;
  /** Most files an external-`$ref` spec may pull in. */
  maxFiles?: number;
  /**
   * Remote `$ref`s: `same-origin` (default) follows them only when the spec itself came from a URL and
   * only to that origin; `any` follows them anywhere (explicit opt-in); `none` never.
   */
  remoteRefs?: 'none' | 'same-origin' | 'any';
  /** Directory that local `$ref`s must stay inside; default: the spec file's own directory. */
  refRoot?: string;
  fetchTimeoutMs?: number;
  /**
   * `false` (`--no-spec-cache`): neither read nor write the spec cache (./cache.ts); `'refresh'`: do
   * not read this spec's entry, store it anew (a damaged copy was read: `isDamagedCopy`).
   */
  specCache?: boolean | 'refresh';
}

/** What the worker sends back: the loaded spec (structured clone) and the progress lines it wrote. */
export type PrefetchResult = { ok: true; spec: unknown; progress: string[] } | { ok: false };

/**
 * The worker's messages: at most one `early` spec (sent before its validation), then one result,
 * without the spec when it came early. Specs travel packed (./spec-transfer.ts).
 */
export type PrefetchMessage =
  // No cache entry serves the spec, and what is left of its load is long (loadSpec's `onLongLoad`).
  | { longLoad: true }
  | { early: PackedSpec }
  // `storing`: the worker writes a cache entry without a catalogue snapshot, then exits by itself
  // (unref'd); the snapshot is stored after the first list (`storeCatalogSnapshot`).
  | { ok: true; spec?: PackedSpec; progress: string[]; stderr?: string[]; storing?: true }
  | { ok: false; stderr?: string[] };

const KEYS = [
  'maxBytes',
  'maxDepth',
  'maxNodes',
  'maxFiles',
  'remoteRefs',
  'refRoot',
  'fetchTimeoutMs',
  'specCache',
] as const;

function keyOf(source: string, options: PrefetchOptions): string {
  return JSON.stringify([source, ...KEYS.map((k) => options[k] ?? null)]);
}

let pending:
  | {
      key: string;
      result: Promise<PrefetchResult>;
      /** The spec the worker posted before its validation, until an `onEarly` takes it. */
      early?: unknown;
      onEarly?: (spec: unknown) => void;
      /** The worker said its load is long (`longLoad`), and no spec has come since. */
      long?: boolean;
      onLong?: () => void;
    }
  | undefined;

/**
 * Has `f` called with the prefetched spec of `source` (these options) as soon as the worker posts it
 * before its validation — at once if it already has — so the main thread can start on it while the
 * worker validates (../catalog/early.ts). Only when `takePrefetched` then gives `ok` with that same
 * object is it a valid spec. Nothing happens without such a prefetch.
 */
export function whenEarlySpec(source: string, options: PrefetchOptions, f: (spec: unknown) => void): void {
  const p = pending;
  if (!p || p.key !== keyOf(source, options)) return;
  if (p.early !== undefined) {
    const spec = p.early;
    p.early = undefined;
    f(spec);
  } else p.onEarly = f;
}

/**
 * Calls `f` (at once, or when the worker says so) when the prefetch of `source` (these options) has
 * a long load ahead — no cache entry serves the spec, and it is YAML, Swagger 2.0 or in several files
 * (loadSpec's `onLongLoad`) — and has not posted the spec yet: whoever waits for it has a while with
 * nothing to do. Never called once the spec (early or whole) has come, nor without a prefetch. (A
 * JSON OpenAPI 3 spec is posted soon after its parse: preloading then made a cold GitHub start 80 ms
 * slower, bench/startup.mjs --cold.)
 */
export function whileLoadingLong(source: string, options: PrefetchOptions, f: () => void): void {
  const p = pending;
  if (!p || p.key !== keyOf(source, options)) return;
  if (p.long) {
    p.long = false;
    f();
  } else p.onLong = f;
}

/**
 * Starts loading `source` in a worker thread when that is worth it; at most one prefetch at a time
 * (a new one replaces it).
 */
export function prefetchSpec(source: string, options: PrefetchOptions = {}): void {
  if (!worthPrefetching(source)) return;
  const data: PrefetchOptions = {};
  for (const k of KEYS) if (options[k] !== undefined) (data as Record<string, unknown>)[k] = options[k];
  let worker: Worker;
  try {
    // Spelled from dist/ (or src/) down: in the CLI bundle this module sits in a chunk in dist/cli/,
    // and the worker's entry is dist/openapi/load-worker.js there too (scripts/bundle-cli.mjs).
    worker = new Worker(new URL('../openapi/load-worker.js', import.meta.url), {
      workerData: { source, options: data },
      // Its output would interleave with the gateway's; the main thread reports everything.
      stdout: true,
      stderr: true,
    });
  } catch {
    return;
  }
  // It must never keep the process alive: a gateway that fails before loading exits as before.
  worker.unref();
  const entry: NonNullable<typeof pending> = {
    key: keyOf(source, data),
    result: Promise.resolve({ ok: false }),
  };
  entry.result = new Promise<PrefetchResult>((resolve) => {
    let early: { spec: unknown } | undefined;
    const onMessage = (m: PrefetchMessage) => {
      try {
        if ('longLoad' in m) {
          const f = entry.onLong;
          entry.onLong = undefined;
          if (f) f();
          else entry.long = true;
          return;
        }
        // The spec has come (or the load is over): nobody has a while to wait any more.
        entry.long = false;
        entry.onLong = undefined;
        if ('early' in m) {
          // Unpacked now, while the worker validates; used only if the load succeeds.
          early = { spec: unpackSpec(m.early) };
          const f = entry.onEarly;
          entry.onEarly = undefined;
          if (f) f(early.spec);
          else entry.early = early.spec;
          return;
        }
        entry.early = undefined;
        worker.off('message', onMessage);
        // The worker's own stderr is not shown (see above): what it had to say (./cache.ts), written here.
        for (const line of m.stderr ?? []) process.stderr.write(line);
        if (!m.ok) resolve({ ok: false });
        else if (m.spec !== undefined) resolve({ ok: true, spec: unpackSpec(m.spec), progress: m.progress });
        else resolve(early ? { ok: true, spec: early.spec, progress: m.progress } : { ok: false });
        if (m.ok && m.storing) {
          snapshotAfter(worker, source, data);
          return;
        }
      } catch {
        // Whatever went wrong in the hand-over, the main thread loads the spec itself.
        worker.off('message', onMessage);
        resolve({ ok: false });
      }
      void worker.terminate();
    };
    worker.on('message', onMessage);
    // Gone without its spec: the main thread loads it itself, so it has no while to wait any more.
    const gone = () => {
      entry.long = false;
      entry.onLong = undefined;
      resolve({ ok: false });
    };
    worker.once('error', gone);
    worker.once('exit', gone);
  });
  pending = entry;
}

/**
 * For a spec the main thread loaded itself (below PREFETCH_MIN_BYTES, e.g. DigitalOcean's 2,850
 * files: ~0.5 s of `buildCatalog`): a worker thread that loads it again (a cache hit by now), builds
 * its catalogue and stores the snapshot a later start restores (./load-worker.ts `catalogOnly`).
 * Started with the other snapshot work, after the first list (`startSnapshots`): started at once,
 * its loading competed with the main thread's last steps to it (DigitalOcean, same-run startup
 * bench: +190 ms CPU and slower to the list). Silent: any failure stores nothing.
 */
export function storeCatalogSnapshot(
  source: string,
  options: PrefetchOptions = {},
  o: { replace?: boolean } = {},
): void {
  const data: PrefetchOptions = {};
  for (const k of KEYS) if (options[k] !== undefined) (data as Record<string, unknown>)[k] = options[k];
  held.push(() => {
    try {
      const worker = new Worker(new URL('../openapi/load-worker.js', import.meta.url), {
        workerData: { source, options: data, catalogOnly: true, ...(o.replace ? { replace: true } : {}) },
        stdout: true,
        stderr: true,
      });
      worker.unref();
      worker.on('error', () => {});
      return worker;
    } catch {
      // No worker: the next start builds the catalogue, as this one did.
      return undefined;
    }
  });
  fallback();
}

/**
 * Snapshot work waits for the first list to be answered (`startSnapshots`, called by the server):
 * a prefetch worker that builds the catalogue while the main thread builds or restores its own
 * competed for the two cores and doubled the heap on the way to the first list (Stripe, same-run
 * startup bench: 1.7 s against 1.4 s, peak RSS 225 MB). Should no list come, it starts
 * `SNAPSHOT_DELAY_MS` after it was asked for.
 */
const held: Array<() => Worker | undefined> = [];
/**
 * Snapshot work started but not yet run: one worker at a time. An API set started one per API at
 * once, each loading its spec and building its catalogue on both cores, beside the gateway serving.
 */
const queue: Array<() => Worker | undefined> = [];
/** Workers building or storing a snapshot (waited for at close, within a bound). */
const running = new Set<Worker>();

/**
 * The snapshot of a spec the prefetch worker loaded and cached without one: made after the first
 * list by a fresh worker that loads the entry back (a hit). The prefetch worker used to stay alive
 * until then to build it from its own copy of the spec; its heap (Stripe 107 MB, Kubernetes 69 MB,
 * most of it garbage V8 had not handed back) stood beside the main thread's at the first list:
 * cold-start RSS 229 and 222 MB (issue 22, target 200; now 141 and 152). Once it exits, all of it is
 * freed; the cost is the new worker's start and the hit (~0.35 s, after the list: a session that
 * lists and closes at once waits 1.2-1.4 s for it instead of 0.6-0.9). Tried and dropped: starting
 * that worker at the hand-over so its code is loaded by the list (close wait 0.65 s): its start
 * competed with the main thread's way to the list (same-run bench, 3 reps: Stripe 2.8 s against
 * 1.6, GitHub 1.2 against 1.0) and added 10-25 MB at the list. The prefetch worker goes first in
 * the queue until it exits, so the entry is written before it is read back (and waited for at close).
 */
function snapshotAfter(worker: Worker, source: string, options: PrefetchOptions): void {
  let exited = false;
  worker.once('exit', () => {
    exited = true;
  });
  held.push(() => (exited ? undefined : worker));
  storeCatalogSnapshot(source, options);
}

/** Runs the next snapshot work of the queue when none is running. */
function next(): void {
  while (running.size === 0 && queue.length > 0) {
    const worker = queue.shift()!();
    if (!worker) continue;
    running.add(worker);
    mostRunning = Math.max(mostRunning, running.size);
    worker.once('exit', () => {
      running.delete(worker);
      next();
    });
  }
}

/** The most snapshot workers that ran at once in this process (tests: it stays 1). */
let mostRunning = 0;
export function snapshotWorkersAtOnce(): number {
  return mostRunning;
}

let fallbackTimer: NodeJS.Timeout | undefined;
function fallback(): void {
  fallbackTimer ??= setTimeout(startSnapshots, SNAPSHOT_DELAY_MS).unref();
}

/** Starts the snapshot work held so far: the first list is answered. */
export function startSnapshots(): void {
  if (fallbackTimer) clearTimeout(fallbackTimer);
  fallbackTimer = undefined;
  queue.push(...held.splice(0));
  next();
}

/**
 * At close: snapshot work not started is dropped, and the process waits for what is under way, at
 * most `ms` (a stdio client gives a server 2 s after closing its input): a session that lists and
 * closes at once (a client's probe, a benchmark) still leaves its snapshot for the next start.
 */
export async function settleSnapshots(ms: number): Promise<void> {
  held.length = 0;
  // Not started: dropped.
  queue.length = 0;
  if (running.size === 0) return;
  const exits = [...running].map((w) => new Promise<void>((r) => w.once('exit', () => r())));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(exits),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** How long snapshot work waits for the first list before it starts anyway. */
export const SNAPSHOT_DELAY_MS = 5_000;

/** How long a closing gateway waits for a snapshot under way. */
export const SNAPSHOT_SETTLE_MS = 1_500;

/**
 * The prefetched load of `source` with these options, once (the next load of the same spec, on a
 * reload, reads the file again); undefined when none was started for exactly this.
 */
export function takePrefetched(
  source: string,
  options: PrefetchOptions,
): Promise<PrefetchResult> | undefined {
  const p = pending;
  pending = undefined;
  return p && p.key === keyOf(source, options) ? p.result : undefined;
}
