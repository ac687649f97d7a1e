import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignSetNames, prefixName, TOOL_NAME } from '../../src/catalog/names.js';

const op = (name: string, path = `/${name}`, method = 'get') => ({ name, method, path });

describe('tool names in an API set', () => {
  it('prefixes each name with its API prefix and _', () => {
    expect(prefixName('crm', 'getCustomer')).toBe('crm_getCustomer');
    expect(prefixName('', 'getCustomer')).toBe('getCustomer');
  });

  it('keeps a long prefixed name within 64 characters, with a hash of the whole name', () => {
    const long = `a${'x'.repeat(63)}`;
    const named = prefixName('github', long);
    expect(named).toHaveLength(64);
    expect(named).toMatch(TOOL_NAME);
    expect(named.startsWith('github_axx')).toBe(true);
    // The same on every run, different for another prefix or name of the same head.
    expect(prefixName('github', long)).toBe(named);
    expect(prefixName('github', `${long.slice(0, 63)}y`)).not.toBe(named);
    expect(prefixName('gitlab', long)).not.toBe(named);
  });

  it('gives two specs with the same operationIds distinct names under their prefixes', () => {
    const [a, b] = assignSetNames([
      { api: 'shop', prefix: 'shop', tools: [op('listItems'), op('getItem')] },
      { api: 'store', prefix: 'store', tools: [op('listItems'), op('getItem')] },
    ]);
    expect(a).toEqual(['shop_listItems', 'shop_getItem']);
    expect(b).toEqual(['store_listItems', 'store_getItem']);
  });

  it('resolves a collision by API name, whatever the order of the APIs', () => {
    // An empty prefix meets another API's prefixed name; `a` + `b_c` meets `a_b` + `c`.
    const apis = [
      { api: 'zeta', prefix: '', tools: [op('crm_getX', '/x')] },
      { api: 'crm', prefix: 'crm', tools: [op('getX', '/y')] },
      { api: 'a', prefix: 'a', tools: [op('b_c', '/c')] },
      { api: 'a_b', prefix: 'a_b', tools: [op('c', '/d')] },
    ];
    const names = assignSetNames(apis);
    // `crm` and `a` sort first and keep their names; the others get a hash of API, method and path.
    expect(names[1]).toEqual(['crm_getX']);
    expect(names[0]![0]).toMatch(/^crm_getX_[0-9a-f]{8}$/);
    expect(names[2]).toEqual(['a_b_c']);
    expect(names[3]![0]).toMatch(/^a_b_c_[0-9a-f]{8}$/);
    const reversed = assignSetNames([...apis].reverse());
    expect(reversed.reverse()).toEqual(names);
    expect(new Set(names.flat().map((n) => n.toLowerCase())).size).toBe(4);
  });

  it('resolves collisions between very long names and stays within the limit', () => {
    // The longest name a spec gives (64), twice without a prefix, and once under a long prefix.
    const long = 'listEveryRepositoryIssueCommentReactionForTheAuthenticatedUserAc';
    expect(long).toHaveLength(64);
    const names = assignSetNames([
      { api: 'one', prefix: '', tools: [op(long, '/a')] },
      { api: 'two', prefix: '', tools: [op(long, '/b')] },
      { api: 'three', prefix: 'a-very-long-prefix-for-an-api-x', tools: [op(long, '/c')] },
    ]);
    expect(names[0]![0]).toBe(long);
    expect(names[1]![0]).toMatch(/_[0-9a-f]{8}$/);
    for (const n of names.flat()) {
      expect(n).toMatch(TOOL_NAME);
    }
    expect(names[0]![0]).not.toBe(names[1]![0]);
  });

  it('names are valid, unique and depend only on the prefix and the operation (property)', () => {
    const ident = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(ident, { minLength: 1, maxLength: 6, selector: (s) => s.toLowerCase() }),
        (ops) => {
          const tools = ops.map((n, i) => op(n, `/p${i}`));
          const names = assignSetNames([
            { api: 'crm', prefix: 'crm', tools },
            { api: 'billing', prefix: 'billing', tools },
          ]);
          for (const n of names.flat()) expect(n).toMatch(TOOL_NAME);
          expect(new Set(names.flat().map((n) => n.toLowerCase())).size).toBe(ops.length * 2);
          // Each API's names do not depend on the other API being there.
          expect(assignSetNames([{ api: 'crm', prefix: 'crm', tools }])[0]).toEqual(names[0]);
        },
      ),
    );
  });
});
