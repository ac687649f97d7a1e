import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/model/principal.js';
import { createAuthorize } from '../../src/pipeline/authorize.js';
import { itemsCatalog, resolvedContext, viewOf } from '../support/pipeline.js';

const caller = (scopes: string[]): Principal => ({ id: 'tester', scopes, via: 'stdio' });

describe('authorize stage', () => {
  const policy = 'version: 1\nrules:\n  - match: { name: getPart }\n    scopes: [parts:read, audit]\n';

  it('lets a caller holding every scope through', async () => {
    const view = viewOf(await itemsCatalog(), policy);
    const ctx = resolvedContext(view, {
      name: 'getPart',
      principal: caller(['audit', 'parts:read', 'other']),
    });
    expect(() => createAuthorize()(ctx)).not.toThrow();
  });

  it.each([[['parts:read']], [['Parts:read', 'audit']], [['parts:read audit']], [['parts', 'audit']], [[]]])(
    'denies %j with the unknown-tool message and the DENIED_SCOPE audit code',
    async (scopes) => {
      const view = viewOf(await itemsCatalog(), policy);
      const ctx = resolvedContext(view, { name: 'getPart', principal: caller(scopes) });
      expect(() => createAuthorize()(ctx)).toThrow(
        expect.objectContaining({ code: 'DENIED_SCOPE', message: 'Unknown tool: getPart' }),
      );
    },
  );
});
