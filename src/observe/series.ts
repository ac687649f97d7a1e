/**
 * Calls over time, per tool, for the dashboard's charts. Prometheus keeps cumulative counters, which
 * an operator without a Prometheus server cannot turn into "p99 of the last ten minutes"; this keeps
 * a fixed ring of time buckets in memory (constant size: buckets × tools × a bounded latency sample).
 */

export interface SeriesPoint {
  /** Start of the bucket, ms since the epoch. */
  t: number;
  calls: number;
  /** Calls that failed upstream or in the gateway (not refusals). */
  errors: number;
  /** Calls refused by a guard (scope, toggle, rate limit, validation, confirmation…). */
  denied: number;
  p50: number | null;
  p99: number | null;
}

export interface SeriesSnapshot {
  bucketSeconds: number;
  /** Oldest first; buckets with no calls are present (zeros), so charts have a regular x axis. */
  tools: Record<string, SeriesPoint[]>;
  all: SeriesPoint[];
  /** The whole window per tool (and `*` for all), percentiles over the merged samples. */
  summary: Record<string, Omit<SeriesPoint, 't'>>;
}

export type CallOutcome = 'ok' | 'error' | 'denied';

/** Latencies kept per tool per bucket; above this, reservoir sampling keeps a uniform sample. */
const SAMPLE = 256;

interface Cell {
  calls: number;
  errors: number;
  denied: number;
  seen: number;
  ms: number[];
}

export class CallSeries {
  private readonly bucketMs: number;
  private readonly ring: Array<{ t: number; cells: Map<string, Cell> } | undefined>;

  constructor(
    readonly bucketSeconds = 10,
    readonly buckets = 360,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketMs = bucketSeconds * 1000;
    this.ring = new Array(buckets).fill(undefined);
  }

  observe(tool: string, ms: number, outcome: CallOutcome): void {
    const t = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    const i = (t / this.bucketMs) % this.buckets;
    let b = this.ring[i];
    if (!b || b.t !== t) {
      b = { t, cells: new Map() };
      this.ring[i] = b;
    }
    for (const key of [tool, '*']) {
      let c = b.cells.get(key);
      if (!c) {
        c = { calls: 0, errors: 0, denied: 0, seen: 0, ms: [] };
        b.cells.set(key, c);
      }
      c.calls++;
      if (outcome === 'error') c.errors++;
      if (outcome === 'denied') c.denied++;
      // Latency percentiles describe calls that ran, not refusals answered in microseconds.
      if (outcome !== 'denied') {
        c.seen++;
        if (c.ms.length < SAMPLE) c.ms.push(ms);
        else {
          const j = Math.floor(Math.random() * c.seen);
          if (j < SAMPLE) c.ms[j] = ms;
        }
      }
    }
  }

  /** The last `minutes` (at most the ring's span), per tool and for all tools together. */
  snapshot(minutes = 60): SeriesSnapshot {
    const n = Math.max(1, Math.min(this.buckets, Math.ceil((minutes * 60) / this.bucketSeconds)));
    const last = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    const starts = Array.from({ length: n }, (_, k) => last - (n - 1 - k) * this.bucketMs);
    const names = new Set<string>();
    for (const t of starts) {
      const b = this.ring[(t / this.bucketMs) % this.buckets];
      if (b?.t === t) for (const k of b.cells.keys()) if (k !== '*') names.add(k);
    }
    const pointsOf = (key: string): SeriesPoint[] =>
      starts.map((t) => {
        const b = this.ring[(t / this.bucketMs) % this.buckets];
        const c = b?.t === t ? b.cells.get(key) : undefined;
        if (!c) return { t, calls: 0, errors: 0, denied: 0, p50: null, p99: null };
        const sorted = [...c.ms].sort((x, y) => x - y);
        return {
          t,
          calls: c.calls,
          errors: c.errors,
          denied: c.denied,
          p50: quantile(sorted, 0.5),
          p99: quantile(sorted, 0.99),
        };
      });
    const summaryOf = (key: string): Omit<SeriesPoint, 't'> => {
      let calls = 0;
      let errors = 0;
      let denied = 0;
      const ms: number[] = [];
      for (const t of starts) {
        const b = this.ring[(t / this.bucketMs) % this.buckets];
        const c = b?.t === t ? b.cells.get(key) : undefined;
        if (!c) continue;
        calls += c.calls;
        errors += c.errors;
        denied += c.denied;
        ms.push(...c.ms);
      }
      ms.sort((x, y) => x - y);
      return { calls, errors, denied, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99) };
    };
    const tools: Record<string, SeriesPoint[]> = {};
    const summary: Record<string, Omit<SeriesPoint, 't'>> = { '*': summaryOf('*') };
    for (const name of [...names].sort()) {
      tools[name] = pointsOf(name);
      summary[name] = summaryOf(name);
    }
    return { bucketSeconds: this.bucketSeconds, tools, all: pointsOf('*'), summary };
  }
}

/** Nearest-rank quantile of a sorted sample; null for no sample. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round(sorted[rank]! * 1000) / 1000;
}
