import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyField,
  classifyResponseFields,
  DATA_RULES,
  type FieldFacts,
  maySecret,
  SECRET_RULES,
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
  'secret-in-container': {
    fires: [
      field('database', { parentWords: ['secrets'] }),
      field('password', { parentWords: ['credentials'] }),
      field('value', { parentWords: ['client', 'secret'] }),
      field('value', { parentWords: ['api', 'keys'] }),
    ],
    quiet: [
      field('name', { parentWords: ['secrets'] }),
      field('created_at', { parentWords: ['secrets'] }),
      field('visibility', { parentWords: ['secrets'] }),
      field('database', { parentWords: ['settings'] }),
      field('value', { parentWords: ['keyboard'] }),
    ],
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

/**
 * Secret names as APIs write them — any case, separators, plurals, glued compounds, a trailing word
 * for how the value is written — and names that are only *about* a secret (documented in
 * docs/data-protection.md). `list`: the field holds an array of strings.
 */
const SECRET_NAMES = [
  'password',
  'Password',
  'PASSWORD',
  'passwd',
  'pwd',
  'passphrase',
  'passcode',
  'dbPassword',
  'db_password',
  'DB_PASSWORD',
  'dbpassword',
  'admin-password',
  'newPassword',
  'password_hash',
  'token',
  'TOKEN',
  'accessToken',
  'access_token',
  'ACCESS_TOKEN',
  'accesstoken',
  'refresh-token',
  'id_token',
  'idToken',
  'authToken',
  'bearer',
  'jwt',
  'secret',
  'Secret',
  'client_secret',
  'clientSecret',
  'CLIENT_SECRET',
  'clientsecret',
  'webhook_secret',
  'secret_value',
  'credential',
  'credentials',
  'Credentials',
  'userCredential',
  'registry_credentials',
  'api_key',
  'apiKey',
  'ApiKey',
  'APIKEY',
  'apikey',
  'x-api-key',
  'X-API-KEY',
  'api-key',
  'private_key',
  'privateKey',
  'private_key_pem',
  'privateKeyPem',
  'PRIVATE_KEY_DER',
  'secret_key',
  'secretKey',
  'AWS_SECRET_ACCESS_KEY',
  'aws_secret_access_key',
  'awsSecretAccessKey',
  'access_key',
  'signing_key',
  'encryption_key',
  'master_key',
  'client_key_data',
  'token_value',
];
/** Plural names holding a list of secrets. */
const SECRET_LISTS = [
  'passwords',
  'apiKeys',
  'api_keys',
  'tokens',
  'secrets',
  'credentials',
  'PASSWORDS',
  'accessTokens',
];
const NOT_SECRET_NAMES: Array<[name: string, type: string[]]> = [
  ['password_policy', ['string']],
  ['password_min_length', ['string']],
  ['passwordMinLength', ['integer']],
  ['password_strength', ['string']],
  ['passwordRequirements', ['string']],
  ['password_expires_at', ['string']],
  ['password_changed_at', ['string']],
  ['has_password', ['boolean']],
  ['password_set', ['boolean']],
  ['secret_santa', ['string']],
  ['secretary', ['string']],
  ['secret_name', ['string']],
  ['secretRef', ['string']],
  ['token_count', ['string']],
  ['token_type', ['string']],
  ['token_expires_at', ['string']],
  ['token_id', ['string']],
  ['tokenizer', ['string']],
  ['total_tokens', ['string']],
  ['max_tokens', ['integer']],
  ['secrets', ['string']],
  ['keyboard', ['string']],
  ['monkey', ['string']],
  ['key', ['string']],
  ['keys', ['array']],
  ['key_id', ['string']],
  ['public_key', ['string']],
  ['publicKeyPem', ['string']],
  ['api_key_name', ['string']],
  ['api_key_prefix', ['string']],
  ['redacted_value', ['string']],
  ['bypass', ['string']],
  ['compass', ['string']],
  ['passport', ['string']],
  ['credential_type', ['string']],
  ['credentials_url', ['string']],
];

describe('secret names: normalised, from a word list, both ways', () => {
  const secret = (name: string, type: string[], items?: string[]) =>
    classifyField(field(name, { type, ...(items ? { items } : {}) })).some((c) => c.class === 'secret');

  it.each(SECRET_NAMES)('%s is a secret', (name) => {
    expect(secret(name, ['string'])).toBe(true);
  });

  it.each(SECRET_LISTS)('%s (a list of strings) is a secret', (name) => {
    expect(secret(name, ['array'], ['string'])).toBe(true);
    expect(secret(name, ['array'])).toBe(true);
  });

  it.each(NOT_SECRET_NAMES)('%s is not a secret', (name, type) => {
    expect(secret(name, type)).toBe(false);
  });

  it('a list of objects under a plural name is not itself a secret (its fields are classified)', () => {
    expect(secret('apiKeys', ['array'], ['object'])).toBe(false);
    expect(classifyField(field('value', { parentWords: ['api', 'keys'] }))[0]?.class).toBe('secret');
  });
});

describe('the secret rules are skipped only where none can fire (maySecret)', () => {
  // Words the secret rules and their exceptions read, and ordinary ones, in every spelling a spec uses.
  const VOCAB = [
    ...['password', 'passwords', 'passwd', 'pwd', 'pwds', 'passphrase', 'passcode', 'pass', 'passport'],
    ...[
      'token',
      'tokens',
      'secret',
      'secrets',
      'jwt',
      'jwts',
      'bearer',
      'credential',
      'credentials',
      'creds',
    ],
    ...['key', 'keys', 'apikey', 'apikeys', 'api', 'private', 'access', 'client', 'webhook', 'signing'],
    ...['master', 'encryption', 'ssh', 'public', 'fingerprint', 'id', 'name', 'value', 'pem', 'hex', 'raw'],
    ...['data', 'user', 'email', 'has', 'is', 'expires', 'count', 'type', 'url', 'policy', 'label', 'ref'],
    ...['db', 'oauth', 'refresh', 'session', 'account', 'number', 'monkey', 'hotkey', 'turkey', 'keystone'],
  ];
  const word = fc.oneof(fc.constantFrom(...VOCAB), fc.stringMatching(/^[a-z]{1,8}$/));
  const spell = (ws: string[], style: number): string => {
    const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
    switch (style) {
      case 0:
        return ws.join('_');
      case 1:
        return ws.join('-');
      case 2:
        return ws.map((w, i) => (i ? cap(w) : w)).join('');
      case 3:
        return ws.join('').toUpperCase();
      case 4:
        return ws.join('');
      default:
        return ws.map(cap).join('');
    }
  };
  const facts = fc
    .record({
      name: fc.tuple(fc.array(word, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 5 })),
      parent: fc.array(word, { maxLength: 3 }),
      type: fc.constantFrom(['string'], ['array'], ['integer'], ['boolean'], [], ['object']),
      items: fc.option(fc.constantFrom(['string'], ['object']), { nil: undefined }),
      format: fc.option(fc.constantFrom('password', 'email', 'byte', 'uuid'), { nil: undefined }),
      description: fc.constantFrom(
        '',
        'Password for the account.',
        'The password',
        'the password hash',
        'The API key of the project.',
        'A private key in PEM.',
        'Secret key',
        'An opaque value.',
      ),
    })
    .map(({ name, parent, type, items, format, description }): FieldFacts => {
      const n = spell(name[0], name[1]);
      const f: FieldFacts = { name: n, words: words(n), parentWords: parent, type: [...type], description };
      if (items) f.items = [...items];
      if (format) f.format = format;
      return f;
    });

  it('a built-in secret rule fires only on a field maySecret lets through', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const fires = SECRET_RULES.filter((r) => r.test(f) !== undefined).map((r) => r.id);
        if (fires.length > 0)
          expect([f.name, maySecret(f.name, f.parentWords, f.format, f.description)]).toEqual([f.name, true]);
      }),
      { numRuns: 20_000 },
    );
  });

  it('classifyField answers what running every rule answers', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const all = DATA_RULES.flatMap((r) => {
          const reason = r.test(f);
          return reason === undefined ? [] : [{ class: r.class, kind: r.kind, rule: r.id, reason }];
        });
        expect(classifyField(f)).toEqual(all);
      }),
      { numRuns: 5_000 },
    );
  });

  it('the listed secret names all pass it', () => {
    for (const n of [...SECRET_NAMES, ...SECRET_LISTS])
      expect([n, maySecret(n, [], undefined, '')]).toEqual([n, true]);
  });
});
