import { type Command, Option } from 'commander';
import { adminCall, type Io } from './policy.js';
import { admin } from './runtime.js';

/** One connection as the admin API lists it (never a token). */
export interface ListedConnection {
  id: string;
  principal: string;
  upstream: string;
  issuer: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt?: string;
  expiresAt?: string;
  /** The MCP clients the person approved for it (`''`: a caller without a client name). */
  clients?: string[];
}

/**
 * `connections list|revoke`: people's connected upstream accounts (per-user OAuth), through the
 * admin API of a running gateway. Revoking deletes the stored tokens: that person's next call asks
 * them to connect again. Who revokes is the admin token's identity (audited).
 */
export function addConnections(program: Command, io: Io): void {
  const connections = program
    .command('connections')
    .description("People's connected upstream accounts (per-user OAuth): list or revoke them (admin API).");

  admin(
    connections
      .command('list')
      .description('Who connected which upstream, with which scopes, last used when.')
      .option('--principal <id>', 'only this principal (e.g. jwt:https://idp.example.com/#alice)')
      .option('--upstream <key>', 'only this upstream (<api>/<scheme>, or /<scheme> for one spec)')
      .addOption(new Option('--format <f>', 'output').choices(['table', 'json']).default('table')),
  ).action(async (opts) => {
    const q = new URLSearchParams();
    if (opts.principal) q.set('principal', opts.principal);
    if (opts.upstream) q.set('upstream', opts.upstream);
    const r = (await adminCall('GET', `/connections${q.size ? `?${q}` : ''}`, undefined, opts)) as {
      connections: ListedConnection[];
    };
    if (opts.format === 'json') return io.stdout(`${JSON.stringify(r.connections, null, 2)}\n`);
    if (!r.connections.length) return io.stdout('no connections\n');
    io.stdout(`${connectionTable(r.connections)}\n`);
  });

  admin(
    connections
      .command('revoke')
      .description(
        "Revoke a connection: its tokens are deleted; the person's next call asks them to connect again.",
      )
      .argument('<id>', 'connection id (from `connections list`)'),
  ).action(async (id: string, opts) => {
    const r = (await adminCall('DELETE', `/connections/${encodeURIComponent(id)}`, undefined, opts)) as {
      principal: string;
      upstream: string;
    };
    io.stdout(`revoked: ${r.principal} on ${r.upstream}; their next call asks them to connect again\n`);
  });
}

/** Rows under a header, columns padded to their widest value. */
export function connectionTable(list: readonly ListedConnection[]): string {
  const rows = [
    ['ID', 'PRINCIPAL', 'UPSTREAM', 'SCOPES', 'LAST USED', 'CONNECTED'],
    ...list.map((c) => [
      c.id,
      c.principal,
      c.upstream,
      c.scopes.join(' ') || '-',
      c.lastUsedAt ?? 'never',
      c.createdAt,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
