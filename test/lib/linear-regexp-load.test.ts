import { describe, expect, it, vi } from 'vitest';
import { loadedSpecWith } from '../support/helpers.js';

// In the bundle, re2js is evaluated at its first read (scripts/bundle-cli.mjs, lazy-evaluated
// packages). A failure there (a broken install, a stack overflow while evaluating it) must not be
// read as "this pattern cannot be enforced": that would drop every spec `pattern` (fail open).
vi.mock('re2js', () => ({
  get RE2JS(): never {
    throw new RangeError('Maximum call stack size exceeded');
  },
  RE2JSException: class extends Error {},
}));

describe('compileLinear when re2js fails to load', () => {
  it('throws, so a pattern is never silently dropped', async () => {
    const { compileLinear } = await import('../../src/lib/linear-regexp.js');
    expect(() => compileLinear('^[0-9]{1,6}$')).toThrow(RangeError);
  });

  it('fails the catalogue build rather than serving a tool without its pattern', async () => {
    const { buildCatalog } = await import('../../src/catalog/build.js');
    const spec = loadedSpecWith([
      { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9]{1,6}$' } },
    ]);
    expect(() => buildCatalog(spec)).toThrow();
  });
});
