import { WardenError } from '../errors/index.js';
import type { ToolBudget } from '../policy/evaluate.js';
import type { BudgetStore, Restriction } from '../state/budgets.js';
import type { CallContext } from './context.js';

/** Methods that cannot change state on a conforming server (RFC 9110 §9.2.1). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['get', 'head', 'options']);

export interface BudgetOptions {
  /** The counters and the restricted callers: in this process, or in Redis for every instance. */
  store: BudgetStore;
  /** Told when this call switched its caller to read-only (the first instance to do so only). */
  onRestricted?: (r: Restriction) => void;
}

/**
 * The units a call costs a budget: 1 for `calls`; for `records`, the length of the longest array
 * anywhere in its checked arguments (a bulk call's list of ids: a query array, a body that is an
 * array, a body's `ids`/`items` field, however deep), or the number of comma-separated values in a
 * string argument, at least 1 (a single-record call).
 */
export function costOf(b: Pick<ToolBudget, 'unit'>, args: Record<string, unknown> | undefined): number {
  if (b.unit === 'calls') return 1;
  let n = 1;
  // The longest array anywhere in the checked arguments (`{data: {records: [...]}}` as well as
  // `ids: [...]`), and comma-separated ids in a string; bounded in depth and nodes (arguments are
  // already checked against the schema and size-limited, so this is a backstop, not the guard).
  let nodes = 0;
  const see = (v: unknown, depth: number): void => {
    if (++nodes > 100_000 || depth > 16) return;
    if (typeof v === 'string') {
      const parts = v.length > 2 && v.includes(',') ? v.split(',').length : 1;
      if (parts > n) n = parts;
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      if (v.length > n) n = v.length;
      for (const x of v) if (x !== null && typeof x === 'object') see(x, depth + 1);
      return;
    }
    for (const x of Object.values(v)) see(x, depth + 1);
  };
  see(args ?? {}, 0);
  return n;
}

/**
 * Checks (writes `budget`) the caller's blast-radius budgets before anything is asked or sent. A
 * caller already read-only is refused any non-read call (CALLER_READ_ONLY); a call whose units would
 * pass one of the tool's budgets is refused (BUDGET_EXCEEDED) and switches its caller to read-only.
 * Nothing is counted here: `createSpend` counts just before send, so a call that is parked, declined
 * or refused later costs nothing. A store that cannot answer refuses (STATE_UNAVAILABLE).
 */
export function createBudget(o: BudgetOptions) {
  // Synchronous when there is nothing to look up (a safe read without budgets): no promise per call.
  return function budget(ctx: CallContext): Promise<void> | undefined {
    const d = ctx.decision!.decision;
    const budgets = d.budgets ?? [];
    // What a read-only caller may still call: safe-method reads that send nothing out. A POST the
    // policy treats as a read, or a read marked `egress`, can still change or send something.
    const restricts = d.kind !== 'read' || !SAFE_METHODS.has(d.tool.source.method) || d.egress === true;
    if (!restricts && budgets.length === 0) return undefined;
    return checkBudgets(o, ctx, budgets, restricts);
  };
}

async function checkBudgets(
  o: BudgetOptions,
  ctx: CallContext,
  budgets: readonly ToolBudget[],
  restricts: boolean,
): Promise<void> {
  const d = ctx.decision!.decision;
  const principal = ctx.input.principal.id;
  // One round trip for all of them (the store's requests overlap on its connection).
  const [r, ...used] = await Promise.all([
    restricts ? o.store.restriction(principal) : undefined,
    ...budgets.map((b) => o.store.used(b, principal)),
  ]);
  if (r) {
    ctx.budget = {
      name: r.budget,
      ...(r.class !== undefined ? { class: r.class } : {}),
      unit: r.unit,
      used: r.used,
      limit: r.limit,
    };
    throw new WardenError(
      'CALLER_READ_ONLY',
      `This caller is read-only since ${new Date(r.since).toISOString()}: it hit the budget "${r.budget}" (${r.limit} ${r.unit} per ${r.perSeconds} s). Reads are still served; an operator must lift the restriction before ${d.tool.name} can be called.`,
    );
  }
  let nearest: { b: ToolBudget; used: number } | undefined;
  for (const [i, b] of budgets.entries()) {
    const u = used[i]!;
    const cost = costOf(b, ctx.args);
    if (u + cost > b.limit) {
      ctx.budget = budgetField(b, u);
      await exceeded(o, ctx, b, u, cost);
    }
    if (!nearest || u / b.limit > nearest.used / nearest.b.limit) nearest = { b, used: u };
  }
  if (nearest) ctx.budget = budgetField(nearest.b, nearest.used);
}

/**
 * Counts the call's units in each of its budgets (updates `budget.used`), atomically across
 * instances, as the last step before the request leaves: only calls that go out are counted. Two
 * calls racing past the check on different instances cannot both pass a budget: the second is
 * refused here (what this call already counted is given back) and its caller switched to read-only.
 */
export function createSpend(o: BudgetOptions) {
  // Synchronous for a tool without budgets (no promise per call).
  return function spend(ctx: CallContext): Promise<void> | undefined {
    const budgets = ctx.decision!.decision.budgets;
    if (!budgets?.length) return undefined;
    return spendOn(o, ctx, budgets);
  };
}

async function spendOn(o: BudgetOptions, ctx: CallContext, budgets: readonly ToolBudget[]): Promise<void> {
  const principal = ctx.input.principal.id;
  const spent: Array<[ToolBudget, number]> = [];
  let nearest: { b: ToolBudget; used: number } | undefined;
  for (const b of budgets) {
    const cost = costOf(b, ctx.args);
    const r = await o.store.spend(b, principal, cost);
    if (!r.ok) {
      for (const [sb, c] of spent) await o.store.refund(sb, principal, c).catch(() => {});
      ctx.budget = budgetField(b, r.used);
      await exceeded(o, ctx, b, r.used, cost);
    }
    spent.push([b, cost]);
    if (!nearest || r.used / b.limit > nearest.used / nearest.b.limit) nearest = { b, used: r.used };
  }
  if (nearest) ctx.budget = budgetField(nearest.b, nearest.used);
}

function budgetField(b: ToolBudget, used: number): NonNullable<CallContext['budget']> {
  return {
    name: b.name,
    ...(b.class !== undefined ? { class: b.class } : {}),
    unit: b.unit,
    used,
    limit: b.limit,
  };
}

/** Restricts the caller (once: the first instance to do so tells `onRestricted`), then refuses. */
async function exceeded(
  o: BudgetOptions,
  ctx: CallContext,
  b: ToolBudget,
  used: number,
  cost: number,
): Promise<never> {
  const principal = ctx.input.principal.id;
  const r: Restriction = {
    principal,
    budget: b.name,
    ...(b.class !== undefined ? { class: b.class } : {}),
    unit: b.unit,
    used,
    limit: b.limit,
    perSeconds: b.perSeconds,
    tool: ctx.decision!.decision.tool.name,
    callId: ctx.id,
    since: Date.now(),
  };
  // A store that cannot record the restriction refuses the call all the same (STATE_UNAVAILABLE).
  if (await o.store.restrict(r)) o.onRestricted?.(r);
  throw new WardenError(
    'BUDGET_EXCEEDED',
    `Budget "${b.name}" reached: ${used} of ${b.limit} ${b.unit} per ${b.perSeconds} s used${cost > 1 ? `, and this call counts ${cost}` : ''}. This caller is now read-only: its writes are refused until an operator lifts the restriction; reads are still served.`,
  );
}
