import type { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from '../lib/rate-limiters.js';
import type { Rate, ToolDecision } from '../policy/evaluate.js';
import type { CallContext } from './context.js';

export interface LimitOptions {
  /** Shared limits across instances; without it, limits are per process. */
  redis?: { client: Redis; prefix: string; readsWhenDown: 'local' | 'closed' };
  onLimited?: (scope: string) => void;
}

type Limiter = RateLimiterMemory | RateLimiterRedis;

/** One rate limit of a decision, with its limiter. */
interface Check {
  scope: 'tool' | 'principal' | 'tool-principal';
  rate: Rate;
  limiter: Limiter;
}

/**
 * Checks (writes no field) the tool's rate limits: per tool, per caller, per caller and tool. Token
 * buckets from rate-limiter-flexible, in Redis when instances share state, so a limit of N admits N
 * across all of them. With Redis unreachable, writes fail closed and reads fall back to a local
 * limiter (or fail closed too, as configured). A refusal says when to retry.
 */
export function createLimit(o: LimitOptions = {}) {
  const limiters = new Map<string, Limiter>();
  const limiterFor = (scope: string, rate: Rate, write: boolean): Limiter => {
    const id = `${scope}:${rate.calls}:${rate.perSeconds}:${write ? 'w' : 'r'}`;
    let l = limiters.get(id);
    if (!l) {
      const base = {
        points: rate.calls,
        duration: rate.perSeconds,
        keyPrefix: `${o.redis?.prefix ?? 'mcp-warden'}:rl:${id}`,
      };
      l = o.redis
        ? new RateLimiterRedis({
            ...base,
            storeClient: o.redis.client,
            // Reads keep working on a per-instance limiter while Redis is away; writes do not.
            ...(!write && o.redis.readsWhenDown === 'local'
              ? { insuranceLimiter: new RateLimiterMemory(base) }
              : {}),
          })
        : new RateLimiterMemory(base);
      limiters.set(id, l);
    }
    return l;
  };

  // A decision's limiters, found once (a decision is immutable: a policy change makes new ones).
  const plans = new WeakMap<ToolDecision, Check[]>();
  const planOf = (d: ToolDecision): Check[] => {
    let plan = plans.get(d);
    if (!plan) {
      const write = d.kind !== 'read';
      const rates: Array<[Check['scope'], Rate | undefined]> = [
        ['tool', d.rateLimit.perTool],
        ['principal', d.rateLimit.perPrincipal],
        ['tool-principal', d.rateLimit.perToolPrincipal],
      ];
      plan = [];
      for (const [scope, rate] of rates)
        if (rate) plan.push({ scope, rate, limiter: limiterFor(scope, rate, write) });
      plans.set(d, plan);
    }
    return plan;
  };

  return async function limit(ctx: CallContext): Promise<void> {
    const d = ctx.decision!.decision;
    const tool = d.tool.name;
    const principal = ctx.input.principal.id;
    for (const { scope, rate, limiter } of planOf(d)) {
      const key = scope === 'tool' ? tool : scope === 'principal' ? principal : `${tool}\0${principal}`;
      try {
        await limiter.consume(key);
      } catch (e) {
        if (e instanceof RateLimiterRes) {
          o.onLimited?.(scope);
          const after = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
          throw new WardenError(
            'RATE_LIMITED',
            `Rate limit reached for ${tool} (${rate.calls} calls per ${rate.perSeconds} s ${scopeWords(scope)}). Retry after ${after} s.`,
            { details: [`retry-after: ${after}`] },
          );
        }
        throw new WardenError(
          'STATE_UNAVAILABLE',
          'The shared rate limit cannot be checked (Redis is unreachable); try again shortly.',
        );
      }
    }
  };
}

function scopeWords(scope: string): string {
  return scope === 'tool'
    ? 'for all callers'
    : scope === 'principal'
      ? 'for this caller'
      : 'for this caller and tool';
}
