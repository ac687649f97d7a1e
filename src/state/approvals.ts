import type {
  Admission,
  ApprovalDecision,
  ApprovalRequest,
  ApprovalStore,
  DecideResult,
} from '../model/approval.js';

/** Finished requests (executed, denied, expired) kept for the dashboard and the CLI, at most. */
const KEEP_FINISHED = 10_000;

const live = (r: ApprovalRequest) => r.status === 'pending' || r.status === 'approved';

/**
 * Approvals in this process (one instance). Each method runs to completion without awaiting, so
 * every transition is atomic here as it is in Redis's scripts. Objects handed out are copies: a
 * caller cannot change a stored request.
 */
export function createMemoryApprovals(): ApprovalStore {
  const byId = new Map<string, ApprovalRequest>();
  /** Binding key → the id of its current request (pending, approved, or finished but not reported). */
  const current = new Map<string, string>();
  const copy = (r: ApprovalRequest): ApprovalRequest => structuredClone(r);
  const at = (r: ApprovalRequest) => Date.parse(r.expiresAt);

  const expireOne = (r: ApprovalRequest): void => {
    r.status = 'expired';
  };
  // Oldest finished first out, when there are too many.
  const prune = (): void => {
    if (byId.size <= KEEP_FINISHED) return;
    for (const [id, r] of byId) {
      if (byId.size <= KEEP_FINISHED) break;
      if (live(r)) continue;
      byId.delete(id);
      if (current.get(r.key) === id) current.delete(r.key);
    }
  };

  return {
    async admit(key, candidate, now): Promise<Admission> {
      const id = current.get(key);
      const cur = id !== undefined ? byId.get(id) : undefined;
      let expired: ApprovalRequest | undefined;
      let expiredNow = false;
      if (cur) {
        if (live(cur) && at(cur) > now) {
          if (cur.status === 'pending') return { outcome: 'pending', request: copy(cur) };
          cur.status = 'executed';
          current.delete(key);
          return { outcome: 'run', request: copy(cur) };
        }
        if (cur.status === 'denied') {
          current.delete(key);
          return { outcome: 'denied', request: copy(cur) };
        }
        if (live(cur)) {
          expireOne(cur);
          expiredNow = true;
        }
        if (cur.status === 'expired') expired = copy(cur);
      }
      const fresh = copy({ ...candidate, key, status: 'pending', decisions: [] });
      byId.set(fresh.id, fresh);
      current.set(key, fresh.id);
      prune();
      return {
        outcome: 'created',
        request: copy(fresh),
        ...(expired ? { expired, expiredNow } : {}),
      };
    },
    async get(id) {
      const r = byId.get(id);
      return r ? copy(r) : undefined;
    },
    async list(filter = {}) {
      const out: ApprovalRequest[] = [];
      const limit = filter.limit ?? 100;
      for (const r of [...byId.values()].reverse()) {
        if (out.length >= limit) break;
        if (!filter.status || r.status === filter.status) out.push(copy(r));
      }
      return out;
    },
    async decide(id, decision: ApprovalDecision, rules): Promise<DecideResult> {
      const r = byId.get(id);
      if (!r) return { ok: false, why: 'not-found' };
      if (r.status !== 'pending') return { ok: false, why: 'not-pending', request: copy(r) };
      if (at(r) <= rules.now) {
        expireOne(r);
        return { ok: false, why: 'not-pending', request: copy(r), expiredNow: true };
      }
      if (
        decision.verdict === 'approve' &&
        r.decisions.some((d) => d.verdict === 'approve' && d.operator === decision.operator)
      )
        return { ok: false, why: 'same-operator', request: copy(r) };
      r.decisions.push({ ...decision });
      if (decision.verdict === 'deny') r.status = 'denied';
      else if (r.decisions.filter((d) => d.verdict === 'approve').length >= rules.needed) {
        r.status = 'approved';
        r.expiresAt = new Date(rules.runUntil).toISOString();
      }
      return { ok: true, request: copy(r) };
    },
    async expire(now) {
      const moved: ApprovalRequest[] = [];
      for (const r of byId.values())
        if (live(r) && at(r) <= now) {
          expireOne(r);
          moved.push(copy(r));
        }
      return moved;
    },
    async close() {},
  };
}
