import type { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';
import type { RateLimiterMemory, RateLimiterRedis } from '../lib/rate-limiters.js';

/** One budget's window as the store counts it: `limit` units per `perSeconds`, per principal. */
export interface BudgetWindow {
  /** The budget's name (policy `budgets[].name`): with `perSeconds`, what its counters are keyed by. */
  name: string;
  limit: number;
  perSeconds: number;
}

/** A caller switched to read-only because it hit a budget: kept until an operator lifts it. */
export interface Restriction {
  principal: string;
  /** The budget hit, and its numbers when it was hit. */
  budget: string;
  /** The risk class the budget counts (absent: every tool its match selects). */
  class?: string;
  unit: 'calls' | 'records';
  used: number;
  limit: number;
  perSeconds: number;
  /** The call that hit it. */
  tool: string;
  callId: string;
  /** When (epoch ms). */
  since: number;
}

/**
 * Blast-radius budgets: per-principal counters over fixed windows and the callers switched to
 * read-only. In this process (`createMemoryBudgets`), or in Redis for every instance
 * (`createRedisBudgets`). Every method fails with STATE_UNAVAILABLE when the store cannot answer, so
 * a caller's budget is never assumed: the stages refuse (fail closed).
 */
export interface BudgetStore {
  /** Units `principal` has used of the window so far (0: none). */
  used(w: BudgetWindow, principal: string): Promise<number>;
  /**
   * Adds `cost` units atomically (across instances when shared). `ok: false`: they would pass the
   * limit, and nothing was added; `used` is what the window holds afterwards.
   */
  spend(w: BudgetWindow, principal: string, cost: number): Promise<{ ok: boolean; used: number }>;
  /** Gives back units spent by this call when a later budget of the same call refused it. */
  refund(w: BudgetWindow, principal: string, cost: number): Promise<void>;
  /** The principal's restriction, if one is in force. */
  restriction(principal: string): Promise<Restriction | undefined>;
  /** Restricts the principal unless it already is; true when this call set it (alert once). */
  restrict(r: Restriction): Promise<boolean>;
  /** Lifts the restriction and empties the window of the budget that was hit; the lifted one. */
  lift(principal: string): Promise<Restriction | undefined>;
  /** Every restriction in force, oldest first. */
  list(): Promise<Restriction[]>;
}

const unavailable = () =>
  new WardenError('STATE_UNAVAILABLE', 'The budgets (shared state) cannot be read; try again shortly.');

type Limiter = RateLimiterMemory | RateLimiterRedis;
type LimiterLib = typeof import('../lib/rate-limiters.js');

// Loaded at the first budget use, not with the gateway (issue 22: code every start paid for budgets
// most configurations never hit before a call — ~100 KB while it was the package's index, the two
// limiters' files now). A failed load is not kept.
let lib: Promise<LimiterLib> | undefined;
const loadLib = (): Promise<LimiterLib> => {
  lib ??= import('../lib/rate-limiters.js').catch((e: unknown) => {
    lib = undefined;
    throw e;
  });
  return lib;
};

/**
 * The counters: rate-limiter-flexible fixed windows (the same library as the rate limits), one
 * counter per budget name and window, keyed by principal. The limit is compared here, not in the
 * library: an atomic increment, then a refund when it went past the limit. So two instances racing
 * for the last unit cannot both have it, and raising a limit keeps what was used.
 */
function counters(make: (keyPrefix: string, perSeconds: number, lib: LimiterLib) => Limiter) {
  const limiters = new Map<string, Limiter>();
  // A load that fails rejects inside `guarded`: STATE_UNAVAILABLE, the stages refuse (fail closed).
  const limiter = async (w: Pick<BudgetWindow, 'name' | 'perSeconds'>): Promise<Limiter> => {
    const id = `${w.name}:${w.perSeconds}`;
    let l = limiters.get(id);
    if (!l) {
      const loaded = await loadLib();
      // Another caller may have made it while this one waited.
      l = limiters.get(id) ?? make(`budget:${id}`, w.perSeconds, loaded);
      limiters.set(id, l);
    }
    return l;
  };
  const guarded = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch {
      throw unavailable();
    }
  };
  return {
    used: (w: BudgetWindow, principal: string): Promise<number> =>
      guarded(async () => Math.max(0, (await (await limiter(w)).get(principal))?.consumedPoints ?? 0)),
    spend: (w: BudgetWindow, principal: string, cost: number): Promise<{ ok: boolean; used: number }> =>
      guarded(async () => {
        const l = await limiter(w);
        const r = await l.consume(principal, cost);
        if (r.consumedPoints <= w.limit) return { ok: true, used: r.consumedPoints };
        // Past the limit: take this call's units back, so a refusal costs nothing.
        const back = await l.reward(principal, cost);
        return { ok: false, used: Math.max(0, back.consumedPoints) };
      }),
    refund: (w: BudgetWindow, principal: string, cost: number): Promise<void> =>
      guarded(async () => {
        await (await limiter(w)).reward(principal, cost);
      }),
    reset: (w: Pick<BudgetWindow, 'name' | 'perSeconds'>, principal: string): Promise<void> =>
      guarded(async () => {
        await (await limiter(w)).delete(principal);
      }),
  };
}

/** More than any budget allows (the schema caps a limit at 10 000 000): the library never refuses. */
const UNBOUNDED = 2 ** 31 - 1;

/** Budgets in this process: lost on restart, not shared with other instances. */
export function createMemoryBudgets(): BudgetStore {
  const c = counters(
    (keyPrefix, duration, { RateLimiterMemory }) =>
      new RateLimiterMemory({ keyPrefix, points: UNBOUNDED, duration }),
  );
  const restricted = new Map<string, Restriction>();
  return {
    used: c.used,
    spend: c.spend,
    refund: c.refund,
    async restriction(principal) {
      return restricted.get(principal);
    },
    async restrict(r) {
      if (restricted.has(r.principal)) return false;
      restricted.set(r.principal, r);
      return true;
    },
    async lift(principal) {
      const r = restricted.get(principal);
      if (!r) return undefined;
      restricted.delete(principal);
      await c.reset({ name: r.budget, perSeconds: r.perSeconds }, principal);
      return r;
    },
    async list() {
      return [...restricted.values()].sort((a, b) => a.since - b.since);
    },
  };
}

/**
 * Budgets in Redis, shared by every instance: the counters are rate-limiter-flexible's (atomic
 * increments), the restrictions one hash (`<prefix>:budget:restricted`, principal → JSON), set with
 * HSETNX so the first instance to restrict a caller is the one that alerts. No local fallback: with
 * Redis away every budgeted call and every write of a restricted-capable caller fails closed.
 */
export function createRedisBudgets(o: { client: Redis; prefix: string }): BudgetStore {
  const c = counters(
    (keyPrefix, duration, { RateLimiterRedis }) =>
      new RateLimiterRedis({
        storeClient: o.client,
        keyPrefix: `${o.prefix}:${keyPrefix}`,
        points: UNBOUNDED,
        duration,
      }),
  );
  const hash = `${o.prefix}:budget:restricted`;
  const call = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch {
      throw unavailable();
    }
  };
  return {
    used: c.used,
    spend: c.spend,
    refund: c.refund,
    async restriction(principal) {
      const v = await call(() => o.client.hget(hash, principal));
      return v === null ? undefined : parseRestriction(v, principal);
    },
    async restrict(r) {
      return (await call(() => o.client.hsetnx(hash, r.principal, JSON.stringify(r)))) === 1;
    },
    async lift(principal) {
      const v = await call(() => o.client.hget(hash, principal));
      if (v === null) return undefined;
      await call(() => o.client.hdel(hash, principal));
      const r = parseRestriction(v, principal);
      await c.reset({ name: r.budget, perSeconds: r.perSeconds }, principal);
      return r;
    },
    async list() {
      const all = await call(() => o.client.hgetall(hash));
      return Object.entries(all)
        .map(([principal, v]) => parseRestriction(v, principal))
        .sort((a, b) => a.since - b.since);
    },
  };
}

/**
 * A stored restriction. One that does not parse (written by hand, or by another version) still
 * restricts: it is read as "restricted, reason unknown" rather than dropped (fail closed).
 */
function parseRestriction(v: string, principal: string): Restriction {
  try {
    const r = JSON.parse(v) as Restriction;
    if (typeof r.budget === 'string' && typeof r.since === 'number') return { ...r, principal };
  } catch {
    /* below */
  }
  return {
    principal,
    budget: 'unknown',
    unit: 'calls',
    used: 0,
    limit: 0,
    perSeconds: 1,
    tool: '',
    callId: '',
    since: 0,
  };
}
