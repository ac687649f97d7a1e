/** The audit trail's records and the sink every writer appends to (JSONL file, database mirror). */
import type { AuthMethod } from './principal.js';

/**
 * Whose upstream identity a call used, when it was a person's rather than the gateway's service
 * account: the principal, and how the gateway acted as them (their connected account, or a token
 * exchanged at their identity provider). Never a token.
 */
export interface OnBehalfOf {
  principal: string;
  credential: 'userOAuth' | 'tokenExchange';
}

/** One audit record per tool call (allowed, denied or failed). */
export interface AuditRecord {
  kind: 'call';
  time: string;
  id: string;
  tool: string;
  /** The API of an API set the tool belongs to (absent for a single spec, or a name no API serves). */
  api?: string;
  decision: 'allowed' | 'denied';
  /** `ok` or the error code of a denied or failed call. */
  outcome: 'ok' | 'error';
  code?: string;
  principal: string;
  /** How the principal was authenticated (absent in records written before it was recorded). */
  auth?: AuthMethod;
  client?: string;
  args?: unknown;
  /** audit: digest — what was sent and received, as hashes and sizes. */
  argsDigest?: string;
  argsBytes?: number;
  responseDigest?: string;
  responseBytes?: number;
  /** audit: full — the result as the agent saw it (masked, redacted), cut to 4 KiB. */
  response?: string;
  /** What was masked, dropped or redacted in this call, by kind (`masked:email`, `aws-access-key`…). */
  redactions?: Record<string, number>;
  upstream?: { method: string; path: string; status?: number; ms?: number; bytes?: number };
  /** Gateway time for the whole call, upstream included. */
  ms: number;
  notes?: string[];
  /** The policy version that decided the call. */
  policyVersion?: number;
  /** How a call that needed confirmation was confirmed. */
  confirmed?: 'token' | 'elicitation' | 'input_required' | 'operator';
  /** The approval request this call ran under, or was parked on, refused by or reported expired. */
  approval?: string;
  /** Absent: the gateway's own (service) credential, or none, was used upstream. */
  onBehalfOf?: OnBehalfOf;
  /**
   * Response (or upstream error) fields that looked like instructions aimed at the agent: JSON
   * pointers (`''`: the body), never the text; a segment that is not a plain name or an index is
   * `*`, at most 10 then `and N more`.
   */
  injectionSuspected?: string[];
  /**
   * Taint guard, on an outward call it refused or parked (or that ran after an operator approved it):
   * the earlier read that tainted the caller — join on that record's `id`.
   */
  taintedBy?: { callId: string; tool: string; reason: string };
  /** Taint guard, on a read: what it put in the caller's taint (`pii`, `secret`, `financial`, `untrusted`). */
  taints?: string[];
  /**
   * The call's blast-radius budget nearest its limit (units used after this call when it went out),
   * the one it hit (BUDGET_EXCEEDED), or the one that made its caller read-only (CALLER_READ_ONLY).
   */
  budget?: { name: string; class?: string; unit: 'calls' | 'records'; used: number; limit: number };
}

/** Written before a non-read call leaves the gateway: if the outcome never follows, the call may have happened. */
export interface IntentRecord {
  kind: 'intent';
  time: string;
  id: string;
  tool: string;
  api?: string;
  principal: string;
  args?: unknown;
  upstream: { method: string; path: string };
  policyVersion?: number;
}

/** One control-plane change: who changed what, before → after. */
export interface ControlRecord {
  kind: 'control';
  time: string;
  actor: string;
  action: string;
  target?: string;
  before?: unknown;
  after?: unknown;
  detail?: string;
}

/**
 * One step in the life of an out-of-band approval, linked to its calls by the approval id: the call
 * that parked it (`requested`), each operator's decision, its expiry, and the call that ran it.
 */
export interface ApprovalRecord {
  kind: 'approval';
  time: string;
  event: 'requested' | 'approved' | 'denied' | 'expired' | 'executed';
  /** The approval request's id (`apr_…`). */
  approval: string;
  tool: string;
  /** The requester. */
  principal: string;
  /** `approved`/`denied`: who decided, and why. */
  operator?: string;
  reason?: string;
  /** `requested`/`executed`: the call (its audit record's id). */
  call?: string;
  /** `requested`: the method and path template, and when the request expires. */
  target?: string;
  expiresAt?: string;
  /** `approved`: the request's status after this decision (`pending` while a second approver is needed). */
  status?: string;
  policyVersion?: number;
}

export type AnyRecord = AuditRecord | IntentRecord | ControlRecord | ApprovalRecord;

export interface AuditSink {
  /** Appends a record; throws AUDIT_UNAVAILABLE when it cannot be written (the caller fails closed). */
  write(record: AnyRecord): void;
  close(): Promise<void>;
}
