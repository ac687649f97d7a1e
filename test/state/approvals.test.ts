import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest, ApprovalStore } from '../../src/model/approval.js';
import { createMemoryApprovals } from '../../src/state/approvals.js';
import { createRedisApprovals } from '../../src/state/redis-approvals.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const T0 = Date.parse('2030-01-01T00:00:00Z');

const clients: Redis[] = [];
afterAll(async () => {
  for (const c of clients) c.disconnect();
});

/** A store of the kind, with its own namespace; `again()` opens another instance on the same data. */
type Opened = { store: ApprovalStore; again: () => ApprovalStore };
const KINDS: Array<[string, () => Opened]> = [
  [
    'memory',
    () => {
      const store = createMemoryApprovals();
      return { store, again: () => store };
    },
  ],
  [
    'redis',
    () => {
      const prefix = `apr-test-${randomBytes(6).toString('hex')}`;
      const open = () => {
        const client = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
        clients.push(client);
        return createRedisApprovals({ client, prefix });
      };
      return { store: open(), again: open };
    },
  ],
];

let n = 0;
function request(key: string, o: Partial<ApprovalRequest> = {}, at = T0): ApprovalRequest {
  return {
    id: `apr_t${++n}_${randomBytes(4).toString('hex')}`,
    binding: {
      tool: 'deleteThing',
      argsDigest: key,
      principal: 'key:alice',
      target: 'DELETE x',
      policyVersion: 1,
      policy: 'sha-of-policy',
    },
    key,
    status: 'pending',
    preview: { id: 'c_1' },
    method: 'DELETE',
    path: '/things/{id}',
    risk: ['destructive'],
    dataClasses: [],
    approversNeeded: 1,
    decisions: [],
    requestedAt: new Date(at).toISOString(),
    expiresAt: new Date(at + 60_000).toISOString(),
    ...o,
  };
}
const approve = (operator: string, at = T0 + 1000) => ({
  operator,
  verdict: 'approve' as const,
  reason: 'looks right',
  at: new Date(at).toISOString(),
});
const deny = (operator: string) => ({
  operator,
  verdict: 'deny' as const,
  reason: 'no way',
  at: '2030-01-01T00:00:01.000Z',
});
const rules = (needed = 1, now = T0 + 1000) => ({ needed, runUntil: now + 30_000, now });

describe.each(KINDS)('approval store (%s)', (_kind, open) => {
  it('parks a new request, then reports the same one while it waits', async () => {
    const { store } = open();
    const key = `k${n}`;
    const first = await store.admit(key, request(key), T0);
    expect(first.outcome).toBe('created');
    expect(first.request).toMatchObject({ status: 'pending', decisions: [], preview: { id: 'c_1' } });
    const again = await store.admit(key, request(key), T0 + 10);
    expect(again).toMatchObject({ outcome: 'pending', request: { id: first.request.id } });
    expect(await store.get(first.request.id)).toEqual(first.request);
  });

  it('runs an approved request exactly once; the next identical call parks a new one', async () => {
    const { store } = open();
    const key = `k${n}`;
    const { request: r } = await store.admit(key, request(key), T0);
    const d = await store.decide(r.id, approve('ops-1'), rules());
    expect(d).toMatchObject({
      ok: true,
      request: { status: 'approved', expiresAt: new Date(T0 + 31_000).toISOString() },
    });
    const run = await store.admit(key, request(key), T0 + 2000);
    expect(run).toMatchObject({ outcome: 'run', request: { id: r.id, status: 'executed' } });
    const next = await store.admit(key, request(key), T0 + 3000);
    expect(next.outcome).toBe('created');
    expect(next.request.id).not.toBe(r.id);
  });

  it('lets exactly one of many concurrent calls (on several instances) run an approval', async () => {
    const { store, again } = open();
    const key = `k${n}`;
    const { request: r } = await store.admit(key, request(key), T0);
    await store.decide(r.id, approve('ops-1'), rules());
    const instances = [store, again(), again()];
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => instances[i % 3]!.admit(key, request(key), T0 + 2000)),
    );
    expect(results.filter((x) => x.outcome === 'run')).toHaveLength(1);
    // The others found nothing approved: one of them parked a new request, the rest wait on it.
    const created = results.filter((x) => x.outcome === 'created');
    expect(created).toHaveLength(1);
    expect(
      results.filter((x) => x.outcome === 'pending').every((x) => x.request.id === created[0]!.request.id),
    ).toBe(true);
  });

  it('reports a denial once, then starts anew', async () => {
    const { store } = open();
    const key = `k${n}`;
    const { request: r } = await store.admit(key, request(key), T0);
    expect(await store.decide(r.id, deny('ops-1'), rules())).toMatchObject({
      ok: true,
      request: { status: 'denied' },
    });
    const told = await store.admit(key, request(key), T0 + 2000);
    expect(told).toMatchObject({
      outcome: 'denied',
      request: { id: r.id, decisions: [{ operator: 'ops-1', reason: 'no way' }] },
    });
    expect((await store.admit(key, request(key), T0 + 3000)).outcome).toBe('created');
  });

  it('refuses decisions on what is not pending, unknown ids and a second approval by the same operator', async () => {
    const { store } = open();
    const key = `k${n}`;
    expect(await store.decide('apr_nope', approve('ops-1'), rules())).toEqual({
      ok: false,
      why: 'not-found',
    });
    const { request: r } = await store.admit(key, request(key, { approversNeeded: 2 }), T0);
    expect(await store.decide(r.id, approve('ops-1'), rules(2))).toMatchObject({
      ok: true,
      request: { status: 'pending' },
    });
    expect(await store.decide(r.id, approve('ops-1'), rules(2))).toMatchObject({
      ok: false,
      why: 'same-operator',
    });
    // Still one approval short: a call waits.
    expect((await store.admit(key, request(key), T0 + 1500)).outcome).toBe('pending');
    expect(await store.decide(r.id, approve('ops-2'), rules(2))).toMatchObject({
      ok: true,
      request: { status: 'approved', decisions: [{ operator: 'ops-1' }, { operator: 'ops-2' }] },
    });
    expect(await store.decide(r.id, deny('ops-3'), rules(2))).toMatchObject({
      ok: false,
      why: 'not-pending',
    });
  });

  it('lets two decisions race without both landing on a one-approver request', async () => {
    const { store, again } = open();
    const key = `k${n}`;
    const { request: r } = await store.admit(key, request(key), T0);
    const other = again();
    const [a, b] = await Promise.all([
      store.decide(r.id, approve('ops-1'), rules()),
      other.decide(r.id, deny('ops-2'), rules()),
    ]);
    expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
    expect((await store.get(r.id))!.decisions).toHaveLength(1);
  });

  it('expires what nobody decided or used in time, each exactly once', async () => {
    const { store, again } = open();
    const k1 = `k${n}a`;
    const k2 = `k${n}b`;
    const { request: waiting } = await store.admit(k1, request(k1), T0);
    const { request: approved } = await store.admit(k2, request(k2), T0);
    await store.decide(approved.id, approve('ops-1'), rules());
    expect(await store.expire(T0 + 30_000)).toEqual([]);
    // Instances sweep at once: each request is moved (and so audited) by one of them.
    const sweeps = await Promise.all([
      store.expire(T0 + 61_000),
      again().expire(T0 + 61_000),
      again().expire(T0 + 61_000),
    ]);
    const moved = sweeps.flat().map((r) => r.id);
    // The approved one had 30 s to run from its approval (T0+1 s): both are past their time.
    expect(moved.sort()).toEqual([waiting.id, approved.id].sort());
    expect((await store.get(approved.id))!.status).toBe('expired');
    expect(await again().expire(T0 + 120_000)).toEqual([]);
    // A decision after expiry is refused; a call after expiry learns it and parks anew.
    expect(await store.decide(waiting.id, approve('ops-1'), rules(1, T0 + 62_000))).toMatchObject({
      ok: false,
      why: 'not-pending',
    });
    const anew = await store.admit(k1, request(k1, {}, T0 + 62_000), T0 + 62_000);
    expect(anew).toMatchObject({
      outcome: 'created',
      expired: { id: waiting.id, status: 'expired' },
      expiredNow: false,
    });
  });

  it('notices an expiry the sweeper has not reached yet, at the call or the decision', async () => {
    const { store } = open();
    const k1 = `k${n}a`;
    const k2 = `k${n}b`;
    const { request: a } = await store.admit(k1, request(k1), T0);
    const { request: b } = await store.admit(k2, request(k2), T0);
    const anew = await store.admit(k1, request(k1, {}, T0 + 61_000), T0 + 61_000);
    expect(anew).toMatchObject({ outcome: 'created', expired: { id: a.id }, expiredNow: true });
    expect(await store.decide(b.id, approve('ops-1'), rules(1, T0 + 61_000))).toMatchObject({
      ok: false,
      why: 'not-pending',
      expiredNow: true,
      request: { status: 'expired' },
    });
    expect(await store.expire(T0 + 70_000)).toEqual([]);
  });

  it('lists newest first, by status', async () => {
    const { store } = open();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const key = `k${n}-${i}`;
      ids.push((await store.admit(key, request(key, {}, T0 + i), T0 + i)).request.id);
    }
    await store.decide(ids[1]!, deny('ops-1'), rules());
    const all = (await store.list({ limit: 1000 })).map((r) => r.id);
    // Other tests' requests share the memory store only when it is the same object: filter to ours.
    expect(all.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
    const pending = (await store.list({ status: 'pending', limit: 1000 })).map((r) => r.id);
    expect(pending.filter((id) => ids.includes(id))).toEqual([ids[2], ids[0]]);
    expect(await store.list({ status: 'denied' })).toEqual([expect.objectContaining({ id: ids[1] })]);
    expect(await store.list({ limit: 1 })).toHaveLength(1);
  });

  it('hands out copies: changing one changes nothing stored', async () => {
    const { store } = open();
    const key = `k${n}`;
    const { request: r } = await store.admit(key, request(key), T0);
    r.status = 'approved';
    (r.preview as Record<string, unknown>).id = 'c_9';
    expect(await store.get(r.id)).toMatchObject({ status: 'pending', preview: { id: 'c_1' } });
  });
});

describe('approval store (redis) when Redis is unreachable', () => {
  it('fails closed with STATE_UNAVAILABLE', async () => {
    const client = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    clients.push(client);
    const store = createRedisApprovals({ client, prefix: 'apr-down' });
    await expect(store.admit('k', request('k'), T0)).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    await expect(store.decide('apr_x', approve('ops-1'), rules())).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
    });
    await expect(store.list()).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });
});
