import type { ControlEvent, Controller } from '../control/controller.js';
import { WardenError } from '../errors/index.js';
import { requireSecret } from '../lib/secret-ref.js';
import type { ApprovalRequest } from '../model/approval.js';
import { approvalLink, approvalNotice } from '../observe/approval-notice.js';
import type { Health } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import type { Observers } from '../observe/observers.js';
import type { PolicyDoc } from '../policy/schema.js';
import {
  type AdminOptions,
  type AdminServer,
  type ApprovalDesk,
  type BudgetDesk,
  type ConnectionDesk,
  startAdmin,
} from './api.js';
import { SHARED_ADMIN } from './operators.js';

/**
 * The admin port (API, metrics, dashboard) as the policy configures it. Its tokens (the shared one and
 * each operator's) are secret references, read once; their values are learnt by the redactor so no
 * log line or answer can carry them. Approval requests are announced to the alert webhooks with a
 * link to their dashboard page.
 */
export async function startAdminPort(o: {
  port: number;
  host?: string;
  doc: PolicyDoc;
  env: NodeJS.ProcessEnv;
  controller: Controller;
  observers: Observers;
  reloadSpec: (actor: string, api?: string) => Promise<{ tools: number; pending: string[] }>;
  /** In an API set: each API and whether it is served. */
  apis?: AdminOptions['apis'];
  onControl: (e: ControlEvent) => void;
  addSecrets: (values: readonly string[]) => void;
  /** The redactor's text pass, for what operators type (a decision's reason). */
  redact?: (s: string) => string;
  auditFile: string;
  logger: Logger;
  /** `/healthz` and `/readyz`, answered before the token is asked for. */
  health?: Health;
  /** Out-of-band approvals: the `/approvals` routes and their webhook notices. */
  approvals?: ApprovalDesk & {
    onRequested(listener: (r: ApprovalRequest) => void): void;
  };
  /** Per-user OAuth: the `/connections` routes (list, revoke). */
  connections?: ConnectionDesk;
  /** Blast-radius budgets: the `/restricted` routes (list, lift). */
  budgets?: BudgetDesk;
}): Promise<AdminServer> {
  const cfg = o.doc.admin;
  if (!cfg?.token)
    throw new WardenError(
      'CONFIG_INVALID',
      'the admin API needs `admin.token` (a secret reference) in the policy',
    );
  const token = requireSecret(cfg.token, o.env, 'admin.token').toString('utf8');
  const operators = (cfg.operators ?? []).map((op, i) => ({
    id: op.id,
    token: requireSecret(op.token, o.env, `admin.operators[${i}].token`).toString('utf8'),
  }));
  o.addSecrets([token, ...operators.map((op) => op.token)]);
  distinctTokens([{ id: SHARED_ADMIN, token }, ...operators]);
  // /metrics can be scraped from now on: runtime metrics from the start of serving, not the first scrape.
  o.observers.metrics.startRuntimeMetrics();
  const admin = await startAdmin({
    controller: o.controller,
    metrics: o.observers.metrics,
    metricsPublic: cfg.metricsPublic ?? false,
    reloadSpec: o.reloadSpec,
    ...(o.apis ? { apis: o.apis } : {}),
    token,
    port: o.port,
    host: o.host ?? cfg.host ?? '127.0.0.1',
    logger: o.logger,
    onControl: o.onControl,
    onAuthFailure: (code, source) => o.observers.adminAuthFailure(code, source),
    series: o.observers.series,
    alerts: o.observers.alerts,
    auditFile: o.auditFile,
    operators,
    ...(o.redact ? { redact: o.redact } : {}),
    ...(o.health ? { health: o.health } : {}),
    ...(o.approvals ? { approvals: o.approvals } : {}),
    ...(o.connections ? { connections: o.connections } : {}),
    ...(o.budgets ? { budgets: o.budgets } : {}),
  });
  o.logger.info({ url: admin.url }, `admin API: ${admin.url}`);
  const base = cfg.publicUrl ?? admin.url;
  o.approvals?.onRequested((r) => o.observers.alerts.notify(approvalNotice(r, approvalLink(base, r.id))));
  return admin;
}

/**
 * One token, one identity: a token shared by two operators (or with the shared admin token) would
 * make the approver a guess, and the two-person rule a formality.
 */
function distinctTokens(tokens: ReadonlyArray<{ id: string; token: string }>): void {
  const seen = new Map<string, string>();
  for (const t of tokens) {
    const other = seen.get(t.token);
    if (other !== undefined)
      throw new WardenError(
        'CONFIG_INVALID',
        `admin tokens must differ: ${t.id === SHARED_ADMIN ? 'admin.token' : `operator ${t.id}`} has the same token as ${other === SHARED_ADMIN ? 'admin.token' : `operator ${other}`}`,
      );
    seen.set(t.token, t.id);
  }
}
