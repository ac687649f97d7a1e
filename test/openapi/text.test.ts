import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cleanDescription,
  cleanLine,
  stripUnsafeText,
  words,
  wordsByPattern,
} from '../../src/openapi/text.js';

describe('spec text sanitising', () => {
  it('removes ANSI escapes, control characters and invisible code points', () => {
    expect(stripUnsafeText('a\u001b[2J\u001b[31mred\u001b[0m')).toBe('ared');
    expect(stripUnsafeText('x\u0000y\u0007z\u009b')).toBe('xyz');
    expect(stripUnsafeText('ig\u200bnore\u200d \u202eprevious\u2066')).toBe('ignore previous');
    expect(stripUnsafeText('tag\u{e0041}\u{e0042}s')).toBe('tags');
    expect(stripUnsafeText('\ufeffbom')).toBe('bom');
  });

  it('keeps ordinary text, newlines, tabs and non-Latin scripts', () => {
    expect(stripUnsafeText('Grüße\n\tこんにちは — ok')).toBe('Grüße\n\tこんにちは — ok');
  });

  it('caps descriptions at the limit, on a character boundary, marking the cut', () => {
    const d = cleanDescription('😀'.repeat(50), 21);
    expect(d.endsWith('…')).toBe(true);
    expect([...d.slice(0, -1)].every((c) => c === '😀')).toBe(true);
    expect(cleanDescription('short', 100)).toBe('short');
  });

  it('makes one-line labels', () => {
    expect(cleanLine('a\n\nb   c', 50)).toBe('a b c');
  });

  it('never lets an escape or invisible character through, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const out = cleanDescription(s, 1000);
        expect(out).not.toMatch(
          /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('splits identifiers into words', () => {
    expect(words('listAPIKeys')).toEqual(['list', 'api', 'keys']);
    expect(words('ssh_signing-keys')).toEqual(['ssh', 'signing', 'keys']);
    expect(words('/repos/{owner}')).toEqual(['repos', 'owner']);
  });
});

describe("words: the one-pass split is the patterns' split", () => {
  // Identifier-like text: letters of both cases, digits, separators, and some non-ASCII letters
  // (the Kelvin sign and dotted capital I lower-case to ASCII letters).
  const ident = fc.string({
    unit: fc.constantFrom(...'aAbBzZkKiIyY019_-. /{}$'.split(''), '\u212a', '\u0130', 'é', 'ß', '😀'),
    maxLength: 30,
  });

  it('gives the same words on identifiers and on any text (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(ident, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })),
        (s) => {
          expect(words(s)).toEqual(wordsByPattern(s));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('splits camel case, capital runs and separators as before', () => {
    for (const [s, w] of [
      ['listAPIKeys', ['list', 'api', 'keys']],
      ['ssh_signing-keys', ['ssh', 'signing', 'keys']],
      ['ABCdEFg', ['ab', 'cd', 'e', 'fg']],
      ['v1ABc', ['v1', 'a', 'bc']],
      ['io.k8s.api.core.v1.Pod', ['io', 'k8s', 'api', 'core', 'v1', 'pod']],
      ['\u212aey', ['key']],
      ['', []],
    ] as const)
      expect(words(s)).toEqual(w);
  });
});

describe('stripUnsafeText: plain text comes back as it is', () => {
  it('removes exactly what the three patterns remove (property)', () => {
    const unsafe = fc.string({
      unit: fc.constantFrom(
        'a',
        ' ',
        '\t',
        '\n',
        '\r',
        '\u001b',
        '[',
        '3',
        'm',
        ']',
        '\u0007',
        '\u009b',
        '\u200b',
        '\u00ad',
        '\u{e0041}',
        'é',
        '~',
      ),
      maxLength: 40,
    });
    fc.assert(
      fc.property(
        fc.oneof(unsafe, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })),
        (s) => {
          // A leading zero-width space (removed) takes the three patterns' path for any text.
          expect(stripUnsafeText(s)).toBe(stripUnsafeText(`\u200b${s}`));
        },
      ),
      { numRuns: 10_000 },
    );
    expect(stripUnsafeText('plain text\twith tabs\nand lines')).toBe('plain text\twith tabs\nand lines');
  });
});
