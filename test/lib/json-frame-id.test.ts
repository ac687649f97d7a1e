import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameIdScanner } from '../../src/lib/json-frame-id.js';

/** Feeds `text` to a fresh scanner in pieces cut at `cuts` (byte offsets). */
function scan(text: string, cuts: number[] = []): FrameIdScanner {
  const bytes = Buffer.from(text);
  const s = new FrameIdScanner();
  let from = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length)].sort((a, b) => a - b)) {
    s.feed(bytes.subarray(from, c));
    from = c;
  }
  s.feed(bytes.subarray(from));
  s.finish();
  return s;
}

describe('FrameIdScanner', () => {
  it.each([
    ['{"jsonrpc":"2.0","id":7,"method":"tools/call"}', 7, true],
    ['{"method":"x","params":{"id":1,"a":[{"id":2}]},"id":"abc"}', 'abc', true],
    ['{"jsonrpc":"2.0","id":-1.5e3,"result":{}}', -1500, false],
    ['{"id":null,"method":"x"}', null, true],
    ['{"id":{"a":1},"method":"x"}', undefined, true],
    ['{"id":true}', undefined, false],
    ['{"params":"\\"id\\":5","method":"m"}', undefined, true],
    ['{"\\u0069d":"esc\\"aped","method":"m"}', 'esc"aped', true],
    ['{"id":1,"id":2}', 2, false],
    ['[{"id":1,"method":"m"}]', undefined, false],
    ['{"id":42', 42, false],
    [' \t{ "id" : "é✓" , "method" : "m" }', 'é✓', true],
  ])('reads %s', (text, id, hasMethod) => {
    const s = scan(text);
    expect(s.id).toEqual(id);
    expect(s.hasMethod).toBe(hasMethod);
  });

  it('keeps no more than a bounded id', () => {
    expect(scan(`{"id":"${'x'.repeat(5000)}","method":"m"}`).id).toBeUndefined();
  });

  it('property: reads the id JSON.parse reads, however the frame is cut into pieces', () => {
    const id = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(
        id,
        fc.boolean(),
        fc.jsonValue({ maxDepth: 4 }),
        fc.array(fc.nat({ max: 400 }), { maxLength: 6 }),
        fc.constantFrom(undefined, 1, '\t'),
        fc.boolean(),
        (theId, withMethod, params, cuts, space, idFirst) => {
          const rest = { ...(withMethod ? { method: 'tools/call' } : {}), params };
          const msg = idFirst
            ? { jsonrpc: '2.0', id: theId, ...rest }
            : { jsonrpc: '2.0', ...rest, id: theId };
          const text = JSON.stringify(msg, null, space);
          const s = scan(text, cuts);
          return Object.is(s.id, JSON.parse(text).id) && s.hasMethod === withMethod;
        },
      ),
      { numRuns: 1000 },
    );
  });
});
