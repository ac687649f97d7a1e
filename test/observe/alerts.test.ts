import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type Alert, Alerts } from '../../src/observe/alerts.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { parsePolicy } from '../../src/policy/load.js';
import { type AlertsDoc, alertsSchema } from '../../src/policy/schema.js';

const silent = pino({ level: 'silent' });
const MIN = 60_000;

/** One call as the pipeline leaves it: who, which tool, and the code it ended with (none: success). */
function call(principal: string, tool: string, code?: string): CallContext {
  return {
    input: { name: tool, arguments: {}, principal: { id: principal, scopes: [], via: 'stdio' } },
    tool: { name: tool },
    ...(code ? { error: { code } } : {}),
  } as unknown as CallContext;
}

/** Alerts on a clock the test moves; every fired alert is kept in order. */
function clocked(config: AlertsDoc | undefined, start = Date.UTC(2026, 10, 30, 12, 0, 0)) {
  const fired: Alert[] = [];
  const clock = { t: start };
  const alerts = new Alerts({ config, logger: silent, now: () => clock.t, onFire: (a) => fired.push(a) });
  const at = (t: number, ctx: CallContext) => {
    clock.t = t;
    alerts.observe(ctx);
  };
  return { alerts, fired, clock, at, of: (rule: Alert['rule']) => fired.filter((a) => a.rule === rule) };
}

/** One cron job: every `periodMs` from `start`, `calls` calls spread over `spreadMs`, `rounds` times. */
interface Job {
  start: number;
  periodMs: number;
  calls: number;
  spreadMs: number;
  rounds: number;
  who?: string;
}

/** The calls of cron jobs in time order; each round starts a little after its tick (as real jobs do). */
function cronCalls(...jobs: Job[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (const j of jobs)
    for (let r = 0; r < j.rounds; r++)
      for (let i = 0; i < j.calls; i++)
        out.push([
          j.start + r * j.periodMs + 350 + Math.floor((i * j.spreadMs) / j.calls),
          j.who ?? 'nightly-sync',
        ]);
  return out.sort((a, b) => a[0] - b[0]);
}

/** Replays cron jobs; returns when the first job's next round would start. */
function cron(at: (t: number, ctx: CallContext) => void, ...jobs: Job[]): number {
  for (const [t, who] of cronCalls(...jobs)) at(t, call(who, 'listOrders'));
  return jobs[0]!.start + jobs[0]!.rounds * jobs[0]!.periodMs;
}

const DEFAULTS = alertsSchema.parse({});
/** The volume rule named with its default thresholds (what every policy gets, named or not). */
const VOLUME = alertsSchema.parse({ volume: {} });

describe('the volume rule at its documented defaults (300 s windows, 10×, 200 calls)', () => {
  it('uses the defaults the docs show', () => {
    expect(VOLUME.volume).toEqual({ windowSeconds: 300, factor: 10, minCalls: 200 });
    expect(VOLUME.cooldownSeconds).toBe(300);
  });

  const jobs = [
    {
      name: 'every 5 minutes, 250 calls in 20 s',
      periodMs: 5 * MIN,
      calls: 250,
      spreadMs: 20_000,
      rounds: 48,
    },
    {
      name: 'every 2 minutes, 120 calls in 10 s',
      periodMs: 2 * MIN,
      calls: 120,
      spreadMs: 10_000,
      rounds: 120,
    },
    { name: 'every minute, 220 calls in 50 s', periodMs: MIN, calls: 220, spreadMs: 50_000, rounds: 240 },
    {
      name: 'every 15 minutes, 400 calls in 2 min',
      periodMs: 15 * MIN,
      calls: 400,
      spreadMs: 2 * MIN,
      rounds: 16,
    },
    {
      name: 'every 55 minutes, 300 calls in 40 s',
      periodMs: 55 * MIN,
      calls: 300,
      spreadMs: 40_000,
      rounds: 8,
    },
    {
      name: 'once a day, 5000 calls in 4 min',
      periodMs: 1440 * MIN,
      calls: 5000,
      spreadMs: 4 * MIN,
      rounds: 4,
    },
  ];
  for (const job of jobs)
    it(`never alerts on a cron job that repeats the same calls (${job.name})`, () => {
      const { at, clock, of } = clocked(VOLUME);
      cron(at, { start: clock.t, ...job });
      expect(of('volume')).toEqual([]);
    });

  it('alerts exactly once on a real surge, and not again when the job goes back to normal', () => {
    const { at, clock, of } = clocked(VOLUME);
    const job = { periodMs: 5 * MIN, calls: 250, spreadMs: 20_000 };
    let t = cron(at, { start: clock.t, ...job, rounds: 24 });
    // A loop: 3000 calls in two minutes, over 10× the busiest window (250).
    for (let i = 0; i < 3000; i++) at(t + 1000 + i * 40, call('nightly-sync', 'listOrders'));
    t = cron(at, { start: t + 5 * MIN, ...job, rounds: 36 });
    const volume = of('volume');
    expect(volume).toHaveLength(1);
    expect(volume[0]).toMatchObject({ subject: 'nightly-sync', threshold: 10 });
    expect(volume[0]!.value).toBeGreaterThan(2500);
    expect(volume[0]!.message).toContain('its busiest recent window (250)');
  });

  it('keeps principals apart: one caller’s surge is not another’s', () => {
    const { at, clock, of } = clocked(VOLUME);
    const t = cron(
      at,
      { start: clock.t, periodMs: 5 * MIN, calls: 250, spreadMs: 20_000, rounds: 6 },
      { start: clock.t, periodMs: 5 * MIN, calls: 20, spreadMs: 20_000, rounds: 6, who: 'small' },
    );
    for (let i = 0; i < 2600; i++) at(t + i * 10, call('small', 'listOrders'));
    expect(of('volume').map((a) => a.subject)).toEqual(['small']);
  });
});

describe('alert rules keep their defaults unless turned off', () => {
  /** The `alerts:` section of a policy, parsed as the gateway parses it. */
  const section = (yaml: string) => parsePolicy(`version: 1\nalerts:\n${yaml}`, 'w.yaml').doc.alerts;

  /** Drives every rate rule past its default threshold. */
  function breach(at: (t: number, ctx: CallContext) => void, start: number): void {
    for (let i = 0; i < 25; i++) at(start + i, call('mallory', 'deleteCustomer', 'DENIED_SCOPE'));
    for (let i = 0; i < 25; i++) at(start + 100 + i, call('ci', 'getOrder', 'UPSTREAM_STATUS'));
    // One quiet window, then a flood: 10× above it and over 200 calls.
    at(start + 1000, call('loop', 'searchProducts'));
    for (let i = 0; i < 300; i++) at(start + 6 * MIN + i, call('loop', 'searchProducts'));
  }

  it('fires the default rules when `alerts:` names only webhooks', () => {
    const cfg = section('  webhooks:\n    - { url: "http://127.0.0.1:9/hook" }\n');
    expect(cfg).toMatchObject({
      errorRate: DEFAULTS.errorRate,
      deniedRate: DEFAULTS.deniedRate,
      volume: DEFAULTS.volume,
    });
    const { at, clock, of } = clocked({ ...cfg!, webhooks: [] });
    breach(at, clock.t);
    expect(of('deniedRate').map((a) => a.subject)).toEqual(['mallory']);
    expect(of('errorRate').map((a) => a.subject)).toEqual(['getOrder']);
    expect(of('volume').map((a) => a.subject)).toEqual(['loop']);
    // The messages as they fire, with the values at the moment the condition began to hold.
    const denied = DEFAULTS.deniedRate as { count: number; windowSeconds: number };
    const errors = DEFAULTS.errorRate as { minCalls: number };
    expect(of('deniedRate').map((a) => a.message)).toEqual([
      `mallory: ${denied.count} denied calls in ${denied.windowSeconds} s`,
    ]);
    expect(of('errorRate').map((a) => a.message)).toEqual([
      `getOrder: 100% of its last ${errors.minCalls} calls failed upstream`,
    ]);
  });

  it('fires them too with no section at all, and with a section that tunes another rule', () => {
    for (const cfg of [
      undefined,
      section('  cooldownSeconds: 60\n'),
      section('  errorRate: { minCalls: 5 }\n'),
    ]) {
      const { at, clock, of } = clocked(cfg);
      breach(at, clock.t);
      expect(of('deniedRate')).toHaveLength(1);
      expect(of('volume')).toHaveLength(1);
      expect(of('errorRate')).toHaveLength(1);
    }
  });

  it('keeps a rule turned off with `false` off, and only that rule', () => {
    const cfg = section('  deniedRate: false\n  volume: false\n');
    expect(cfg).toMatchObject({ deniedRate: false, volume: false, errorRate: DEFAULTS.errorRate });
    const { at, clock, of } = clocked(cfg);
    breach(at, clock.t);
    expect(of('deniedRate')).toEqual([]);
    expect(of('volume')).toEqual([]);
    expect(of('errorRate')).toHaveLength(1);
  });

  it('refuses what is neither thresholds nor false (no silent default either way)', () => {
    for (const bad of ['  volume: true\n', '  volume: null\n', '  volume: off\n', '  volume: { factr: 3 }\n'])
      expect(() => section(bad), bad).toThrow(/alerts/);
  });
});

describe('admin token refusals', () => {
  it('alert once per burst, from any address, at the default threshold', () => {
    const { alerts, clock, of } = clocked(undefined);
    for (let i = 0; i < 19; i++) alerts.adminAuthFailed(`10.0.0.${i}`);
    expect(of('adminAuthFailures')).toEqual([]);
    for (let i = 0; i < 30; i++) alerts.adminAuthFailed('10.0.0.99');
    expect(of('adminAuthFailures')).toHaveLength(1);
    expect(of('adminAuthFailures')[0]!.message).toContain('refused admin tokens in 300 s');
    // Quiet for a window, then another burst after the cooldown: a second alert.
    clock.t += 11 * MIN;
    for (let i = 0; i < 20; i++) alerts.adminAuthFailed('10.0.0.7');
    expect(of('adminAuthFailures')).toHaveLength(2);
  });

  it('are not alerted when the rule is off', () => {
    const { alerts, of } = clocked(alertsSchema.parse({ adminAuthFailures: false }));
    for (let i = 0; i < 100; i++) alerts.adminAuthFailed('10.0.0.1');
    expect(of('adminAuthFailures')).toEqual([]);
  });
});
