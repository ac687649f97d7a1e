import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignNames, fallbackName, sanitizeName, TOOL_NAME } from '../../src/catalog/names.js';

describe('tool names', () => {
  it('keeps a valid operationId as it is', () => {
    expect(sanitizeName('listPets')).toBe('listPets');
    expect(sanitizeName('pets.list-v2_x')).toBe('pets.list-v2_x');
  });

  it('replaces characters outside the allowed set, folding accents', () => {
    expect(sanitizeName('repos/get')).toBe('repos_get');
    expect(sanitizeName('find pet by id')).toBe('find_pet_by_id');
    expect(sanitizeName('créerCafé')).toBe('creerCafe');
    expect(sanitizeName('  //weird::name//  ')).toBe('weird_name');
  });

  it('removes invisible characters and escapes rather than turning them into underscores', () => {
    expect(sanitizeName('get\u200bUser')).toBe('getUser');
    expect(sanitizeName('get\u001b[31mUser')).toBe('getUser');
    expect(sanitizeName('\u202eresUteg')).toBe('resUteg');
  });

  it('returns nothing for a name with no usable character', () => {
    expect(sanitizeName('日本語')).toBeUndefined();
    expect(sanitizeName('///')).toBeUndefined();
  });

  it('shortens long names to 64 characters with a hash of the whole original, so two long names stay distinct', () => {
    const a = `${'x'.repeat(80)}A`;
    const b = `${'x'.repeat(80)}B`;
    const na = sanitizeName(a)!;
    const nb = sanitizeName(b)!;
    expect(na).toHaveLength(64);
    expect(na).toMatch(TOOL_NAME);
    expect(na).not.toBe(nb);
    expect(sanitizeName(a)).toBe(na);
  });

  it('builds a readable fallback from method and path', () => {
    expect(fallbackName('GET', '/pets/{petId}/photos')).toBe('get_pets_by_petId_photos');
    expect(fallbackName('post', '/')).toBe('post');
  });

  it('disambiguates collisions with a hash of method and path, leaving the exact operationId its name', () => {
    const names = assignNames([
      { operationId: 'get pets', method: 'get', path: '/a' },
      { operationId: 'get_pets', method: 'get', path: '/b' },
      { operationId: 'get/pets', method: 'get', path: '/c' },
    ]);
    expect(names[1]).toBe('get_pets');
    expect(names[0]).toMatch(/^get_pets_[0-9a-f]{8}$/);
    expect(names[2]).toMatch(/^get_pets_[0-9a-f]{8}$/);
    expect(new Set(names).size).toBe(3);
  });

  it('treats names differing only in case as colliding', () => {
    const names = assignNames([
      { operationId: 'GetPet', method: 'get', path: '/a' },
      { operationId: 'getPet', method: 'get', path: '/b' },
    ]);
    expect(names[0]!.toLowerCase()).not.toBe(names[1]!.toLowerCase());
  });

  it('does not rename an operation when other operations are added, removed or reordered', () => {
    const base = [
      { operationId: 'listPets', method: 'get', path: '/pets' },
      { method: 'post', path: '/pets' },
      { operationId: 'x/y', method: 'get', path: '/x' },
    ];
    const before = assignNames(base);
    const after = assignNames([
      { operationId: 'other', method: 'get', path: '/other' },
      ...[...base].reverse(),
    ]);
    expect(after.slice(1).reverse()).toEqual(before);
  });

  it('always produces valid, unique names for arbitrary operationIds (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            operationId: fc.option(fc.string({ maxLength: 100 }), { nil: undefined }),
            path: fc.string({ maxLength: 30 }),
          }),
          {
            maxLength: 30,
          },
        ),
        (ops) => {
          const input = ops.map((o, i) => ({
            method: 'get',
            path: `/${i}${o.path}`,
            ...(o.operationId !== undefined ? { operationId: o.operationId } : {}),
          }));
          const names = assignNames(input);
          for (const n of names) expect(n).toMatch(TOOL_NAME);
          expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
          expect(assignNames(input)).toEqual(names);
        },
      ),
      { numRuns: 300 },
    );
  });
});
