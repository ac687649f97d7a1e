import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import { DEFAULT_POLICY } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { listToolsets, selectToolsets } from '../../src/policy/toolsets.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

/** An API set's merged catalogue: two APIs with a `customers` tag each, and an untagged path. */
async function twoApis(): Promise<Catalog> {
  const catalog = await catalogOf(
    minimalSpec({
      '/customers': {
        get: { operationId: 'crm_listCustomers', tags: ['Customers'], responses: jsonOk() },
      },
      '/v1/notes': { get: { operationId: 'crm_listNotes', responses: jsonOk() } },
      '/billing/customers': {
        get: { operationId: 'billing_listCustomers', tags: ['Customers'], responses: jsonOk() },
      },
      '/billing/invoices': {
        get: { operationId: 'billing_listInvoices', tags: ['Invoices'], responses: jsonOk() },
      },
    }),
  );
  return { ...catalog, tools: catalog.tools.map((t) => ({ ...t, api: t.name.split('_')[0]! })) };
}

describe('toolsets across an API set', () => {
  it('makes each API a toolset and names the others <api>:<tag>, so equal tags of two APIs stay apart', async () => {
    const sets = listToolsets(await twoApis(), DEFAULT_POLICY);
    const byName = Object.fromEntries(sets.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual([
      'billing',
      'billing:customers',
      'billing:invoices',
      'crm',
      'crm:customers',
      'crm:notes',
    ]);
    expect(byName.crm).toMatchObject({ source: 'api', tools: ['crm_listCustomers', 'crm_listNotes'] });
    expect(byName.crm!.description).toBe('Every operation of API "crm"');
    expect(byName.billing!.tools).toEqual(['billing_listCustomers', 'billing_listInvoices']);
    expect(byName['crm:customers']).toMatchObject({ source: 'tag', tools: ['crm_listCustomers'] });
    expect(byName['crm:customers']!.description).toBe('Operations tagged "Customers" (API "crm")');
    expect(byName['billing:customers']!.tools).toEqual(['billing_listCustomers']);
    // An untagged operation still groups by its first path segment, under its API.
    expect(byName['crm:notes']).toMatchObject({ source: 'path', tools: ['crm_listNotes'] });
    // No bare tag toolset: `customers` alone would mix the two APIs.
    expect(byName.customers).toBeUndefined();
  });

  it('selects by API, by <api>:<tag> as written in the spec, and says the closest name for a typo', async () => {
    const sets = listToolsets(await twoApis(), DEFAULT_POLICY);
    expect([...selectToolsets(sets, ['billing'])]).toEqual(['billing_listCustomers', 'billing_listInvoices']);
    expect([...selectToolsets(sets, ['crm:Customers', 'billing:invoices'])]).toEqual([
      'crm_listCustomers',
      'billing_listInvoices',
    ]);
    try {
      selectToolsets(sets, ['crm:customer']);
      expect.unreachable();
    } catch (e) {
      expect(isWardenError(e) && e.code).toBe('CONFIG_INVALID');
      expect((e as Error).message).toMatch(/no toolset named "crm:customer".*did you mean "crm:customers"/);
    }
  });

  it('lets a policy toolset gather tools across APIs', async () => {
    const policy = parsePolicy(
      ['version: 1', 'toolsets:', '  people:', '    match: [{ name: "*_listCustomers" }]'].join('\n'),
      'warden.yaml',
    );
    const sets = listToolsets(await twoApis(), policy.doc);
    expect(sets.find((s) => s.name === 'people')).toMatchObject({
      source: 'policy',
      tools: ['crm_listCustomers', 'billing_listCustomers'],
    });
  });

  it('keeps a single spec as before: tags and paths, no API toolset', async () => {
    const catalog = await catalogOf(
      minimalSpec({
        '/customers': { get: { operationId: 'listCustomers', tags: ['Customers'], responses: jsonOk() } },
      }),
    );
    expect(listToolsets(catalog, DEFAULT_POLICY).map((s) => [s.name, s.source])).toEqual([
      ['customers', 'tag'],
    ]);
  });
});
