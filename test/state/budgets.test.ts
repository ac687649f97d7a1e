import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BudgetStore,
  createMemoryBudgets,
  createRedisBudgets,
  type Restriction,
} from '../../src/state/budgets.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';

const clients: Redis[] = [];
afterAll(() => {
  for (const c of clients) c.disconnect();
});

const W = { name: 'destructive-calls', limit: 3, perSeconds: 3600 };
const restriction = (principal: string, since = 1_000): Restriction => ({
  principal,
  budget: W.name,
  class: 'destructive',
  unit: 'calls',
  used: 3,
  limit: 3,
  perSeconds: W.perSeconds,
  tool: 'deleteItem',
  callId: 'c1',
  since,
});

/** The same behaviour, in memory and in a real Redis (a fresh prefix per store, so tests never meet). */
const stores: Array<[string, () => BudgetStore]> = [
  ['memory', () => createMemoryBudgets()],
  [
    'redis',
    () => {
      const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      clients.push(client);
      return createRedisBudgets({ client, prefix: `test-budgets-${randomBytes(4).toString('hex')}` });
    },
  ],
];

describe.each(stores)('budget store (%s)', (_, open) => {
  it('counts units per principal, and refuses (adding nothing) what would pass the limit', async () => {
    const s = open();
    expect(await s.used(W, 'alice')).toBe(0);
    expect(await s.spend(W, 'alice', 1)).toEqual({ ok: true, used: 1 });
    expect(await s.spend(W, 'alice', 2)).toEqual({ ok: true, used: 3 });
    expect(await s.spend(W, 'alice', 1)).toEqual({ ok: false, used: 3 });
    expect(await s.used(W, 'alice')).toBe(3);
    // Another caller has its own window.
    expect(await s.spend(W, 'bob', 1)).toEqual({ ok: true, used: 1 });
  });

  it('refuses a bulk cost larger than what is left, and refunds', async () => {
    const s = open();
    const records = { name: 'deleted-records', limit: 10, perSeconds: 60 };
    expect((await s.spend(records, 'alice', 8)).ok).toBe(true);
    expect(await s.spend(records, 'alice', 3)).toEqual({ ok: false, used: 8 });
    await s.refund(records, 'alice', 8);
    expect(await s.used(records, 'alice')).toBe(0);
  });

  it('shares one window between two limits of the same budget (a raised limit keeps the count)', async () => {
    const s = open();
    await s.spend(W, 'alice', 3);
    expect(await s.used({ ...W, limit: 5 }, 'alice')).toBe(3);
    expect((await s.spend({ ...W, limit: 5 }, 'alice', 2)).ok).toBe(true);
  });

  it('restricts once, lists, and lifts (emptying the window of the budget hit)', async () => {
    const s = open();
    await s.spend(W, 'alice', 3);
    expect(await s.restriction('alice')).toBeUndefined();
    expect(await s.restrict(restriction('alice', 2_000))).toBe(true);
    expect(await s.restrict(restriction('alice', 3_000))).toBe(false);
    expect(await s.restrict(restriction('bob', 1_000))).toBe(true);
    expect((await s.restriction('alice'))?.since).toBe(2_000);
    expect((await s.list()).map((r) => r.principal)).toEqual(['bob', 'alice']);
    const lifted = await s.lift('alice');
    expect(lifted).toMatchObject({ principal: 'alice', budget: W.name, used: 3 });
    expect(await s.restriction('alice')).toBeUndefined();
    expect(await s.used(W, 'alice')).toBe(0);
    expect(await s.lift('alice')).toBeUndefined();
    expect((await s.list()).map((r) => r.principal)).toEqual(['bob']);
  });
});

describe('budget store (redis): shared and fail-closed', () => {
  it('two stores on one prefix (two instances) share counters and restrictions', async () => {
    const prefix = `test-budgets-${randomBytes(4).toString('hex')}`;
    const [c1, c2] = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
    clients.push(c1, c2);
    const a = createRedisBudgets({ client: c1, prefix });
    const b = createRedisBudgets({ client: c2, prefix });
    await a.spend(W, 'alice', 2);
    expect(await b.spend(W, 'alice', 1)).toEqual({ ok: true, used: 3 });
    expect((await a.spend(W, 'alice', 1)).ok).toBe(false);
    expect(await a.restrict(restriction('alice'))).toBe(true);
    expect(await b.restrict(restriction('alice'))).toBe(false);
    expect(await b.restriction('alice')).toMatchObject({ budget: W.name });
    await b.lift('alice');
    expect(await a.restriction('alice')).toBeUndefined();
  });

  it('a stored restriction that does not parse still restricts', async () => {
    const prefix = `test-budgets-${randomBytes(4).toString('hex')}`;
    const client = new Redis(REDIS_URL);
    clients.push(client);
    await client.hset(`${prefix}:budget:restricted`, 'mallory', 'not json');
    const s = createRedisBudgets({ client, prefix });
    expect(await s.restriction('mallory')).toMatchObject({ principal: 'mallory', budget: 'unknown' });
  });

  it('answers STATE_UNAVAILABLE when Redis cannot be reached', async () => {
    const client = new Redis('redis://127.0.0.1:9', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    clients.push(client);
    const s = createRedisBudgets({ client, prefix: 'test-budgets-down' });
    for (const op of [
      () => s.used(W, 'alice'),
      () => s.spend(W, 'alice', 1),
      () => s.restriction('alice'),
      () => s.restrict(restriction('alice')),
      () => s.list(),
    ])
      await expect(op()).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });
});
