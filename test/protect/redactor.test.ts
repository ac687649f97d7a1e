import { describe, expect, it } from 'vitest';
import { createRedactor, MAX_JSON_DEPTH, type RedactionCounts } from '../../src/protect/redactor.js';

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
