import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { WardenError } from '../errors/index.js';

// One writer per audit file. The chain is kept in memory by the writer (its head and sequence), so
// two processes appending to one file would interleave two chains and break both — which is what
// happens when two MCP clients start a stdio gateway for the same spec. The lock file beside the
// audit names its holder; a holder that is gone (its process no longer runs on this host) is stale
// and taken over.

export interface AuditLock {
  readonly path: string;
  release(): void;
}

interface Holder {
  pid: number;
  host: string;
}

export function lockPathOf(auditPath: string): string {
  return `${auditPath}.lock`;
}

/** Takes the audit file's lock, or throws CONFIG_INVALID naming the process that holds it. */
export function lockAuditFile(auditPath: string): AuditLock {
  const path = lockPathOf(auditPath);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname() } satisfies Holder));
      } finally {
        closeSync(fd);
      }
      return lockOf(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST')
        throw new WardenError(
          'CONFIG_INVALID',
          `cannot lock the audit file ${auditPath} (${code ?? 'error'}): choose another with --audit-file <path>`,
        );
      const holder = heldBy(path);
      if (holder) throw inUse(auditPath, path, holder);
      // Stale: its process is gone. Removed and taken on the next attempt (a racing taker wins once).
      try {
        unlinkSync(path);
      } catch {
        // Another process removed it first; the next attempt decides.
      }
    }
  }
  const holder = heldBy(path);
  throw inUse(auditPath, path, holder ?? { pid: 0, host: 'unknown' });
}

/** The live holder of an audit file's lock, if any (stale locks have none). */
export function auditLockHolder(auditPath: string): Holder | undefined {
  return heldBy(lockPathOf(auditPath));
}

function heldBy(lockPath: string): Holder | undefined {
  let holder: Holder;
  try {
    const parsed = JSON.parse(readFileSync(lockPath, 'utf8')) as Partial<Holder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined;
    holder = { pid: parsed.pid, host: parsed.host };
  } catch {
    // Missing, or half-written by a process that died while writing it: not a holder.
    return undefined;
  }
  // Another host (a shared file system): its processes cannot be checked from here, so it holds.
  if (holder.host !== hostname()) return holder;
  return alive(holder.pid) ? holder : undefined;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function inUse(auditPath: string, lockPath: string, h: Holder): WardenError {
  return new WardenError(
    'CONFIG_INVALID',
    `the audit file ${auditPath} is being written by another mcp-warden (pid ${h.pid} on ${h.host}): give this one its own --audit-file <path> or --state-dir <dir> (if that process is gone, delete ${lockPath})`,
  );
}

function lockOf(path: string): AuditLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  };
  // A process that exits without closing the audit (a signal handler calling exit) still frees it.
  process.on('exit', release);
  return { path, release };
}
