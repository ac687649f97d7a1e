import { createHash, createHmac } from 'node:crypto';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { WardenError } from '../errors/index.js';
import type { AuditSink } from '../model/audit.js';

export interface JsonlOptions {
  /**
   * `always`: fdatasync after every record (survives a power loss; slowest). `batch` (default): every
   * record is written to the kernel before the call is answered (survives `kill -9`) and synced to
   * disk every `fsyncIntervalMs`. `never`: leave syncing to the OS.
   */
  fsync?: 'always' | 'batch' | 'never';
  fsyncIntervalMs?: number;
  /** Start a new file past this size, or this age (the chain continues across files). */
  rotateBytes?: number;
  rotateAgeMs?: number;
  /** Rotated files kept; older ones are deleted. */
  retain?: number;
  /** A signed checkpoint every this many records (and at rotation and close). */
  checkpointEvery?: number;
  /** HMAC key for checkpoints; without one, checkpoints carry the chain head unsigned. */
  signingKey?: Buffer;
  /** A copy of every chained line, for a database mirror; when it stops accepting, writes fail closed. */
  mirror?: { accepting(): boolean; push(line: string, record: Record<string, unknown>): void };
  now?: () => number;
}

export const GENESIS = 'genesis';

/**
 * The JSON Lines audit file: append-only (0600), hash-chained and checkpointed. Each line carries
 * `seq` (its position in the chain) and `prev` (the SHA-256 of the previous line as written), so an
 * edited, removed or reordered line breaks the chain at that point; checkpoints (HMAC-signed when a
 * key is configured) pin the chain head, so records cannot be quietly cut off before one. Records
 * are written synchronously: when a call is answered, its record is already in the kernel.
 */
export function openJsonlAudit(path: string, options: JsonlOptions = {}): AuditSink {
  const now = options.now ?? Date.now;
  const fsyncMode = options.fsync ?? 'batch';
  const checkpointEvery = options.checkpointEvery ?? 1000;
  let fd = openFile(path);
  let { head, seq, size } = resume(fd, path);
  let openedAt = now();
  let sinceCheckpoint = 0;
  let dirty = false;
  let failed: NodeJS.ErrnoException | undefined;

  const append = (record: object): void => {
    seq += 1;
    const chained = { ...record, seq, prev: head };
    const line = JSON.stringify(chained);
    const bytes = Buffer.from(`${line}\n`);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
    head = sha256(line);
    size += bytes.length;
    dirty = true;
    if (fsyncMode === 'always') fdatasyncSync(fd);
    options.mirror?.push(line, chained);
  };

  const checkpoint = (reason: string): void => {
    const body = { kind: 'checkpoint', time: new Date(now()).toISOString(), reason, head, upto: seq };
    append(options.signingKey ? { ...body, sig: sign(options.signingKey, head, seq) } : body);
    sinceCheckpoint = 0;
  };

  const rotateIfDue = (): void => {
    const tooBig = options.rotateBytes !== undefined && size >= options.rotateBytes;
    const tooOld = options.rotateAgeMs !== undefined && now() - openedAt >= options.rotateAgeMs;
    if (!tooBig && !tooOld) return;
    checkpoint('rotate');
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(path, rotatedName(path, now()));
    fd = openFile(path);
    // The chain goes on in the new file: its first `prev` is the old file's last line.
    size = 0;
    openedAt = now();
    prune(path, options.retain ?? 30);
  };

  const timer =
    fsyncMode === 'batch'
      ? setInterval(() => {
          if (!dirty) return;
          dirty = false;
          fdatasync(fd, () => {});
        }, options.fsyncIntervalMs ?? 100)
      : undefined;
  timer?.unref();

  return {
    write(record) {
      if (options.mirror && !options.mirror.accepting())
        throw new WardenError(
          'AUDIT_UNAVAILABLE',
          'The audit database is too far behind; the call is refused.',
        );
      try {
        rotateIfDue();
        append(record);
        if (++sinceCheckpoint >= checkpointEvery) checkpoint('interval');
        failed = undefined;
      } catch (e) {
        failed = e as NodeJS.ErrnoException;
        throw new WardenError(
          'AUDIT_UNAVAILABLE',
          `The audit file cannot be written (${failed.code ?? 'error'}).`,
          {
            cause: e,
          },
        );
      }
    },
    async close() {
      if (timer) clearInterval(timer);
      try {
        checkpoint('close');
        fdatasyncSync(fd);
      } catch {
        /* closing anyway */
      }
      closeSync(fd);
    },
  };
}

function openFile(path: string): number {
  try {
    return openSync(path, 'a+', 0o600);
  } catch (e) {
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot open the audit file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/**
 * Continues the chain of an existing file from its last line. A torn last line (a crash while
 * writing it) is kept as it is: the next record's `prev` is its hash, and `audit verify` names it.
 */
function resume(fd: number, path: string): { head: string; seq: number; size: number } {
  const size = fstatSync(fd).size;
  if (size === 0) return { head: previousFileHead(path), seq: 0, size };
  const tailLen = Math.min(size, 1024 * 1024);
  const buf = Buffer.alloc(tailLen);
  readSync(fd, buf, 0, tailLen, size - tailLen);
  let text = buf.toString('utf8');
  let torn = false;
  if (!text.endsWith('\n')) {
    torn = true;
    // Terminate the torn line so the next record starts on its own line.
    writeSync(fd, '\n');
    text += '\n';
  }
  const lines = text.split('\n').filter((l) => l.length > 0);
  const last = lines.at(-1) ?? '';
  let seq = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const s = (JSON.parse(lines[i]!) as { seq?: unknown }).seq;
      if (typeof s === 'number') {
        seq = s + (lines.length - 1 - i);
        break;
      }
    } catch {
      /* a torn or foreign line: count it and look further back */
    }
  }
  return { head: sha256(last), seq, size: size + (torn ? 1 : 0) };
}

/** The newest rotated file's last line, so that a fresh file continues the chain. */
function previousFileHead(path: string): string {
  const rotated = listRotated(path);
  const newest = rotated.at(-1);
  if (!newest) return GENESIS;
  try {
    const fd = openSync(newest, 'r');
    try {
      return resume(fd, newest).head;
    } finally {
      closeSync(fd);
    }
  } catch {
    return GENESIS;
  }
}

export function rotatedName(path: string, at: number): string {
  const ext = extname(path);
  const stamp = new Date(at).toISOString().replace(/[:.]/g, '-');
  return join(dirname(path), `${basename(path, ext)}.${stamp}${ext}`);
}

/** Rotated files of an audit path, oldest first (their names sort by time). */
export function listRotated(path: string): string[] {
  const ext = extname(path);
  const stem = basename(path, ext);
  const re = new RegExp(`^${escapeRe(stem)}\\.\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z${escapeRe(ext)}$`);
  try {
    return readdirSync(dirname(path))
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dirname(path), f));
  } catch {
    return [];
  }
}

function prune(path: string, retain: number): void {
  const rotated = listRotated(path);
  for (const f of rotated.slice(0, Math.max(0, rotated.length - retain))) {
    try {
      unlinkSync(f);
    } catch {
      /* already gone */
    }
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function sign(key: Buffer, head: string, upto: number): string {
  return createHmac('sha256', key).update(`${head}:${upto}`).digest('hex');
}

/** For `audit verify`: whether a path is there at all (a clearer error than ENOENT). */
export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
