import { describe, expect, it } from 'vitest';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { checkPolicy } from '../../src/policy/check.js';
import { evaluatePolicy } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

/** Two small APIs as a set would serve them: tools prefixed and marked with their API. */
async function setCatalog(): Promise<Catalog> {
  const spec = minimalSpec(
    {
      '/items': { get: { operationId: 'listItems', tags: ['items'], responses: jsonOk() } },
      '/items/{id}': {
        delete: {
          operationId: 'deleteItem',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: jsonOk(),
        },
      },
    },
    {
      servers: [{ url: 'https://x.test' }],
      components: { securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'X-Key' } } },
      security: [{ key: [] }],
    },
  );
  const base = await catalogOf(spec);
  const of = (api: string): Tool[] => base.tools.map((t) => ({ ...t, name: `${api}_${t.name}`, api }));
  return { ...base, tools: [...of('crm'), ...of('billing')] };
}

const policy = (lines: string[]) => parsePolicy(['version: 1', ...lines, ''].join('\n'), 'warden.yaml');

describe('policy: an API set (apis:)', () => {
  it('accepts apis with spec, baseUrl, prefix, credentials, limits and rules', () => {
    const p = policy([
      'apis:',
      '  crm:',
      '    spec: crm.yaml',
      '    baseUrl: https://crm.internal/v2',
      '    timeoutMs: 5000',
      '    credentials:',
      '      k: { scheme: key, dev: env:CRM_KEY }',
      '    rules:',
      '      - match: { name: crm_listItems }',
      '        enabled: false',
      '  billing: { spec: billing.yaml, prefix: bill, required: false }',
    ]);
    // Isolation by default: a spec that fails takes only its own API out (all-or-nothing is opt-in).
    expect(p.doc.apis!.crm!.required).toBe(false);
    expect(p.doc.apis!.billing!).toMatchObject({ prefix: 'bill', required: false, rules: [] });
  });

  it.each([
    [['apis:', '  CRM: { spec: a.yaml }'], /apis.CRM|lower-case/],
    [['apis:', '  crm: { spec: a.yaml, prefix: "" }'], /prefix: "" \(no prefix\) needs a reason/],
    [['apis:', '  crm: { spec: a.yaml }', '  crm2: { spec: b.yaml, prefix: crm }'], /same prefix "crm"/],
    [
      ['credentials:', '  k: { scheme: key, dev: env:K }', 'apis:', '  crm: { spec: a.yaml }'],
      /credentials go under apis.<name>.credentials/,
    ],
    [['apis:', '  crm: { spec: a.yaml, colour: blue }'], /unknown key apis.crm.colour/],
    [['rules:', '  - match: { api: Not-An-Api }', '    enabled: false'], /an API name/],
  ])('refuses %j', (lines, message) => {
    expect(() => policy(lines)).toThrow(message);
  });

  it('matches tools by api; an API’s rules come first, its limits under them, top-level rules last', async () => {
    const p = policy([
      'mode: read-write',
      'apis:',
      '  crm:',
      '    spec: crm.yaml',
      '    timeoutMs: 5000',
      '    rules:',
      '      - match: { method: delete }',
      '        enabled: true',
      '        timeoutMs: 6000',
      '  billing: { spec: billing.yaml }',
      'rules:',
      '  - match: { api: billing, name: "*listItems" }',
      '    enabled: false',
      '  - match: { name: crm_deleteItem }',
      '    maxItems: 5',
    ]);
    const ds = new Map(
      evaluatePolicy(await setCatalog(), { doc: p.doc, file: 'warden.yaml', lineOf: p.lineOf }).map((d) => [
        d.tool.name,
        d,
      ]),
    );
    // The crm rule enables crm's delete only; billing's stays a disabled write.
    expect(ds.get('crm_deleteItem')!.blockers).toEqual([]);
    expect(ds.get('billing_deleteItem')!.blockers.map((b) => b.kind)).toEqual(['disabled']);
    expect(ds.get('billing_listItems')!.blockers.map((b) => b.kind)).toEqual(['disabled']);
    expect(ds.get('crm_listItems')!.blockers).toEqual([]);
    // Limits: the API's default, a rule over it; another API untouched.
    expect(ds.get('crm_listItems')!.limits.timeoutMs).toBe(5000);
    expect(ds.get('crm_deleteItem')!.limits).toMatchObject({ timeoutMs: 6000, maxItems: 5 });
    expect(ds.get('billing_listItems')!.limits.timeoutMs).toBeUndefined();
    expect(ds.get('crm_deleteItem')!.steps.map((s) => s.by)).toEqual([
      'classification',
      'apis.crm (warden.yaml:5)',
      'apis.crm.rules[0] (warden.yaml:8)',
      'rules[1] (warden.yaml:15)',
      'default',
      'default',
      'default',
    ]);
  });

  it('checks names against the API a rule is for, and credentials against that API', async () => {
    const catalog = await setCatalog();
    const problems = checkPolicy(
      catalog,
      policy([
        'apis:',
        '  crm:',
        '    spec: crm.yaml',
        '    credentials:',
        '      k: { scheme: key, dev: env:K }',
        '      wrong: { scheme: nope, dev: env:K }',
        '    rules:',
        '      - match: { name: billing_listItems }',
        '        enabled: false',
        '  billing: { spec: billing.yaml }',
        'rules:',
        '  - match: { api: bill }',
        '    enabled: false',
        '  - match: { api: billing }',
        '    credential: k',
        '  - match: { tag: items }',
        '    credential: k',
      ]),
    ).filter((x) => x.level === 'error');
    expect(problems.map((x) => x.message)).toEqual([
      'apis.crm.credentials.wrong: the spec has no security scheme "nope"',
      'apis.crm.rules[0]: no tool named "billing_listItems"',
      'rules[0]: no API named "bill" under apis',
      'rules[1]: no credential named "k" under apis.billing.credentials',
      'rules[2]: in an API set a rule that names a credential says which API it is for (match.api, or put it under apis.<name>.rules)',
    ]);
  });

  it('does not hold an API that is out (no tools) against the policy: its rules wait for it', async () => {
    const catalog = await setCatalog();
    const crmOnly = { ...catalog, tools: catalog.tools.filter((t) => t.api === 'crm') };
    const problems = checkPolicy(
      crmOnly,
      policy([
        'apis:',
        '  crm: { spec: crm.yaml }',
        '  billing:',
        '    spec: billing.yaml',
        '    required: false',
        '    rules:',
        '      - match: { name: billing_listItems }',
        '        enabled: false',
        'rules:',
        '  - match: { name: billing_deleteItem }',
        '    enabled: false',
      ]),
    );
    expect(problems.filter((x) => x.level === 'error')).toEqual([]);
  });
});
