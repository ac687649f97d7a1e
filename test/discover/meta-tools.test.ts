import { describe, expect, it } from 'vitest';
import { MetaTools, metaTools, SEARCH_TOOL } from '../../src/discover/meta-tools.js';
import { ToolSearch } from '../../src/discover/search.js';
import type { Catalog } from '../../src/model/catalog.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';
import { viewOf } from '../support/pipeline.js';

/**
 * A merged catalogue as an API set serves it: two APIs with the same operation, under prefixes that do
 * not say which API they are (`prefix` is configurable), so only the `api` field can tell them apart.
 */
async function twoApis(): Promise<Catalog> {
  const catalog = await catalogOf(
    minimalSpec({
      '/a/customers': {
        get: { operationId: 'a_listCustomers', summary: 'List customers', responses: jsonOk() },
      },
      '/b/customers': {
        get: { operationId: 'b_listCustomers', summary: 'List customers', responses: jsonOk() },
      },
      '/b/invoices': {
        get: { operationId: 'b_listInvoices', summary: 'List invoices', responses: jsonOk() },
      },
    }),
  );
  return {
    ...catalog,
    tools: catalog.tools.map((t) => ({ ...t, api: t.name.startsWith('a_') ? 'crm' : 'billing' })),
  };
}

describe('dynamic mode over an API set', () => {
  it('names the API of every hit, and prefers the API named in the words', async () => {
    const catalog = await twoApis();
    const view = viewOf(catalog);
    const meta = new MetaTools(() => new ToolSearch(catalog));
    const scopes = ['tools:read'];
    const billing = meta.find(view, scopes, { query: 'billing list customers' }).results;
    expect(billing[0]).toMatchObject({ name: 'b_listCustomers', api: 'billing', kind: 'read' });
    const crm = meta.find(view, scopes, { query: 'crm customers' }).results;
    expect(crm[0]).toMatchObject({ name: 'a_listCustomers', api: 'crm' });
    // Every hit says where it comes from.
    const all = meta.find(view, scopes, { query: 'list', limit: 10 }).results;
    expect(all.map((r) => `${r.api}:${r.name}`).sort()).toEqual([
      'billing:b_listCustomers',
      'billing:b_listInvoices',
      'crm:a_listCustomers',
    ]);
  });

  it('says nothing of an API for a single spec', async () => {
    const catalog = await catalogOf(
      minimalSpec({ '/customers': { get: { operationId: 'listCustomers', responses: jsonOk() } } }),
    );
    const meta = new MetaTools(() => new ToolSearch(catalog));
    const [hit] = meta.find(viewOf(catalog), ['tools:read'], { query: 'customers' }).results;
    expect(hit).toMatchObject({ name: 'listCustomers' });
    expect(hit).not.toHaveProperty('api');
  });

  it("declares the hit's API in search_tools' output schema", () => {
    const search = metaTools('crm + billing').find((t) => t.name === SEARCH_TOOL)!;
    expect(search.description).toContain('crm + billing');
    const items = (search.outputSchema as { properties: { results: { items: { properties: object } } } })
      .properties.results.items.properties;
    expect(items).toHaveProperty('api');
  });
});
