import { closeSync, openSync, readSync, statSync, watchFile } from 'node:fs';
import { exists } from '../audit/jsonl.js';
import { linesOfInstance, mirrorHead, queryPg } from '../audit/postgres.js';
import { type AuditFilter, auditFiles, matches, parseRecord, readRecords, tableLine } from '../audit/read.js';
import { type VerifyResult, verifyAudit, verifyLines } from '../audit/verify.js';
import { WardenError } from '../errors/index.js';
import { findDefaultAudits, stateRoots } from '../lib/state-dir.js';

interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/**
 * `audit verify`: exit 0 when the chain holds, 1 with every broken, missing or torn record (it goes
 * on after each). A file is checked against its head anchor; with `--db-env` and `--instance` too,
 * against the database mirror's last record (without a file, the mirrored chain itself).
 */
export async function runAuditVerify(
  file: string | undefined,
  opts: { keyEnv?: string; dbEnv?: string; instance?: string; stateDir?: string },
  io: Io,
): Promise<number> {
  let key: Buffer | undefined;
  if (opts.keyEnv) {
    const v = process.env[opts.keyEnv];
    if (!v) throw new WardenError('USAGE', `${opts.keyEnv} is not set`);
    key = Buffer.from(v, 'utf8');
  }
  if (opts.dbEnv && !opts.instance)
    throw new WardenError('USAGE', '--db-env needs --instance (each instance has its own chain)');
  let r: VerifyResult;
  if (opts.dbEnv && !file) {
    const lines = await linesOfInstance(dbUrl(opts.dbEnv), opts.instance!);
    r = verifyLines([{ file: `db:${opts.instance}`, lines }], key);
  } else {
    file = auditFileOf(file, opts, io);
    const mirror = opts.dbEnv ? await mirrorHead(dbUrl(opts.dbEnv), opts.instance!) : undefined;
    r = await verifyAudit(auditFiles(file), key, {
      anchorOf: file,
      ...(mirror ? { mirrorHead: { ...mirror, where: `instance ${opts.instance}` } } : {}),
    });
  }
  report(r, key, io);
  return r.ok ? 0 : 1;
}

function report(r: VerifyResult, key: Buffer | undefined, io: Io): void {
  const summary = `${r.records} records, ${r.checkpoints} checkpoints (${r.signedCheckpoints} signed) in ${r.files} file(s)`;
  const notes = r.notes.map((n) => `note: ${n}\n`).join('');
  if (r.ok) {
    io.stdout(
      `ok: ${summary}; the chain is unbroken${key ? ' and every checkpoint signature verifies' : ''}\n${notes}`,
    );
    return;
  }
  for (const p of r.problems)
    io.stdout(
      `BROKEN at ${p.file}:${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}: ${p.message}${p.offset !== undefined ? ` [byte ${p.offset}]` : ''}\n`,
    );
  if (r.problemCount > r.problems.length) io.stdout(`… and ${r.problemCount - r.problems.length} more\n`);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const torn = r.torn ? ` (${plural(r.torn, 'torn line')})` : '';
  io.stdout(`${plural(r.problemCount, 'problem')}${torn}; checked ${summary}\n${notes}`);
}

export function filterOf(opts: Record<string, string | undefined>): AuditFilter {
  const time = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    // Relative: 15m, 2h, 7d; or an ISO date-time.
    const rel = /^(\d+)([smhd])$/.exec(v);
    if (rel)
      return (
        Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as 's' | 'm' | 'h' | 'd']
      );
    const t = Date.parse(v);
    if (Number.isNaN(t))
      throw new WardenError('USAGE', `${name} is a date-time or a duration like 15m, 2h, 7d`);
    return t;
  };
  const decision = opts.decision;
  if (decision !== undefined && decision !== 'allowed' && decision !== 'denied')
    throw new WardenError('USAGE', '--decision is allowed or denied');
  const since = time(opts.since, '--since');
  const until = time(opts.until, '--until');
  return {
    ...(opts.tool ? { tool: opts.tool } : {}),
    ...(opts.principal ? { principal: opts.principal } : {}),
    ...(decision ? { decision } : {}),
    ...(opts.kind ? { kind: opts.kind } : {}),
    ...(opts.approval ? { approval: opts.approval } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
}

const print = (r: Record<string, unknown>, format: string | undefined, io: Io) =>
  io.stdout(`${format === 'json' ? JSON.stringify(r) : tableLine(r)}\n`);

/** `audit query`: the records that match, oldest first. */
export async function runAuditQuery(
  file: string | undefined,
  opts: Record<string, string | undefined>,
  io: Io,
): Promise<void> {
  const f = filterOf(opts);
  const limit = opts.limit ? count(opts.limit, '--limit') : Number.POSITIVE_INFINITY;
  if (opts.dbEnv) {
    for (const r of await queryPg(dbUrl(opts.dbEnv), f, Number.isFinite(limit) ? limit : 100_000))
      print(r, opts.format, io);
    return;
  }
  file = auditFileOf(file, opts, io);
  let n = 0;
  for await (const r of readRecords(auditFiles(file), f)) {
    if (n++ >= limit) break;
    print(r, opts.format, io);
  }
}

/** `audit tail`: the last records, then (with --follow) new ones as they are written. */
export async function runAuditTail(
  given: string | undefined,
  opts: Record<string, string | boolean | undefined>,
  io: Io,
): Promise<void> {
  const file = auditFileOf(given, opts as { stateDir?: string }, io);
  const f = filterOf(opts as Record<string, string | undefined>);
  const n = opts.lines ? count(String(opts.lines), '--lines') : 20;
  // Streamed, keeping only the last n: the file can be larger than memory should hold.
  const last: Array<Record<string, unknown>> = [];
  for await (const r of readRecords([file], f)) {
    last.push(r);
    if (last.length > n) last.shift();
  }
  for (const r of last) print(r, opts.format as string | undefined, io);
  if (!opts.follow) return;
  // Follow by byte offset: each change reads only what was appended (from the start after a rotation).
  let offset = statSync(file).size;
  let partial = '';
  await new Promise<void>(() => {
    watchFile(file, { interval: 500 }, (cur) => {
      if (cur.size < offset) {
        offset = 0;
        partial = '';
      }
      if (cur.size === offset) return;
      const fd = openSync(file, 'r');
      const buf = Buffer.alloc(cur.size - offset);
      try {
        readSync(fd, buf, 0, buf.length, offset);
      } finally {
        closeSync(fd);
      }
      offset = cur.size;
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const r = parseRecord(line);
        if (r && matches(r, f)) print(r, opts.format as string | undefined, io);
      }
    });
  });
}

/**
 * The file named, or without one the default audit in the state directory — when exactly one spec's
 * audit is there. Several or none: a usage error listing what is there; the working directory is
 * never guessed.
 */
export function auditFileOf(file: string | undefined, opts: { stateDir?: string }, io: Io): string {
  if (file !== undefined) {
    if (!exists(file)) throw new WardenError('USAGE', `no audit file at ${file}`);
    return file;
  }
  const where = opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {};
  const found = findDefaultAudits(where);
  if (found.length === 1) {
    io.stderr(`audit file: ${found[0]}\n`);
    return found[0]!;
  }
  const roots = stateRoots(where).join(', ') || '(no state directory: HOME is not set)';
  if (!found.length)
    throw new WardenError(
      'USAGE',
      `no audit file given, and none in the state directory (${roots}): name one`,
    );
  throw new WardenError(
    'USAGE',
    `no audit file given, and the state directory holds ${found.length}: name one of them`,
    { details: found },
  );
}

export function dbUrl(envName: string): string {
  const url = process.env[envName];
  if (!url) throw new WardenError('USAGE', `${envName} is not set`);
  return url;
}

function count(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new WardenError('USAGE', `${name} must be a whole number, not ${v}`);
  return n;
}
