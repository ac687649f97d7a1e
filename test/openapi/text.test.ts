import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cleanDescription, cleanLine, stripUnsafeText, words } from '../../src/openapi/text.js';

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
