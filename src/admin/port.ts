import type { ControlEvent, Controller } from '../control/controller.js';
import { WardenError } from '../errors/index.js';
import { requireSecret } from '../lib/secret-ref.js';
import type { Health } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import type { Observers } from '../observe/observers.js';
import type { PolicyDoc } from '../policy/schema.js';
import { type AdminServer, startAdmin } from './api.js';

/**
 * The admin port (API, metrics, dashboard) as the policy configures it. Its token is a secret
 * reference, read once; its value is learnt by the redactor so no log line or answer can carry it.
 */
export async function startAdminPort(o: {
  port: number;
  host?: string;
  doc: PolicyDoc;
  env: NodeJS.ProcessEnv;
  controller: Controller;
  observers: Observers;
  reloadSpec: (actor: string) => Promise<{ tools: number; pending: string[] }>;
  onControl: (e: ControlEvent) => void;
  addSecrets: (values: readonly string[]) => void;
  auditFile: string;
  logger: Logger;
  /** `/healthz` and `/readyz`, answered before the token is asked for. */
  health?: Health;
}): Promise<AdminServer> {
  const cfg = o.doc.admin;
  if (!cfg?.token)
    throw new WardenError(
      'CONFIG_INVALID',
      'the admin API needs `admin.token` (a secret reference) in the policy',
    );
  const token = requireSecret(cfg.token, o.env, 'admin.token').toString('utf8');
  o.addSecrets([token]);
  const admin = await startAdmin({
    controller: o.controller,
    metrics: o.observers.metrics,
    metricsPublic: cfg.metricsPublic ?? false,
    reloadSpec: o.reloadSpec,
    token,
    port: o.port,
    host: o.host ?? cfg.host ?? '127.0.0.1',
    logger: o.logger,
    onControl: o.onControl,
    onAuthFailure: (code, source) => o.observers.adminAuthFailure(code, source),
    series: o.observers.series,
    alerts: o.observers.alerts,
    auditFile: o.auditFile,
    ...(o.health ? { health: o.health } : {}),
  });
  o.logger.info({ url: admin.url }, `admin API: ${admin.url}`);
  return admin;
}
