import { shownPaths } from '../lib/shown-paths.js';
import type { CallContext } from '../pipeline/context.js';
import { type AlertsDoc, effectiveAlerts } from '../policy/schema.js';
import type { Restriction } from '../state/budgets.js';
import type { Logger } from './log.js';
import { type DeliveryOptions, Webhooks } from './webhooks.js';

export interface Alert {
  rule:
    | 'errorRate'
    | 'deniedRate'
    | 'volume'
    | 'adminAuthFailures'
    | 'firstUse'
    | 'auditFailing'
    | 'breakerOpen'
    | 'stateDegraded'
    | 'budgetExceeded'
    | 'injectionSuspected'
    | 'taintBlocked';
  subject: string;
  message: string;
  value?: number;
  threshold?: number;
  time: string;
}

/** An alert as the dashboard lists it: numbered, and acknowledged once an operator has seen it. */
export interface FiredAlert extends Alert {
  id: number;
  acknowledged?: { by: string; at: string };
}

/** Fired alerts kept for the dashboard (oldest dropped first). */
const HISTORY = 500;

export interface AlertsOptions {
  /** The `alerts:` section as parsed; absent: every rule with its defaults. */
  config: AlertsDoc | undefined;
  logger: Logger;
  onFire?: (a: Alert) => void;
  /** Principal × tool pairs already seen (from the audit), so a restart does not re-announce them. */
  seenPairs?: Iterable<string>;
  now?: () => number;
  /** Webhook retries and the shutdown limit (defaults in `DELIVERY_DEFAULTS`). */
  delivery?: DeliveryOptions;
}

/**
 * A count over a sliding window, kept in ten buckets of a tenth of the window each: memory per key is
 * constant. Buckets are counted from `origin`, so a window that starts at `origin` is whole buckets.
 */
class Window {
  private readonly counts = new Float64Array(10);
  private readonly bucketMs: number;
  private current = 0;
  private at: number | undefined;

  constructor(
    windowMs: number,
    private readonly origin = 0,
  ) {
    this.bucketMs = Math.max(1, windowMs / 10);
  }

  add(now: number, n = 1): void {
    this.roll(now);
    this.counts[this.current]! += n;
  }

  /** Calls in the bucket of `now` and the nine before it. */
  total(now: number): number {
    this.roll(now);
    const c = this.counts;
    let t = 0;
    for (let i = 0; i < 10; i++) t += c[i]!;
    return t;
  }

  private roll(now: number): void {
    const slot = Math.floor((now - this.origin) / this.bucketMs);
    // A clock that steps back counts into the current bucket: a bucket is never reused for the past.
    if (this.at !== undefined && slot <= this.at) return;
    const steps = this.at === undefined ? 0 : Math.min(10, slot - this.at);
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % 10;
      this.counts[this.current] = 0;
    }
    this.at = slot;
  }
}

/** Whole windows a principal's volume is compared with. */
const BASELINE_WINDOWS = 12;

/**
 * One principal's volume: its calls over the last window (sliding), and its baseline, the busiest of
 * its last 12 whole windows. Windows are counted from the principal's first call and every call lands
 * in exactly one of them, so a caller that repeats the same work every few minutes (up to every 12
 * windows) has a baseline equal to one round of that work, and is never "far above" it. After 12
 * windows without a call there is no baseline left and it starts over, like a new principal.
 */
class Volume {
  private readonly recent: Window;
  private readonly whole: number[] = [];
  /** The largest of `whole`, kept as `whole` changes (once per window, not per call). */
  private busiest: number | undefined;
  private index = 0;
  private count = 0;

  constructor(
    private readonly span: number,
    private readonly origin: number,
  ) {
    this.recent = new Window(span, origin);
  }

  /** Whether a call at `now` would find only empty windows to compare with (idle for 12 windows). */
  idle(now: number): boolean {
    return Math.floor((now - this.origin) / this.span) - this.index > BASELINE_WINDOWS;
  }

  /** Counts a call at `now`: the calls over the last window, and the baseline (none before a whole window). */
  add(now: number): { recent: number; baseline: number | undefined } {
    const index = Math.floor((now - this.origin) / this.span);
    if (index > this.index) {
      this.whole.push(this.count);
      // Windows without a call count as 0; more than the baseline keeps cannot matter.
      for (let i = Math.min(index - this.index - 1, BASELINE_WINDOWS); i > 0; i--) this.whole.push(0);
      if (this.whole.length > BASELINE_WINDOWS) this.whole.splice(0, this.whole.length - BASELINE_WINDOWS);
      this.busiest = Math.max(...this.whole);
      this.index = index;
      this.count = 0;
    }
    this.count++;
    this.recent.add(now);
    return { recent: this.recent.total(now), baseline: this.busiest };
  }
}

const UPSTREAM_FAILURES = new Set([
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_STATUS',
  'UPSTREAM_REDIRECT',
  'UPSTREAM_TOO_LARGE',
  'UPSTREAM_SCHEMA_MISMATCH',
  'INTERNAL',
]);
const MAX_KEYS = 50_000;

/**
 * Alert rules over the stream of calls. Each rule tracks a condition per subject (a tool, a
 * principal, a pair); an alert fires when a condition starts to hold, once, and again only after
 * it has cleared and the cooldown has passed. Alerts go to the log, to metrics, and to webhooks
 * (generic JSON or Slack-compatible, retried in the background), never carrying arguments or results.
 */
export class Alerts {
  private readonly cfg: AlertsDoc;
  private readonly now: () => number;
  private readonly webhooks: Webhooks;
  private readonly firing = new Map<string, { on: boolean; last: number }>();
  private readonly toolCalls = new Map<string, { all: Window; failed: Window }>();
  private readonly denied = new Map<string, Window>();
  private readonly volume = new Map<string, Volume>();
  private adminRefusals: Window | undefined;
  private readonly seen = new Set<string>();
  private readonly fired: FiredAlert[] = [];
  private nextId = 1;
  /** Per principal: when a taintBlocked alert last fired. */
  private readonly taintSeen = new Map<string, number>();
  /** Per tool: when an injectionSuspected alert last fired. */
  private readonly injectionSeen = new Map<string, number>();

  constructor(private readonly o: AlertsOptions) {
    this.cfg = effectiveAlerts(o.config);
    this.now = o.now ?? Date.now;
    this.webhooks = new Webhooks(this.cfg.webhooks ?? [], o.logger, o.delivery);
    for (const p of o.seenPairs ?? []) if (this.seen.size < MAX_KEYS) this.seen.add(p);
  }

  observe(ctx: CallContext): void {
    const now = this.now();
    const principal = ctx.input.principal.id;
    const tool = ctx.tool?.name;
    const code = ctx.error?.code;
    const denied =
      code !== undefined &&
      !UPSTREAM_FAILURES.has(code) &&
      code !== 'CANCELLED' &&
      code !== 'CREDENTIAL_MISSING';
    if (tool && !denied) this.errorRate(now, tool, code);
    this.deniedRate(now, principal, denied);
    this.volumeOf(now, principal);
    if (this.cfg.injectionSuspected && tool && ctx.untrusted?.flagged.length) this.injection(now, tool, ctx);
    // Refused or parked by the guard itself, not a call that ran once approved and then failed.
    if (this.cfg.taintBlocked && ctx.taintedBy && (code === 'TAINT_BLOCKED' || code === 'APPROVAL_PENDING'))
      this.taint(now, principal, ctx);
    if (this.cfg.firstUse && tool && !ctx.error) {
      const pair = `${principal}\0${tool}`;
      if (!this.seen.has(pair)) {
        if (this.seen.size < MAX_KEYS) this.seen.add(pair);
        this.fire({
          rule: 'firstUse',
          subject: `${principal} → ${tool}`,
          message: `${principal} used ${tool} for the first time`,
        });
      }
    }
  }

  /** The taint guard stopped an outward call: once per principal per cooldown. */
  private taint(now: number, principal: string, ctx: CallContext): void {
    const last = this.taintSeen.get(principal);
    if (last !== undefined && now - last < this.cfg.cooldownSeconds * 1000) return;
    if (last === undefined && this.taintSeen.size >= MAX_KEYS) return;
    this.taintSeen.set(principal, now);
    const t = ctx.taintedBy!;
    this.fire({
      rule: 'taintBlocked',
      subject: principal,
      message: `${principal} called ${ctx.tool?.name} after reading ${t.classes.join(', ')} from ${t.tool} (call ${t.callId}): ${t.action === 'refuse' ? 'refused' : 'parked for an operator'}`,
    });
  }

  /** A response that looked like instructions aimed at the agent: once per tool per cooldown. */
  private injection(now: number, tool: string, ctx: CallContext): void {
    const last = this.injectionSeen.get(tool);
    if (last !== undefined && now - last < this.cfg.cooldownSeconds * 1000) return;
    if (last === undefined && this.injectionSeen.size >= MAX_KEYS) return;
    this.injectionSeen.set(tool, now);
    const u = ctx.untrusted!;
    this.fire({
      rule: 'injectionSuspected',
      subject: tool,
      message: `${tool} returned ${u.flagged.length} field(s) that look like instructions aimed at the agent (${shownPaths(
        u.flagged,
        3,
        'the body',
      ).join(', ')}; ${u.action}) to ${ctx.input.principal.id}`,
      value: u.flagged.length,
    });
  }

  private errorRate(now: number, tool: string, code: string | undefined): void {
    const er = this.cfg.errorRate;
    if (!er) return;
    const w = getOr(this.toolCalls, tool, () => ({
      all: new Window(er.windowSeconds * 1000),
      failed: new Window(er.windowSeconds * 1000),
    }));
    w.all.add(now);
    if (code && UPSTREAM_FAILURES.has(code)) w.failed.add(now);
    const total = w.all.total(now);
    const ratio = total ? w.failed.total(now) / total : 0;
    this.condition(
      'errorRate',
      tool,
      total >= er.minCalls && ratio >= er.ratio,
      () => `${tool}: ${Math.round(ratio * 100)}% of its last ${total} calls failed upstream`,
      ratio,
      er.ratio,
    );
  }

  private deniedRate(now: number, principal: string, denied: boolean): void {
    const dr = this.cfg.deniedRate;
    if (!dr) return;
    const w = getOr(this.denied, principal, () => new Window(dr.windowSeconds * 1000));
    if (denied) w.add(now);
    const n = w.total(now);
    this.condition(
      'deniedRate',
      principal,
      n >= dr.count,
      () => `${principal}: ${n} denied calls in ${dr.windowSeconds} s`,
      n,
      dr.count,
    );
  }

  private volumeOf(now: number, principal: string): void {
    const vr = this.cfg.volume;
    if (!vr) return;
    const span = vr.windowSeconds * 1000;
    let v = this.volume.get(principal);
    if (!v || v.idle(now)) {
      if (!v && this.volume.size >= MAX_KEYS) this.volume.clear();
      v = new Volume(span, now);
      this.volume.set(principal, v);
    }
    const { recent, baseline } = v.add(now);
    this.condition(
      'volume',
      principal,
      baseline !== undefined && recent >= vr.minCalls && recent > vr.factor * Math.max(baseline, 1),
      () =>
        `${principal}: ${recent} calls in ${vr.windowSeconds} s, over ${vr.factor}× its busiest recent window (${baseline ?? 0})`,
      recent,
      vr.factor,
    );
  }

  /** A wrong or throttled admin token (from `source`, an address): a burst of them is an alert. */
  adminAuthFailed(source: string): void {
    const ar = this.cfg.adminAuthFailures;
    if (!ar) return;
    const now = this.now();
    this.adminRefusals ??= new Window(ar.windowSeconds * 1000);
    this.adminRefusals.add(now);
    const n = this.adminRefusals.total(now);
    this.condition(
      'adminAuthFailures',
      'admin',
      n >= ar.count,
      `${n} refused admin tokens in ${ar.windowSeconds} s (the last from ${source})`,
      n,
      ar.count,
    );
  }

  auditFailed(): void {
    if (!this.cfg.auditFailing) return;
    // The condition clears on its own after the cooldown; repeated failures within it stay one alert.
    this.condition(
      'auditFailing',
      'audit',
      true,
      'the audit sink cannot be written; calls are failing closed',
    );
    const key = 'auditFailing\0audit';
    const s = this.firing.get(key);
    if (s) s.on = false;
  }

  /** A breaker opened (fires once per opening) or closed again (re-arms). */
  breaker(name: string, state: 'closed' | 'open' | 'half-open'): void {
    if (state === 'half-open') return;
    this.condition(
      'breakerOpen',
      name,
      state === 'open',
      `circuit breaker ${name} opened: the upstream keeps failing`,
    );
  }

  /** A caller hit a budget and was switched to read-only: fires once per restriction (no cooldown). */
  budgetExceeded(r: Restriction): void {
    if (!this.cfg.budgetExceeded) return;
    this.fire({
      rule: 'budgetExceeded',
      subject: r.principal,
      message: `${r.principal} hit the budget "${r.budget}" (${r.limit} ${r.unit} per ${r.perSeconds} s) calling ${r.tool}: read-only until an operator lifts it`,
      value: r.used,
      threshold: r.limit,
    });
  }

  /** The shared state (Redis) became unreachable, or came back. */
  stateDegraded(degraded: boolean): void {
    this.condition(
      'stateDegraded',
      'redis',
      degraded,
      'the shared state (Redis) is unreachable: writes fail closed',
    );
  }

  /**
   * Resolves when every webhook delivery started so far has ended, or after the flush limit (2 s by
   * default), when the deliveries still in flight are given up: shutdown is never held longer.
   */
  flush(): Promise<void> {
    return this.webhooks.flush();
  }

  private condition(
    rule: Alert['rule'],
    subject: string,
    holds: boolean,
    message: string | (() => string),
    value?: number,
    threshold?: number,
  ): void {
    // Nothing held and nothing is tracked: nothing to clear (every call checks three conditions).
    if (!holds && this.firing.size === 0) return;
    const key = `${rule}\0${subject}`;
    let s = this.firing.get(key);
    if (!s) {
      if (!holds) return;
      if (this.firing.size >= MAX_KEYS) this.firing.clear();
      s = { on: false, last: Number.NEGATIVE_INFINITY };
      this.firing.set(key, s);
    }
    if (!holds) {
      s.on = false;
      return;
    }
    if (s.on || this.now() - s.last < this.cfg.cooldownSeconds * 1000) return;
    s.on = true;
    s.last = this.now();
    this.fire({
      rule,
      subject,
      // Built only when it fires.
      message: typeof message === 'function' ? message() : message,
      ...(value !== undefined ? { value } : {}),
      ...(threshold !== undefined ? { threshold } : {}),
    });
  }

  /**
   * Posts a notice that is not an alert (an approval waiting for an operator) to the same webhooks,
   * with the same retries and the same bounded flush at shutdown.
   */
  notify(body: { generic: object; slackText: string }): void {
    this.webhooks.post(body);
  }

  /** Fired alerts, newest first. */
  list(): readonly FiredAlert[] {
    return [...this.fired].reverse();
  }

  /** Marks an alert as seen; undefined when no such alert is kept. Acknowledging twice keeps the first. */
  acknowledge(id: number, by: string): FiredAlert | undefined {
    const a = this.fired.find((f) => f.id === id);
    if (a && !a.acknowledged) a.acknowledged = { by, at: new Date(this.now()).toISOString() };
    return a;
  }

  private fire(a: Omit<Alert, 'time'>): void {
    const alert: Alert = { ...a, time: new Date(this.now()).toISOString() };
    this.fired.push({ id: this.nextId++, ...alert });
    if (this.fired.length > HISTORY) this.fired.shift();
    this.o.logger.warn({ alert: alert.rule, subject: alert.subject }, `alert: ${alert.message}`);
    this.o.onFire?.(alert);
    this.webhooks.post({
      generic: { source: 'mcp-warden', ...alert },
      slackText: `:rotating_light: mcp-warden ${alert.rule}: ${alert.message}`,
    });
  }
}

function getOr<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    if (m.size >= MAX_KEYS) m.clear();
    v = make();
    m.set(k, v);
  }
  return v;
}
