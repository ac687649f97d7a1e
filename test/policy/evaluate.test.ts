import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import type { Catalog } from '../../src/model/catalog.js';
import { loadSpec } from '../../src/openapi/load.js';
import { checkPolicy } from '../../src/policy/check.js';
import { evaluatePolicy, type ToolDecision } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { SHOP_SPEC as SHOP } from '../support/paths.js';

let shop: Promise<Catalog> | undefined;
const shopCatalog = () => (shop ??= loadSpec(SHOP, {}).then(buildCatalog));

async function decide(yaml: string): Promise<Map<string, ToolDecision>> {
  const p = parsePolicy(yaml, 'warden.yaml');
  const ds = evaluatePolicy(await shopCatalog(), { doc: p.doc, file: 'warden.yaml', lineOf: p.lineOf });
  return new Map(ds.map((d) => [d.tool.name, d]));
}
const exposed = (m: Map<string, ToolDecision>) =>
  [...m.values()].filter((d) => d.blockers.length === 0).map((d) => d.tool.name);

describe('policy evaluation: secure defaults', () => {
  it('exposes only the safe reads with no rules, exactly as with no policy file', async () => {
    expect(exposed(await decide('version: 1'))).toEqual([
      'listCustomers',
      'getCustomer',
      'listCustomerOrders',
      'getOrder',
      'searchProducts',
    ]);
  });

  it('keeps writes hidden in read-only mode even when a rule enables them', async () => {
    const d = await decide('version: 1\nrules:\n  - match: { name: createOrder }\n    enabled: true\n');
    expect(d.get('createOrder')!.blockers.map((b) => b.kind)).toEqual(['mode']);
  });

  it('needs read-write mode and enabled: true for a write', async () => {
    expect(
      (await decide('version: 1\nmode: read-write\n')).get('createOrder')!.blockers.map((b) => b.kind),
    ).toEqual(['disabled']);
    const d = await decide(
      'version: 1\nmode: read-write\nrules:\n  - match: { name: createOrder }\n    enabled: true\n',
    );
    expect(d.get('createOrder')!.blockers).toEqual([]);
    expect(d.get('createOrder')!.confirm).toBe(false);
    expect(d.get('createOrder')!.scopes).toEqual(['tools:write']);
  });

  it('confirms destructive tools by default and needs an explicit reason to stop', async () => {
    const on = await decide(
      'version: 1\nmode: read-write\nrules:\n  - match: { method: delete }\n    enabled: true\n',
    );
    expect(on.get('deleteCustomer')).toMatchObject({ blockers: [], confirm: true, scopes: ['tools:delete'] });
    const off = await decide(
      'version: 1\nmode: read-write\nrules:\n  - match: { method: delete }\n    enabled: true\n    confirm: false\n    reason: soft delete, restorable for 30 days\n',
    );
    expect(off.get('deleteCustomer')!.confirm).toBe(false);
  });

  it('hides restricted risks until a rule names each class with a reason', async () => {
    const one = await decide(
      'version: 1\nrules:\n  - match: { name: listApiKeys }\n    allowRisk: [admin]\n    reason: key rotation bot needs the list\n',
    );
    // Still hidden: it is also a credential endpoint, which the rule did not allow.
    expect(one.get('listApiKeys')!.blockers.map((b) => b.reason)).toEqual([
      expect.stringMatching(/^credential:/),
    ]);
    const both = await decide(
      'version: 1\nrules:\n  - match: { name: listApiKeys }\n    allowRisk: [admin, credential]\n    reason: key rotation bot needs the list\n',
    );
    expect(both.get('listApiKeys')).toMatchObject({ blockers: [], scopes: ['tools:read', 'tools:admin'] });
  });
});

describe('policy evaluation: rules', () => {
  it('selects by name glob, tag, method and path glob; every given key must match', async () => {
    const d = await decide(
      [
        'version: 1',
        'rules:',
        '  - match: { name: "list*" }',
        '    scopes: [crm:list]',
        '  - match: { tag: orders, method: get }',
        '    scopes: [orders:read]',
        '  - match: { path: "/products/**" }',
        '    scopes: [catalog]',
      ].join('\n'),
    );
    expect(d.get('listCustomers')!.scopes).toEqual(['crm:list']);
    // listCustomerOrders is tagged orders and a GET: the later rule wins.
    expect(d.get('listCustomerOrders')!.scopes).toEqual(['orders:read']);
    expect(d.get('getOrder')!.scopes).toEqual(['orders:read']);
    expect(d.get('searchProducts')!.scopes).toEqual(['catalog']);
    // createOrder is tagged orders but a POST: untouched.
    expect(d.get('createOrder')!.scopes).toEqual(['tools:write']);
  });

  it('cascades: a later rule overrides what an earlier one set, and explain says which rule and line', async () => {
    const d = await decide(
      'version: 1\nrules:\n  - match: { tag: customers }\n    enabled: false\n  - match: { name: listCustomers }\n    enabled: true\n    maxPageSize: 20\n',
    );
    const lc = d.get('listCustomers')!;
    expect(lc.blockers).toEqual([]);
    expect(lc.limits).toEqual({ maxPageSize: 20 });
    expect(lc.steps.map((s) => s.by)).toEqual([
      'classification',
      'rules[0] (warden.yaml:3)',
      'rules[1] (warden.yaml:5)',
      'default',
    ]);
    expect(lc.steps[2]!.what).toBe('enabled: true; maxPageSize: 20');
    expect(d.get('deleteCustomer')!.blockers.map((b) => b.reason)).toContain(
      'destructive tool disabled by a rule',
    );
  });

  it('applies policy defaults for limits, overridden per rule', async () => {
    const d = await decide(
      'version: 1\ndefaults: { timeoutMs: 2000, maxPageSize: 50 }\nrules:\n  - match: { name: getOrder }\n    timeoutMs: 500\n',
    );
    expect(d.get('getOrder')!.limits).toEqual({ timeoutMs: 500, maxPageSize: 50 });
    expect(d.get('listCustomers')!.limits).toEqual({ timeoutMs: 2000, maxPageSize: 50 });
  });

  it('matches scopes configured per risk when no rule sets them', async () => {
    const d = await decide('version: 1\nscopes: { read: [api.read], admin: [api.admin] }\n');
    expect(d.get('getOrder')!.scopes).toEqual(['api.read']);
    expect(d.get('listApiKeys')!.scopes).toEqual(['api.read', 'api.admin']);
  });
});

describe('policy check against a spec', () => {
  async function problems(yaml: string) {
    return checkPolicy(await shopCatalog(), parsePolicy(yaml, 'warden.yaml'));
  }

  it('makes an unknown tool name an error with a "did you mean"', async () => {
    const p = await problems('version: 1\nrules:\n  - match: { name: listCustomer }\n    enabled: false\n');
    expect(p).toEqual([
      {
        level: 'error',
        line: 3,
        message: 'rules[0]: no tool named "listCustomer" (did you mean "listCustomers"?)',
      },
    ]);
  });

  it('checks tags, paths, credentials and schemes; a glob matching nothing is a warning', async () => {
    const p = await problems(
      [
        'version: 1',
        'credentials:',
        '  shop: { scheme: shopkey, dev: env:SHOP }',
        'rules:',
        '  - match: { tag: order }',
        '  - match: { path: "/order/{orderId}" }',
        '  - match: { name: "zz*" }',
        '  - match: { name: getOrder }',
        '    credential: shopp',
      ].join('\n'),
    );
    const text = p.map((x) => `${x.level} ${x.line} ${x.message}`);
    expect(text).toEqual([
      'error 3 credentials.shop: the spec has no security scheme "shopkey" (did you mean "shopKey"?)',
      'error 5 rules[0]: no operation has tag "order" (did you mean "orders"?)',
      'error 6 rules[1]: no path "/order/{orderId}" (did you mean "/orders/{orderId}"?)',
      'warning 7 rules[2]: "zz*" matches no tool',
      'error 9 rules[3]: no credential named "shopp" under credentials (did you mean "shop"?)',
    ]);
  });
});
