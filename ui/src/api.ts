/** The admin API as the dashboard uses it: same origin, session cookie, CSRF token on every change. */

let csrf = '';
let onLoggedOut: () => void = () => {};

export function setSession(token: string, loggedOut: () => void): void {
  csrf = token;
  onLoggedOut = loggedOut;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(path: string, body?: unknown, verb?: 'DELETE'): Promise<T> {
  const method = verb ?? (body === undefined ? 'GET' : 'POST');
  const headers: Record<string, string> = {};
  if (method !== 'GET') {
    if (body !== undefined) headers['content-type'] = 'application/json';
    headers['x-csrf-token'] = csrf;
  }
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const data = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!res.ok) {
    if (res.status === 401) onLoggedOut();
    throw new ApiError(res.status, data.error ?? 'ERROR', data.message ?? `HTTP ${res.status}`);
  }
  return data as T;
}

export interface SessionInfo {
  actor: string;
  /** Who the token authenticated: `admin` (the shared token) or an operator id. */
  operator: string;
  csrf: string;
  expiresAt: string;
}

/** One API of an API set (`GET /tools` → `apis`). */
export interface ApiStatus {
  name: string;
  state: 'serving' | 'out';
  required: boolean;
  tools: number;
  error?: string;
}

export interface ToolRow {
  name: string;
  /** In an API set: the API the tool belongs to. */
  api?: string;
  method: string;
  path: string;
  kind: string;
  risk: string[];
  dataClasses: string[];
  exposed: boolean;
  hiddenBecause: string[];
  scopes: string[];
  confirm: boolean;
  toggle: 'enabled' | 'disabled' | 'policy';
  approved: boolean;
  /** For a tool waiting for approval: a diff against the approved definition, when known. */
  change?: string | null;
}

export type { ApprovalRequest } from '../../src/model/approval.js';
// The server's own definitions (type-only: nothing of the server is bundled).
export type { SeriesPoint, SeriesSnapshot as Series } from '../../src/observe/series.js';

export interface FiredAlert {
  id: number;
  rule: string;
  subject: string;
  message: string;
  time: string;
  acknowledged?: { by: string; at: string };
}

export interface PolicyVersionInfo {
  version: number;
  time: string;
  actor: string;
  source: string;
  sha256: string;
}

export type AuditRecord = Record<string, unknown> & { seq?: number };

/** A person's connected upstream account (per-user OAuth), as `GET /connections` lists it: never a token. */
export interface ConnectionRow {
  id: string;
  principal: string;
  upstream: string;
  issuer: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt?: string;
  expiresAt?: string;
}

/** A caller a blast-radius budget switched to read-only, as `GET /restricted` lists it (docs/budgets.md). */
export interface RestrictedRow {
  principal: string;
  budget: string;
  class?: string;
  unit: 'calls' | 'records';
  used: number;
  limit: number;
  perSeconds: number;
  tool: string;
  callId: string;
  since: string;
}
