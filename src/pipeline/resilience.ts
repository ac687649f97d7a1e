import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  decorrelatedJitterGenerator,
  ExponentialBackoff,
  handleWhen,
  type IPolicy,
  IsolatedCircuitError,
  noop,
  retry,
} from 'cockatiel';
import { isWardenError, WardenError } from '../errors/index.js';
import type { BreakerConfig, RetryConfig, ToolDecision } from '../policy/evaluate.js';
import type { CallContext, UpstreamResponse } from './context.js';

export interface ResilienceOptions {
  /** The breaker per upstream origin (default 5 consecutive failures, 30 s open); false: none. */
  originBreaker?: BreakerConfig;
  /** Told when a breaker changes state (`origin:https://…` or `tool:name`), for metrics and alerts. */
  onBreaker?: (name: string, state: 'closed' | 'open' | 'half-open') => void;
}

const DEFAULT_ORIGIN_BREAKER = { failures: 5, halfOpenAfterSeconds: 30 };
const DEFAULT_CONCURRENCY = 32;

/** A failed try: the upstream could not be reached, did not answer in time, or answered 5xx. */
class UpstreamFailure extends Error {
  constructor(readonly response: UpstreamResponse) {
    super(`upstream ${response.status}`);
  }
}
const isFailure = (e: Error) =>
  e instanceof UpstreamFailure ||
  (isWardenError(e) && (e.code === 'UPSTREAM_UNAVAILABLE' || e.code === 'UPSTREAM_TIMEOUT'));
/** Worth another try for an idempotent read: not a timeout (it would double the wait). */
const isTransient = (e: Error) =>
  (e instanceof UpstreamFailure && [502, 503, 504].includes(e.response.status)) ||
  (isWardenError(e) && e.code === 'UPSTREAM_UNAVAILABLE');

/**
 * Wraps one upstream try in, from outside in: a bulkhead per tool (calls in flight on this
 * instance; more are refused at once, so one slow endpoint cannot take every connection), retries
 * with decorrelated jitter for idempotent reads only, and two circuit breakers — per upstream origin
 * and per tool — that open after consecutive failures, refuse at once while open and let one probe
 * through when half-open (cockatiel).
 */
export function createResilience(o: ResilienceOptions = {}) {
  const breakers = new Map<string, IPolicy>();
  const bulkheads = new Map<string, IPolicy>();
  const retries = new Map<string, IPolicy>();

  const breakerFor = (name: string, cfg: Exclude<BreakerConfig, false>): IPolicy => {
    const key = `${name}|${cfg.failures}|${cfg.halfOpenAfterSeconds}`;
    let b = breakers.get(key);
    if (!b) {
      const p = circuitBreaker(handleWhen(isFailure), {
        halfOpenAfter: cfg.halfOpenAfterSeconds * 1000,
        breaker: new ConsecutiveBreaker(cfg.failures),
      });
      p.onStateChange((s) =>
        o.onBreaker?.(
          name,
          s === CircuitState.Open || s === CircuitState.Isolated
            ? 'open'
            : s === CircuitState.HalfOpen
              ? 'half-open'
              : 'closed',
        ),
      );
      breakers.set(key, p);
      b = p;
    }
    return b;
  };
  const bulkheadFor = (tool: string, limit: number): IPolicy => {
    const key = `${tool}|${limit}`;
    let b = bulkheads.get(key);
    if (!b) {
      b = bulkhead(limit, 0);
      bulkheads.set(key, b);
    }
    return b;
  };
  const retryFor = (cfg: RetryConfig): IPolicy => {
    if (!cfg) return noop;
    const key = `${cfg.attempts}|${cfg.baseMs}`;
    let r = retries.get(key);
    if (!r) {
      r = retry(handleWhen(isTransient), {
        maxAttempts: cfg.attempts,
        backoff: new ExponentialBackoff({
          initialDelay: cfg.baseMs,
          maxDelay: 10 * cfg.baseMs,
          generator: decorrelatedJitterGenerator,
        }),
      });
      retries.set(key, r);
    }
    return r;
  };

  const policiesFor = (d: ToolDecision | undefined, tool: string, origin: string): Nested => {
    const policies: IPolicy[] = [bulkheadFor(tool, d?.limits.concurrency ?? DEFAULT_CONCURRENCY)];
    // No retries: no layer at all (cockatiel's `noop` would only add an async hop per call).
    const retries = retryFor(d?.retries ?? false);
    if (retries !== noop) policies.push(retries);
    const ob = o.originBreaker ?? DEFAULT_ORIGIN_BREAKER;
    if (ob) policies.push(breakerFor(`origin:${origin}`, ob));
    if (d?.breaker) policies.push(breakerFor(`tool:${tool}`, d.breaker));
    return nest(policies);
  };
  // The wrapped policy of a decision (immutable: a policy change makes new ones) and origin, made once.
  // It wraps the very bulkhead, retry and breakers above, which are shared by configuration, so state
  // (calls in flight, consecutive failures) is the same whichever decision object a call comes with.
  const wrapped = new WeakMap<ToolDecision, Map<string, Nested>>();
  const policyOf = (ctx: CallContext): Nested => {
    const d = ctx.decision?.decision;
    const tool = ctx.tool?.name ?? String(ctx.input.name);
    const origin = ctx.outbound!.origin;
    // A tool name other than the decision's own (no stage lets that happen) is never served from the cache.
    if (!d || d.tool.name !== tool) return policiesFor(d, tool, origin);
    let byOrigin = wrapped.get(d);
    if (!byOrigin) {
      byOrigin = new Map();
      wrapped.set(d, byOrigin);
    }
    let p = byOrigin.get(origin);
    if (!p) {
      p = policiesFor(d, tool, origin);
      byOrigin.set(origin, p);
    }
    return p;
  };

  return async function resilient(
    ctx: CallContext,
    attempt: () => Promise<UpstreamResponse>,
  ): Promise<UpstreamResponse> {
    const tool = ctx.tool?.name ?? String(ctx.input.name);
    try {
      return await policyOf(ctx).execute(async () => {
        const res = await attempt();
        // A 5xx answer counts against the breakers (and may be retried), and is still the answer.
        if (res.status >= 500) throw new UpstreamFailure(res);
        return res;
      });
    } catch (e) {
      if (e instanceof UpstreamFailure) return e.response;
      if (e instanceof BrokenCircuitError || e instanceof IsolatedCircuitError)
        throw new WardenError(
          'BREAKER_OPEN',
          `The upstream for ${tool} is failing, so calls are refused for now; retry in a little while.`,
        );
      if (e instanceof BulkheadRejectedError)
        throw new WardenError(
          'CONCURRENCY_LIMITED',
          `Too many calls to ${tool} are in flight; retry shortly.`,
        );
      throw e;
    }
  };
}

/** Policies run one inside the other. */
interface Nested {
  execute<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * `policies` nested outside in, each one's `execute` running the next: what cockatiel's `wrap` does,
 * without the context object it spreads anew per layer and call (and its extra `Promise.resolve`).
 * Nothing here reads that context, and no call passes a signal, so every layer sees the same
 * never-aborted signal `wrap` would hand it.
 */
function nest(policies: readonly IPolicy[]): Nested {
  const [outer, ...rest] = policies;
  if (!outer) return { execute: (fn) => fn() };
  if (!rest.length) return { execute: (fn) => outer.execute(() => fn()) };
  const inner = nest(rest);
  return { execute: (fn) => outer.execute(() => inner.execute(fn)) };
}
