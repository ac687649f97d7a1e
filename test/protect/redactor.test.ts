import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maskRules, maskUntyped } from '../../src/protect/mask.js';
import {
  CUT_MARGIN,
  createRedactor,
  MAX_JSON_DEPTH,
  type RedactionCounts,
  redactedWindow,
} from '../../src/protect/redactor.js';
import { DETECTOR_KINDS, PLANTED } from './planted.js';

const EMAIL = 'jane.doe@example.org';
const AWS = 'AKIAIOSFODNN7EXAMPLE';

describe('redactor: text', () => {
  it('replaces known credential values first, then every detected class', () => {
    const r = createRedactor(['cred-abc-123']);
    const counts: RedactionCounts = {};
    expect(r.text(`key cred-abc-123 for ${EMAIL}`, counts)).toBe(
      'key [REDACTED:credential] for [REDACTED:email]',
    );
    // Credential replacements are not counted: the audit's `redactions` count detections only.
    expect(counts).toEqual({ email: 1 });
  });

  it('names a known credential as a credential even when a detector would have matched it', () => {
    const r = createRedactor([AWS]);
    const counts: RedactionCounts = {};
    expect(r.text(`id ${AWS}`, counts)).toBe('id [REDACTED:credential]');
    expect(counts).toEqual({});
  });

  it('replaces the longest secret whole when one contains another', () => {
    const r = createRedactor(['tok-1234', 'tok-1234-long-tail']);
    expect(r.text('a tok-1234-long-tail b tok-1234')).toBe('a [REDACTED:credential] b [REDACTED:credential]');
  });

  it('learns secrets later, keeps the old ones, and ignores empty values', () => {
    const r = createRedactor();
    expect(r.text('rotated-old-value')).toBe('rotated-old-value');
    r.addSecrets(['rotated-old-value', '']);
    r.addSecrets(['rotated-new-value', 'rotated-new-value']);
    expect(r.text('rotated-old-value rotated-new-value x')).toBe(
      '[REDACTED:credential] [REDACTED:credential] x',
    );
  });

  it('leaves the classes an allow-list names, never a known credential', () => {
    const r = createRedactor(['cred-abc-123']);
    expect(r.text(`mail ${EMAIL}, key ${AWS}, cred-abc-123`, undefined, ['pii'])).toBe(
      `mail ${EMAIL}, key [REDACTED:aws-access-key], [REDACTED:credential]`,
    );
  });

  it('returns the very same string when nothing is found', () => {
    const s = 'nothing to see here, just words and 42';
    expect(createRedactor(['cred-abc-123']).text(s)).toBe(s);
  });
});

describe('redactor: credentials only', () => {
  it('replaces known credential values and leaves detection to the protect stage', () => {
    const r = createRedactor(['cred-abc-123']);
    expect(r.credentials(`cred-abc-123 ${EMAIL}`)).toBe(`[REDACTED:credential] ${EMAIL}`);
  });
});

describe('redactor: JSON values', () => {
  it('redacts every string and key, counting by kind, and copies only what changed', () => {
    const untouched = { id: 'c_1', tags: ['a', 'b'] };
    const value = { [EMAIL]: { note: `key ${AWS}` }, untouched };
    const counts: RedactionCounts = {};
    const out = createRedactor().json(value, counts) as Record<string, unknown>;
    expect(out).toEqual({ '[REDACTED:email]': { note: 'key [REDACTED:aws-access-key]' }, untouched });
    expect(out.untouched).toBe(untouched);
    expect(counts).toEqual({ email: 1, 'aws-access-key': 1 });
    const clean = { a: ['x', { b: 'y' }] };
    expect(createRedactor().json(clean, {})).toBe(clean);
  });

  it('leaves the classes an allow-list names', () => {
    const out = createRedactor().json({ mail: EMAIL, key: AWS }, {}, ['pii']);
    expect(out).toEqual({ mail: EMAIL, key: '[REDACTED:aws-access-key]' });
  });

  it('replaces known credential values in decoded strings before detection', () => {
    // Escaped in the raw body, so only the parsed string holds the value.
    const value = JSON.parse('{"echo":"\\u0063red-abc-123"}');
    expect(createRedactor(['cred-abc-123']).json(value, {})).toEqual({ echo: '[REDACTED:credential]' });
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels`, () => {
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_JSON_DEPTH + 2; i++) deep = [deep];
    expect(() => createRedactor().json(deep, {})).toThrow(
      expect.objectContaining({ code: 'UPSTREAM_SCHEMA_MISMATCH' }),
    );
  });

  it('keeps a `__proto__` key an own key of the copy', () => {
    const value = JSON.parse(`{"__proto__":{"mail":"${EMAIL}"}}`);
    const out = createRedactor().json(value, {}) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ mail: '[REDACTED:email]' });
  });
});

describe('redactor: arguments for the audit', () => {
  it('replaces values under secret and PII names and scrubs credentials anywhere', () => {
    const out = createRedactor(['cred-abc-123']).args({
      password: 'hunter2',
      email: 'a@b.c',
      nested: { apiKey: 'k', note: 'contains cred-abc-123' },
      ok: 1,
    });
    expect(out).toEqual({
      password: '[REDACTED:secret]',
      email: '[REDACTED:pii]',
      nested: { apiKey: '[REDACTED:secret]', note: 'contains [REDACTED:credential]' },
      ok: 1,
    });
  });

  it('bounds depth, width and string length', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const out = JSON.stringify(
      createRedactor().args({
        deep,
        wide: Array.from({ length: 500 }, (_, i) => i),
        long: 'y'.repeat(10_000),
      }),
    );
    expect(out.length).toBeLessThan(3000);
    expect(out).toContain('deeper values omitted');
    expect(out).toContain('450 more items');
    expect(out).toContain('…[10000 chars]');
  });

  it('cuts wide objects with a marker', () => {
    const wide = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, i]));
    const out = createRedactor().args(wide) as Record<string, unknown>;
    expect(Object.keys(out)).toHaveLength(51);
    expect(out['…']).toBe('10 more keys omitted');
  });

  it('redacts by value in strings and keys, counting what it found', () => {
    const counts: RedactionCounts = {};
    const out = createRedactor().args({ q: `from ${EMAIL}`, byMail: { [EMAIL]: 3 } }, counts);
    expect(out).toEqual({ q: 'from [REDACTED:email]', byMail: { '[REDACTED:email]': 3 } });
    expect(counts).toEqual({ email: 2 });
  });

  it('keeps a `__proto__` key an own key of the copy', () => {
    const out = createRedactor().args(JSON.parse('{"__proto__":{"q":"x"}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ q: 'x' });
  });
});

describe('redactor: cuts', () => {
  it('never leaves part of a secret where a long argument is cut', () => {
    const secret = 'cred-abcdefghij-0123456789';
    const r = createRedactor([secret]);
    for (const at of [980, 990, 995, 999]) {
      const out = JSON.stringify(r.args({ note: `${'x'.repeat(at)}${secret}${'y'.repeat(200)}` }));
      expect(out).not.toContain('cred-abc');
      expect(out).toContain(`[${at + secret.length + 200} chars]`);
    }
  });
});

describe('redactor: excerpts are redacted whole, then cut', () => {
  const N = 300;

  it('never shows part of a value of any detector kind, wherever the cut runs through it', () => {
    expect(Object.keys(PLANTED).sort()).toEqual(DETECTOR_KINDS);
    const r = createRedactor();
    const leaks: string[] = [];
    for (const [kind, p] of Object.entries(PLANTED))
      for (let k = 1; k <= p.value.length; k++) {
        const fill = N - p.before.length - k;
        const out = r.excerpt(`${'w'.repeat(fill - 1)}|${p.before}${p.value}${p.after} tail`, N);
        const shown = out.slice(out.indexOf('|') + 1).replace(/…$/, '');
        const safe = `${p.before}[REDACTED:`;
        if (!(shown.startsWith(safe) || safe.startsWith(shown))) leaks.push(`${kind} at ${k}: ${shown}`);
      }
    expect(leaks).toEqual([]);
  });

  it('redacts far enough past the cut even when placeholders are much shorter than what they replace', () => {
    // Two 14 KiB tokens shrink to placeholders; a third value then straddles the first window's end.
    const jwt = `eyJ${'a'.repeat(4000)}.eyJ${'b'.repeat(8000)}.${'c'.repeat(2000)}`;
    const text = `${jwt} ${jwt} ${PLANTED['github-token']!.value} end`;
    const out = createRedactor().excerpt(text, N);
    expect(out).toBe('[REDACTED:jwt] [REDACTED:jwt] [REDACTED:github-token] end');
  });

  it('shows nothing of the last stretch of a text that was itself cut short', () => {
    const gh = PLANTED['github-token']!.value;
    const out = createRedactor().excerpt(`short body ${gh.slice(0, 20)}`, N, {}, true);
    expect(out).not.toContain('ghp_');
    const long = createRedactor().excerpt(`${'x '.repeat(20_000)}${gh.slice(0, 20)}`, N, {}, true);
    expect(long).toBe(`${'x '.repeat(N / 2).slice(0, N)}…`);
  });

  it('removes control characters before detection, so they cannot split a value', () => {
    const out = createRedactor().excerpt('key AKIA\u0000IOSFODNN7\u0007EXAMPLE here', N);
    expect(out).toBe('key [REDACTED:aws-access-key] here');
  });

  it('counts what it found, once, however often the text is redacted again', () => {
    const r = createRedactor();
    const counts: RedactionCounts = {};
    const once = r.excerpt('password=Hunter2!xyzzy; Bearer abc.DEF-123_456~xyz', N, counts);
    expect(counts).toEqual({ password: 1, authorization: 1 });
    const again: RedactionCounts = {};
    expect(r.text(once, again)).toBe(once);
    expect(again).toEqual({});
  });
});

describe('redactor: a known credential under every escape a server writes', () => {
  const secret = 'adv/se:cr@t+9f8e"7d<6c5b&4a~x y';
  const forms: Record<string, string> = {
    raw: secret,
    encodeURIComponent: encodeURIComponent(secret),
    encodeURI: encodeURI(secret),
    'form encoding (+ for space)': new URLSearchParams({ a: secret }).toString().slice(2),
    'lower-case percent hex': encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    'percent-encoding leaving / : @ alone': encodeURIComponent(secret).replace(/%(2F|3A|40)/g, (m) =>
      decodeURIComponent(m),
    ),
    JSON: JSON.stringify(secret),
    'JSON with escaped slashes': JSON.stringify(secret).replace(/\//g, '\\/'),
    'JSON with \\u escapes (Go)': JSON.stringify(secret)
      .replace(/</g, '\\u003c')
      .replace(/&/g, '\\u0026')
      .replace(/\+/g, '\\u002B'),
    HTML: secret
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/"/g, '&quot;')
      .replace(/\//g, '&#x2F;'),
    'HTML decimal': secret.replace(/[/:@]/g, (c) => `&#${c.charCodeAt(0)};`),
  };

  it.each(Object.entries(forms))('%s', (_name, form) => {
    const r = createRedactor([secret]);
    const out = r.text(`before ${form} after`);
    expect(out).toMatch(/^before "?\[REDACTED:credential\]"? after$/);
    expect(r.json({ link: `https://x.example/cb?t=${form}` }, {})).toEqual({
      link: expect.stringMatching(/^https:\/\/x\.example\/cb\?t="?\[REDACTED:credential\]"?$/),
    });
  });

  it('leaves text that merely shares the letters alone', () => {
    const r = createRedactor([secret]);
    const s = 'adv se cr t 9f8e 7d 6c5b 4a x y, adv%2Fse%3Acr';
    expect(r.text(s)).toBe(s);
  });
});

describe('redactor and masking: secrets under near-miss names', () => {
  const value = {
    passwords: ['hunter2-a', 'hunter2-b'],
    apiKeys: ['k-live-1'],
    secrets: { database: 'db-pw-1', name: 'prod' },
    credential: 'cred-x',
    AWS_SECRET_ACCESS_KEY: 'aws-sk',
    private_key_pem: 'pem-body',
    password_policy: 'at least 8 characters',
    token_count: '12',
  };
  const planted = ['hunter2-a', 'hunter2-b', 'k-live-1', 'db-pw-1', 'cred-x', 'aws-sk', 'pem-body'];

  it('the audit copy of arguments replaces each, and keeps what is about a secret', () => {
    const out = createRedactor().args(value) as Record<string, unknown>;
    for (const v of planted) expect(JSON.stringify(out)).not.toContain(v);
    expect(out.secrets).toEqual({ database: '[REDACTED:secret]', name: 'prod' });
    expect(out.password_policy).toBe('at least 8 characters');
    expect(out.token_count).toBe('12');
  });

  it('masking without a schema drops each, and keeps what is about a secret', () => {
    const out = maskUntyped(value, maskRules(undefined, undefined)) as Record<string, unknown>;
    for (const v of planted) expect(JSON.stringify(out)).not.toContain(v);
    expect(out.secrets).toEqual({ name: 'prod' });
    expect(out.password_policy).toBe('at least 8 characters');
  });
});

describe('values worthless after a time (connect-link handles and states)', () => {
  it('scrubs them until then, forgets them after, and keeps permanent ones', () => {
    let t = 1_000;
    const r = createRedactor(['permanent-credential-value'], () => t);
    r.addSecrets(['link-handle-abcdefghijklmnop'], 5_000);
    expect(r.credentials('x link-handle-abcdefghijklmnop y')).not.toContain('link-handle-abcdefghijklmnop');
    t = 6_000;
    r.addSecrets(['another-handle-qrstuvwxyz012345'], 9_000);
    expect(r.credentials('link-handle-abcdefghijklmnop')).toBe('link-handle-abcdefghijklmnop');
    expect(r.credentials('another-handle-qrstuvwxyz012345')).not.toContain('another-handle');
    expect(r.credentials('permanent-credential-value')).not.toContain('permanent-credential-value');
  });

  it('does not grow without end when a value is minted per call', () => {
    let t = 0;
    const r = createRedactor([], () => t);
    for (let i = 0; i < 5_000; i++) {
      t += 1_000;
      r.addSecrets([`minted-per-call-${i}-abcdefghijkl`], t + 10_000);
    }
    // Only the last ~10 are live: the first one is gone, the last one is scrubbed.
    expect(r.credentials('minted-per-call-0-abcdefghijkl')).toBe('minted-per-call-0-abcdefghijkl');
    expect(r.credentials('minted-per-call-4999-abcdefghijkl')).not.toContain('minted-per-call-4999');
  });
});

describe('redactor: head (the audit copy of a response) redacts only the window its cut needs', () => {
  const SECRET = 'cred-known-0123456789';
  const r = createRedactor([SECRET]);
  const planted = Object.values(PLANTED).map((p) => `${p.before}${p.value}${p.after}`);
  // Long values shrink to short placeholders (pulling later text forward), short ones grow.
  const jwt = (k: number) => `eyJ${'a'.repeat(k)}.eyJ${'b'.repeat(2 * k)}.${'c'.repeat(k)}`;
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...planted, SECRET, 'x@y.io', '4111 1111 1111 1111') },
    { weight: 2, arbitrary: fc.integer({ min: 10, max: 4500 }).map(jwt) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 3000 }).map((k) => 'word '.repeat(k)) },
    { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 2, arbitrary: fc.constantFrom(' ', '\n', '"', ',', 'é', '€', '\u{1F600}') },
  );
  const text = fc.array(piece, { maxLength: 60 }).map((xs) => xs.join(''));

  it('keeps the first n characters of the whole text redacted, and short texts whole (property)', () => {
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 5000 }), (s, n) => {
        const whole = r.text(s);
        const head = r.head(s, n);
        if (s.length <= n + CUT_MARGIN) expect(head).toBe(whole);
        expect(head.slice(0, n)).toBe(whole.slice(0, n));
      }),
      { numRuns: 300 },
    );
  });

  it('never shows part of a value that straddles the first window', () => {
    const N = 4096;
    for (const v of [...planted, SECRET]) {
      const at = N + CUT_MARGIN - Math.floor(v.length / 2);
      const s = `${jwt(4000)} ${'w'.repeat(at - 16_004)}|${v} tail ${'z'.repeat(30_000)}`;
      const head = r.head(s, N);
      expect(head.slice(0, N)).toBe(r.text(s).slice(0, N));
      expect(head.length).toBeGreaterThanOrEqual(N + CUT_MARGIN);
    }
  });

  // Review of the window: short values whose placeholders are longer than they are (13-digit card
  // numbers) lengthened the window's redacted form, so it stopped inside a long JWT; cut, the JWT no
  // longer matched and its first ~2,000 characters showed in the audit copy and in error excerpts.
  const cards = (len: number) => 'x4222222222222'.repeat(Math.ceil(len / 14)).slice(0, len);
  const expanding = (a: number, b: number) => `eyJ${cards(a)}.eyJ${cards(b)}.${'S'.repeat(2000)}`;

  it('does not stop inside a long value whose inner values expand (head and excerpt)', () => {
    const N = 4096;
    // A JWT that shrinks to its placeholder first, so the second starts before the cut.
    const shrinking = `eyJ${'a'.repeat(2000)}.eyJ${'b'.repeat(4268)}.sig`;
    const s = `${'.'.repeat(2000)}${shrinking} ${expanding(4090, 8190)}${' tail '.repeat(20_000)}`;
    const whole = r.text(s);
    expect(whole.slice(0, N)).not.toContain('eyJx');
    expect(r.head(s, N).slice(0, N)).toBe(whole.slice(0, N));
    const excerpt = r.excerpt(s, N);
    expect(excerpt).not.toContain('eyJx');
    expect(excerpt.slice(0, N)).toBe(whole.slice(0, N));
  });

  // Review: with the window grown by a share of the raw text it kept, a tail that redacts to nothing
  // but placeholders (or text that looks like them; a private key with no END line) took one
  // redaction of the window per KiB: seconds of CPU for a 1 MiB body.
  it('redacts a hostile body in a few rounds, never one per KiB', () => {
    const N = 4096;
    const pre = `${'x'.repeat(N + CUT_MARGIN - 40)} `;
    for (const size of [128 * 1024, 1024 * 1024, 4 * 1024 * 1024]) {
      const bodies = [
        `${pre}${'[REDACTED:email]'.repeat(size / 16)}`.slice(0, size),
        `${pre}-----BEGIN PRIVATE KEY-----${'A'.repeat(size)}`.slice(0, size),
        `${pre}${'jo@example.org '.repeat(size / 15)}`.slice(0, size),
      ];
      for (const body of bodies) {
        let rounds = 0;
        let chars = 0;
        const out = redactedWindow(body, N, false, (w) => {
          rounds++;
          chars += w.length;
          return r.text(w);
        });
        expect(out.slice(0, N)).toBe(r.text(body).slice(0, N));
        // Grown by half at least from the second round on: logarithmic in the body's size.
        expect(rounds).toBeLessThanOrEqual(3 + Math.ceil(Math.log(size / (N + CUT_MARGIN)) / Math.log(1.5)));
        // Never more than a few whole-text redactions' worth of text.
        expect(chars).toBeLessThanOrEqual(3 * body.length + N + CUT_MARGIN);
      }
    }
  });

  it('keeps the first n characters when long values hold expanding ones (property)', () => {
    const nested = fc.oneof(
      { weight: 3, arbitrary: piece },
      {
        weight: 2,
        arbitrary: fc
          .tuple(fc.integer({ min: 100, max: 5000 }), fc.integer({ min: 100, max: 9000 }))
          .map(([a, b]) => expanding(a, b)),
      },
    );
    fc.assert(
      fc.property(fc.array(nested, { maxLength: 30 }), fc.integer({ min: 0, max: 5000 }), (xs, n) => {
        const s = xs.join(' ');
        expect(r.head(s, n).slice(0, n)).toBe(r.text(s).slice(0, n));
      }),
      { numRuns: 100 },
    );
  });
});
