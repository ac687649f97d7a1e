import { describe, expect, it } from 'vitest';
import {
  classifyField,
  classifyResponseFields,
  DATA_RULES,
  type FieldFacts,
} from '../../src/classify/data-classes.js';
import { words } from '../../src/openapi/text.js';

function field(name: string, over: Partial<FieldFacts> = {}): FieldFacts {
  return { name, words: words(name), parentWords: [], type: ['string'], description: '', ...over };
}

const CASES: Record<string, { fires: FieldFacts[]; quiet: FieldFacts[] }> = {
  'pii-email': {
    fires: [
      field('email'),
      field('billingEmail'),
      field('contact', { format: 'email' }),
      field('addr', { description: 'The email address of the user' }),
    ],
    quiet: [field('email_verified', { type: ['boolean'] }), field('emailCount', { type: ['integer'] })],
  },
  'pii-phone': {
    fires: [field('phone'), field('mobile_number'), field('msisdn')],
    quiet: [field('phone_verified', { type: ['boolean'] }), field('microphone_id')],
  },
  'pii-name': {
    fires: [
      field('first_name'),
      field('lastName'),
      field('surname'),
      field('name', { parentWords: ['customer'] }),
    ],
    quiet: [
      field('name', { parentWords: ['repository'] }),
      field('file_name'),
      field('first_name', { type: ['integer'] }),
    ],
  },
  'pii-address': {
    fires: [field('address'), field('line1'), field('postal_code'), field('street')],
    quiet: [field('ip_address'), field('email_address'), field('address_count', { type: ['integer'] })],
  },
  'pii-birth-date': {
    fires: [field('dob'), field('date_of_birth'), field('birthdate')],
    quiet: [field('date_created')],
  },
  'pii-national-id': {
    fires: [
      field('ssn'),
      field('ssn_last_4'),
      field('national_id'),
      field('passport_number'),
      field('tax_id'),
    ],
    quiet: [field('taxonomy_id'), field('national_holiday')],
  },
  'pii-ip': {
    fires: [field('ip'), field('ip_address'), field('remote', { format: 'ipv4' }), field('client_ip')],
    quiet: [field('zip'), field('ip_allowlist_enabled', { type: ['boolean'] })],
  },
  'secret-password': {
    fires: [field('password'), field('newPassword'), field('x', { format: 'password' })],
    quiet: [
      field('password_set', { type: ['boolean'] }),
      field('has_password'),
      field('password_changed_at'),
    ],
  },
  'secret-token': {
    fires: [field('access_token'), field('client_secret'), field('token'), field('credentials')],
    quiet: [field('token_type'), field('tokens_count', { type: ['integer'] }), field('token_expires_at')],
  },
  'secret-key': {
    fires: [field('api_key'), field('privateKey'), field('secret_key'), field('apikey')],
    quiet: [field('public_key'), field('key_id'), field('keyboard'), field('key')],
  },
  'financial-card': {
    fires: [field('card_number'), field('cvc'), field('number', { parentWords: ['card'] }), field('pan')],
    quiet: [field('number', { parentWords: ['invoice'] }), field('card_brand')],
  },
  'financial-bank-account': {
    fires: [field('iban'), field('account_number'), field('routing_number'), field('sort_code')],
    quiet: [field('account_id'), field('bank_name')],
  },
};

describe('data classification rules', () => {
  it('has cases for every rule in the table', () => {
    expect(Object.keys(CASES).sort()).toEqual(DATA_RULES.map((r) => r.id).sort());
  });

  for (const rule of DATA_RULES) {
    it(`${rule.id} (${rule.class}) fires on what it describes and stays quiet on near misses`, () => {
      const c = CASES[rule.id]!;
      for (const f of c.fires) expect(rule.test(f), f.name).toBeTypeOf('string');
      for (const f of c.quiet) expect(rule.test(f), f.name).toBeUndefined();
    });
  }

  it('reports the class and kind of a field', () => {
    expect(classifyField(field('email'))).toEqual([
      expect.objectContaining({ class: 'pii', kind: 'email', rule: 'pii-email' }),
    ]);
  });
});

describe('response field walk', () => {
  const defs = {
    Customer: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        email: { type: 'string' },
        card: { $ref: '#/$defs/Card' },
        referrer: { $ref: '#/$defs/Customer' },
      },
    },
    Card: { type: 'object', properties: { number: { type: 'string' }, cvc: { type: 'string' } } },
  };

  it('finds fields through $ref, arrays, allOf and maps, with JSONPaths', () => {
    const root = {
      type: 'object',
      properties: {
        data: { type: 'array', items: { $ref: '#/$defs/Customer' } },
        owner: { allOf: [{ type: 'object', properties: { phone: { type: 'string' } } }] },
        byId: {
          type: 'object',
          additionalProperties: { type: 'object', properties: { api_key: { type: 'string' } } },
        },
        'odd key': { type: 'object', properties: { ssn: { type: 'string' } } },
      },
    };
    const { fields } = classifyResponseFields(root, defs);
    const paths = fields.map((f) => `${f.path} ${f.class}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        '$.data[*].name pii',
        '$.data[*].email pii',
        '$.data[*].card.number financial',
        '$.data[*].card.cvc financial',
        '$.owner.phone pii',
        '$.byId.*.api_key secret',
        '$["odd key"].ssn pii',
      ]),
    );
  });

  it('does not loop on recursive schemas and reports truncation at its depth budget', () => {
    const full = classifyResponseFields({ $ref: '#/$defs/Customer' }, defs);
    expect(full.fields.map((f) => f.path)).toEqual(['$.name', '$.email', '$.card.number', '$.card.cvc']);
    expect(full.truncated).toBe(false);
    const shallow = classifyResponseFields({ $ref: '#/$defs/Customer' }, defs, {
      maxDepth: 1,
      maxFields: 100,
      maxEdges: 100,
    });
    expect(shallow.fields.map((f) => f.path)).toEqual(['$.name', '$.email']);
    expect(shallow.truncated).toBe(true);
  });
});
