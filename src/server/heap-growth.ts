import { setFlagsFromString } from 'node:v8';
import { noteRuntimeFlag } from '../lib/code-cache.js';

/**
 * How far V8 lets the old generation grow past what the last major GC kept, once the gateway
 * serves: 100 %, twice the live heap (V8's own factor is dynamic, up to 4× on a machine with a
 * large heap limit).
 *
 * What a serving gateway keeps is small and steady (about 35 MiB: the catalogue, compiled code,
 * per-caller state), and what a call allocates dies with the call; but calls in flight across two
 * young-generation GCs are promoted, a few MiB a second under 200 clients, and with V8's default
 * the old generation then grew to 3–4× the live heap before a major GC: 100 MiB of RSS holding
 * garbage (bench/clients.mjs). At 2× the sawtooth stays within twice the live heap plus the young
 * generation; the price is more frequent (incremental, mostly concurrent) major GCs: a few µs of
 * CPU per call (one major GC of ~35 MiB live per ~50 MiB promoted).
 */
export const SERVING_HEAP_GROWING_PERCENT = 100;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * Sets the growth bound for a serving gateway, after start-up (loading a large spec keeps V8's own
 * factor: it allocates far more than it keeps). An operator's own `--heap-growing-percent` given to
 * node (`node --heap-growing-percent=<n> …/mcp-warden serve …`; 0 restores V8's default — Node does
 * not accept this flag in NODE_OPTIONS) is left alone. V8 reads the flag at each major GC, so
 * setting it at run time takes effect from the next one. Returns whether it was set.
 */
export function boundHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => FLAG.test(a))) return false;
  const flag = `--heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  // V8 keys its code cache by its flags: the cache is made with V8's default put back, as the next
  // start (which has not set this yet) checks it (src/lib/code-cache.ts).
  noteRuntimeFlag('--heap-growing-percent=0', flag);
  return true;
}
