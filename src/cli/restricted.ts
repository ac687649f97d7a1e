import { type Command, Option } from 'commander';
import type { Restriction } from '../state/budgets.js';
import { adminCall, type Io } from './policy.js';
import { admin } from './runtime.js';

/** A restricted caller as the admin API lists it (`GET /restricted`): the store's record, `since` as ISO text. */
export type ListedRestriction = Omit<Restriction, 'since'> & { since: string };

/**
 * `restricted list|lift`: callers a blast-radius budget switched to read-only (docs/budgets.md),
 * through the admin API of a running gateway. Lifting lets the caller's writes through again on every
 * instance; who lifted is the admin token's identity (audited).
 */
export function addRestricted(program: Command, io: Io): void {
  const restricted = program
    .command('restricted')
    .description('Callers a budget made read-only: list them, or lift a restriction (admin API).');

  admin(
    restricted
      .command('list')
      .description('Restricted callers, oldest first: the budget hit, its numbers, since when.')
      .addOption(new Option('--format <f>', 'output').choices(['table', 'json']).default('table')),
  ).action(async (opts) => {
    const r = (await adminCall('GET', '/restricted', undefined, opts)) as { restricted: ListedRestriction[] };
    if (opts.format === 'json') return io.stdout(`${JSON.stringify(r.restricted, null, 2)}\n`);
    if (!r.restricted.length) return io.stdout('no restricted callers\n');
    for (const x of r.restricted)
      io.stdout(
        `${[
          x.principal.padEnd(24),
          x.budget.padEnd(20),
          `${x.used}/${x.limit} ${x.unit} per ${x.perSeconds} s`.padEnd(28),
          x.tool.padEnd(24),
          `since ${x.since}`,
        ].join(' ')}\n`,
      );
  });

  admin(
    restricted
      .command('lift')
      .description("Lift a caller's restriction: its writes are served again, its budget window starts over.")
      .argument('<principal>', 'the caller id, as listed (key:…, jwt:…#…, stdio:…, anonymous)')
      .option('--reason <text>', 'why (up to 500 characters; audited)'),
  ).action(async (principal: string, opts) => {
    const r = (await adminCall(
      'POST',
      `/restricted/${encodeURIComponent(principal)}/lift`,
      opts.reason !== undefined ? { reason: opts.reason } : {},
      opts,
    )) as { lifted: ListedRestriction };
    io.stdout(
      `lifted: ${r.lifted.principal} (budget ${r.lifted.budget}, read-only since ${r.lifted.since})\n`,
    );
  });
}
