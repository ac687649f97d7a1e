import { describe, expect, it } from 'vitest';
import { boundHeapGrowth } from '../../src/server/heap-growth.js';

describe('heap growth bound for a serving gateway', () => {
  it("leaves an operator's own setting alone, on the command line or in NODE_OPTIONS", () => {
    expect(boundHeapGrowth(['--heap-growing-percent=0'], '')).toBe(false);
    expect(boundHeapGrowth(['--heap_growing_percent=20'], '')).toBe(false);
    expect(boundHeapGrowth([], '--max-old-space-size=512 --heap-growing-percent=100')).toBe(false);
    expect(boundHeapGrowth(['--heap-growing-percent'], '')).toBe(false);
  });

  it('sets it otherwise (other flags do not count)', () => {
    expect(boundHeapGrowth(['--enable-source-maps'], '--max-old-space-size=512')).toBe(true);
    expect(boundHeapGrowth([], '')).toBe(true);
  });
});
