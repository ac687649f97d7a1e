import fc from 'fast-check';
import { RE2JS } from 're2js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { compileLinear, inPlainSubset, runsLinear, toRe2Syntax } from '../../src/lib/linear-regexp.js';
import { loadedSpecWith } from '../support/helpers.js';

// Issue 22 (cold start): a spec `pattern` in the plain subset is known to run on RE2 without
// compiling it. The subset must be narrower than RE2's: a pattern RE2 refuses (not enforced, with a
// warning) must never be taken for one it runs.

const re2Runs = (p: string) => compileLinear(p) !== undefined;

/** Pieces of the pattern syntax, the subset's and the ones around its edges. */
const TOKENS = [
  'a',
  'Z',
  '0',
  '9',
  '_',
  '-',
  '/',
  ' ',
  ':',
  '.',
  '^',
  '$',
  '|',
  '(',
  ')',
  '(?:',
  '(?=',
  '(?!',
  '(?<=',
  '(?<n>',
  '(?i)',
  '(?P<n>',
  '*',
  '+',
  '?',
  '{',
  '}',
  '{2}',
  '{0,3}',
  '{2,}',
  '{100}',
  '{1000}',
  '{1001}',
  '{3,2}',
  '{,2}',
  '[',
  ']',
  '[^',
  '[a-z]',
  '[z-a]',
  '[-a]',
  '[a-]',
  '[\\d-z]',
  '[[:alpha:]]',
  '[]',
  '[^]',
  '\\',
  '\\d',
  '\\w',
  '\\s',
  '\\b',
  '\\B',
  '\\.',
  '\\/',
  '\\-',
  '\\:',
  '\\_',
  '\\1',
  '\\k<n>',
  '\\p{L}',
  '\\u00e9',
  '\\x41',
  '\\e',
  '\\z',
  '\\A',
  '\\Q',
  'é',
  '\u{1F600}',
];

describe('inPlainSubset', () => {
  it('answers yes only for patterns RE2 compiles (generated from the syntax around the subset)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 }), (parts) => {
        const p = parts.join('');
        if (inPlainSubset(p)) expect(re2Runs(p)).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it('answers yes only for patterns RE2 compiles (generated mostly inside the subset)', () => {
    const inside = ['a', '0', '-', '(', ')', '(?:', '*', '+', '?', '{2}', '{0,3}', '{100}', '[a-z]', '[-a]'];
    const more = ['\\d', '\\.', '|', '^', '$', '.', '[^/]', '??', '{2,}?'];
    let taken = 0;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...inside, ...more), { maxLength: 14 }), (parts) => {
        const p = parts.join('');
        if (inPlainSubset(p)) {
          taken++;
          expect(re2Runs(p)).toBe(true);
        }
      }),
      { numRuns: 20_000 },
    );
    // The property says something only if the subset is met often.
    expect(taken).toBeGreaterThan(2_000);
  });

  it('answers yes only for patterns RE2 compiles (any ASCII text)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 24 }), (p) => {
        if (inPlainSubset(p)) expect(re2Runs(p)).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it('takes the patterns real specs write', () => {
    for (const p of [
      '^[0-9]{1,6}$',
      '^cus_[a-z0-9]+$',
      '^/v1/payment_links',
      '^/v1/tax/calculations/[^/]+/line_items',
      '^[0-9a-fA-F]+$',
      '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$',
      '^ssh-(rsa|dss|ed25519) |^ecdsa-sha2-nistp(256|384|521) ',
      '^(?:first|last|after:\\d+)$',
      '^[A-Za-z0-9_.-]+$',
      '^\\d{4}-\\d{2}-\\d{2}$',
      '',
    ]) {
      expect(inPlainSubset(p), p).toBe(true);
      expect(re2Runs(p), p).toBe(true);
    }
  });

  it('leaves everything else to RE2: lookarounds, backreferences, nested counts, Unicode, odd classes', () => {
    for (const p of [
      '(?=a)b',
      '(a)\\1',
      '((a{2})){3}',
      '(?:a{2}){3}',
      'a{1001}',
      'a{101}',
      'a**',
      '^*',
      '[\\d-z]',
      '[a-c-e]',
      '[]a]',
      '[[:alpha:]]',
      '\\p{L}+',
      '\\u00e9',
      '(?i)abc',
      '(?<year>\\d{4})',
      'é+',
      '(a',
      'a)',
      'a{,2}',
    ])
      expect(inPlainSubset(p), p).toBe(false);
  });
});

describe('runsLinear', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('gives the verdict RE2 gives', () => {
    for (const p of ['^[0-9]{1,6}$', '(?=a)b', '(a)\\1', '((a{2})){3}', '\\p{L}+', '[\\d-z]'])
      expect(runsLinear(p), p).toBe(re2Runs(p));
  });

  it('does not compile a spec pattern of the plain subset while building a catalogue', () => {
    const compile = vi.spyOn(RE2JS, 'compile');
    const spec = loadedSpecWith([
      // A pattern no other test of this process has met (the verdicts are kept by text).
      { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^u_[a-q]{3,9}$' } },
      { name: 'q', in: 'query', schema: { type: 'string', pattern: '^(?=x)x-subset-test$' } },
    ]);
    const catalog = buildCatalog(spec);
    const props = catalog.tools[0]!.inputSchema.properties as Record<string, { pattern?: string }>;
    // Kept (RE2 runs it) without a compile; the lookahead still compiled, refused and left out.
    expect(props.id!.pattern).toBe('^u_[a-q]{3,9}$');
    expect(props.q!.pattern).toBeUndefined();
    expect(
      catalog.warnings.some((w) => w.includes('^(?=x)x-subset-test$') && w.includes('not enforced')),
    ).toBe(true);
    expect(compile.mock.calls.map((c) => c[0])).toEqual(['^(?=x)x-subset-test$']);
  });
});

describe('toRe2Syntax: RE2 matches what ECMA-262 (JSON Schema) means', () => {
  const js = (p: string) => {
    try {
      return new RegExp(p, 'u');
    } catch {
      return undefined; // not a valid ECMA-262 pattern in Unicode mode: no meaning to compare
    }
  };
  const re2 = (p: string) => compileLinear(p);
  /** Texts around the places the two engines differ: Unicode spaces, line terminators, astral characters. */
  const CHARS = [
    'a',
    'Z',
    '0',
    '4',
    '_',
    '-',
    ' ',
    '\t',
    '\n',
    '\r',
    '\v',
    '\f',
    '\u00a0',
    '\u1680',
    '\u2000',
  ];
  const MORE = [
    '\u2028',
    '\u2029',
    '\u202f',
    '\u3000',
    '\ufeff',
    '\u0085',
    'é',
    '\u{1F600}',
    '{',
    '}',
    ',',
    '.',
  ];
  const EDGES = ['^', ':', '[', ']', '\t', '\u0000', '\u0009', '\ud83d', 'A'];
  const text = fc
    .array(fc.constantFrom(...CHARS, ...MORE, ...EDGES), { maxLength: 8 })
    .map((a) => a.join(''));

  /** Checks RE2's verdict against ECMA-262's on generated patterns and texts; how many both engines took. */
  const agreements = (patterns: fc.Arbitrary<string>) => {
    let compared = 0;
    fc.assert(
      fc.property(patterns, text, (p, s) => {
        const j = js(p);
        const r = re2(p);
        if (!j || !r) return;
        compared++;
        expect(r.matcher(s).find(), `${p} ${JSON.stringify(s)}`).toBe(j.test(s));
      }),
      { numRuns: 20_000 },
    );
    return compared;
  };

  it('agree on the cases where RE2 read them differently: counts with leading zeros, \\s, \\S, .', () => {
    const cases: Array<[string, string, boolean]> = [
      ['^[0-9]{04}$', '1234', true],
      ['^[0-9]{04}$', '1{04}', false],
      ['^a{02,03}$', 'aaa', true],
      ['^\\S+$', 'a\u00a0b', false],
      ['^\\S+$', 'a\u2028b', false],
      ['^\\S+$', 'a\ufeffb', false],
      ['^\\s$', '\u00a0', true],
      ['^\\s$', '\u3000', true],
      ['^.+$', 'a\rb', false],
      ['^.+$', 'a\u2028b', false],
      ['^[\\S]+$', 'a\u00a0', false],
      ['^[\\s\\d]+$', '1\u00a02', true],
      ['^\\u{1F600}$', '\u{1F600}', true],
    ];
    for (const [p, s, want] of cases) {
      expect(js(p)?.test(s), `${p} ${JSON.stringify(s)} (ECMA-262)`).toBe(want);
      expect(re2(p)?.matcher(s).find(), `${p} ${JSON.stringify(s)} (RE2)`).toBe(want);
    }
  });

  it('leaves unenforced what RE2 cannot say for sure, or ECMA-262 does not accept', () => {
    for (const p of [
      '[^\\S]',
      '[^a\\S]',
      '[]',
      '[^]a',
      '[[:alpha:]]',
      // \S beside other items: they would be read again in a new class (`^` first, `[` + `:`, `\0` + digits).
      '^[\\S^a]+$',
      '^[\\0\\S11]$',
      '^[[\\S:alpha:]+$',
      // A lone surrogate; a class escape at a range's end; escapes RE2 reads otherwise; RE2-only syntax.
      '^\\uD83D$',
      '[\\s-\\uFFFF]',
      '[\\x00-\\s]',
      '\\12',
      '\\012',
      '(?i)a',
      '\\Qa\\E',
      'a\\z',
      '[\\b]',
    ]) {
      expect(toRe2Syntax(p), p).toBeUndefined();
      expect(runsLinear(p), p).toBe(false);
    }
  });

  it('read a surrogate pair as its one code point, and legacy identity escapes as themselves', () => {
    const cases: Array<[string, string, boolean]> = [
      ['^[^\\uD83D\\uDE00]$', '\u{1F600}', false],
      ['^\\uD83D\\uDE00$', '\u{1F600}', true],
      ['^[a-zA-Z0-9_\\-\\:]+$', 'a-b:c', true],
      ['^[a-zA-Z0-9_\\-\\:]+$', 'a b', false],
      ['^\\d+\\-\\d+$', '12-3', true],
    ];
    for (const [p, s, want] of cases)
      expect(re2(p)?.matcher(s).find(), `${p} ${JSON.stringify(s)}`).toBe(want);
  });

  it('agree on generated classes and texts', () => {
    const items = [
      'a',
      'z',
      '0',
      '1',
      '^',
      '-',
      ':',
      '[',
      '\\s',
      '\\S',
      '\\d',
      '\\w',
      '\\W',
      '\\0',
      ' ',
      '\u00a0',
    ];
    const more = ['\\uD83D\\uDE00', '\\uD83D', '\\u{1F600}', '\\x41', '\\t', '\\-', '\\]', '\\^', '\\b', '.'];
    const cls = fc
      .tuple(
        fc.boolean(),
        fc.array(fc.constantFrom(...items, ...more), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
      )
      .map(([neg, xs, plus]) => `^[${neg ? '^' : ''}${xs.join('')}]${plus ? '+' : ''}$`);
    // The property says something only if both engines take many of the patterns.
    expect(agreements(cls)).toBeGreaterThan(5_000);
  });

  it('agree on generated patterns and texts', () => {
    const atoms = [
      'a',
      '0',
      '4',
      ' ',
      '.',
      '\\s',
      '\\S',
      '\\d',
      '\\w',
      '[a\\s]',
      '[^a]',
      '[\\S0]',
      '[^\\s]',
      '\\u00a0',
    ];
    const ops = ['', '', '*', '+', '?', '{02}', '{0,2}', '{01,}'];
    const piece = fc.tuple(fc.constantFrom(...atoms), fc.constantFrom(...ops)).map(([a, o]) => a + o);
    const pattern = fc
      .tuple(fc.boolean(), fc.array(piece, { minLength: 1, maxLength: 5 }), fc.boolean())
      .map(([s, ps, e]) => `${s ? '^' : ''}${ps.join('')}${e ? '$' : ''}`);
    expect(agreements(pattern)).toBeGreaterThan(10_000);
  });
});
