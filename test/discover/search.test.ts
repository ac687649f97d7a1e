import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { Controller } from '../../src/control/controller.js';
import { MetaTools } from '../../src/discover/meta-tools.js';
import { ToolSearch } from '../../src/discover/search.js';
import { isWardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import { loadSpec } from '../../src/openapi/load.js';
import { DEFAULT_POLICY } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { listToolsets, selectToolsets, slug } from '../../src/policy/toolsets.js';
import { createMemoryState } from '../../src/state/memory.js';
import { catalogOf, jsonOk, minimalSpec, SHARED_SPECS } from '../support/helpers.js';
import { viewOf } from '../support/pipeline.js';

/** Plain requests a user might make, and the tool that does it (GitHub names are `tag_operation`). */
const GITHUB_QUERIES: Array<[string, string]> = [
  ['list open pull requests', 'pulls_list'],
  ['create an issue', 'issues_create'],
  ['merge a pull request', 'pulls_merge'],
  ['star a repository', 'activity_star-repo-for-authenticated-user'],
  ['list my notifications', 'activity_list-notifications-for-authenticated-user'],
  ['get the contents of a file', 'repos_get-content'],
  ['delete branch protection', 'repos_delete-branch-protection'],
  ['list workflow runs', 'actions_list-workflow-runs'],
  ['create a release', 'repos_create-release'],
  ['add a comment to an issue', 'issues_create-comment'],
  ['search code', 'search_code'],
  ['list commits on a repository', 'repos_list-commits'],
  ['fork a repository', 'repos_create-fork'],
  ['list repository collaborators', 'repos_list-collaborators'],
  ['list the reviews of a PR', 'pulls_list-reviews'],
];

const STRIPE_QUERIES: Array<[string, string]> = [
  ['create a customer', 'PostCustomers'],
  ['refund a charge', 'PostChargesChargeRefund'],
  ['list invoices', 'GetInvoices'],
  ['cancel a subscription', 'DeleteSubscriptionsSubscriptionExposedId'],
  ['create a payment intent', 'PostPaymentIntents'],
  ['retrieve the balance', 'GetBalance'],
  ['list payouts', 'GetPayouts'],
  ['create a product', 'PostProducts'],
  ['update a price', 'PostPricesPrice'],
  ['delete a coupon', 'DeleteCouponsCoupon'],
  ['capture a payment intent', 'PostPaymentIntentsIntentCapture'],
  ['list disputes', 'GetDisputes'],
  ['create a checkout session', 'PostCheckoutSessions'],
  ['attach a payment method to a customer', 'PostPaymentMethodsPaymentMethodAttach'],
  ['finalize an invoice', 'PostInvoicesInvoiceFinalize'],
];

describe('search over large real APIs (GitHub 771 operations, Stripe 468)', () => {
  let github: Catalog;
  let stripe: Catalog;
  beforeAll(async () => {
    github = buildCatalog(await loadSpec(join(SHARED_SPECS, 'github-rest.json')));
    stripe = buildCatalog(await loadSpec(join(SHARED_SPECS, 'stripe.yaml')));
  }, 60_000);

  it('finds the right tool in the top 3 for each of 30 plain-language requests', () => {
    const misses: string[] = [];
    for (const [cat, queries] of [
      [github, GITHUB_QUERIES],
      [stripe, STRIPE_QUERIES],
    ] as const) {
      const s = new ToolSearch(cat);
      for (const [q, want] of queries) {
        expect(
          cat.tools.some((t) => t.name === want),
          `${want} exists`,
        ).toBe(true);
        const top = s.search(q, () => true, 3).map((h) => h.name);
        if (!top.includes(want)) misses.push(`"${q}" → ${top.join(', ')} (wanted ${want})`);
      }
    }
    expect(misses).toEqual([]);
  });

  it('never returns a tool the visibility check refuses, however well it matches', () => {
    const s = new ToolSearch(github);
    const hidden = new Set(['pulls_list', 'pulls_merge']);
    const hits = s.search('list open pull requests merge', (n) => !hidden.has(n), 20);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.some((h) => hidden.has(h.name))).toBe(false);
    expect(s.search('pull requests', () => false, 20)).toEqual([]);
  });

  it('groups tools by tag (GitHub) or, without tags, by first path segment (Stripe)', () => {
    const gh = listToolsets(github, DEFAULT_POLICY);
    const pulls = gh.find((s) => s.name === 'pulls')!;
    expect(pulls.source).toBe('tag');
    expect(pulls.tools).toContain('pulls_list');
    expect(pulls.tools.every((t) => t.startsWith('pulls_'))).toBe(true);
    const st = listToolsets(stripe, DEFAULT_POLICY);
    const customers = st.find((s) => s.name === 'customers')!;
    expect(customers.source).toBe('path');
    expect(customers.tools).toContain('PostCustomers');
    expect(customers.tools.every((t) => /Customers/.test(t))).toBe(true);
    // Every tool is in at least one toolset.
    const covered = new Set(st.flatMap((s) => s.tools));
    expect(stripe.tools.every((t) => covered.has(t.name))).toBe(true);
    expect(slug('Pull Requests')).toBe('pull-requests');
  });

  it('takes toolsets from the policy, and names the closest one for a typo', () => {
    const policy = parsePolicy(
      [
        'version: 1',
        'toolsets:',
        '  billing:',
        '    description: Invoices and what customers owe',
        '    match: [{ path: "/v1/invoices/**" }, { name: GetCustomersCustomerBalanceTransactions }]',
      ].join('\n'),
      'warden.yaml',
    );
    const sets = listToolsets(stripe, policy.doc);
    const billing = sets.find((s) => s.name === 'billing')!;
    expect(billing.source).toBe('policy');
    expect(billing.tools).toContain('GetCustomersCustomerBalanceTransactions');
    expect(billing.tools).toContain('PostInvoicesInvoiceFinalize');
    expect([...selectToolsets(sets, ['billing'])].sort()).toEqual([...billing.tools].sort());
    try {
      selectToolsets(sets, ['invoice']);
      expect.unreachable();
    } catch (e) {
      expect(isWardenError(e) && e.code).toBe('CONFIG_INVALID');
      expect((e as Error).message).toMatch(/no toolset named "invoice".*did you mean "invoices"/);
    }
  });

  it('hides every tool outside the served toolsets, with the reason, and refuses an unknown one at start', () => {
    const make = (toolsets: string[]) =>
      new Controller({
        catalog: github,
        env: {},
        state: createMemoryState(),
        toolsets,
        onSecret: () => {},
        onControl: () => {},
        warn: () => {},
      });
    const view = make(['pulls', 'issues']).view();
    const exposed = view.entries.filter((e) => e.exposed).map((e) => e.decision.tool.name);
    expect(exposed.length).toBeGreaterThan(10);
    expect(exposed.every((n) => n.startsWith('pulls_') || n.startsWith('issues_'))).toBe(true);
    expect(view.get('repos_get')!.blockers).toContainEqual({
      kind: 'toolset',
      reason: 'not in the served toolsets (pulls, issues)',
    });
    expect(() => make(['pull'])).toThrow(/no toolset named "pull".*did you mean "pulls"/);
  });
});

/** A small file-and-team API with two deletes of different strength and vocabulary a user does not use. */
async function filesApi(): Promise<Catalog> {
  const id = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
  return catalogOf(
    minimalSpec({
      '/files/{id}': {
        parameters: id,
        get: { operationId: 'getFile', summary: 'Get file', responses: jsonOk() },
        delete: {
          operationId: 'deleteFile',
          summary: 'Delete file',
          description: 'Deletes the file: it moves to the trash, where it can be restored for 30 days.',
          responses: jsonOk(),
        },
      },
      '/files/{id}/permanent': {
        parameters: id,
        delete: {
          operationId: 'permanentlyDeleteFile',
          summary: 'Permanently delete file',
          description: 'Removes the file for good, trash or not. This cannot be undone.',
          responses: jsonOk(),
        },
      },
      '/account/balance': {
        get: { operationId: 'getBalance', summary: 'Get account balance', responses: jsonOk() },
      },
      '/account/invoices': {
        get: { operationId: 'listAccountInvoices', summary: 'List account invoices', responses: jsonOk() },
      },
      '/teams/{id}/members': {
        parameters: id,
        get: { operationId: 'listMembers', summary: 'List team members', responses: jsonOk() },
        post: { operationId: 'addMember', summary: 'Add a member to a team', responses: jsonOk() },
      },
      '/orders': {
        get: {
          operationId: 'listOrders',
          summary: 'List orders',
          description: 'Orders of the customer, each order with its items, order status and order totals.',
          responses: jsonOk(),
        },
      },
      '/orders/{id}/cancel': {
        parameters: id,
        post: { operationId: 'cancelOrder', summary: 'Cancel', responses: jsonOk() },
      },
    }),
  );
}

describe("search from a user's words (issue 23)", () => {
  let search: ToolSearch;
  let catalog: Catalog;
  const top = (q: string, n = 3) => search.search(q, () => true, n).map((h) => h.name);
  beforeAll(async () => {
    catalog = await filesApi();
    search = new ToolSearch(catalog);
  });

  it('ranks the reversible delete first unless the words ask for the permanent one', () => {
    for (const q of ['move a file to the trash', 'delete a file', 'remove this file']) {
      const hits = top(q, 5);
      expect(hits[0], q).toBe('deleteFile');
      expect(hits, q).toContain('permanentlyDeleteFile');
    }
    expect(top('permanently delete a file')[0]).toBe('permanentlyDeleteFile');
    expect(top('purge a file for good')[0]).toBe('permanentlyDeleteFile');
  });

  it('ranks a read above a delete when the query does not ask to delete', () => {
    expect(top('the file')[0]).toBe('getFile');
  });

  it("bridges a user's words to the API's: credit → balance, teammate → member", () => {
    expect(top('check how much credit is left on my account', 1)).toEqual(['getBalance']);
    expect(top('invite a teammate', 1)).toEqual(['addMember']);
    expect(top('who are my teammates', 1)).toEqual(['listMembers']);
  });

  it('ranks the tool doing the asked action above tools where the nouns merely co-occur', () => {
    expect(top('cancel my order', 1)).toEqual(['cancelOrder']);
    expect(top('add a member', 1)).toEqual(['addMember']);
    expect(top('list the members', 1)).toEqual(['listMembers']);
  });

  it("shows each hit's risk classes in search_tools' results", () => {
    const meta = new MetaTools(() => search);
    const [hit] = meta.find(viewOf(catalog), ['tools:read'], { query: 'account balance' }).results;
    expect(hit).toMatchObject({ name: 'getBalance', kind: 'read', risk: ['read'] });
  });
});
