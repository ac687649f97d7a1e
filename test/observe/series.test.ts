import { describe, expect, it } from 'vitest';
import { CallSeries, quantile } from '../../src/observe/series.js';

describe('calls over time for the dashboard', () => {
  it('counts calls, errors and refusals per tool and bucket, with percentiles of the calls that ran', () => {
    let now = 1_000_000_000_000;
    const s = new CallSeries(10, 6, () => now);
    for (let i = 1; i <= 100; i++) s.observe('a', i, 'ok');
    s.observe('a', 5000, 'error');
    s.observe('a', 0.01, 'denied');
    now += 10_000;
    s.observe('b', 7, 'ok');
    const snap = s.snapshot(1);
    expect(snap.all).toHaveLength(6);
    const a = snap.tools.a!;
    expect(a[4]).toMatchObject({ calls: 102, errors: 1, denied: 1, p50: 51 });
    expect(a[4]!.p99).toBe(100);
    expect(a[5]).toMatchObject({ calls: 0, p50: null });
    expect(snap.summary['*']).toMatchObject({ calls: 103, errors: 1, denied: 1 });
    expect(snap.summary.b).toMatchObject({ calls: 1, p50: 7, p99: 7 });
  });

  it('forgets buckets older than the ring, and keeps memory constant under any volume', () => {
    let now = 0;
    const s = new CallSeries(10, 3, () => now);
    s.observe('old', 1, 'ok');
    now += 40_000;
    s.observe('new', 1, 'ok');
    const snap = s.snapshot(60);
    expect(Object.keys(snap.tools)).toEqual(['new']);
    for (let i = 0; i < 50_000; i++) s.observe('new', i, 'ok');
    const cell = s.snapshot(1).summary.new!;
    expect(cell.calls).toBe(50_001);
    // The p99 comes from a bounded sample, so it is close to, not exactly, the true 49,500.
    expect(cell.p99).toBeGreaterThan(45_000);
  });

  it('takes nearest-rank quantiles, and none of nothing', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
  });
});
