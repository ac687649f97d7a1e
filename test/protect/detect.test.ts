import fc from 'fast-check';
import { checkSync } from 'recheck';
import { describe, expect, it } from 'vitest';
import {
  DETECT_RULES,
  Detector,
  entropy,
  ibanValid,
  looksRandom,
  luhn,
  type RedactionCounts,
} from '../../src/protect/detect.js';

const d = new Detector();
const redact = (s: string) => {
  const counts: RedactionCounts = {};
  return { text: d.redact(s, counts), counts };
};

/** Planted values of every kind, each in a sentence (published test values, never live ones). */
const PLANTED: Record<string, string> = {
  'aws-access-key': 'AKIAIOSFODNN7EXAMPLE',
  'aws-secret-key': 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'github-token': 'ghp_1234567890abcdefghijklmnopqrstuvwxyZ',
  'gitlab-token': 'glpat-AbCdEfGhIjKlMnOpQrSt',
  'slack-token': 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  'stripe-key': 'sk_live_51HzTestPlantedValue00000',
  'google-api-key': 'AIzaSyA1234567890abcdefghijklmnopqrstuv',
  'openai-key': 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  'card-number': '4111 1111 1111 1111',
  iban: 'DE89370400440532013000',
  'us-ssn': '078-05-1120',
  email: 'jane.doe@example.org',
  phone: '+1 415 555 0167',
};

describe('detection by value', () => {
  it.each(Object.entries(PLANTED))(
    'finds a %s in free text and names it in the placeholder',
    (kind, value) => {
      const text =
        kind === 'aws-secret-key'
          ? `aws_secret_access_key = ${value}`
          : `Note from support: ${value} (pasted by mistake).`;
      const r = redact(text);
      expect(r.text).not.toContain(value);
      expect(r.text).toContain(`[REDACTED:${kind}]`);
      expect(r.counts[kind]).toBe(1);
    },
  );

  it('keeps what names a secret and replaces only its value', () => {
    expect(redact('Authorization: Bearer abc.DEF-123_456~xyz').text).toBe(
      'Authorization: Bearer [REDACTED:authorization]',
    );
    expect(redact('postgres://app:s3cr3t-pw@db.internal:5432/app').text).toBe(
      'postgres://app:[REDACTED:url-password]@db.internal:5432/app',
    );
    expect(redact('Server=db;User Id=sa;Password=Hunter2!x;').text).toBe(
      'Server=db;User Id=sa;Password=[REDACTED:password];',
    );
    expect(redact('{\\"client_secret\\": \\"abcdef123456\\"}').text).not.toContain('abcdef123456');
  });

  it('removes a PEM private key from BEGIN to END, and to the end when END is missing', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow…\nabc\n-----END RSA PRIVATE KEY-----';
    expect(redact(`key:\n${pem}\nafter`).text).toBe('key:\n[REDACTED:private-key]\nafter');
    expect(redact('x -----BEGIN PRIVATE KEY-----\nMIIE secret rest').text).toBe('x [REDACTED:private-key]');
    // JSON-escaped, as in a log line.
    expect(redact(JSON.stringify({ k: pem })).text).toBe('{"k":"[REDACTED:private-key]"}');
  });

  it('leaves look-alikes alone: failed checksums, ordinary numbers, prose', () => {
    for (const s of [
      '4111 1111 1111 1112', // Luhn fails
      'order 1234567890123 shipped', // 13 digits, Luhn fails
      'DE89370400440532013001', // IBAN checksum fails
      'version 1.2.3, build 20261125, port 8080',
      'Basic information about your account',
      'a token expired yesterday',
      'contact us at support (at) example dot org',
      '0000 0000 0000 0000',
    ])
      expect(redact(s).text).toBe(s);
  });

  it('skips classes a tool allows', () => {
    const allowPii = new Detector({ allow: new Set(['pii']) });
    expect(allowPii.redact('mail jane.doe@example.org, key AKIAIOSFODNN7EXAMPLE')).toBe(
      'mail jane.doe@example.org, key [REDACTED:aws-access-key]',
    );
  });

  it('leaves epoch-millisecond timestamps alone, even those that pass Luhn (a log line has one)', () => {
    // Found in CI's log output: pino's `"time":1795636545596`-like values came out as [REDACTED:card-number].
    const line = '{"level":40,"time":1795636545596,"msg":"alert"}';
    expect(luhn('1795636545596')).toBe(true);
    expect(redact(line).text).toBe(line);
    expect(redact('card 5555 5555 5555 4444').counts).toEqual({ 'card-number': 1 });
    expect(redact('card 378282246310005').counts).toEqual({ 'card-number': 1 });
  });

  it('returns the very same string when nothing is found (no copy on the hot path)', () => {
    const s = 'nothing to see here, just words and 42';
    expect(redact(s).text).toBe(s);
  });
});

describe('the quick character test of short strings', () => {
  // Strings up to 512 characters are summed up by character before their hints are searched; longer
  // ones (or a batch joined by NUL) are searched hint by hint. Both must find exactly the same.
  const pieces = [
    ...new Set(DETECT_RULES.flatMap((r) => [...(r.hints ?? []), ...(r.also ?? [])])),
    ...Object.values(PLANTED),
    'aws_secret_access_key = ',
    'password: ',
    'api_key=',
    'Bearer ',
    'https://user:',
    '@example.org',
    '-----BEGIN RSA PRIVATE KEY-----',
    'é',
    '😀',
    // Digit rules are gated on digits being there at all: every digit counts, 0 and 9 too.
    '(000) 000-0000',
    '(999) 999-9999',
  ];
  const piece = fc.oneof(
    fc.constantFrom(...pieces),
    fc.string({ maxLength: 8 }),
    fc.constantFrom(' ', '\n', '"'),
  );
  const short = fc.array(piece, { maxLength: 24 }).map((xs) => xs.join('').replace(/\0/g, '').slice(0, 512));
  const pad = ' '.repeat(600);

  it('finds in a short string what it finds in it as part of a long batch', () => {
    fc.assert(
      fc.property(short, (s) => {
        const alone: RedactionCounts = {};
        const batched: RedactionCounts = {};
        const out = d.redact(s, alone);
        expect(d.redactAll([s, pad], batched)[0]).toBe(out);
        expect(alone).toEqual(batched);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds every planted value in a short string, and phone numbers of one repeated digit', () => {
    for (const [kind, value] of Object.entries(PLANTED)) {
      const text = kind === 'aws-secret-key' ? `aws_secret_access_key = ${value}` : `x ${value} y`;
      expect(redact(text).counts[kind], kind).toBe(1);
    }
    for (let n = 0; n <= 9; n++) {
      const d3 = String(n).repeat(3);
      expect(redact(`call (${d3}) ${d3}-${String(n).repeat(4)}`).counts.phone, `digit ${n}`).toBe(1);
    }
  });
});

describe('checksums', () => {
  it('validates Luhn and IBAN mod-97', () => {
    expect(luhn('4111111111111111')).toBe(true);
    expect(luhn('4111111111111112')).toBe(false);
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('GB82WEST12345698765433')).toBe(false);
  });
});

describe('every detection pattern runs in linear time', () => {
  it.each(DETECT_RULES.map((r) => [r.kind, r.re] as const))(
    '%s is safe from ReDoS (recheck)',
    (_kind, re) => {
      // The automaton checker is exact and deterministic; the default may pick the fuzzer, whose random
      // seed made this test pass or fail from run to run (seen in CI on openai-key and phone).
      const result = checkSync(re.source, re.flags.replace('g', ''), {
        timeout: 20_000,
        checker: 'automaton',
      });
      expect(result.status, JSON.stringify(result)).toBe('safe');
    },
    30_000,
  );
});

describe('secrets of no known format: keyword context and entropy', () => {
  const AWS_ID = 'AKIAIOSFODNN7EXAMPLE';
  const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

  it.each([
    [
      'an AWS secret key beside its key id, in a notes field',
      `creds for CI: ${AWS_ID} / secret ${AWS_SECRET}`,
      AWS_SECRET,
      'aws-secret-key',
    ],
    ['an AWS secret key before its key id', `${AWS_SECRET} (id ${AWS_ID})`, AWS_SECRET, 'aws-secret-key'],
    [
      'a value after "secret is"',
      'The staging signing secret is q8Zp3LrT0vX9wYb2Kc7N, rotate it.',
      'q8Zp3LrT0vX9wYb2Kc7N',
      'generic-secret',
    ],
    [
      'a JSON field named for a token',
      '{"stripe_token":"tok_1N3bXq2eZvKYlo2C8dE9fG0h"}',
      'tok_1N3bXq2eZvKYlo2C8dE9fG0h',
      'generic-secret',
    ],
    [
      'a value after "api key:"',
      'api key: 5f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e',
      '5f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e',
      'generic-secret',
    ],
    ['a camel-case name', 'dbPass => Qm9vYmFyQmF6MTIzNDU2Nzg5', 'Qm9vYmFyQmF6MTIzNDU2Nzg5', 'generic-secret'],
    [
      'a YAML line',
      'webhook_signing_key: 7Hc2Lk9PqR4tVx8Zb1Nm5Wd3',
      '7Hc2Lk9PqR4tVx8Zb1Nm5Wd3',
      'generic-secret',
    ],
    [
      'a key-value log',
      'level=info auth=ZGV2LXVzZXI6c2VjcmV0LTEyMzQ1Ng end',
      'ZGV2LXVzZXI6c2VjcmV0LTEyMzQ1Ng',
      'generic-secret',
    ],
  ])('finds %s', (_what, text, value, kind) => {
    const r = redact(text);
    expect(r.text).not.toContain(value);
    expect(r.counts[kind]).toBe(1);
  });

  it.each([
    ['a UUID under an id', 'request_id: 550e8400-e29b-41d4-a716-446655440000'],
    ['a paging token', 'next_page_token: CAESBggDEAEYAQAbc123XyZ'],
    ['a hash with no secret word', 'sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881'],
    ['a 40-character hash with no key id near it', 'commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904 merged'],
    ['a word after a secret keyword', 'the token expired at midnight, please re-authenticate tomorrow'],
    ['a longer word holding a keyword', 'the tokenizer splits text into pieces: abcdefghij12345XYZ'],
    ['a token count', 'token_count: 1234567890123456789'],
    ['a token type', 'token_type: BearerTokenTypeAbc123XYZ'],
    ['an identifier made of words', '{"auth_plugin":"caching_sha2_password"}'],
    [
      'a URL after a secret keyword',
      'docs for token handling: https://example.com/docs/v2/tokens/abc123def456',
    ],
    [
      'a base64 image',
      `data:image/png;base64,${'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='.repeat(4)}`,
    ],
    ['a low-entropy password (left to the password rule)', 'my password is hunter2hunter2hunter2'],
  ])('leaves %s alone', (_what, text) => {
    expect(redact(text).text).toBe(text);
  });

  it('runs in linear time: a long text of candidates and keywords costs no more per character', () => {
    // Not timed: the scan visits each candidate once and looks at a bounded window around it.
    const line = 'the signing token is aB3dE5gH7jK9mN1pQ3sT5vX7. ';
    const text = line.repeat(20_000);
    const r = redact(text);
    expect(r.counts['generic-secret']).toBe(20_000);
  });

  it('entropy separates random keys from words', () => {
    expect(entropy('q8Zp3LrT0vX9wYb2Kc7N')).toBeGreaterThan(4);
    expect(entropy('passwordpassword')).toBeLessThan(3);
    expect(looksRandom('hunter2hunter2hunter2')).toBe(false);
    expect(looksRandom('5f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e')).toBe(true);
  });
});
