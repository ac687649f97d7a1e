import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRecord } from '../../src/model/audit.js';
import type { Catalog } from '../../src/model/catalog.js';
import type { AuthMethod } from '../../src/model/principal.js';
import { Alerts } from '../../src/observe/alerts.js';
import { costOf, createBudget, createSpend } from '../../src/pipeline/budget.js';
import { checkPolicy } from '../../src/policy/check.js';
import { parsePolicy } from '../../src/policy/load.js';
import { budgetName } from '../../src/policy/schema.js';
import { type BudgetStore, createMemoryBudgets, type Restriction } from '../../src/state/budgets.js';
import { catalogOf, jsonOk, minimalSpec, startUpstream } from '../support/helpers.js';
import { codeOf, memoryAudit, pipelineFor, resolvedContext, viewOf } from '../support/pipeline.js';

/** A small API with a read, a write, a destructive call and a bulk delete. */
const SPEC = minimalSpec({
  '/items': {
    get: { operationId: 'listItems', responses: jsonOk({ type: 'array', items: { type: 'object' } }) },
    post: {
      operationId: 'createItem',
      requestBody: {
        content: {
          'application/json': { schema: { type: 'object', properties: { name: { type: 'string' } } } },
        },
      },
      responses: jsonOk(),
    },
  },
  '/items/search': {
    post: {
      operationId: 'searchItems',
      requestBody: {
        content: {
          'application/json': { schema: { type: 'object', properties: { q: { type: 'string' } } } },
        },
      },
      responses: jsonOk(),
    },
  },
  '/items/{id}': {
    delete: {
      operationId: 'deleteItem',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: jsonOk(),
    },
  },
  '/items/delete': {
    post: {
      operationId: 'deleteItems',
      summary: 'Delete several items',
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['ids'],
              properties: { ids: { type: 'array', items: { type: 'string' } } },
            },
          },
        },
      },
      responses: jsonOk(),
    },
  },
});

const POLICY = [
  'version: 1',
  'mode: read-write',
  'budgets:',
  '  - class: destructive',
  '    calls: 2',
  '    perSeconds: 3600',
  '  - name: deleted-records',
  '    match: { name: deleteItems }',
  '    records: 5',
  '    perSeconds: 3600',
  'rules:',
  '  - match: { method: post }',
  '    enabled: true',
  '  - match: { name: "delete*" }',
  '    enabled: true',
  '    confirm: false',
  '    reason: the budget test calls destructive tools without a user',
].join('\n');

let catalog: Catalog;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
beforeAll(async () => {
  catalog = await catalogOf(SPEC);
  upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.method === 'GET' ? '[]' : '{}');
  });
});
afterAll(async () => {
  await upstream?.close();
});

const caller = (id: string) => ({
  id,
  scopes: ['tools:read', 'tools:write', 'tools:delete'],
  via: 'api-key' as AuthMethod,
});

/** The two budget stages on one store, run as the pipeline would (check, then spend); OK or the code. */
function stages(policy = POLICY, store: BudgetStore = createMemoryBudgets()) {
  const view = viewOf(catalog, policy);
  const restricted: Restriction[] = [];
  const o = { store, onRestricted: (r: Restriction) => void restricted.push(r) };
  const [check, spend] = [createBudget(o), createSpend(o)];
  const run = async (who: string, name: string, args: Record<string, unknown> = {}) => {
    const ctx = resolvedContext(view, { name, principal: caller(who), arguments: args });
    ctx.args = args;
    try {
      await check(ctx);
      await spend(ctx);
      return { code: 'OK', ctx };
    } catch (e) {
      return { code: (e as { code: string }).code, ctx, message: (e as Error).message };
    }
  };
  return { run, store, restricted };
}

describe('budget stages', () => {
  it('admits calls under and at the budget, refuses the next, and switches the caller to read-only', async () => {
    const { run, store, restricted } = stages();
    const a = await run('alice', 'deleteItem', { id: '1' });
    expect(a.code).toBe('OK');
    expect(a.ctx.budget).toEqual({
      name: 'destructive-calls',
      class: 'destructive',
      unit: 'calls',
      used: 1,
      limit: 2,
    });
    expect((await run('alice', 'deleteItem', { id: '2' })).code).toBe('OK');
    const over = await run('alice', 'deleteItem', { id: '3' });
    expect(over.code).toBe('BUDGET_EXCEEDED');
    expect(over.message).toMatch(/destructive-calls.*2 of 2 calls per 3600 s/);
    expect(over.ctx.budget).toMatchObject({ name: 'destructive-calls', used: 2, limit: 2 });
    expect(restricted).toHaveLength(1);
    expect(restricted[0]).toMatchObject({
      principal: 'alice',
      budget: 'destructive-calls',
      tool: 'deleteItem',
    });
    expect(await store.used({ name: 'destructive-calls', limit: 2, perSeconds: 3600 }, 'alice')).toBe(2);

    // Read-only for itself: its other writes are refused, its reads still served.
    const write = await run('alice', 'createItem', { body: { name: 'x' } });
    expect(write.code).toBe('CALLER_READ_ONLY');
    expect(write.message).toMatch(/destructive-calls/);
    expect(write.ctx.budget).toMatchObject({ name: 'destructive-calls' });
    expect((await run('alice', 'listItems')).code).toBe('OK');
    // Not for everyone: another caller is unaffected.
    expect((await run('bob', 'deleteItem', { id: '1' })).code).toBe('OK');
    expect((await run('bob', 'createItem', { body: { name: 'y' } })).code).toBe('OK');
    // Still one restriction (the later refusals are CALLER_READ_ONLY, not a second alert).
    expect(restricted).toHaveLength(1);
  });

  it('a read-only caller may still read with GET, but not call a POST the policy treats as a read', async () => {
    const policy = `${POLICY}\n  - match: { name: searchItems }\n    treatAs: read\n    reason: "an RPC read: it only searches"\n`;
    const { run } = stages(policy);
    for (const id of ['1', '2', '3']) await run('alice', 'deleteItem', { id });
    expect((await run('alice', 'listItems')).code).toBe('OK');
    expect((await run('alice', 'searchItems', { body: { q: 'x' } })).code).toBe('CALLER_READ_ONLY');
    expect((await run('bob', 'searchItems', { body: { q: 'x' } })).code).toBe('OK');
  });

  it('an operator lift restores the caller (its window of the budget hit starts again)', async () => {
    const { run, store } = stages();
    for (const id of ['1', '2', '3']) await run('alice', 'deleteItem', { id });
    expect((await run('alice', 'createItem', { body: {} })).code).toBe('CALLER_READ_ONLY');
    expect(await store.lift('alice')).toMatchObject({ budget: 'destructive-calls' });
    expect((await run('alice', 'createItem', { body: {} })).code).toBe('OK');
    expect((await run('alice', 'deleteItem', { id: '4' })).code).toBe('OK');
  });

  it('counts the records of a bulk call by the length of its array argument', async () => {
    const { run } = stages();
    const ok = await run('alice', 'deleteItems', { body: { ids: ['a', 'b', 'c'] } });
    expect(ok.code).toBe('OK');
    expect(ok.ctx.budget).toMatchObject({ name: 'deleted-records', used: 3, limit: 5 });
    const over = await run('alice', 'deleteItems', { body: { ids: ['d', 'e', 'f'] } });
    expect(over.code).toBe('BUDGET_EXCEEDED');
    expect(over.message).toMatch(/deleted-records.*3 of 5 records.*this call counts 3/);
  });

  it('refuses what a racing call took between check and spend, giving back what it counted', async () => {
    const store = createMemoryBudgets();
    // The records budget first, so that the call has counted it when the calls budget refuses.
    const policy = POLICY.replace('  - class: destructive\n    calls: 2\n    perSeconds: 3600\n', '').replace(
      '    perSeconds: 3600\nrules:',
      '    perSeconds: 3600\n  - class: destructive\n    calls: 2\n    perSeconds: 3600\nrules:',
    );
    const { run } = stages(policy, store);
    const w = { name: 'destructive-calls', limit: 2, perSeconds: 3600 };
    const view = viewOf(catalog, policy);
    expect(view.get('deleteItems')!.decision.budgets?.map((b) => b.name)).toEqual([
      'deleted-records',
      'destructive-calls',
    ]);
    const ctx = resolvedContext(view, { name: 'deleteItems', principal: caller('carol') });
    ctx.args = { body: { ids: ['a'] } };
    const o = { store };
    await createBudget(o)(ctx);
    // Two calls on other instances spend the last units after this one was checked.
    await store.spend(w, 'carol', 2);
    await expect(createSpend(o)(ctx)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    // What it had counted in deleted-records is given back.
    expect(await store.used({ name: 'deleted-records', limit: 5, perSeconds: 3600 }, 'carol')).toBe(0);
    expect((await run('carol', 'createItem', { body: {} })).code).toBe('CALLER_READ_ONLY');
  });

  it('fails closed: a store that cannot answer refuses budgeted calls and writes', async () => {
    const down = () => Promise.reject(Object.assign(new Error('down'), { code: 'STATE_UNAVAILABLE' }));
    const store: BudgetStore = {
      used: down,
      spend: down,
      refund: down,
      restriction: down,
      restrict: down,
      lift: down,
      list: down,
    };
    const { run } = stages(POLICY, store);
    expect((await run('alice', 'deleteItem', { id: '1' })).code).toBe('STATE_UNAVAILABLE');
    expect((await run('alice', 'createItem', { body: {} })).code).toBe('STATE_UNAVAILABLE');
    // A read no budget counts needs no state.
    expect((await run('alice', 'listItems')).code).toBe('OK');
  });

  it('costs 1 per call, or the longest array for records', () => {
    expect(costOf({ unit: 'calls' }, { body: { ids: [1, 2, 3] } })).toBe(1);
    expect(costOf({ unit: 'records' }, { id: 'x' })).toBe(1);
    expect(costOf({ unit: 'records' }, { ids: [1, 2] })).toBe(2);
    expect(costOf({ unit: 'records' }, { body: [1, 2, 3, 4] })).toBe(4);
    expect(costOf({ unit: 'records' }, { body: { ids: [1, 2, 3], tags: [1] } })).toBe(3);
    expect(costOf({ unit: 'records' }, { body: { ids: [] } })).toBe(1);
    // However deep the list sits, and ids written as one comma-separated string.
    const many = Array.from({ length: 40 }, (_, i) => i);
    expect(costOf({ unit: 'records' }, { body: { data: { records: many } } })).toBe(40);
    expect(costOf({ unit: 'records' }, { body: [{ ids: many }] })).toBe(40);
    expect(costOf({ unit: 'records' }, { ids: 'a,b,c,d,e,f' })).toBe(6);
  });
});

describe('budget policy', () => {
  it('selects tools by class and match, and explains it', () => {
    const view = viewOf(catalog, POLICY);
    expect(view.get('deleteItem')!.decision.budgets?.map((b) => b.name)).toEqual(['destructive-calls']);
    expect(view.get('listItems')!.decision.budgets).toBeUndefined();
    expect(view.get('createItem')!.decision.budgets).toBeUndefined();
    const steps = view.get('deleteItem')!.decision.steps.map((s) => `${s.by}: ${s.what}`);
    expect(steps.some((s) => /budgets\[0\].*budget destructive-calls: 2 calls per 3600 s/.test(s))).toBe(
      true,
    );
  });

  it('a budget without class or match counts every tool', () => {
    const view = viewOf(catalog, 'version: 1\nbudgets:\n  - calls: 100\n    perSeconds: 60\n');
    expect(view.get('listItems')!.decision.budgets).toEqual([
      { name: 'all-calls', unit: 'calls', limit: 100, perSeconds: 60 },
    ]);
  });

  it('refuses a budget with both or neither unit, and two budgets with one name', () => {
    expect(() =>
      parsePolicy('version: 1\nbudgets:\n  - calls: 1\n    records: 2\n    perSeconds: 60\n', 'p.yaml'),
    ).toThrow(/exactly one of calls, records/);
    expect(() => parsePolicy('version: 1\nbudgets:\n  - perSeconds: 60\n', 'p.yaml')).toThrow(
      /exactly one of calls, records/,
    );
    expect(() =>
      parsePolicy(
        'version: 1\nbudgets:\n  - { class: write, calls: 1, perSeconds: 60 }\n  - { class: write, calls: 5, perSeconds: 3600 }\n',
        'p.yaml',
      ),
    ).toThrow(/both named "write-calls"/);
  });
});

describe('budget alert', () => {
  const hit: Restriction = {
    principal: 'key:alice',
    budget: 'destructive-calls',
    class: 'destructive',
    unit: 'calls',
    used: 2,
    limit: 2,
    perSeconds: 3600,
    tool: 'deleteItem',
    callId: 'c1',
    since: 0,
  };
  const fired = (yaml: string) => {
    const out: string[] = [];
    const config = parsePolicy(`version: 1\n${yaml}`, 'p.yaml').doc.alerts;
    const alerts = new Alerts({
      config,
      logger: pino({ level: 'silent' }),
      onFire: (a) => out.push(a.message),
    });
    alerts.budgetExceeded(hit);
    alerts.budgetExceeded({ ...hit, principal: 'key:bob' });
    return out;
  };
  it('fires once per restriction, naming the caller and the budget, unless turned off', () => {
    expect(fired('')).toEqual([
      'key:alice hit the budget "destructive-calls" (2 calls per 3600 s) calling deleteItem: read-only until an operator lifts it',
      'key:bob hit the budget "destructive-calls" (2 calls per 3600 s) calling deleteItem: read-only until an operator lifts it',
    ]);
    expect(fired('alerts: { budgetExceeded: false }\n')).toEqual([]);
  });
});

describe('docs/budgets.md', () => {
  it('its example is valid policy, with the default names it promises', () => {
    const md = readFileSync(new URL('../../docs/budgets.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(`version: 1\n${yaml}`, 'docs/budgets.md');
    expect(doc.budgets!.map(budgetName)).toEqual(['destructive-calls', 'deleted-customers', 'write-calls']);
  });
});

describe('budget policy check', () => {
  const check = (yaml: string) =>
    checkPolicy(catalog, parsePolicy(yaml, 'p.yaml')).map((p) => `${p.level} ${p.line}: ${p.message}`);
  it('refuses a misspelt tool name and warns of a budget that counts no tool', () => {
    // Only the taint guard's default (park) with no admin to approve, in this read-write policy.
    expect(check(POLICY)).toEqual([
      'warning undefined: taint: mode park waits for an operator, and no admin is configured to approve: set admin (and serve --admin-port), or taint.mode: refuse',
    ]);
    expect(
      check(
        'version: 1\nbudgets:\n  - { name: one, match: { name: deleteItem }, calls: 1, perSeconds: 60 }\n  - { name: two, match: { name: deleteIten }, calls: 1, perSeconds: 60 }\n  - { class: admin, calls: 1, perSeconds: 60 }\n',
      ),
    ).toEqual([
      'error 4: budgets[1]: no tool named "deleteIten" (did you mean "deleteItem"?)',
      'warning 5: budgets[2]: counts no tool (no tool of class admin)',
    ]);
  });
});

describe('budget in the whole pipeline', () => {
  it('a caller over budget is refused before confirm asks anyone, and the audit says which budget', async () => {
    const policy = POLICY.replace(
      '    confirm: false\n    reason: the budget test calls destructive tools without a user',
      '',
    ).replace(
      '  - match: { name: "delete*" }\n    enabled: true\n',
      '  - match: { name: "delete*" }\n    enabled: true\n    approval: operator\n',
    );
    const audit = memoryAudit();
    const p = pipelineFor(catalog, { policy, origin: upstream.origin, audit });
    const principal = caller('dave');
    // Parked for an operator: not sent, so not counted.
    for (let i = 0; i < 3; i++) {
      const r = await p.call({ name: 'deleteItem', arguments: { id: String(i) }, principal });
      expect(codeOf(r)).toBe('APPROVAL_PENDING');
    }
    const calls = audit.records.filter((r: AnyRecord) => r.kind === 'call');
    expect(calls.every((r) => (r as { budget?: { used: number } }).budget?.used === 0)).toBe(true);
    expect(upstream.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
  });

  it('counts only calls that went out, and audits the budget with the call', async () => {
    const audit = memoryAudit();
    const p = pipelineFor(catalog, { policy: POLICY, origin: upstream.origin, audit });
    const principal = caller('erin');
    const before = upstream.requests.length;
    const codes = [];
    for (let i = 0; i < 3; i++)
      codes.push(codeOf(await p.call({ name: 'deleteItem', arguments: { id: `e${i}` }, principal })));
    expect(codes).toEqual(['OK', 'OK', 'BUDGET_EXCEEDED']);
    expect(upstream.requests.length - before).toBe(2);
    // An invalid call is refused before the budget: it costs nothing.
    expect(codeOf(await p.call({ name: 'createItem', arguments: { nope: 1 }, principal }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(await p.call({ name: 'createItem', arguments: { body: {} }, principal }))).toBe(
      'CALLER_READ_ONLY',
    );
    expect(codeOf(await p.call({ name: 'listItems', arguments: {}, principal }))).toBe('OK');
    const calls = audit.records.filter((r: AnyRecord) => r.kind === 'call') as unknown as Array<
      Record<string, unknown>
    >;
    expect(calls.map((r) => [r.code ?? 'OK', r.budget && (r.budget as { used: number }).used])).toEqual([
      ['OK', 1],
      ['OK', 2],
      ['BUDGET_EXCEEDED', 2],
      ['INVALID_ARGUMENT', undefined],
      ['CALLER_READ_ONLY', 2],
      ['OK', undefined],
    ]);
    expect(calls[2]).toMatchObject({ decision: 'denied', budget: { name: 'destructive-calls', limit: 2 } });
  });
});

describe('budget stages without a promise per call', () => {
  it('a safe read with no budget asks the store nothing and returns at once; a write still checks', async () => {
    const asked: string[] = [];
    const store = createMemoryBudgets();
    const spy: BudgetStore = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function'
          ? (...a: unknown[]) => {
              asked.push(String(prop));
              return v.apply(target, a);
            }
          : v;
      },
    });
    const view = viewOf(catalog, 'version: 1\n');
    const o = { store: spy };
    const read = resolvedContext(view, { name: 'listItems', principal: caller('dora') });
    read.args = {};
    expect(createBudget(o)(read)).toBeUndefined();
    expect(createSpend(o)(read)).toBeUndefined();
    expect(asked).toEqual([]);
    const write = resolvedContext(view, { name: 'createItem', principal: caller('dora') });
    write.args = {};
    const pending = createBudget(o)(write);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(asked).toContain('restriction');
  });
});
