import { readFileSync } from 'node:fs';
import pg from 'pg';
import { WardenError } from '../errors/index.js';
import type { AuditFilter } from './read.js';

const MIGRATIONS = [{ version: 1, file: new URL('../../migrations/001_audit.sql', import.meta.url) }];
/** Advisory lock id for migrations, so that several instances starting together apply them once. */
const MIGRATION_LOCK = 7_346_021;
/** The readiness probe; pg honours a per-query `query_timeout` (its types list it on the client only). */
const PROBE: pg.QueryConfig & { query_timeout: number } = { text: 'SELECT 1', query_timeout: 2000 };

export interface PgMirrorOptions {
  url: string;
  /** This instance's name in the table (records of several instances interleave there). */
  instance: string;
  /** Most records waiting for the database; past it, calls fail closed instead of memory growing. */
  maxPending?: number;
  batchSize?: number;
  flushMs?: number;
  onError?: (e: Error) => void;
}

export interface PgMirror {
  /** False when the database has fallen too far behind: the caller fails the call closed. */
  accepting(): boolean;
  /** Queues one chained line (as written to the file) for a batched insert. */
  push(line: string, record: Record<string, unknown>): void;
  /** Resolves when everything queued so far is in the database. */
  flush(): Promise<void>;
  /** For readiness: accepting, and the database answers `SELECT 1` (one probe at a time). */
  reachable(): Promise<boolean>;
  close(): Promise<void>;
}

export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS mcp_warden_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query('SELECT version FROM mcp_warden_migrations')).rows.map((r) => r.version as number),
    );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
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

/**
 * Mirrors audit records to PostgreSQL, for several instances and central queries. The local JSONL
 * file stays the record of truth (written synchronously, hash-chained); the mirror inserts in
 * batches in the background, retries while the database is away, and refuses new calls once too
 * much is waiting (back-pressure, not unbounded memory).
 */
export async function openPgMirror(o: PgMirrorOptions): Promise<PgMirror> {
  const pool = new pg.Pool({ connectionString: o.url, max: 2, connectionTimeoutMillis: 5000 });
  pool.on('error', (e) => o.onError?.(e));
  try {
    await migrate(pool);
  } catch (e) {
    await pool.end().catch(() => {});
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot prepare the PostgreSQL audit table: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const maxPending = o.maxPending ?? 10_000;
  const batchSize = o.batchSize ?? 500;
  let queue: Array<[string, Record<string, unknown>]> = [];
  let inflight: Promise<void> | undefined;
  let closed = false;
  let backoff = 0;
  let probing: Promise<boolean> | undefined;

  const insert = async (batch: Array<[string, Record<string, unknown>]>) => {
    const values: unknown[] = [];
    const rows = batch.map(([line, r], i) => {
      const b = i * 9;
      values.push(
        o.instance,
        r.seq,
        typeof r.time === 'string' ? r.time : new Date().toISOString(),
        r.kind ?? 'call',
        r.tool ?? null,
        r.principal ?? r.actor ?? null,
        r.decision ?? null,
        r.code ?? null,
        line,
      );
      return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7},$${b + 8},$${b + 9})`;
    });
    await pool.query(
      `INSERT INTO mcp_warden_audit (instance, seq, time, kind, tool, principal, decision, code, line) VALUES ${rows.join(',')} ON CONFLICT (instance, seq) DO NOTHING`,
      values,
    );
  };

  const drain = async (): Promise<void> => {
    while (queue.length) {
      const batch = queue.slice(0, batchSize);
      try {
        await insert(batch);
        queue = queue.slice(batch.length);
        backoff = 0;
      } catch (e) {
        o.onError?.(e as Error);
        if (closed) return;
        backoff = Math.min(5000, backoff ? backoff * 2 : 100);
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  };
  const kick = () => {
    inflight ??= drain().finally(() => {
      inflight = undefined;
      if (queue.length && !closed) kick();
    });
  };
  const timer = setInterval(() => {
    if (queue.length) kick();
  }, o.flushMs ?? 50);
  timer.unref();

  return {
    accepting: () => queue.length < maxPending,
    push(line, record) {
      queue.push([line, record]);
      if (queue.length >= batchSize) kick();
    },
    async flush() {
      while (queue.length || inflight) {
        kick();
        await inflight;
      }
    },
    reachable() {
      if (closed || queue.length >= maxPending) return Promise.resolve(false);
      // One probe in flight at most: a database that hangs is asked once, not once per readiness probe.
      probing ??= pool
        .query(PROBE)
        .then(
          () => true,
          () => false,
        )
        .finally(() => {
          probing = undefined;
        });
      return probing;
    },
    async close() {
      clearInterval(timer);
      const deadline = Date.now() + 5000;
      while ((queue.length || inflight) && Date.now() < deadline) {
        kick();
        await Promise.race([inflight, new Promise((r) => setTimeout(r, 100))]);
      }
      closed = true;
      await pool.end().catch(() => {});
    },
  };
}

/** `audit query --db`: records of every instance, oldest first. */
export async function queryPg(
  url: string,
  f: AuditFilter,
  limit = 1000,
): Promise<Array<Record<string, unknown>>> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  try {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (f.tool) add('tool = ?', f.tool);
    if (f.principal) add('principal = ?', f.principal);
    if (f.decision) add('decision = ?', f.decision);
    if (f.kind) add('kind = ?', f.kind);
    // No column of its own: approvals are rare, and the id sits in the record as written.
    if (f.approval) add("(line::jsonb ->> 'approval') = ?", f.approval);
    if (f.since !== undefined) add('time >= ?', new Date(f.since).toISOString());
    if (f.until !== undefined) add('time <= ?', new Date(f.until).toISOString());
    args.push(Math.min(limit, 100_000));
    const res = await pool.query(
      `SELECT instance, line FROM mcp_warden_audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time, instance, seq LIMIT $${args.length}`,
      args,
    );
    return res.rows.map((r) => ({
      instance: r.instance as string,
      ...(JSON.parse(r.line as string) as object),
    }));
  } finally {
    await pool.end();
  }
}

/** The chained lines of one instance, in order, for `audit verify --db`. */
export async function linesOfInstance(url: string, instance: string): Promise<string[]> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  try {
    const res = await pool.query('SELECT line FROM mcp_warden_audit WHERE instance = $1 ORDER BY seq', [
      instance,
    ]);
    return res.rows.map((r) => r.line as string);
  } finally {
    await pool.end();
  }
}

/** The instances that have records in the mirror, by name (`audit rightsize` reads them all). */
export async function instancesOf(url: string): Promise<string[]> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  try {
    const res = await pool.query('SELECT DISTINCT instance FROM mcp_warden_audit ORDER BY instance');
    return res.rows.map((r) => r.instance as string);
  } finally {
    await pool.end();
  }
}

/** The last mirrored line of one instance (its highest seq), for `audit verify <file> --db-env`. */
export async function mirrorHead(
  url: string,
  instance: string,
): Promise<{ seq: number; line: string } | undefined> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  try {
    const res = await pool.query(
      'SELECT seq, line FROM mcp_warden_audit WHERE instance = $1 ORDER BY seq DESC LIMIT 1',
      [instance],
    );
    const row = res.rows[0] as { seq: string | number; line: string } | undefined;
    return row ? { seq: Number(row.seq), line: row.line } : undefined;
  } finally {
    await pool.end();
  }
}
