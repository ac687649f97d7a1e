import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';

// compileLazily: the same verdict and the same errors (where, which keyword, which values) as a
// whole compile, with each definition compiled only when data reaches it.

const defs = {
  Customer: {
    type: 'object',
    required: ['id'],
    properties: {
      id: { type: 'string', pattern: '^cus_' },
      email: { type: ['string', 'null'], format: 'email' },
      friend: { anyOf: [{ type: 'string' }, { $ref: '#/$defs/Customer' }] },
      cards: { type: 'array', items: { $ref: '#/$defs/Card' } },
    },
    additionalProperties: false,
  },
  Card: {
    type: 'object',
    properties: { last4: { type: 'string', maxLength: 4 }, brand: { enum: ['visa', 'amex'] } },
  },
  Unused: { type: 'object', properties: { x: { $ref: '#/$defs/Nowhere' } } },
};
const schema: JsonSchemaObject = {
  type: 'object',
  properties: { data: { type: 'array', items: { $ref: '#/$defs/Customer' } }, has_more: { type: 'boolean' } },
  required: ['data'],
  $defs: defs,
};

const errorsOf = (
  errs: ReadonlyArray<{ instancePath: string; keyword: string; params: unknown }> | null | undefined,
) => (errs ?? []).map((e) => `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`).sort();

describe('compileLazily', () => {
  it('agrees with the whole compile on any value (property)', () => {
    const compiler = createSchemaCompiler([]);
    const whole = createSchemaCompiler([]).compile({
      ...schema,
      $defs: { Customer: defs.Customer, Card: defs.Card },
    });
    const lazy = compiler.compileLazily(schema);
    const card = fc.record(
      {
        last4: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
        brand: fc.constantFrom('visa', 'amex', 'x'),
      },
      { requiredKeys: [] },
    );
    const customer = fc.letrec((tie) => ({
      c: fc.record(
        {
          id: fc.oneof(fc.constant('cus_1'), fc.string({ maxLength: 4 }), fc.integer()),
          email: fc.oneof(fc.constant(null), fc.constant('a@b.example'), fc.constant('nope')),
          friend: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 3 }), tie('c')),
          cards: fc.array(card, { maxLength: 3 }),
          extra: fc.integer(),
        },
        { requiredKeys: [] },
      ),
    })).c;
    const value = fc.oneof(
      fc.record(
        { data: fc.array(customer, { maxLength: 3 }), has_more: fc.oneof(fc.boolean(), fc.integer()) },
        { requiredKeys: [] },
      ),
      fc.anything(),
    );
    fc.assert(
      fc.property(value, (v) => {
        expect(lazy(v)).toBe(whole(v));
        expect(errorsOf(lazy.errors)).toEqual(errorsOf(whole.errors));
      }),
      { numRuns: 2000 },
    );
  });

  it('validates through definitions shared by several schemas of one compiler', () => {
    const compiler = createSchemaCompiler([]);
    const lazy = compiler.compileLazily(schema);
    expect(lazy({ data: [] })).toBe(true);
    expect(lazy({ data: [{ id: 'cus_1', cards: [{ last4: '4242' }] }] })).toBe(true);
    // A second schema sharing the definitions reuses them.
    const again = compiler.compileLazily({ $ref: '#/$defs/Card', $defs: defs });
    expect(again({ last4: '12345' })).toBe(false);
    expect(errorsOf(again.errors)).toEqual(['/last4|maxLength|{"limit":4}']);
  });

  it('refuses, never passes, when data reaches a reference that leads nowhere', () => {
    const lazy = createSchemaCompiler([]).compileLazily({
      type: 'object',
      properties: { u: { $ref: '#/$defs/Unused' } },
      $defs: defs,
    });
    expect(lazy({})).toBe(true);
    expect(() => lazy({ u: { x: 1 } })).toThrow();
  });

  it('compiles whole what a definition compiled apart would not mean the same (unevaluatedProperties)', () => {
    const s: JsonSchemaObject = {
      allOf: [{ $ref: '#/$defs/A' }],
      unevaluatedProperties: false,
      $defs: { A: { type: 'object', properties: { a: { type: 'string' } } } },
    };
    const lazy = createSchemaCompiler([]).compileLazily(s);
    expect(lazy({ a: 'x' })).toBe(true);
    expect(lazy({ a: 'x', b: 1 })).toBe(false);
  });

  it('compiles whole a definition reached that would not mean the same apart, and agrees with the whole compile', () => {
    // B's property is evaluated through A's `allOf`: compiled apart, A would refuse `b`.
    const s: JsonSchemaObject = {
      type: 'object',
      properties: { x: { $ref: '#/$defs/A' }, n: { type: 'integer' } },
      $defs: {
        A: { allOf: [{ $ref: '#/$defs/B' }], unevaluatedProperties: false },
        B: { type: 'object', properties: { b: { type: 'string' } } },
      },
    };
    const whole = createSchemaCompiler([]).compile(s);
    const lazy = createSchemaCompiler([]).compileLazily(s);
    // Not reaching A: the lazy check answers.
    expect(lazy({ n: 'one' })).toBe(false);
    expect(errorsOf(lazy.errors)).toEqual(['/n|type|{"type":"integer"}']);
    for (const v of [
      { x: { b: 'y' } },
      { x: { b: 'y', c: 1 } },
      { x: { b: 2 } },
      { n: 1 },
      { n: 'one', x: {} },
    ]) {
      expect(lazy(v)).toBe(whole(v));
      expect(errorsOf(lazy.errors)).toEqual(errorsOf(whole.errors));
    }
    expect(lazy({ x: { b: 'y' } })).toBe(true);
    expect(lazy({ x: { b: 'y', c: 1 } })).toBe(false);
  });

  it('agrees with the whole compile when an unfit definition is first reached inside a branch', () => {
    const s: JsonSchemaObject = {
      type: 'object',
      properties: { x: { anyOf: [{ type: 'string' }, { $ref: '#/$defs/A' }] } },
      $defs: {
        A: { allOf: [{ $ref: '#/$defs/B' }], unevaluatedProperties: false },
        B: { type: 'object', properties: { b: { type: 'string' } } },
      },
    };
    const whole = createSchemaCompiler([]).compile(s);
    const lazy = createSchemaCompiler([]).compileLazily(s);
    for (const v of [{ x: 's' }, { x: { b: 'y' } }, { x: { b: 'y', c: 1 } }, { x: 3 }]) {
      expect(lazy(v)).toBe(whole(v));
      expect(errorsOf(lazy.errors)).toEqual(errorsOf(whole.errors));
    }
  });
});
