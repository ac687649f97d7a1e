import { describe, expect, it } from 'vitest';
import { classifyRisk, type OperationFacts, RISK_RULES } from '../../src/classify/risk.js';
import { words } from '../../src/openapi/text.js';

function facts(
  over: Partial<OperationFacts> & { method?: OperationFacts['method']; path?: string },
): OperationFacts {
  const path = over.path ?? '/things';
  const literal = path.split('/').filter((s) => s && !/^\{.*\}$/.test(s));
  return {
    method: 'get',
    tags: [],
    pathWords: literal.flatMap(words),
    lastSegmentWords: words(literal[literal.length - 1] ?? ''),
    opWords: over.operationId ? words(over.operationId) : [],
    args: [],
    responseContentTypes: ['application/json'],
    scopes: [],
    dataFields: [],
    hasPagination: true,
    isList: false,
    ...over,
    path,
  };
}

/** For every rule: operations it must flag, and near misses it must not. */
const CASES: Record<
  string,
  { fires: Array<Partial<OperationFacts>>; quiet: Array<Partial<OperationFacts>> }
> = {
  'method-safe': {
    fires: [{ method: 'get' }, { method: 'head' }, { method: 'options' }],
    quiet: [{ method: 'post' }],
  },
  'method-unsafe': {
    fires: [{ method: 'post' }, { method: 'patch' }, { method: 'put' }, { method: 'trace' }],
    quiet: [{ method: 'get' }],
  },
  'method-delete': { fires: [{ method: 'delete' }], quiet: [{ method: 'post' }] },
  'destructive-verb': {
    fires: [
      { method: 'post', operationId: 'cancelWorkflowRun' },
      { method: 'post', path: '/tokens/{id}/revoke' },
      { method: 'get', operationId: 'purgeCache' },
    ],
    quiet: [{ operationId: 'listDeletedItems' }, { path: '/removals-report' }],
  },
  'admin-path': {
    fires: [{ path: '/admin/users' }, { path: '/v1/_internal/stats' }],
    quiet: [{ path: '/administrivia' }, { path: '/users/{admin}' }],
  },
  'admin-operation': {
    fires: [{ operationId: 'enterprise-admin/list-users' }],
    quiet: [{ operationId: 'listBadminton' }],
  },
  'admin-tag': {
    fires: [{ tags: ['Admin'] }, { tags: ['internal-tools'] }],
    quiet: [{ tags: ['administrative-regions'] }],
  },
  'admin-scope': {
    fires: [{ scopes: ['admin:org'] }, { scopes: ['admin.users:write'] }],
    quiet: [{ scopes: ['read:org'] }],
  },
  'credential-path': {
    fires: [
      { path: '/user/keys' },
      { path: '/actions/secrets/{name}' },
      { path: '/v1/ephemeral_keys' },
      { path: '/users/{id}/password' },
    ],
    quiet: [{ path: '/monkeys' }, { path: '/keystrokes' }],
  },
  'credential-operation': {
    fires: [
      { operationId: 'createApiKey' },
      { operationId: 'rotateClientSecret' },
      { operationId: 'getAccessToken' },
    ],
    quiet: [{ operationId: 'getByKey' }, { operationId: 'keyboardLayouts' }],
  },
  'credential-response': {
    fires: [
      {
        dataFields: [{ path: '$.token', class: 'secret', kind: 'token', rule: 'secret-token', reason: 'x' }],
      },
    ],
    quiet: [
      { dataFields: [{ path: '$.email', class: 'pii', kind: 'email', rule: 'pii-email', reason: 'x' }] },
      {
        dataFields: [
          { path: '$.a.b.c.d.secret', class: 'secret', kind: 'token', rule: 'secret-token', reason: 'x' },
        ],
      },
    ],
  },
  'export-words': {
    fires: [
      { path: '/reports/export' },
      { operationId: 'downloadArchive' },
      { path: '/repos/{o}/{r}/tarball/{ref}' },
    ],
    quiet: [{ path: '/exporters-list' }],
  },
  'export-content-type': {
    fires: [
      { responseContentTypes: ['text/csv'] },
      { responseContentTypes: ['application/octet-stream'] },
      { responseContentTypes: ['application/zip'] },
    ],
    quiet: [{ responseContentTypes: ['application/json', 'text/plain'] }],
  },
  'raw-query-argument': {
    fires: [
      { args: [{ name: 'sql', description: '' }] },
      { args: [{ name: 'command', description: 'argv to run' }] },
      { args: [{ name: 'query', description: 'A search query in the Stripe search query language.' }] },
      { args: [{ name: 'raw_sql_text', description: '' }] },
    ],
    quiet: [
      { args: [{ name: 'query', description: 'Words to look for in titles.' }] },
      { args: [{ name: 'code', description: 'country code' }] },
    ],
  },
  'raw-query-path': {
    fires: [{ path: '/db/sql' }, { path: '/graphql' }, { path: '/pods/{name}/exec' }],
    quiet: [{ path: '/sqlite-files/{id}' }],
  },
  'unbounded-page-size': {
    fires: [{ isList: true, pageSize: { arg: 'limit' } }],
    quiet: [
      { isList: true, pageSize: { arg: 'limit', maximum: 100 } },
      { isList: false, pageSize: { arg: 'limit' } },
    ],
  },
  'unbounded-no-pagination': {
    fires: [{ isList: true, hasPagination: false }],
    quiet: [
      { isList: true, hasPagination: true },
      { isList: false, hasPagination: false },
    ],
  },
};

describe('risk classification rules', () => {
  it('has cases for every rule in the table', () => {
    expect(Object.keys(CASES).sort()).toEqual(RISK_RULES.map((r) => r.id).sort());
  });

  for (const rule of RISK_RULES) {
    const c = CASES[rule.id];
    it(`${rule.id} fires on what it describes and stays quiet on near misses`, () => {
      expect(c).toBeDefined();
      for (const f of c!.fires) {
        const reason = rule.test(facts(f));
        expect(reason, JSON.stringify(f)).toBeTypeOf('string');
        expect(reason!.length).toBeGreaterThan(3);
      }
      for (const f of c!.quiet) expect(rule.test(facts(f)), JSON.stringify(f)).toBeUndefined();
    });
  }

  it('turns a destructive GET into a write, not a read', () => {
    const r = classifyRisk(facts({ method: 'get', operationId: 'deleteUser' }));
    expect(r.classes).toContain('write');
    expect(r.classes).toContain('destructive');
    expect(r.classes).not.toContain('read');
  });

  it('classifies a plain GET as read only, with its reason', () => {
    const r = classifyRisk(facts({ method: 'get', operationId: 'getPet', path: '/pets/{id}' }));
    expect(r.classes).toEqual(['read']);
    expect(r.findings[0]).toMatchObject({ rule: 'method-safe', class: 'read' });
  });
});
