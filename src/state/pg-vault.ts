import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { WardenError } from '../errors/index.js';
import type {
  Connection,
  ConnectionFilter,
  StoredConnection,
  TokenVault,
  UpstreamKey,
} from '../model/connection.js';
import { type Keyring, localLocks, open, type SealedTokens, seal } from './vault.js';

const MIGRATIONS = [
  { version: 2, file: new URL('../../migrations/002_connections.sql', import.meta.url) },
  { version: 3, file: new URL('../../migrations/003_connection_clients.sql', import.meta.url) },
];
/** The same advisory lock id the audit's migrations take: instances starting together apply each once. */
const MIGRATION_LOCK = 7_346_021;

export interface PgVaultOptions {
  url: string;
  keyring: Keyring;
  /** Told every token value read or stored, so logs and results scrub it (redactor.addSecrets). */
  onSecret?: (values: string[]) => void;
}

interface Row {
  principal: string;
  upstream: string;
  issuer: string;
  scopes: string[];
  expires_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  /** Null on rows written before migration 003. */
  clients: string[] | null;
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

/** Connections holding refresh locks: a pool of their own (see `withRefreshLock`). */
const LOCK_CONNECTIONS = 4;
/** How long a refresh waits for a lock connection, or for another instance's refresh, before failing closed. */
const LOCK_WAIT_MS = 30_000;

/** Two int4 halves of a SHA-256, for `pg_advisory_xact_lock(int, int)`: one lock per refresh key. */
function lockIds(key: string): [number, number] {
  const h = createHash('sha256').update(`mcp-warden refresh\0${key}`).digest();
  return [h.readInt32BE(0), h.readInt32BE(4)];
}

/**
 * The token vault in PostgreSQL, for gateways whose instances share callers. The refresh lock is a
 * transaction-scoped advisory lock held on its own connection while the refresh runs, so of several
 * instances finding the same token expired, one refreshes and the others then read its result. Those
 * connections come from a second, small pool: the refresh's own queries use the main one, so refreshes
 * of many users at once cannot take every connection and then wait for one forever.
 * Records sealed with an older key are re-sealed with the current one when read (`rotate` does all).
 */
export class PgVault implements TokenVault {
  private readonly local = localLocks();
  private readonly locks: pg.Pool;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly o: PgVaultOptions,
  ) {
    this.locks = new pg.Pool({
      connectionString: o.url,
      max: LOCK_CONNECTIONS,
      connectionTimeoutMillis: LOCK_WAIT_MS,
    });
    this.locks.on('error', () => {});
  }

  static async open(o: PgVaultOptions): Promise<PgVault> {
    const pool = new pg.Pool({ connectionString: o.url, max: 5 });
    pool.on('error', () => {});
    try {
      await migrate(pool);
    } catch {
      await pool.end().catch(() => {});
      throw new WardenError('CONFIG_INVALID', 'the token vault database could not be reached or prepared');
    }
    return new PgVault(pool, o);
  }

  private describe(r: Row): Connection {
    const c: Connection = {
      principal: r.principal,
      upstream: r.upstream,
      issuer: r.issuer,
      scopes: [...r.scopes],
      createdAt: r.created_at.getTime(),
    };
    if (r.expires_at) c.expiresAt = r.expires_at.getTime();
    if (r.last_used_at) c.lastUsedAt = r.last_used_at.getTime();
    if (r.clients) c.clients = [...r.clients];
    return c;
  }

  private async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch {
      throw new WardenError('STATE_UNAVAILABLE', 'The token vault database is unreachable; retry later.');
    }
  }

  async get(principal: string, upstream: UpstreamKey): Promise<StoredConnection | undefined> {
    const { rows } = await this.query<Row>(
      'SELECT * FROM mcp_warden_connections WHERE principal = $1 AND upstream = $2',
      [principal, upstream],
    );
    const r = rows[0];
    if (!r) return undefined;
    const tokens = open(this.o.keyring, principal, upstream, r);
    this.announce(tokens);
    if (r.kid !== this.o.keyring[0].id) await this.reseal(principal, upstream, r.kid, tokens);
    return { ...this.describe(r), ...tokens };
  }

  private announce(t: { accessToken: string; refreshToken?: string }): void {
    this.o.onSecret?.(t.refreshToken !== undefined ? [t.accessToken, t.refreshToken] : [t.accessToken]);
  }

  private async reseal(
    principal: string,
    upstream: string,
    oldKid: string,
    tokens: { accessToken: string; refreshToken?: string },
  ): Promise<void> {
    const s = seal(this.o.keyring, principal, upstream, tokens);
    // Only if nobody rewrote the row meanwhile (a refresh stores newer tokens).
    await this.query(
      'UPDATE mcp_warden_connections SET kid = $3, iv = $4, tag = $5, data = $6 WHERE principal = $1 AND upstream = $2 AND kid = $7',
      [principal, upstream, s.kid, s.iv, s.tag, s.data, oldKid],
    );
  }

  async put(c: StoredConnection): Promise<void> {
    this.announce(c);
    const tokens =
      c.refreshToken !== undefined
        ? { accessToken: c.accessToken, refreshToken: c.refreshToken }
        : { accessToken: c.accessToken };
    const s: SealedTokens = seal(this.o.keyring, c.principal, c.upstream, tokens);
    await this.query(
      `INSERT INTO mcp_warden_connections
         (principal, upstream, issuer, scopes, expires_at, last_used_at, created_at, kid, iv, tag, data, clients)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (principal, upstream) DO UPDATE SET issuer = $3, scopes = $4, expires_at = $5,
         last_used_at = $6, created_at = $7, kid = $8, iv = $9, tag = $10, data = $11, clients = $12`,
      [
        c.principal,
        c.upstream,
        c.issuer,
        c.scopes,
        c.expiresAt !== undefined ? new Date(c.expiresAt) : null,
        c.lastUsedAt !== undefined ? new Date(c.lastUsedAt) : null,
        new Date(c.createdAt),
        s.kid,
        s.iv,
        s.tag,
        s.data,
        c.clients ?? null,
      ],
    );
  }

  async delete(principal: string, upstream: UpstreamKey): Promise<boolean> {
    const r = await this.query('DELETE FROM mcp_warden_connections WHERE principal = $1 AND upstream = $2', [
      principal,
      upstream,
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  async list(filter?: ConnectionFilter): Promise<Connection[]> {
    const { rows } = await this.query<Row>(
      `SELECT * FROM mcp_warden_connections
       WHERE ($1::text IS NULL OR principal = $1) AND ($2::text IS NULL OR upstream = $2)
       ORDER BY principal, upstream`,
      [filter?.principal ?? null, filter?.upstream ?? null],
    );
    return rows.map((r) => this.describe(r));
  }

  async touch(principal: string, upstream: UpstreamKey, at: number): Promise<void> {
    await this.query(
      'UPDATE mcp_warden_connections SET last_used_at = $3 WHERE principal = $1 AND upstream = $2',
      [principal, upstream, new Date(at)],
    );
  }

  /** Re-seals every record under an older key with the current one; returns how many. */
  async rotate(): Promise<number> {
    const { rows } = await this.query<Row>('SELECT * FROM mcp_warden_connections WHERE kid <> $1', [
      this.o.keyring[0].id,
    ]);
    for (const r of rows)
      await this.reseal(r.principal, r.upstream, r.kid, open(this.o.keyring, r.principal, r.upstream, r));
    return rows.length;
  }

  withRefreshLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // In process first (no connection held per waiting call), then across instances.
    return this.local(key, async () => {
      let client: pg.PoolClient | undefined;
      try {
        client = await this.locks.connect();
        await client.query('BEGIN');
        // Bounded: a refresh stuck on another instance fails this call closed rather than holding it.
        await client.query(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', lockIds(key));
      } catch {
        client?.release(true);
        throw new WardenError('STATE_UNAVAILABLE', 'The token vault database is unreachable; retry later.');
      }
      const held = client;
      try {
        return await fn();
      } finally {
        // A connection whose COMMIT failed is dropped, not handed to the next refresh.
        await held.query('COMMIT').then(
          () => held.release(),
          (e: Error) => held.release(e),
        );
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.locks.end()]);
  }
}

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS mcp_warden_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    for (const m of MIGRATIONS) {
      const done = await client.query('SELECT 1 FROM mcp_warden_migrations WHERE version = $1', [m.version]);
      if (done.rowCount !== 0) continue;
      await client.query('BEGIN');
      await client.query(readFileSync(m.file, 'utf8'));
      await client.query('INSERT INTO mcp_warden_migrations (version) VALUES ($1)', [m.version]);
      await client.query('COMMIT');
    }
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
}
