import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { type CapLimits, capValue, precut } from '../../src/protect/caps.js';
import type { RedactionCounts } from '../../src/protect/detect.js';
import { maskerFor, maskRules, maskUntyped } from '../../src/protect/mask.js';
import { createRedactor } from '../../src/protect/redactor.js';

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

/**
 * The protect stage cuts what the item limit will cut before masking and scanning it (`precut`).
 * Whatever reaches the agent must be exactly what masking, scanning and cutting the whole response
 * gave before: values, notes and totals; masking still counts what it would have masked in the cut
 * items; detection by value counts only what was kept (the cut items are never scanned).
 */
describe('cutting before masking', () => {
  const SCHEMA: JsonSchemaObject = {
    type: 'object',
    properties: {
      data: { type: 'array', items: { $ref: '#/$defs/Customer' } },
      pairs: { type: 'array', prefixItems: [{ $ref: '#/$defs/Customer' }], items: { type: 'string' } },
    },
    $defs: {
      Customer: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          email: { type: 'string', format: 'email' },
          password: { type: 'string' },
          phones: { type: 'array', items: { type: 'string' } },
          tags: { type: 'array', items: { type: 'string' } },
          note: { type: 'string' },
        },
      },
    },
  };
  const customer = (i: number, tags: number, phones = 3) => ({
    id: `c_${i}`,
    name: `Grace Hopper ${i}`,
    email: `grace${i}@navy.example`,
    password: `hunter-${i}`,
    // A masked array (by its key's class): masking keeps 1,000 of its items at most.
    phones: Array.from({ length: phones }, (_, j) => `+1 415 555 ${String(1000 + j).padStart(4, '0')}`),
    tags: Array.from({ length: tags }, (_, j) => `t${j}`),
    note: i % 7 === 0 ? `write to x${i}@corp.example, key AKIAIOSFODNN7EXAMPLE` : 'nothing',
  });
  const redactor = createRedactor(['cred-abc-123']);
  const rules = maskRules(undefined, undefined);

  /** What the protect stage did before: mask everything, scan everything, then cut. */
  const wholeThenCut = (v: unknown, limits: CapLimits, schema?: JsonSchemaObject) => {
    const counts: RedactionCounts = {};
    const m = schema ? maskerFor(schema, rules).mask(v, counts) : maskUntyped(v, rules, counts);
    return { ...capValue(redactor.json(m, counts), limits, {}, ['offset']), counts };
  };
  /** What it does now. */
  const cutFirst = (v: unknown, limits: CapLimits, schema?: JsonSchemaObject) => {
    const counts: RedactionCounts = {};
    const cut = precut(v, Math.max(limits.maxItems, 16));
    const m = schema ? maskerFor(schema, rules).mask(cut, counts) : maskUntyped(cut, rules, counts);
    return { ...capValue(redactor.json(m, counts), limits, {}, ['offset']), counts };
  };
  const byMasking = (c: RedactionCounts) =>
    Object.fromEntries(
      Object.entries(c).filter(([k]) => k.startsWith('masked:') || k.startsWith('dropped:')),
    );

  it('gives the agent exactly what masking the whole response and then cutting gave', () => {
    // Long nested arrays only in the first items: see the next test for those in items that are cut.
    const page = () => ({
      data: Array.from({ length: 250 }, (_, i) => customer(i, i < 5 ? 150 : 0, i < 5 ? 1500 : 3)),
      pairs: [customer(1, 0), ...Array.from({ length: 300 }, (_, i) => `p${i}`)],
    });
    for (const limits of [
      { maxItems: 100, maxResultBytes: 1e9 },
      { maxItems: 5, maxResultBytes: 1e9 },
      { maxItems: 100, maxResultBytes: 64 * 1024 },
      { maxItems: 2000, maxResultBytes: 1e9 },
    ])
      for (const schema of [SCHEMA, undefined]) {
        const old = wholeThenCut(page(), limits, schema);
        const now = cutFirst(page(), limits, schema);
        expect(now.value).toEqual(old.value);
        expect(now.notes).toEqual(old.notes);
        // Masking counts every item the upstream sent; detection only what it scanned.
        expect(byMasking(now.counts)).toEqual(byMasking(old.counts));
        for (const [k, n] of Object.entries(now.counts)) expect(n).toBeLessThanOrEqual(old.counts[k]!);
        expect(JSON.stringify(now)).not.toMatch(/grace\d+@navy|hunter-|AKIA|x\d+@corp/);
      }
  });

  it('reports the totals the upstream sent, through masking and redaction copies', () => {
    const r = cutFirst(
      { data: Array.from({ length: 500 }, (_, i) => customer(i, 0)) },
      {
        maxItems: 100,
        maxResultBytes: 1e9,
      },
      SCHEMA,
    );
    expect(r.notes).toEqual([
      'truncated: 100 of 500 items at $.data; call again with offset=100 to continue',
    ]);
    expect((r.value as { data: unknown[] }).data).toHaveLength(100);
    expect(r.counts['dropped:secret']).toBe(500);
    // Scanned: the 100 kept items only (every 7th note holds an address and a key id).
    expect(r.counts.email).toBe(15);
  });

  it('names no array inside an item it cut (the old cut noted those, then dropped the items)', () => {
    const page = () => ({ data: Array.from({ length: 30 }, (_, i) => customer(i, 40)) });
    const limits = { maxItems: 20, maxResultBytes: 1e9 };
    const old = wholeThenCut(page(), limits, SCHEMA);
    const now = cutFirst(page(), limits, SCHEMA);
    expect(now.value).toEqual(old.value);
    expect(old.notes.some((n) => n.includes('$.data[25].tags'))).toBe(true);
    expect(now.notes).toEqual(old.notes.filter((n) => !/\$\.data\[(2\d)\]/.test(n)));
  });

  it('holds for any shape of nested arrays and limits', () => {
    const leaf = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer(),
      fc.constant(null),
      fc.constant('a@b.example'),
      // Values masking leaves as they are (already masked, initials, an address it cannot shorten).
      fc.constantFrom('1.2.3.4', '10.0.0.x', 'A. L.', '***', 'a***@b.example', '[MASKED:address]', ''),
    );
    const tree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('node'), { maxLength: 40 }),
        fc.dictionary(
          fc.constantFrom(
            'email',
            'id',
            'items',
            'password',
            'name',
            'tags',
            'ip_address',
            'phone',
            'birth_date',
            'card_number',
          ),
          tie('node'),
          {
            maxKeys: 4,
          },
        ),
      ),
    })).node;
    fc.assert(
      fc.property(tree, fc.integer({ min: 1, max: 30 }), (v, maxItems) => {
        const limits = { maxItems, maxResultBytes: 1e9 };
        const old = wholeThenCut(structuredClone(v), limits);
        const now = cutFirst(structuredClone(v), limits);
        expect(now.value).toEqual(old.value);
        expect(byMasking(now.counts)).toEqual(byMasking(old.counts));
        // Notes may differ only where the old cut named arrays inside items it then cut away.
        for (const n of now.notes) expect(old.notes).toContain(n);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the JSON the byte cap measured, handed back', () => {
  it('is JSON.stringify of the value returned, cut or not', () => {
    const cases: Array<[unknown, CapLimits]> = [
      [{ data: items(250) }, { maxItems: 100, maxResultBytes: 1e9 }],
      [{ data: items(5000) }, { maxItems: 5000, maxResultBytes: 4096 }],
      [{ blob: 'x'.repeat(100_000) }, { maxItems: 10, maxResultBytes: 2048 }],
      [[1, 'two', { three: null }], { maxItems: 100, maxResultBytes: 1e6 }],
      ['just text', { maxItems: 100, maxResultBytes: 1e6 }],
    ];
    for (const [v, limits] of cases) {
      const out: { json?: string } = {};
      const r = capValue(v, limits, {}, [], undefined, out);
      expect(out.json).toBe(JSON.stringify(r.value));
    }
  });
});
