import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import {
  createMemoryTaint,
  createRedisTaint,
  MARKS_PER_KEY,
  type TaintMark,
  type TaintStore,
  taintKey,
} from '../../src/state/taint.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const mark = (callId: string, at: number, classes = ['pii']): TaintMark => ({
  callId,
  tool: 'getCustomer',
  at,
  classes,
});

let redis: Redis;
beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
afterAll(() => {
  redis.disconnect();
});

/** The same contract for both stores, each with its own clock. */
const stores: Array<[string, (now: () => number) => TaintStore]> = [
  ['memory', (now) => createMemoryTaint({ now })],
  [
    'redis',
    (now) => createRedisTaint({ client: redis, prefix: `test-taint-${randomBytes(6).toString('hex')}`, now }),
  ],
];

describe.each(stores)('taint store (%s)', (_name, make) => {
  it('keeps a mark for its window, newest first, and forgets it after', async () => {
    let clock = T0;
    const store = make(() => clock);
    const key = taintKey('key:alice', undefined);
    expect(await store.marks(key)).toEqual([]);
    await store.mark(key, mark('c1', clock), 60_000);
    clock += 1000;
    await store.mark(key, mark('c2', clock, ['untrusted']), 60_000);
    expect((await store.marks(key)).map((m) => m.callId)).toEqual(['c2', 'c1']);
    expect((await store.marks(key))[0]).toEqual(mark('c2', T0 + 1000, ['untrusted']));
    clock = T0 + 60_500;
    expect((await store.marks(key)).map((m) => m.callId)).toEqual(['c2']);
    clock = T0 + 61_000;
    expect(await store.marks(key)).toEqual([]);
  });

  it('keeps callers apart: another principal, another session', async () => {
    const store = make(() => T0);
    await store.mark(taintKey('key:alice', 's1'), mark('c1', T0), 60_000);
    expect(await store.marks(taintKey('key:alice', 's1'))).toHaveLength(1);
    expect(await store.marks(taintKey('key:alice', 's2'))).toEqual([]);
    expect(await store.marks(taintKey('key:alice', undefined))).toEqual([]);
    expect(await store.marks(taintKey('key:bob', 's1'))).toEqual([]);
  });

  it(`keeps at most ${MARKS_PER_KEY} marks per caller, the newest`, async () => {
    let clock = T0;
    const store = make(() => clock);
    const key = taintKey('key:busy', undefined);
    for (let i = 0; i < MARKS_PER_KEY + 5; i++) {
      await store.mark(key, mark(`c${i}`, clock), 60_000);
      clock += 1;
    }
    const marks = await store.marks(key);
    expect(marks).toHaveLength(MARKS_PER_KEY);
    expect(marks[0]!.callId).toBe(`c${MARKS_PER_KEY + 4}`);
    expect(marks.at(-1)!.callId).toBe('c5');
  });
});

describe('taint key', () => {
  it('is a hash: no caller-chosen byte reaches a key, and principal and session cannot be shifted', () => {
    expect(taintKey('key:a', 'b')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(taintKey('key:a', 'b')).not.toBe(taintKey('key:ab', undefined));
    expect(taintKey('key:a', undefined)).not.toBe(taintKey('key:a', 'x'));
  });
});

describe('Redis taint store', () => {
  it('shares marks between instances (two clients) and sets the key to expire with the window', async () => {
    const prefix = `test-taint-${randomBytes(6).toString('hex')}`;
    const other = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await other.connect();
    try {
      const a = createRedisTaint({ client: redis, prefix });
      const b = createRedisTaint({ client: other, prefix });
      const key = taintKey('key:alice', undefined);
      await a.mark(key, mark('c1', Date.now()), 120_000);
      expect((await b.marks(key)).map((m) => m.callId)).toEqual(['c1']);
      const ttl = await redis.pttl(`${prefix}:taint:${key}`);
      expect(ttl).toBeGreaterThan(100_000);
      expect(ttl).toBeLessThanOrEqual(120_000);
      // A shorter window later never shortens the key's life below a longer mark's.
      await a.mark(key, mark('c2', Date.now()), 10_000);
      expect(await redis.pttl(`${prefix}:taint:${key}`)).toBeGreaterThan(100_000);
    } finally {
      other.disconnect();
    }
  });

  it('reads a member it did not write as a taint of unknown origin (fails closed)', async () => {
    const prefix = `test-taint-${randomBytes(6).toString('hex')}`;
    const store = createRedisTaint({ client: redis, prefix });
    const key = taintKey('key:alice', undefined);
    await redis.zadd(`${prefix}:taint:${key}`, Date.now() + 60_000, 'not json');
    await redis.pexpire(`${prefix}:taint:${key}`, 60_000);
    expect(await store.marks(key)).toEqual([
      { callId: 'unknown', tool: 'unknown', at: 0, classes: ['unknown'] },
    ]);
  });

  it('fails closed when Redis cannot be reached: STATE_UNAVAILABLE on read and on write', async () => {
    const down = new Redis('redis://127.0.0.1:9', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    down.on('error', () => {});
    const store = createRedisTaint({ client: down, prefix: 'test-taint-down' });
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'OK';
      } catch (e) {
        return isWardenError(e) ? e.code : String(e);
      }
    };
    expect(await codeOf(store.marks('k'))).toBe('STATE_UNAVAILABLE');
    expect(await codeOf(store.mark('k', mark('c1', Date.now()), 1000))).toBe('STATE_UNAVAILABLE');
    down.disconnect();
  });
});

describe('memory taint store', () => {
  it('refuses to record a new caller when full of live ones, rather than forget a taint', async () => {
    let clock = T0;
    const store = createMemoryTaint({ maxKeys: 2, now: () => clock });
    await store.mark('a', mark('c1', clock), 1000);
    await store.mark('b', mark('c2', clock), 1000);
    await expect(store.mark('c', mark('c3', clock), 1000)).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
    });
    // An existing caller can still be marked; once the others expire, a new one fits.
    await store.mark('a', mark('c4', clock), 5000);
    clock += 2000;
    await store.mark('c', mark('c5', clock), 1000);
    expect((await store.marks('a')).map((m) => m.callId)).toEqual(['c4']);
    expect(await store.marks('b')).toEqual([]);
  });
});
