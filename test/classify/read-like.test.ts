import { describe, expect, it } from 'vitest';
import { readLikeOf } from '../../src/classify/read-like.js';
import { classifyRisk } from '../../src/classify/risk.js';
import type { HttpMethod } from '../../src/model/catalog.js';
import { words } from '../../src/openapi/text.js';

function op(path: string, operationId?: string, method: HttpMethod = 'post') {
  const literal = path.split('/').filter((s) => s && !/^\{.*\}$/.test(s));
  return {
    method,
    path,
    pathWords: literal.flatMap(words),
    segmentWords: literal.map(words),
    opWords: operationId ? words(operationId) : [],
    ...(operationId !== undefined ? { operationId } : {}),
  };
}

describe('read-like POSTs', () => {
  it.each([
    ['/accounts/get', undefined, 'get'],
    ['/api/v1/accounts/list', undefined, 'list'],
    ['/users.list', undefined, 'list'],
    ['/users', 'searchUsers', 'search'],
    ['/rpc', 'get_account_balance', 'get'],
    ['/rpc', 'accounts_list_all', 'list'],
    ['/rpc', 'accountsGet', 'get'],
    ['/search/users', undefined, 'search'],
    ['/vector_stores/{id}/search', undefined, 'search'],
    ['/providers/checkNameAvailability', undefined, 'check'],
    ['/registries/validate-name', undefined, 'validate'],
    ['/invoices/preview', undefined, 'preview'],
    ['/transfers/list', undefined, 'list'],
    ['/accounts/get', 'PostAccountsGet', 'get'],
  ])('POST %s (%s) is read-like by "%s"', (path, id, verb) => {
    const r = readLikeOf(op(path, id));
    expect(r?.verb).toBe(verb);
    expect(r?.reason).toContain(`"${verb}"`);
  });

  it.each([
    ['/payments/create', undefined],
    ['/messages/send', undefined],
    ['/users', 'getOrCreateUser'],
    ['/accounts/get-and-update', undefined],
    ['/lists/add', undefined],
    ['/chat.postMessage', undefined],
    ['/bookings/{id}/check-in', undefined],
    ['/bookings/checkIn', undefined],
    ['/radar/value_list_items', 'PostRadarValueListItems'],
    ['/radar/value_lists/{id}', 'PostRadarValueListsValueList'],
    ['/check-suites/{id}/rerequest', 'checks_rerequest-suite'],
    ['/reports/export', undefined],
    ['/accounts', 'createAccount'],
    ['/accounts/get', 'getAccountAndTransfer'],
  ])('POST %s (%s) is not read-like', (path, id) => {
    expect(readLikeOf(op(path, id))).toBeUndefined();
  });

  it('only POSTs are considered', () => {
    for (const m of ['get', 'put', 'patch', 'delete'] as const)
      expect(readLikeOf(op('/accounts/get', undefined, m))).toBeUndefined();
  });

  it('is recorded on the classification without changing the risk class', () => {
    const path = '/accounts/get';
    const r = classifyRisk({
      method: 'post',
      path,
      tags: [],
      pathWords: ['accounts', 'get'],
      lastSegmentWords: ['get'],
      opWords: [],
      args: [],
      responseContentTypes: ['application/json'],
      scopes: [],
      dataFields: [],
      hasPagination: false,
      isList: false,
    });
    expect(r.classes).toEqual(['write']);
    expect(r.readLike).toMatchObject({ verb: 'get' });
    const w = classifyRisk({
      method: 'post',
      path: '/payments/create',
      tags: [],
      pathWords: ['payments', 'create'],
      lastSegmentWords: ['create'],
      opWords: [],
      args: [],
      responseContentTypes: ['application/json'],
      scopes: [],
      dataFields: [],
      hasPagination: false,
      isList: false,
    });
    expect(w.readLike).toBeUndefined();
  });
});
