import { describe, expect, it } from 'vitest';
import { capValue } from '../../src/protect/caps.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `o_${i + 1}`, total: i }));

describe('result caps', () => {
  it('cuts arrays to maxItems and says how to continue with an offset argument', () => {
    const r = capValue({ data: items(250) }, { maxItems: 100, maxResultBytes: 1e9 }, { offset: 40 }, [
      'offset',
      'limit',
    ]);
    expect((r.value as { data: unknown[] }).data).toHaveLength(100);
    expect(r.notes).toEqual([
      'truncated: 100 of 250 items at $.data; call again with offset=140 to continue',
    ]);
  });

  it('points at the last id for "starting after" APIs, else at a smaller page size', () => {
    const after = capValue({ result: items(5) }, { maxItems: 2, maxResultBytes: 1e9 }, {}, [
      'starting_after',
    ]);
    expect(after.notes).toEqual([
      'truncated: 2 of 5 items; call again with starting_after="o_2" to continue',
    ]);
    // The response's own cursor points past the whole page: following it would skip the cut items.
    const cursor = capValue(
      { data: items(5), next_cursor: 'abc' },
      { maxItems: 2, maxResultBytes: 1e9 },
      {},
      ['cursor', 'limit'],
      'limit',
    );
    expect(cursor.notes).toEqual([
      'truncated: 2 of 5 items at $.data; ask for at most 2 items per call (limit=2) and page through the rest',
    ]);
    const none = capValue({ data: items(5) }, { maxItems: 2, maxResultBytes: 1e9 }, {}, []);
    expect(none.notes[0]).toContain('narrow the request');
  });

  it('halves the largest arrays until the result fits the byte limit', () => {
    const big = { data: items(1000), tags: ['a', 'b'] };
    const r = capValue(big, { maxItems: 5000, maxResultBytes: 4096 }, {}, []);
    expect(Buffer.byteLength(JSON.stringify(r.value))).toBeLessThanOrEqual(4096);
    expect((r.value as { tags: string[] }).tags).toEqual(['a', 'b']);
    expect(r.notes[0]).toMatch(/^truncated: \d+ of 1000 items at \$\.data/);
  });

  it('cuts long strings as a last resort', () => {
    const r = capValue({ blob: 'x'.repeat(100_000) }, { maxItems: 10, maxResultBytes: 2048 }, {}, []);
    expect(Buffer.byteLength(JSON.stringify(r.value))).toBeLessThanOrEqual(2048);
    expect(r.notes).toEqual([
      "long text values were cut to 256 characters to fit the gateway's result limit",
    ]);
  });

  it('leaves small results alone', () => {
    const v = { data: items(3) };
    expect(capValue(v, { maxItems: 100, maxResultBytes: 1e6 }, {}, [])).toEqual({ value: v, notes: [] });
  });
});
