import { urlOrRef } from '../lib/secret-ref.js';
import type { ApprovalStore } from '../model/approval.js';
import type { SharedFlows } from '../model/connection.js';
import type { ReplayGuard, StateStore } from '../model/state.js';
import type { ReadinessCheck } from '../observe/health.js';
import type { LimitOptions } from '../pipeline/limit.js';
import type { PolicyDoc } from '../policy/schema.js';
import { createMemoryApprovals } from '../state/approvals.js';
import { type BudgetStore, createMemoryBudgets, createRedisBudgets } from '../state/budgets.js';
import { createMemoryReplayGuard, createMemoryState } from '../state/memory.js';
import type { RedisState } from '../state/redis.js';
import { createRedisApprovals } from '../state/redis-approvals.js';
import { createRedisFlows } from '../state/redis-flows.js';
import { createMemoryTaint, createRedisTaint, type TaintStore } from '../state/taint.js';

export interface StateOptions {
  /** Redis URL or reference from the command line; wins over the policy's `state.redis`. */
  url?: string;
  config: PolicyDoc['state'];
  env: NodeJS.ProcessEnv;
  onDegraded: (degraded: boolean) => void;
}

export interface OpenedState {
  /** Toggles, kill switch and (when shared) tool approvals. */
  store: StateStore;
  /** Single use of confirmation tokens. */
  replay: ReplayGuard;
  /** Out-of-band approval requests: in this process, or in Redis for every instance. */
  approvals: ApprovalStore;
  /** Blast-radius budgets and the callers they made read-only: in this process, or in Redis. */
  budgets: BudgetStore;
  /** What each caller has read lately (the taint guard): in this process, or in Redis. */
  taint: TaintStore;
  /** Shared rate limits, when the state is shared. */
  limits: LimitOptions['redis'] | undefined;
  /** The Redis connection, when the state is shared by instances. */
  redis: RedisState | undefined;
  /** Per-user OAuth's pending connect flows, when shared (a callback may land on any instance). */
  flows: SharedFlows | undefined;
  /** `state` (Redis answers), when the state is shared. */
  readiness: ReadinessCheck[];
}

/** In-memory state for one process, or Redis shared by every instance when one is configured. */
export async function openState(o: StateOptions): Promise<OpenedState> {
  const cfg = o.url
    ? {
        redis: o.url,
        prefix: o.config?.prefix ?? 'mcp-warden',
        readsWhenDown: o.config?.readsWhenDown ?? 'local',
      }
    : o.config;
  if (!cfg)
    return {
      store: createMemoryState(),
      replay: createMemoryReplayGuard(),
      approvals: createMemoryApprovals(),
      taint: createMemoryTaint(),
      budgets: createMemoryBudgets(),
      limits: undefined,
      redis: undefined,
      flows: undefined,
      readiness: [],
    };
  // ioredis is loaded only with shared state configured (issue 22: start-up).
  const { createRedisState } = await import('../state/redis.js');
  const redis = await createRedisState({
    url: urlOrRef(cfg.redis, o.env, 'state.redis'),
    prefix: cfg.prefix,
    onDegraded: o.onDegraded,
  });
  return {
    store: redis,
    replay: redis,
    approvals: createRedisApprovals({ client: redis.client, prefix: cfg.prefix }),
    taint: createRedisTaint({ client: redis.client, prefix: cfg.prefix }),
    budgets: createRedisBudgets({ client: redis.client, prefix: cfg.prefix }),
    limits: { client: redis.client, prefix: cfg.prefix, readsWhenDown: cfg.readsWhenDown },
    redis,
    flows: createRedisFlows({ client: redis.client, prefix: cfg.prefix }),
    readiness: [{ name: 'state', probe: () => redis.reachable() }],
  };
}
