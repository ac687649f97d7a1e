import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditRecord } from '../model/audit.js';
import type { CallContext } from '../pipeline/context.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The gateway's Prometheus metrics (served at `/metrics` on the admin port). Labels are bounded by
 * construction: tool names come from the catalogue (an unknown name is `(unknown)`), API names from
 * the configured API set (only on a known tool's series; absent for a single spec), codes from the
 * error table; principals are never a label (they are unbounded), alerts track them instead.
 */
export class Metrics {
  readonly registry = new Registry();
  /**
   * Per-call counts not yet in prom-client, by label object (one per series, made once): a call adds
   * to a map entry, and prom-client's `collect` hook (run by every read of the metric: a scrape, the
   * dashboard) adds them, so what is read is always complete while a call skips its label hashing.
   */
  private readonly pendingCalls = new Map<Record<string, string>, number>();
  private readonly pendingResponses = new Map<Record<string, string>, number>();
  private readonly calls: Counter = new Counter({
    name: 'mcp_warden_tool_calls_total',
    help: 'Tool calls by tool, decision and outcome code.',
    labelNames: ['tool', 'api', 'decision', 'code'],
    registers: [this.registry],
    collect: () => flush(this.calls, this.pendingCalls),
  });
  private readonly callSeconds = new Histogram({
    name: 'mcp_warden_call_duration_seconds',
    help: 'Gateway time per tool call, upstream included.',
    labelNames: ['tool', 'api'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly upstreamSeconds = new Histogram({
    name: 'mcp_warden_upstream_duration_seconds',
    help: 'Upstream response time per tool call.',
    labelNames: ['tool', 'api'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly upstreamResponses: Counter = new Counter({
    name: 'mcp_warden_upstream_responses_total',
    help: 'Upstream responses by tool and status class (2xx, 4xx, 5xx…).',
    labelNames: ['tool', 'api', 'class'],
    registers: [this.registry],
    collect: () => flush(this.upstreamResponses, this.pendingResponses),
  });
  private readonly redactions = new Counter({
    name: 'mcp_warden_redactions_total',
    help: 'Values masked, dropped or redacted before reaching the agent or the audit, by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly injectionSuspected = new Counter({
    name: 'mcp_warden_injection_suspected_total',
    help: 'Responses with fields that looked like instructions aimed at the agent, by what was done (annotate, redact, withhold).',
    labelNames: ['action'],
    registers: [this.registry],
  });
  private readonly taint = new Counter({
    name: 'mcp_warden_taint_total',
    help: 'Taint guard: reads that tainted their caller (read), outward calls it refused, parked, or that ran once an operator approved them.',
    labelNames: ['event'],
    registers: [this.registry],
  });
  readonly auditWriteSeconds = new Histogram({
    name: 'mcp_warden_audit_write_duration_seconds',
    help: 'Time to append one audit record.',
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  readonly auditFailures = new Counter({
    name: 'mcp_warden_audit_write_failures_total',
    help: 'Audit records that could not be written.',
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'mcp_warden_auth_failures_total',
    help: 'HTTP requests refused before MCP, by code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly adminAuthFailures = new Counter({
    name: 'mcp_warden_admin_auth_failures_total',
    help: 'Admin-port requests refused for their token: wrong (ADMIN_DENIED) or from a throttled address (ADMIN_THROTTLED).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly controlChanges = new Counter({
    name: 'mcp_warden_control_changes_total',
    help: 'Control-plane changes (policy, toggles, kill switch, approvals).',
    labelNames: ['action'],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'mcp_warden_rate_limited_total',
    help: 'Calls refused by a rate limit, by scope (tool, principal, tool-principal).',
    labelNames: ['scope'],
    registers: [this.registry],
  });
  readonly budgetRestrictions = new Counter({
    name: 'mcp_warden_budget_restrictions_total',
    help: 'Callers switched to read-only because they hit a budget, by budget name.',
    labelNames: ['budget'],
    registers: [this.registry],
  });
  readonly breakerState = new Gauge({
    name: 'mcp_warden_breaker_open',
    help: 'Circuit breakers: 1 open, 0.5 half-open, 0 closed; by breaker (origin:… or tool:…).',
    labelNames: ['breaker'],
    registers: [this.registry],
  });
  readonly stateDegraded = new Gauge({
    name: 'mcp_warden_state_degraded',
    help: '1 while the shared state (Redis) is unreachable.',
    registers: [this.registry],
  });
  readonly alertsFired = new Counter({
    name: 'mcp_warden_alerts_fired_total',
    help: 'Alerts fired, by rule.',
    labelNames: ['rule'],
    registers: [this.registry],
  });

  constructor(private readonly knownTools: () => ReadonlySet<string>) {}

  private runtimeStarted = false;
  /**
   * Starts the process and runtime metrics (`mcp_warden_process_*`, `mcp_warden_nodejs_*`) once
   * something can read them: the admin port calls this when it opens, and `text()` before its first
   * answer. Not at construction, because their event-loop-delay monitor wakes the process 100 times
   * a second, and a stdio gateway with no admin port would pay that while idle for nobody.
   */
  startRuntimeMetrics(): void {
    if (this.runtimeStarted) return;
    this.runtimeStarted = true;
    collectDefaultMetrics({ register: this.registry, prefix: 'mcp_warden_' });
  }

  /** Label objects per tool series, made once (bounded: catalogue tools × codes × status classes). */
  private readonly labelSets = new Map<string, ToolLabels>();

  /** Called once per audited tool call. */
  observeCall(ctx: CallContext, record: AuditRecord | undefined): void {
    const known = typeof ctx.input.name === 'string' && this.knownTools().has(ctx.input.name);
    const name = known ? (ctx.input.name as string) : '(unknown)';
    // The API comes from the catalogue's tool, never from what the caller sent.
    const api = known ? ctx.tool?.api : undefined;
    const labels = this.labelsFor(name, api);
    const decision = record?.decision ?? (ctx.error ? 'denied' : 'allowed');
    count(this.pendingCalls, labels.call(decision, ctx.error?.code ?? 'OK'));
    this.callSeconds.observe(labels.tool, ((ctx.endedAt ?? performance.now()) - ctx.startedAt) / 1000);
    if (ctx.response) {
      this.upstreamSeconds.observe(labels.tool, ctx.response.ms / 1000);
      count(this.pendingResponses, labels.status(`${Math.floor(ctx.response.status / 100)}xx`));
    }
    if (ctx.redactions)
      for (const [kind, n] of Object.entries(ctx.redactions)) this.redactions.inc({ kind }, n);
    if (ctx.untrusted?.flagged.length) this.injectionSuspected.inc({ action: ctx.untrusted.action });
    if (ctx.taints) this.taint.inc({ event: 'read' });
    if (ctx.taintedBy) {
      // Parked is the moment the call waits (APPROVAL_PENDING); approved, a call that ran once an
      // operator approved it, whatever the upstream then answered; a denied or expired request is neither.
      const code = ctx.error?.code;
      const event =
        code === 'TAINT_BLOCKED'
          ? 'refused'
          : code === 'APPROVAL_PENDING'
            ? 'parked'
            : ctx.confirmed?.via === 'operator' &&
                ctx.confirmed.approval !== undefined &&
                !code?.startsWith('APPROVAL_')
              ? 'approved'
              : undefined;
      if (event) this.taint.inc({ event });
    }
  }

  private labelsFor(tool: string, api: string | undefined): ToolLabels {
    const key = api === undefined ? tool : `${tool}\0${api}`;
    let labels = this.labelSets.get(key);
    if (!labels) {
      labels = toolLabels(api === undefined ? { tool } : { tool, api });
      this.labelSets.set(key, labels);
    }
    return labels;
  }

  text(): Promise<string> {
    this.startRuntimeMetrics();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** One tool series' label objects: its own, and per decision and code, per status class. */
interface ToolLabels {
  tool: { tool: string; api?: string };
  call(decision: string, code: string): Record<string, string>;
  status(cls: string): Record<string, string>;
}

function toolLabels(tool: { tool: string; api?: string }): ToolLabels {
  const calls = new Map<string, Record<string, string>>();
  const statuses = new Map<string, Record<string, string>>();
  return {
    tool,
    call(decision, code) {
      const key = `${decision} ${code}`;
      let l = calls.get(key);
      if (!l) {
        l = { ...tool, decision, code };
        calls.set(key, l);
      }
      return l;
    },
    status(cls) {
      let l = statuses.get(cls);
      if (!l) {
        l = { ...tool, class: cls };
        statuses.set(cls, l);
      }
      return l;
    },
  };
}

function count(pending: Map<Record<string, string>, number>, labels: Record<string, string>): void {
  pending.set(labels, (pending.get(labels) ?? 0) + 1);
}

/** Adds the counts kept since the last read to the counter (its `collect` hook). */
function flush(counter: Counter, pending: Map<Record<string, string>, number>): void {
  for (const [labels, n] of pending) counter.inc(labels, n);
  pending.clear();
}
