import { afterEach, describe, expect, it } from 'vitest';
import {
  OTHER_SOURCES,
  type Refusal,
  TokenGuard,
  WRONG_TOKENS_PER_MINUTE,
} from '../../src/admin/token-guard.js';

const guards: TokenGuard[] = [];
afterEach(() => {
  for (const g of guards.splice(0)) g.close();
});

function guarded() {
  const refused: Array<[Refusal, string]> = [];
  const tallies: Array<{ source: string; wrong: number; throttled: number; at: number }> = [];
  const clock = { t: 1_000_000 };
  const guard = new TokenGuard({
    onRefused: (code, source) => refused.push([code, source]),
    onTally: (source, n) => tallies.push({ source, ...n, at: clock.t }),
    now: () => clock.t,
  });
  guards.push(guard);
  return { guard, refused, tallies, clock };
}

describe('the admin token guard', () => {
  it('throttles an address after five tries, and only that address', async () => {
    const { guard } = guarded();
    expect(WRONG_TOKENS_PER_MINUTE).toBe(5);
    for (let i = 0; i < 5; i++) expect(await guard.attempt('10.0.0.1')).toBeUndefined();
    const wait = await guard.attempt('10.0.0.1');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(await guard.attempt('10.0.0.2')).toBeUndefined();
    // Throttled tries do not extend the lock.
    for (let i = 0; i < 20; i++) await guard.attempt('10.0.0.1');
    expect(await guard.attempt('10.0.0.1')).toBeLessThanOrEqual(wait!);
  });

  it('counts tries made in parallel before any is judged: five get through, never more', async () => {
    const { guard } = guarded();
    const waits = await Promise.all(Array.from({ length: 40 }, () => guard.attempt('10.0.0.1')));
    expect(waits.filter((w) => w === undefined)).toHaveLength(5);
  });

  it('gives the budget back for the right token', async () => {
    const { guard } = guarded();
    for (let i = 0; i < 4; i++) await guard.attempt('10.0.0.1');
    await guard.accepted('10.0.0.1');
    for (let i = 0; i < 5; i++) expect(await guard.attempt('10.0.0.1')).toBeUndefined();
  });

  it('audits bearer refusals in bulk: the first at once, then one record per address per minute', async () => {
    const { guard, refused, tallies, clock } = guarded();
    for (let i = 0; i < 50; i++) {
      guard.refused(i < 5 ? 'ADMIN_DENIED' : 'ADMIN_THROTTLED', '10.0.0.1', 'bearer');
      clock.t += 100;
    }
    expect(refused).toHaveLength(50);
    expect(tallies).toEqual([{ source: '10.0.0.1', wrong: 1, throttled: 0, at: 1_000_000 }]);
    // The minute is over: the next refusal writes the rest out as one record.
    clock.t = 1_000_000 + 60_000;
    guard.refused('ADMIN_THROTTLED', '10.0.0.1', 'bearer');
    expect(tallies.slice(1)).toEqual([{ source: '10.0.0.1', wrong: 4, throttled: 46, at: 1_060_000 }]);
    // Nothing came after that record: shutdown has nothing left to write.
    guard.close();
    expect(tallies).toHaveLength(2);
  });

  it('writes out the waiting counts at shutdown, and forgets a quiet address', async () => {
    const { guard, tallies } = guarded();
    guard.refused('ADMIN_DENIED', '10.0.0.1', 'bearer');
    guard.refused('ADMIN_DENIED', '10.0.0.1', 'bearer');
    guard.refused('ADMIN_DENIED', '10.0.0.3', 'bearer');
    guard.close();
    expect(tallies.map(({ at: _, ...t }) => t)).toEqual([
      { source: '10.0.0.1', wrong: 1, throttled: 0 },
      { source: '10.0.0.3', wrong: 1, throttled: 0 },
      { source: '10.0.0.1', wrong: 1, throttled: 0 },
    ]);
    // After a quiet minute an address starts over: its next refusal is recorded at once.
    const again = guarded();
    again.guard.refused('ADMIN_DENIED', '10.0.0.1', 'bearer');
    again.clock.t += 61_000;
    again.guard.refused('ADMIN_DENIED', '10.0.0.9', 'bearer');
    again.clock.t += 61_000;
    again.guard.refused('ADMIN_DENIED', '10.0.0.1', 'bearer');
    expect(again.tallies.map((t) => [t.source, t.wrong])).toEqual([
      ['10.0.0.1', 1],
      ['10.0.0.9', 1],
      ['10.0.0.1', 1],
    ]);
  });

  it('leaves wrong logins to their own audit record, but counts them alike', () => {
    const { guard, refused, tallies } = guarded();
    for (let i = 0; i < 5; i++) guard.refused('ADMIN_DENIED', '10.0.0.1', 'login');
    guard.refused('ADMIN_THROTTLED', '10.0.0.1', 'login');
    expect(refused).toHaveLength(6);
    // Only the throttled try is tallied: each wrong login has its own `admin.login-refused` record.
    expect(tallies).toEqual([{ source: '10.0.0.1', wrong: 0, throttled: 1, at: 1_000_000 }]);
  });
});

describe('the admin token guard under a spread-out attack', () => {
  it('keeps the audit bounded when refusals come from very many addresses', async () => {
    const { guard, refused, tallies } = guarded();
    for (let i = 0; i < 3000; i++) guard.refused('ADMIN_DENIED', `fd00::${i.toString(16)}`, 'bearer');
    expect(refused).toHaveLength(3000);
    // One record per address up to the bound, then one for all the others together.
    expect(tallies).toHaveLength(1001);
    expect(tallies.at(-1)).toMatchObject({ source: OTHER_SOURCES, wrong: 1 });
    guard.close();
    expect(tallies.at(-1)).toMatchObject({ source: OTHER_SOURCES, wrong: 1999 });
  });
});
