import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { maskRules, SchemaMasker } from '../../src/protect/mask.js';
import { createRedactor } from '../../src/protect/redactor.js';

/** Planted values (published test values): detection must find each wherever it lands. */
const PLANTED = [
  'AKIAIOSFODNN7EXAMPLE',
  'ghp_1234567890abcdefghijklmnopqrstuvwxyZ',
  'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  'sk_live_51HzTestPlantedValue00000',
  'AIzaSyA1234567890abcdefghijklmnopqrstuv',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  '4111 1111 1111 1111',
  'DE89370400440532013000',
  '078-05-1120',
  'jane.doe@example.org',
  'glpat-AbCdEfGhIjKlMnOpQrSt',
];

const planted = fc.constantFrom(...PLANTED);
/** Text around a planted value: words, punctuation, JSON-ish and URL-ish noise, separated by whitespace. */
const noise = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\w@.+-]+$/, ''));
const carrier = fc
  .tuple(
    noise,
    planted,
    fc.constantFrom(' ', '\n', '\t', ' (', ': ', '="'),
    fc.constantFrom(' ', '\n', ')', '"', '.', ', '),
    noise,
  )
  .map(([a, p, l, r, b]) => `${a.replace(/[\w@.+-]$/, '')}${l}${p}${r}${b}`);

/** Random JSON with planted carriers in values and keys. */
const jsonWithPlants = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 20 }),
    carrier,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), carrier), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** `value` with `f` applied to every string in it, object keys included. */
function eachString(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((v) => eachString(v, f));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [f(k), eachString(v, f)]));
  return value;
}

describe('detection by value over random JSON (property)', () => {
  const redactor = createRedactor();

  it('never throws, keeps the shape, and lets no planted value through, in keys or values', () => {
    fc.assert(
      fc.property(jsonWithPlants, (value) => {
        const counts: Record<string, number> = {};
        const out = redactor.json(value, counts);
        const text = JSON.stringify(out);
        for (const p of PLANTED) expect(text).not.toContain(p);
        expect(JSON.parse(text)).toBeDefined();
        // Nothing planted: the walk changes exactly what detection changes in each string on its own.
        // Not `toEqual(value)`: a random string may itself be a value of a class ('+@0.AA' is an email).
        if (!JSON.stringify(value).match(/AKIA|ghp_|xoxb|sk_live|AIza|eyJ|4111|DE89|078-05|@example|glpat/))
          expect(out).toEqual(eachString(value, (s) => redactor.text(s)));
      }),
      { numRuns: 1500 },
    );
  });

  it('leaves plain words alone: no false positive, in keys or values', () => {
    // Lower-case words and spaces cannot form a value of any class, so nothing may change: what the
    // check above (detection as the oracle) cannot catch, a detector that redacts too much.
    const word = fc.string({
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
      minLength: 1,
      maxLength: 9,
    });
    const words = fc.array(word, { maxLength: 6 }).map((w) => w.join(' '));
    const plain = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        words,
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(word, tie('value'), { maxKeys: 5 }),
      ),
    })).value;
    fc.assert(
      fc.property(plain, (value) => {
        expect(redactor.json(value, {})).toEqual(value);
      }),
      { numRuns: 1500 },
    );
  });

  it('never throws on arbitrary strings (no pattern can be made to misbehave)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
        expect(typeof redactor.text(s)).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });
});

const CUSTOMER: JsonSchemaObject = {
  type: 'object',
  properties: {
    data: { type: 'array', items: { $ref: '#/$defs/Customer' } },
    next_cursor: { type: 'string' },
  },
  $defs: {
    Customer: {
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^c_' },
        name: { type: 'string' },
        email: { type: 'string', format: 'email' },
        password: { type: 'string' },
        balance: { type: 'number' },
        iban: { type: 'string' },
        notes: { type: 'string', maxLength: 40 },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['id', 'password'],
    },
  },
};

describe('masking by schema over random data (property)', () => {
  const masker = new SchemaMasker(CUSTOMER, maskRules(undefined, undefined));
  const check = createSchemaCompiler([]).compile(masker.published());
  const redactor = createRedactor();
  const customer = fc.record(
    {
      id: fc.string({ maxLength: 10 }).map((s) => `c_${s}`),
      name: fc.string({ maxLength: 30 }),
      email: fc.oneof(fc.emailAddress(), fc.string()),
      password: fc.oneof(fc.string(), planted),
      balance: fc.double({ noNaN: true, noDefaultInfinity: true }),
      iban: fc.oneof(fc.constant('DE89370400440532013000'), fc.string()),
      notes: fc.oneof(fc.string({ maxLength: 40 }), carrier),
      tags: fc.array(fc.oneof(fc.string({ maxLength: 10 }), carrier), { maxLength: 4 }),
    },
    { requiredKeys: ['id', 'password'] },
  );

  it('never throws, never lets a typed secret or planted value through, and always matches the published schema', () => {
    fc.assert(
      fc.property(
        fc.record({ data: fc.array(customer, { maxLength: 6 }), next_cursor: fc.string() }),
        (value) => {
          const masked = masker.mask(value);
          const out = redactor.json(masked, {}) as { data: Array<Record<string, unknown>> };
          for (const c of out.data) expect(c).not.toHaveProperty('password');
          const text = JSON.stringify(out);
          for (const p of PLANTED) expect(text).not.toContain(p);
          for (const c of value.data)
            if (typeof c.email === 'string' && c.email.length > 2 && c.email.includes('@'))
              expect(text).not.toContain(`"${c.email}"`);
          expect(check(out), JSON.stringify(check.errors)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
