import { describe, expect, it } from 'vitest';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { maskerFor, maskRules, maskUntyped, maskValue, SchemaMasker } from '../../src/protect/mask.js';

const compiler = createSchemaCompiler([]);

/** A response schema exercising every way a field can be reached. */
const SCHEMA: JsonSchemaObject = {
  type: 'object',
  properties: {
    customer: { $ref: '#/$defs/Customer' },
    others: { type: 'array', items: { $ref: '#/$defs/Customer' } },
    byEmail: { type: 'object', additionalProperties: { $ref: '#/$defs/Customer' } },
    card: {
      allOf: [
        { type: 'object', properties: { last4: { type: 'string' } } },
        { type: 'object', properties: { cardNumber: { type: 'string' }, cvc: { type: 'string' } } },
      ],
    },
    contact: {
      oneOf: [
        { type: 'object', properties: { email: { type: 'string', format: 'email' } }, required: ['email'] },
        { type: 'object', properties: { phone: { type: 'string' } }, required: ['phone'] },
      ],
    },
    meta: {
      type: 'object',
      patternProperties: { '^x-': { type: 'object', properties: { password: { type: 'string' } } } },
    },
    internal: { type: 'string', 'x-data-class': 'secret' },
    nickname: { type: 'string' },
  },
  required: ['customer', 'internal'],
  $defs: {
    Customer: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        name: { type: 'string' },
        email: { type: 'string', format: 'email' },
        ssn: { type: 'string', pattern: '^\\d{3}-\\d{2}-\\d{4}$' },
        apiToken: { type: 'string' },
        friends: { type: 'array', items: { $ref: '#/$defs/Customer' } },
      },
      required: ['id', 'apiToken'],
    },
  },
};

const customer = (n: number, depth = 0): Record<string, unknown> => ({
  id: `c${n}`,
  name: 'Grace Brewster Hopper',
  email: `grace${n}@navy.example`,
  ssn: '078-05-1120',
  apiToken: `tok_${n}_secret`,
  ...(depth < 3 ? { friends: [customer(n + 1, depth + 1)] } : {}),
});

const DATA = {
  customer: customer(1),
  others: [customer(10), customer(20)],
  byEmail: { 'x@y.example': customer(30) },
  card: { last4: '1111', cardNumber: '4111 1111 1111 1111', cvc: '123' },
  contact: { email: 'ceo@corp.example' },
  meta: { 'x-debug': { password: 'hunter22' } },
  internal: 'do-not-show',
  nickname: 'Amazing Grace',
};

describe('masking by schema (default actions)', () => {
  const masker = new SchemaMasker(SCHEMA, maskRules(undefined, undefined));
  const out = masker.mask(structuredClone(DATA)) as typeof DATA;

  it('drops secrets and masks PII at any depth, through $ref, arrays and recursion', () => {
    expect(out.customer).toEqual({
      id: 'c1',
      name: 'G. B. H.',
      email: 'g***@navy.example',
      ssn: '***-**-1120',
      friends: [expect.objectContaining({ id: 'c2', email: 'g***@navy.example' })],
    });
    const deepest = (out.customer.friends as Array<Record<string, unknown>>)[0]!.friends as Array<
      Record<string, unknown>
    >;
    expect(deepest[0]).not.toHaveProperty('apiToken');
    expect(out.others.map((c) => c.email)).toEqual(['g***@navy.example', 'g***@navy.example']);
    expect(JSON.stringify(out)).not.toContain('tok_');
  });

  it('follows additionalProperties, patternProperties, allOf and oneOf', () => {
    expect(out.byEmail['x@y.example']).toMatchObject({ name: 'G. B. H.' });
    // A security code is masked whole: too short to keep any digits.
    expect(out.card).toEqual({ last4: '1111', cardNumber: '**** **** **** 1111', cvc: '***' });
    expect(out.contact).toEqual({ email: 'c***@corp.example' });
    expect(out.meta['x-debug']).toEqual({});
  });

  it("honours the spec's x-data-class tag", () => {
    expect(out).not.toHaveProperty('internal');
  });

  it('leaves the input untouched and unclassified fields as they are', () => {
    expect(DATA.customer.email).toBe('grace1@navy.example');
    expect(out.nickname).toBe('Amazing Grace');
  });

  it('produces data valid against the schema it publishes', () => {
    const published = masker.published();
    const check = compiler.compile(published);
    expect(check(out), JSON.stringify(check.errors)).toBe(true);
    // Dropped fields are no longer required; masked ones are strings; string constraints relaxed.
    const defs = published.$defs as Record<string, JsonSchemaObject>;
    expect(defs.Customer!.required).toEqual(['id']);
    expect((defs.Customer!.properties as Record<string, JsonSchemaObject>).apiToken).toBeUndefined();
    expect(published.required).toEqual(['customer']);
    expect(JSON.stringify(published)).not.toContain('x-data-class');
  });
});

describe('masking rules from the policy', () => {
  it('allows, masks or drops each class as configured, and tags fields by name', () => {
    const rules = maskRules(
      { pii: 'allow', financial: 'drop', secret: 'mask' },
      { nickname: 'pii', ssn: 'none' },
    );
    const out = new SchemaMasker(SCHEMA, rules).mask(structuredClone(DATA)) as Record<
      string,
      Record<string, unknown>
    >;
    expect(out.customer!.email).toBe('grace1@navy.example');
    expect(out.customer!.apiToken).toBe('t***');
    expect(out.customer!.ssn).toBe('078-05-1120');
    expect(out.card).toEqual({ last4: '1111' });
    expect(out.nickname).toBe('Amazing Grace');
  });

  it('masks a field tagged by the operator with a class the policy masks', () => {
    const rules = maskRules(undefined, { nickname: 'secret' });
    const out = new SchemaMasker(SCHEMA, rules).mask(structuredClone(DATA)) as Record<string, unknown>;
    expect(out).not.toHaveProperty('nickname');
  });

  it('shares maskers and rule objects between identical configurations', () => {
    expect(maskRules({ pii: 'mask' }, {})).toBe(maskRules(undefined, undefined));
    expect(maskerFor(SCHEMA, maskRules(undefined, undefined))).toBe(
      maskerFor(SCHEMA, maskRules(undefined, undefined)),
    );
  });
});

describe('robustness', () => {
  it('never throws on data that does not fit the schema, and keeps __proto__ a plain key', () => {
    const masker = new SchemaMasker(SCHEMA, maskRules(undefined, undefined));
    for (const v of [
      null,
      1,
      'x',
      [],
      [null],
      { customer: 'not an object' },
      { others: { 0: 1 } },
      { customer: { friends: 7 } },
    ])
      expect(() => masker.mask(v)).not.toThrow();
    const hostile = JSON.parse('{"customer": {"__proto__": {"polluted": true}, "email": "a@b.example"}}');
    const out = masker.mask(hostile) as { customer: Record<string, unknown> };
    expect(Object.getPrototypeOf(out.customer)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('mask formats', () => {
  it.each([
    ['email', 'jane.doe@example.org', 'j***@example.org'],
    ['national-id', '078-05-1120', '***-**-1120'],
    ['card-number', '4111-1111-1111-1111', '**** **** **** 1111'],
    ['person-name', 'Jane van der Berg', 'J. V. D. B.'],
    ['phone', '+1 415 555 0167', '+* *** *** **67'],
    ['bank-account', 'DE89 3704 0044 0532 0130 00', '****3000'],
    ['date-of-birth', '1984-06-30', '1984-**-**'],
    ['ip-address', '203.0.113.42', '203.0.113.***'],
    ['address', '1 Main St', '[MASKED:address]'],
    ['token', 'abc', 'a***'],
  ])('%s: %s → %s', (kind, value, masked) => {
    expect(maskValue(value, kind)).toBe(masked);
  });

  it('turns non-strings into a typed placeholder and keeps null', () => {
    expect(maskValue(12345, 'card-number')).toBe('[MASKED:card-number]');
    expect(maskValue(null, 'email')).toBeNull();
    expect(maskValue(['a@b.example', 3], 'email')).toEqual(['a***@b.example', '[MASKED:email]']);
  });
});

describe('fields no schema describes', () => {
  it('classifies the keys of untyped JSON by name', () => {
    const out = maskUntyped(
      {
        password: 'hunter22',
        user: { email: 'a@b.example', name: 'Jane Doe', plan: 'pro' },
        customers: [{ name: 'Ada Lovelace', phone: '+44 20 7946 0958' }],
        access_token: 'abc',
      },
      maskRules(undefined, undefined),
    );
    expect(out).toEqual({
      user: { email: 'a***@b.example', name: 'J. D.', plan: 'pro' },
      customers: [{ name: 'A. L.', phone: '+** ** **** **58' }],
    });
  });

  it('classifies undeclared keys and map keys, and stays valid against the published schema', () => {
    const schema: JsonSchemaObject = {
      type: 'object',
      properties: {
        id: { type: 'string' },
        scores: { type: 'object', additionalProperties: { type: 'number' } },
      },
    };
    const masker = new SchemaMasker(schema, maskRules(undefined, undefined));
    const out = masker.mask({
      id: 'x',
      scores: { ssn: 123456789, karma: 5 },
      secret: 'shh',
      email: 'e@x.example',
    });
    expect(out).toEqual({
      id: 'x',
      scores: { ssn: '[MASKED:national-id]', karma: 5 },
      email: 'e***@x.example',
    });
    const check = compiler.compile(masker.published());
    expect(check(out), JSON.stringify(check.errors)).toBe(true);
  });
});

describe('masking plans, built on first use', () => {
  it('are not built to publish a schema, and mask exactly as a masker that built them at once', () => {
    const rules = maskRules({ pii: 'drop' }, { nickname: 'pii' });
    const lazy = new SchemaMasker(SCHEMA, rules);
    const published = lazy.published();
    // Listing the tool (its published schema) built no plan: most tools of a large API are never called.
    expect((lazy as unknown as { root?: unknown }).root).toBeUndefined();
    const fresh = new SchemaMasker(SCHEMA, rules);
    const counts1 = {};
    const counts2 = {};
    const a = fresh.mask(structuredClone(DATA), counts1);
    const b = lazy.mask(structuredClone(DATA), counts2);
    expect(b).toEqual(a);
    expect(counts2).toEqual(counts1);
    expect(lazy.published()).toEqual(published);
    // Built once, then reused.
    const root = (lazy as unknown as { root?: unknown }).root;
    expect(root).toBeDefined();
    lazy.mask(structuredClone(DATA));
    expect((lazy as unknown as { root?: unknown }).root).toBe(root);
  });

  it('follow a policy change: other rules give another masker, with its own plans', () => {
    const a = maskerFor(SCHEMA, maskRules(undefined, undefined));
    const b = maskerFor(SCHEMA, maskRules({ pii: 'allow' }, undefined));
    expect(b).not.toBe(a);
    const masked = a.mask(structuredClone(DATA)) as typeof DATA;
    const allowed = b.mask(structuredClone(DATA)) as typeof DATA;
    expect(masked.customer.email).toBe('g***@navy.example');
    expect(allowed.customer.email).toBe('grace1@navy.example');
    // The same configuration again (a reload that changed nothing here) shares the masker.
    expect(maskerFor(SCHEMA, maskRules({ pii: 'allow' }, undefined))).toBe(b);
  });
});
