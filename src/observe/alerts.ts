import { request } from 'undici';
import type { CallContext } from '../pipeline/context.js';
import type { AlertsDoc } from '../policy/schema.js';
import type { Logger } from './log.js';

export interface Alert {
  rule: 'errorRate' | 'deniedRate' | 'volume' | 'firstUse' | 'auditFailing' | 'breakerOpen' | 'stateDegraded';
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
  config: AlertsDoc | undefined;
  logger: Logger;
  onFire?: (a: Alert) => void;
  /** Principal × tool pairs already seen (from the audit), so a restart does not re-announce them. */
  seenPairs?: Iterable<string>;
  now?: () => number;
}

/** A count over a sliding window, kept in ten buckets: memory per key is constant. */
class Window {
  private readonly counts = new Float64Array(10);
  private readonly bucketMs: number;
  private current = 0;
  private at = 0;

  constructor(windowMs: number) {
    this.bucketMs = Math.max(1, windowMs / 10);
  }

  add(now: number, n = 1): void {
    this.roll(now);
    this.counts[this.current]! += n;
  }

  total(now: number): number {
    this.roll(now);
    let t = 0;
    for (const c of this.counts) t += c;
    return t;
  }

  private roll(now: number): void {
    const slot = Math.floor(now / this.bucketMs);
    if (this.at === 0) this.at = slot;
    const steps = Math.min(10, slot - this.at);
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % 10;
      this.counts[this.current] = 0;
    }
    this.at = slot;
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
 * (generic JSON or Slack-compatible), never carrying arguments or results.
 */
export class Alerts {
  private readonly cfg: Required<Pick<AlertsDoc, 'cooldownSeconds' | 'firstUse' | 'auditFailing'>> &
    AlertsDoc;
  private readonly now: () => number;
  private readonly firing = new Map<string, { on: boolean; last: number }>();
  private readonly toolCalls = new Map<string, { all: Window; failed: Window }>();
  private readonly denied = new Map<string, Window>();
  private readonly volume = new Map<string, { cur: Window; history: number[]; windowStart: number }>();
  private readonly seen = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private readonly fired: FiredAlert[] = [];
  private nextId = 1;

  constructor(private readonly o: AlertsOptions) {
    this.cfg = { cooldownSeconds: 300, firstUse: true, auditFailing: true, ...(o.config ?? {}) };
    this.now = o.now ?? Date.now;
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

    const er = this.cfg.errorRate;
    if (er && tool && !denied) {
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
        `${tool}: ${Math.round(ratio * 100)}% of its last ${total} calls failed upstream`,
        ratio,
        er.ratio,
      );
    }

    const dr = this.cfg.deniedRate;
    if (dr) {
      const w = getOr(this.denied, principal, () => new Window(dr.windowSeconds * 1000));
      if (denied) w.add(now);
      const n = w.total(now);
      this.condition(
        'deniedRate',
        principal,
        n >= dr.count,
        `${principal}: ${n} denied calls in ${dr.windowSeconds} s`,
        n,
        dr.count,
      );
    }

    const vr = this.cfg.volume;
    if (vr) {
      const span = vr.windowSeconds * 1000;
      const v = getOr(this.volume, principal, () => ({
        cur: new Window(span),
        history: [],
        windowStart: now,
      }));
      // Each full window's total joins the baseline (the last 12 windows).
      while (now - v.windowStart >= span) {
        v.history.push(v.cur.total(v.windowStart + span - 1));
        if (v.history.length > 12) v.history.shift();
        v.windowStart += span;
      }
      v.cur.add(now);
      const n = v.cur.total(now);
      const baseline = v.history.length ? v.history.reduce((a, b) => a + b, 0) / v.history.length : undefined;
      this.condition(
        'volume',
        principal,
        baseline !== undefined && n >= vr.minCalls && n > vr.factor * Math.max(baseline, 1),
        `${principal}: ${n} calls in ${vr.windowSeconds} s, ${vr.factor}× above its baseline of ${Math.round(baseline ?? 0)}`,
        n,
        vr.factor,
      );
    }

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

  /** The shared state (Redis) became unreachable, or came back. */
  stateDegraded(degraded: boolean): void {
    this.condition(
      'stateDegraded',
      'redis',
      degraded,
      'the shared state (Redis) is unreachable: writes fail closed',
    );
  }

  /** Resolves when every webhook delivery started so far has finished (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private condition(
    rule: Alert['rule'],
    subject: string,
    holds: boolean,
    message: string,
    value?: number,
    threshold?: number,
  ): void {
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
      message,
      ...(value !== undefined ? { value } : {}),
      ...(threshold !== undefined ? { threshold } : {}),
    });
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
    for (const hook of this.cfg.webhooks ?? []) {
      const body =
        hook.format === 'slack'
          ? { text: `:rotating_light: mcp-warden ${alert.rule}: ${alert.message}` }
          : { source: 'mcp-warden', ...alert };
      const p = request(hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: 5000,
        bodyTimeout: 5000,
      })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode >= 300)
            this.o.logger.warn({ status: res.statusCode }, 'alert webhook refused the alert');
        })
        .catch((e: Error) => this.o.logger.warn({ err: e.message }, 'alert webhook unreachable'))
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
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
