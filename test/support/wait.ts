import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** What a successful probe returns: its value, never false, 0, '' or nothing. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

export interface WaitOptions {
  /** What is awaited, in words: the failure message names it. */
  what: string;
  /** Give up after this long (ms). */
  timeout?: number;
  /** Between two probes (ms). */
  interval?: number;
}

/**
 * Probes until `probe` returns a truthy value (a throw counts as "not yet") and returns that value.
 * End-to-end checks wait for the final condition this way, never for "any output" or a fixed sleep:
 * audit lines, metrics, reloads and pub/sub all land a moment after the call that caused them.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { what, timeout = 10_000, interval = 25 }: WaitOptions,
): Promise<Truthy<T>> {
  const until = Date.now() + timeout;
  for (;;) {
    let last: unknown;
    try {
      const value = await probe();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`, { cause: last });
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until `check` (assertions) passes and returns what it returned; on time-out the error names `what`. */
export async function eventually<T>(check: () => T | Promise<T>, o: WaitOptions): Promise<T> {
  const passed = await waitFor(async () => ({ value: await check() }), o);
  return passed.value;
}

/**
 * An audit JSONL file's records, as loose objects (assertions read whatever fields they test).
 * A missing file reads as no records: the first line may not be written yet.
 */
// biome-ignore lint/suspicious/noExplicitAny: audit lines are free-form JSON, read as JSON.parse gives them
export function readAudit(file: string): any[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/**
 * Checks that `check` (assertions) keeps passing for `during` ms, probing all along: for what must
 * NOT happen after an event (no extra version, no reload), where there is no final state to wait for.
 */
export async function holds(
  check: () => unknown,
  { during, what }: { during: number; what: string },
): Promise<void> {
  const until = Date.now() + during;
  do {
    try {
      await check();
    } catch (e) {
      throw new Error(`${what} stopped holding: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    await new Promise((r) => setTimeout(r, 25));
  } while (Date.now() < until);
}

/**
 * Asserts that the audit holds a record like each of `records` (`expect.objectContaining`), waiting
 * for the writes that follow the answers; on time-out the error names the records (the diff is its cause).
 */
export function expectAudited(file: string, ...records: Array<Record<string, unknown>>): Promise<void> {
  return eventually(
    () => {
      const all = readAudit(file);
      for (const r of records) expect(all).toContainEqual(expect.objectContaining(r));
    },
    { what: `the audit to hold ${JSON.stringify(records)}` },
  );
}
