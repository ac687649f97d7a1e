import { createHash, randomBytes } from 'node:crypto';
import { WardenError } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import {
  type Admission,
  type ApprovalBinding,
  type ApprovalRequest,
  type ApprovalStatus,
  type ApprovalStore,
  SHARED_ADMIN,
} from '../model/approval.js';
import type { ApprovalRecord } from '../model/audit.js';

export interface ApprovalsOptions {
  store: ApprovalStore;
  /** Writes one audit record (the gateway's sink; throws when the audit cannot be written). */
  audit: (record: ApprovalRecord) => void;
  /** `admin.operators` by id: the caller ids that are this person (a requester never approves itself). */
  operators: ReadonlyMap<string, { principals: readonly string[] }>;
  /** Time to decide a request. */
  pendingSeconds: number;
  /** After approval, time for the agent to repeat the call. */
  runSeconds: number;
  now?: () => number;
  /** The policy version in force here (recorded with each decision). */
  policyVersion?: () => number;
  /** How often expired requests are swept (default 5 s; 0: no sweeper, tests call `sweep`). */
  sweepMs?: number;
}

/** One parked call, as the confirm stage describes it. */
export interface ApprovalCall {
  /** The call's id (its audit record's). */
  callId: string;
  binding: ApprovalBinding;
  /** The arguments as the audit records them (masked, redacted). */
  preview: unknown;
  method: string;
  /** The path template. */
  path: string;
  risk: string[];
  dataClasses: string[];
  /** Distinct operators needed (1 or 2). */
  approvers: number;
  /** Why it is parked when the rule alone would not have (the taint guard's reason), for the operator. */
  why?: string;
}

/**
 * Out-of-band approvals: the confirm stage parks calls here (`admit`), humans decide them (`decide`,
 * through the admin API, the CLI and the dashboard), and the sweeper expires what nobody decided or
 * used in time. Every transition is atomic in the store and audited once, linked by the approval id.
 */
export class Approvals {
  readonly pendingSeconds: number;
  readonly runSeconds: number;
  private readonly now: () => number;
  private readonly listeners: Array<(r: ApprovalRequest) => void> = [];
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ApprovalsOptions) {
    this.pendingSeconds = o.pendingSeconds;
    this.runSeconds = o.runSeconds;
    this.now = o.now ?? Date.now;
    // Often enough that a short validity is swept in its own time, never more than every 5 s.
    const every = o.sweepMs ?? Math.min(5000, Math.max(250, Math.min(o.pendingSeconds, o.runSeconds) * 500));
    if (every > 0) {
      this.timer = setInterval(() => void this.sweep().catch(() => {}), every);
      // Never what keeps the process alive.
      this.timer.unref();
    }
  }

  list(filter?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalRequest[]> {
    return this.o.store.list(filter);
  }

  get(id: string): Promise<ApprovalRequest | undefined> {
    // Only ids of the form the gateway makes reach the store (they become key names in Redis).
    return APPROVAL_ID.test(id) ? this.o.store.get(id) : Promise.resolve(undefined);
  }

  /**
   * An operator's decision. Throws APPROVAL_NOT_FOUND, APPROVAL_NOT_PENDING (decided, executed or
   * expired), APPROVAL_SELF (the operator is the requester: the same id, or one of the operator's
   * `principals`) or APPROVAL_SAME_OPERATOR (a two-person rule, and this operator already approved).
   * Audits the decision; returns the request as it now is.
   */
  async decide(
    id: string,
    d: { operator: string; verdict: 'approve' | 'deny'; reason: string },
  ): Promise<ApprovalRequest> {
    const reason = d.reason.trim();
    if (!reason) throw new WardenError('USAGE', 'A decision needs a reason.');
    const found = await this.get(id);
    if (!found) throw notFound(id);
    // The shared token names nobody: once people have their own tokens, it cannot stand in for one
    // (it could otherwise be the second "person" of a two-person rule, or the requester unnoticed).
    if (d.verdict === 'approve' && d.operator === SHARED_ADMIN && this.o.operators.size > 0)
      throw new WardenError(
        'APPROVAL_NOT_OPERATOR',
        'Approvals need an operator token (admin.operators): the shared admin token cannot approve. It can still deny.',
      );
    if (d.verdict === 'approve' && this.isRequester(d.operator, found.binding.principal))
      throw new WardenError(
        'APPROVAL_SELF',
        `${d.operator} requested this call (as ${found.binding.principal}) and cannot approve it; another operator must.`,
      );
    const now = this.now();
    const r = await this.o.store.decide(
      id,
      { operator: d.operator, verdict: d.verdict, reason, at: new Date(now).toISOString() },
      { needed: found.approversNeeded, runUntil: now + this.runSeconds * 1000, now },
    );
    if (!r.ok) {
      if (r.why === 'not-found') throw notFound(id);
      if (r.why === 'same-operator')
        throw new WardenError(
          'APPROVAL_SAME_OPERATOR',
          `${d.operator} already approved ${id}; its rule needs ${r.request.approversNeeded} different operators.`,
        );
      if (r.expiredNow) this.record(r.request, 'expired');
      throw new WardenError(
        'APPROVAL_NOT_PENDING',
        `${id} is ${r.request.status}: only a pending request can be decided.`,
      );
    }
    this.record(r.request, d.verdict === 'approve' ? 'approved' : 'denied', {
      operator: d.operator,
      reason,
      status: r.request.status,
    });
    return r.request;
  }

  /** Told of every new request (webhook notifications); a listener's failure is its own. */
  onRequested(listener: (r: ApprovalRequest) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The confirm stage's step for one call: runs an approved request (exactly once, across instances),
   * or reports the pending or denied one, or parks the call as a new request. Audits what happened.
   */
  async admit(call: ApprovalCall): Promise<Admission> {
    const now = this.now();
    const key = bindingKey(call.binding, call.approvers);
    const candidate: ApprovalRequest = {
      id: `apr_${randomBytes(12).toString('base64url')}`,
      binding: call.binding,
      key,
      status: 'pending',
      preview: call.preview,
      method: call.method,
      path: call.path,
      risk: call.risk,
      dataClasses: call.dataClasses,
      approversNeeded: call.approvers,
      ...(call.why !== undefined ? { why: call.why } : {}),
      decisions: [],
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.pendingSeconds * 1000).toISOString(),
    };
    const a = await this.o.store.admit(key, candidate, now);
    if (a.outcome === 'run') this.record(a.request, 'executed', { call: call.callId });
    if (a.outcome === 'created') {
      if (a.expired && a.expiredNow) this.record(a.expired, 'expired');
      this.record(a.request, 'requested', {
        call: call.callId,
        target: `${a.request.method} ${a.request.path}`,
        expiresAt: a.request.expiresAt,
      });
      for (const l of this.listeners) {
        try {
          l(a.request);
        } catch {
          // A notification that fails does not undo the request; the dashboard and CLI list it.
        }
      }
    }
    return a;
  }

  /** Moves what ran out of time to `expired` and audits it (only the instance that moved it does). */
  async sweep(): Promise<number> {
    const moved = await this.o.store.expire(this.now());
    for (const r of moved) this.record(r, 'expired');
    return moved.length;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.o.store.close();
  }

  private isRequester(operator: string, principal: string): boolean {
    return (
      operator === principal || (this.o.operators.get(operator)?.principals.includes(principal) ?? false)
    );
  }

  private record(
    r: ApprovalRequest,
    event: ApprovalRecord['event'],
    extra: Partial<Omit<ApprovalRecord, 'kind' | 'event'>> = {},
  ): void {
    const version = this.o.policyVersion?.();
    this.o.audit({
      kind: 'approval',
      time: new Date(this.now()).toISOString(),
      event,
      approval: r.id,
      tool: r.binding.tool,
      principal: r.binding.principal,
      ...extra,
      policyVersion:
        event === 'requested' || event === 'executed'
          ? r.binding.policyVersion
          : (version ?? r.binding.policyVersion),
    });
  }
}

/** sha256 of the canonical binding: the same call (tool, arguments, caller, target, policy) finds its request. */
/** `apr_` and 16 url-safe characters (12 random bytes): what admit makes. */
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{16}$/;

export function bindingKey(b: ApprovalBinding, approvers: number): string {
  // The version number is each instance's own count of reloads; the policy digest is what binds —
  // with the approvers the call was resolved under (a reload racing the call cannot lower them).
  const { policyVersion: _shown, ...bound } = b;
  return createHash('sha256')
    .update(canonicalJson({ ...bound, approvers }))
    .digest('hex');
}

function notFound(id: string): WardenError {
  return new WardenError('APPROVAL_NOT_FOUND', `No approval request ${JSON.stringify(id.slice(0, 80))}.`);
}
