import { mappingOf } from '../errors/index.js';
import type { AuditRecord } from '../model/audit.js';
import type { CallContext } from '../pipeline/context.js';
import type { AlertsDoc } from '../policy/schema.js';
import type { Restriction } from '../state/budgets.js';
import { Alerts } from './alerts.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { CallSeries } from './series.js';

type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Metrics, the dashboard's series and alerts, told of the same events from one place, so each event
 * is counted, charted and alerted on alike. Built once at start-up; its methods are the hooks the
 * pipeline, the audit and the shared state call.
 */
export class Observers {
  readonly metrics: Metrics;
  readonly series = new CallSeries();
  readonly alerts: Alerts;

  constructor(
    private readonly o: {
      logger: Logger;
      alerts: AlertsDoc;
      /** Tool names served now (metrics label only these; anything else is `(unknown)`). */
      toolNames: () => ReadonlySet<string>;
      /** Principal × tool pairs already seen (first-use alerts survive a restart). */
      seenPairs: Iterable<string>;
    },
  ) {
    this.metrics = new Metrics(o.toolNames);
    this.alerts = new Alerts({
      config: o.alerts,
      logger: o.logger,
      onFire: (a) => this.metrics.alertsFired.inc({ rule: a.rule }),
      seenPairs: o.seenPairs,
    });
  }

  /** Every call, once audited. */
  call(ctx: CallContext, record: AuditRecord | undefined): void {
    this.metrics.observeCall(ctx, record);
    const outcome = !ctx.error ? 'ok' : mappingOf(ctx.error.code).audit === 'failed' ? 'error' : 'denied';
    this.series.observe(
      ctx.tool?.name ?? '(unknown)',
      (ctx.endedAt ?? performance.now()) - ctx.startedAt,
      outcome,
    );
    this.alerts.observe(ctx);
  }

  auditWrite(seconds: number): void {
    this.metrics.auditWriteSeconds.observe(seconds);
  }

  auditFailed(): void {
    this.metrics.auditFailures.inc();
    this.alerts.auditFailed();
  }

  breaker(name: string, state: BreakerState): void {
    this.metrics.breakerState.set({ breaker: name }, state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0);
    this.alerts.breaker(name, state);
    if (state === 'open') this.o.logger.warn({ breaker: name }, 'circuit breaker opened');
  }

  limited(scope: string): void {
    this.metrics.rateLimited.inc({ scope });
  }

  /** A caller hit a budget and this instance switched it to read-only (docs/budgets.md). */
  restricted(r: Restriction): void {
    this.metrics.budgetRestrictions.inc({ budget: r.budget });
    this.alerts.budgetExceeded(r);
    this.o.logger.warn(
      { principal: r.principal, budget: r.budget, tool: r.tool, id: r.callId },
      'caller hit a budget: switched to read-only until an operator lifts it',
    );
  }

  stateDegraded(degraded: boolean): void {
    this.metrics.stateDegraded.set(degraded ? 1 : 0);
    this.alerts.stateDegraded(degraded);
    if (degraded)
      this.o.logger.error('shared state (Redis) unreachable: writes fail closed, reads use local limits');
    else this.o.logger.warn('shared state (Redis) reachable again');
  }

  control(action: string): void {
    this.metrics.controlChanges.inc({ action });
  }

  authFailure(code: string): void {
    this.metrics.authFailures.inc({ code });
  }

  /** A wrong admin token, or any token from an address the admin port throttles (`source`). */
  adminAuthFailure(code: 'ADMIN_DENIED' | 'ADMIN_THROTTLED', source: string): void {
    this.metrics.adminAuthFailures.inc({ code });
    this.alerts.adminAuthFailed(source);
  }
}
