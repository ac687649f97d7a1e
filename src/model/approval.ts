/**
 * Out-of-band approvals: a call whose rule needs an operator is parked as a request; humans decide
 * it on the dashboard, the CLI or the admin API; the agent's next identical call runs it, once. The
 * request is bound to everything that makes the call what it is (tool, canonical arguments, caller,
 * upstream target, policy version): a change to any of them is another call and needs its own
 * approval. Nothing a model can produce (a token, an elicitation answer) stands in for a decision here.
 */

/**
 * How a rule's confirmation is obtained. `auto`: elicit where the client can, otherwise `operator`;
 * `agent`: the two-step token (the agent repeats the call on purpose; no human is involved).
 */
export type ApprovalMode = 'auto' | 'elicit' | 'operator' | 'agent';

export const APPROVAL_MODES: readonly ApprovalMode[] = ['auto', 'elicit', 'operator', 'agent'];

/** The identity of the shared `admin.token`: one token, so one "person", whoever holds it. */
export const SHARED_ADMIN = 'admin';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'executed';

export const APPROVAL_STATUSES: readonly ApprovalStatus[] = [
  'pending',
  'approved',
  'denied',
  'expired',
  'executed',
];

/** What binds an approval to one call; its digest is the key a repeated call is found by. */
export interface ApprovalBinding {
  tool: string;
  /** sha256 of the canonical (validated) arguments. */
  argsDigest: string;
  /** The requester's principal id (namespaced: key:…, jwt:…#…, stdio:…). */
  principal: string;
  /** Upstream origin, method and path template of the tool: `DELETE https://api.example.com/v1/customers/{id}`. */
  target: string;
  /** The policy version the request was made under, as this instance numbers it (shown, not bound). */
  policyVersion: number;
  /** sha256 of the policy text it was made under: what binds (the same text on every instance). */
  policy: string;
}

export interface ApprovalDecision {
  /** The operator's identity (an `admin.operators` id, or `admin` for the shared token). */
  operator: string;
  verdict: 'approve' | 'deny';
  reason: string;
  at: string;
}

export interface ApprovalRequest {
  /** `apr_` + random, url-safe; the id every surface and audit record uses. */
  id: string;
  binding: ApprovalBinding;
  /** sha256 of the canonical binding: one current request per binding. */
  key: string;
  status: ApprovalStatus;
  /** Arguments as the audit records them (masked and redacted), for the humans who decide. */
  preview: unknown;
  /** Tool facts for the decision page. */
  method: string;
  path: string;
  risk: string[];
  dataClasses: string[];
  /** Distinct operators whose approval is needed (1, or 2 for a two-person rule). */
  approversNeeded: number;
  /** Why the call was parked when its rule alone would not have (the taint guard names the earlier read). */
  why?: string;
  decisions: ApprovalDecision[];
  requestedAt: string;
  /** Pending: decide before this. Approved: run before this. ISO date-time. */
  expiresAt: string;
}

/** What the confirm stage learns when a call's binding is looked up (one atomic step in the store). */
export type Admission =
  /** It was approved and unexpired: it is now `executed` (this call, and no other, runs it). */
  | { outcome: 'run'; request: ApprovalRequest }
  /** Still waiting for a decision (the same request as before). */
  | { outcome: 'pending'; request: ApprovalRequest }
  /** It was denied: reported to this call once, then forgotten (the next call starts anew). */
  | { outcome: 'denied'; request: ApprovalRequest }
  /**
   * A new pending request was stored. `expired`: the previous request for this binding, which ran
   * out of time; `expiredNow`: this step moved it to `expired` (so this caller audits it, once).
   */
  | { outcome: 'created'; request: ApprovalRequest; expired?: ApprovalRequest; expiredNow?: boolean };

/** What a decision did; the service turns refusals into their error codes. */
export type DecideResult =
  | { ok: true; request: ApprovalRequest }
  | { ok: false; why: 'not-found' }
  /** `expiredNow`: the decision found it past its time and moved it to `expired` (audit it once). */
  | { ok: false; why: 'not-pending'; request: ApprovalRequest; expiredNow?: boolean }
  | { ok: false; why: 'same-operator'; request: ApprovalRequest };

/**
 * Where approvals live: in this process (embedded) or in Redis (every instance sees the same ones).
 * Every transition is one atomic step in the store, so two instances never both run one approval, a
 * decision never lands on a request that has meanwhile expired or been decided, and each transition
 * is reported to exactly one caller (who audits it).
 */
export interface ApprovalStore {
  /**
   * The confirm stage's one step for a binding key: run an approved request (approved → executed),
   * report a pending or denied one, or store `candidate` as a new pending request (when there is none,
   * or the previous one expired).
   */
  admit(key: string, candidate: ApprovalRequest, now: number): Promise<Admission>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  /** Newest first; `status` filters; `limit` defaults to 100. */
  list(filter?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalRequest[]>;
  /**
   * Adds a decision to a pending, unexpired request. An approval by an operator who already approved
   * it is refused; once `needed` distinct operators approved, it becomes `approved` until `runUntil`.
   * A denial finishes it.
   */
  decide(
    id: string,
    decision: ApprovalDecision,
    rules: { needed: number; runUntil: number; now: number },
  ): Promise<DecideResult>;
  /** Pending/approved past their expiry → expired; returns the ones this call moved (audited once). */
  expire(now: number): Promise<ApprovalRequest[]>;
  close(): Promise<void>;
}
