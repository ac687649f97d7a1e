import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WardenError } from '../errors/index.js';
import type { AnyRecord, AuditSink } from '../model/audit.js';
import {
  type Anchor,
  anchorPath,
  anchorSignatureProblem,
  readAnchor,
  sha256,
  signCheckpoint,
  writeAnchor,
  writeAnchorAsync,
} from './anchor.js';
import { listRotated, rotatedName, tailLines } from './files.js';
import { type AuditLock, lockAuditFile } from './lock.js';

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
  /** HMAC key for checkpoints and the head anchor; without one, they carry the chain head unsigned. */
  signingKey?: Buffer;
  /** A copy of every chained line, for a database mirror; when it stops accepting, writes fail closed. */
  mirror?: { accepting(): boolean; push(line: string, record: Record<string, unknown>): void };
  /** Told at start when the files do not match their head anchor (it is also written into the chain). */
  onAnchorMismatch?: (detail: string) => void;
  now?: () => number;
}

export const GENESIS = 'genesis';
/** Free bytes under which the audit's file system counts as full for readiness (appends may still land). */
export const AUDIT_ROOM_FLOOR = 1024 * 1024;

/**
 * A sink that can also take a record to be written together with the other records handed to it in
 * the same turn of the event loop: one append (one `write` system call, all the lines or none) for
 * calls that end together. The promise settles once the record is in the kernel (with the append's
 * duration in ms) or rejects as `write` throws; the caller answers only then, so the record still
 * precedes the answer.
 */
export interface JoiningAuditSink extends AuditSink {
  writeJoined?(record: AnyRecord): Promise<number>;
}

/** The JSONL sink, and whether it can be expected to take the next record (readiness asks). */
export interface JsonlAudit extends JoiningAuditSink {
  writeJoined(record: AnyRecord): Promise<number>;
  writable(): Promise<boolean>;
}
export { sha256, sign } from './anchor.js';
export { listRotated, rotatedName } from './files.js';

/** Makes one chained record once its position is known (checkpoints pin the head before them). */
type Maker = (seq: number, prev: string) => object;

/**
 * The JSON Lines audit file: append-only (0600), hash-chained and checkpointed. Each line carries
 * `seq` (its position in the chain) and `prev` (the SHA-256 of the previous line as written), so an
 * edited, removed or reordered line breaks the chain at that point; checkpoints (HMAC-signed when a
 * key is configured) pin the chain head, and the head anchor beside the file (anchor.ts) pins the
 * latest durable head, so records cannot be cut off the end either. Records are written
 * synchronously: when a call is answered, its record is already in the kernel. An append that fails
 * (full disk, file-size limit, permissions) is cut back off: the file is exactly as before and no
 * sequence number is taken.
 */
export function openJsonlAudit(path: string, options: JsonlOptions = {}): JsonlAudit {
  return new JsonlWriter(path, options);
}

class JsonlWriter implements JsonlAudit {
  private readonly now: () => number;
  private readonly key: Buffer | undefined;
  private readonly fsyncMode: 'always' | 'batch' | 'never';
  private fd: number;
  private seq: number;
  private head: string;
  private size: number;
  private openedAt: number;
  private sinceCheckpoint = 0;
  private dirty = false;
  private closed = false;
  /** Bumped at each rotation: a sync started on the old file says nothing about the new one. */
  private generation = 0;
  /** A failed append that could not be cut back yet: done before the next one. */
  private repairTo: number | undefined;
  /** The seq the oldest kept file starts at, for the anchor. */
  private first: number | undefined;
  private anchored = -1;
  /** What the anchor holds now, as last written (a sync write may have to restore it). */
  private anchoredAs: Omit<Anchor, 'sig'> | undefined;
  /**
   * The batch timer's anchor write, in flight off the event loop (a rename can take milliseconds on
   * a busy disk; calls are not held up by it). One at a time; a tick that finds one running leaves
   * its work to the next tick.
   */
  private anchorJob: Promise<void> | undefined;
  /** Bumped by every anchor written on the event loop: an off-loop write started before must not win. */
  private anchorEpoch = 0;
  /** Appends that failed since the last one that landed (0: the last append landed). */
  private failures = 0;
  /** Found at start: the files do not match their anchor. Written first, before the anchor moves on. */
  private notice: Maker | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly lock: AuditLock;
  /** Records waiting for the joined append (`writeJoined`), with how to settle each. */
  private joining: Array<{ record: AnyRecord; done: (ms: number) => void; failed: (e: unknown) => void }> =
    [];
  private joinTimer: NodeJS.Immediate | undefined;

  constructor(
    private readonly path: string,
    private readonly options: JsonlOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.key = options.signingKey;
    this.fsyncMode = options.fsync ?? 'batch';
    // One writer per file: a second process would interleave its own chain with this one's.
    this.lock = lockAuditFile(path);
    let fd: number | undefined;
    try {
      fd = openFile(path);
      this.fd = fd;
      const opened = resume(fd, path);
      ({ seq: this.seq, head: this.head, size: this.size } = opened);
      this.openedAt = this.now();
      this.first = firstSeqOf(path);
      const found = anchorNotice(path, opened, this.first, this.key);
      if (found) options.onAnchorMismatch?.(found.detail);
      this.notice = found && this.checkpointOf(found.reason, found.extra);
      if (!this.notice) {
        fdatasyncSync(fd);
        this.anchorNow();
      }
    } catch (e) {
      // Nothing half-open is left behind: the file is closed and the lock freed for the next try.
      if (fd !== undefined) closeSync(fd);
      this.lock.release();
      throw e;
    }
    this.timer =
      this.fsyncMode === 'always'
        ? undefined
        : setInterval(() => this.sync(), options.fsyncIntervalMs ?? 100);
    this.timer?.unref();
  }

  write(record: AnyRecord): void {
    this.appendRecords([record]);
  }

  /**
   * The record, appended at the end of this turn of the event loop together with every other record
   * handed here meanwhile (calls of one turn: one `write` instead of one each). The chain, the
   * checkpoints and a failure are exactly as for `write` of each in turn, except that a failed append
   * fails every record in it (none of its lines lands).
   */
  writeJoined(record: AnyRecord): Promise<number> {
    return new Promise((done, failed) => {
      this.joining.push({ record, done, failed });
      this.joinTimer ??= setImmediate(this.flushJoined);
    });
  }

  private readonly flushJoined = (): void => {
    if (this.joinTimer) clearImmediate(this.joinTimer);
    this.joinTimer = undefined;
    const batch = this.joining;
    if (!batch.length) return;
    this.joining = [];
    const t0 = performance.now();
    try {
      this.appendRecords(batch.map((j) => j.record));
    } catch (e) {
      for (const j of batch) j.failed(e);
      return;
    }
    const ms = performance.now() - t0;
    for (const j of batch) j.done(ms);
  };

  /** The records in one append, each followed by its interval checkpoint when one falls due. */
  private appendRecords(records: AnyRecord[]): void {
    // A call that ends after close (a pipeline does not wait for calls still running) fails closed
    // rather than writing to a closed descriptor (or a reused one: another file).
    if (this.closed) throw new WardenError('AUDIT_UNAVAILABLE', 'The audit file is closed.');
    const { mirror } = this.options;
    if (mirror && !mirror.accepting())
      throw new WardenError(
        'AUDIT_UNAVAILABLE',
        'The audit database is too far behind; the call is refused.',
      );
    try {
      this.rotateIfDue();
      const every = this.options.checkpointEvery ?? 1000;
      let since = this.sinceCheckpoint;
      const makers: Maker[] = [];
      for (const record of records) {
        makers.push(() => record);
        since += 1;
        if (since >= every) {
          makers.push(this.checkpointOf('interval'));
          since = 0;
        }
      }
      this.appendAll(makers);
      this.sinceCheckpoint = since;
      this.failures = 0;
    } catch (e) {
      this.failures++;
      throw new WardenError(
        'AUDIT_UNAVAILABLE',
        `The audit file cannot be written (${(e as NodeJS.ErrnoException).code ?? 'error'}).`,
        { cause: e },
      );
    }
  }

  /**
   * For readiness, without writing a byte: the file system has room (statfs, above AUDIT_ROOM_FLOOR),
   * the directory is writable (rotation creates files there), and the last append landed. A failed
   * last append is forgiven once the two checks pass and an fdatasync of the open file succeeds, so
   * readiness comes back when space does even if no call arrives to prove it (a cause statfs cannot
   * see, such as a file-size limit, shows again at the next failed append; calls fail closed meanwhile).
   */
  async writable(): Promise<boolean> {
    if (this.closed) return false;
    const failures = this.failures;
    try {
      const dir = dirname(this.path);
      const fs = await statfs(dir);
      if (fs.bavail * fs.bsize < AUDIT_ROOM_FLOOR) return false;
      await access(dir, constants.W_OK);
      if (failures === 0) return true;
      await new Promise<void>((resolve, reject) => fdatasync(this.fd, (e) => (e ? reject(e) : resolve())));
    } catch {
      return false;
    }
    // Forgiven only if no append failed while this probe ran.
    if (this.failures !== failures || this.closed) return false;
    this.failures = 0;
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Records waiting for their joined append land first: their calls are still waiting on them.
    this.flushJoined();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // The last anchor is written below, after any write still in flight (which then cannot land last).
    await this.anchorJob;
    try {
      this.appendAll([this.checkpointOf('close')]);
    } catch {
      /* closing anyway: the file is as it was, and the anchor below still holds */
    }
    try {
      fdatasyncSync(this.fd);
      this.anchorNow();
    } catch {
      /* closing anyway */
    }
    closeSync(this.fd);
    this.lock.release();
  }

  private checkpointOf(reason: string, extra: object = {}): Maker {
    const { key } = this;
    return (s, prev) => ({
      kind: 'checkpoint',
      time: iso(this.now()),
      reason,
      head: prev,
      upto: s - 1,
      format: 2,
      ...extra,
      ...(key ? { sig: signCheckpoint(key, reason, prev, s - 1) } : {}),
    });
  }

  /** One write for all the lines (a record and its checkpoint): all of them land, or none. */
  private appendAll(makers: Maker[]): void {
    if (this.repairTo !== undefined) {
      ftruncateSync(this.fd, this.repairTo);
      this.repairTo = undefined;
    }
    // The file's size as this writer left it (it alone appends: the lock), not an fstat per record.
    const start = this.size;
    const all = [
      // A file that continues a chain opens with a signed `start`: cutting its first records shows.
      ...(start === 0 && this.head !== GENESIS ? [this.checkpointOf('start')] : []),
      ...(this.notice ? [this.notice] : []),
      ...makers,
    ];
    const { mirror } = this.options;
    const next = chain(all, this.seq, this.head, mirror !== undefined);
    let written: number;
    try {
      written = writeAll(this.fd, next.text);
      if (this.fsyncMode === 'always') fdatasyncSync(this.fd);
    } catch (e) {
      this.rollback(start);
      throw e;
    }
    ({ seq: this.seq, head: this.head } = next);
    this.size = start + written;
    this.dirty = true;
    this.notice = undefined;
    if (mirror) for (const [line, record] of next.lines) mirror.push(line, record!);
    if (this.fsyncMode === 'always') this.anchorNow();
  }

  /** Cuts a failed append back off (a short write on ENOSPC or EFBIG leaves a fragment otherwise). */
  private rollback(to: number): void {
    try {
      ftruncateSync(this.fd, to);
    } catch {
      this.repairTo = to;
    }
  }

  private rotateIfDue(): void {
    const { rotateBytes, rotateAgeMs } = this.options;
    const tooBig = rotateBytes !== undefined && this.size >= rotateBytes;
    const tooOld = rotateAgeMs !== undefined && this.now() - this.openedAt >= rotateAgeMs;
    if (!tooBig && !tooOld) return;
    this.appendAll([this.checkpointOf('rotate')]);
    this.sinceCheckpoint = 0;
    fdatasyncSync(this.fd);
    const to = rotatedName(this.path, this.now());
    renameSync(this.path, to);
    let fresh: number;
    try {
      fresh = openFile(this.path);
    } catch (e) {
      renameSync(to, this.path);
      throw e;
    }
    // The chain goes on in the new file: it opens with a `start` checkpoint chained to the old head.
    closeSync(this.fd);
    this.fd = fresh;
    this.generation++;
    this.size = 0;
    this.openedAt = this.now();
    // The anchor learns where the kept files start before older ones go (a crash between the two
    // leaves more files than it says, which verifies).
    const doomed = toPrune(this.path, this.options.retain ?? 30);
    this.first = firstSeqOf(this.path, doomed.length);
    this.anchorNow();
    // An off-loop anchor write in flight holds the old `first`: the old files go once it has settled
    // (and the anchor is this one again), so no anchor ever names a file that retention removed.
    if (this.anchorJob) void this.anchorJob.then(() => doomed.forEach(removeQuietly));
    else for (const f of doomed) removeQuietly(f);
  }

  /** The batch sync: the anchor moves only past what is on disk (after a power loss it is never ahead). */
  private sync(): void {
    if (!this.dirty || this.anchorJob) return;
    this.dirty = false;
    const { seq, head, generation } = this;
    if (this.fsyncMode === 'never') {
      this.anchorOffLoop(seq, head);
      return;
    }
    fdatasync(this.fd, (err) => {
      if (!err && !this.closed && generation === this.generation) this.anchorOffLoop(seq, head);
    });
  }

  private anchorNow(seq = this.seq, head = this.head): void {
    if (this.notice || seq <= this.anchored) return;
    const a = this.anchorOf(seq, head);
    this.anchorEpoch++;
    try {
      writeAnchor(this.path, a, this.key);
      this.anchored = seq;
      this.anchoredAs = a;
    } catch {
      /* the old anchor stays: still a true lower bound; the next sync tries again */
    }
  }

  /**
   * The batch timer's anchor, written off the event loop. Should an anchor be written on the loop
   * meanwhile (rotation), this one is dropped before its rename, or, if its rename came first, the
   * newer one is written again at once: the anchor never ends older than one already written.
   */
  private anchorOffLoop(seq: number, head: string): void {
    if (this.notice || seq <= this.anchored || this.anchorJob) return;
    const a = this.anchorOf(seq, head);
    const epoch = this.anchorEpoch;
    const current = () => epoch === this.anchorEpoch && !this.closed;
    this.anchorJob = writeAnchorAsync(this.path, a, this.key, current).then(
      (landed) => {
        this.anchorJob = undefined;
        if (landed && current()) {
          this.anchored = seq;
          this.anchoredAs = a;
        } else if (landed && this.anchoredAs) this.restoreAnchor(this.anchoredAs);
      },
      () => {
        // The old anchor stays: still a true lower bound; the next sync tries again.
        this.anchorJob = undefined;
      },
    );
  }

  /** Puts back the newest anchor written, after an older one overtook it. */
  private restoreAnchor(a: Omit<Anchor, 'sig'>): void {
    try {
      writeAnchor(this.path, a, this.key);
    } catch {
      /* the anchor left is older: still a true lower bound */
    }
  }

  private anchorOf(seq: number, head: string): Omit<Anchor, 'sig'> {
    this.first ??= firstSeqOf(this.path);
    const { first } = this;
    return { seq, head, ...(first !== undefined ? { first } : {}), time: iso(this.now()) };
  }
}

/**
 * The chained lines of `makers` after (seq, head), their text as written (each line and its
 * newline), and the chain's new end; each with the record as written (`seq` and `prev` added) when
 * `records` is set (the mirror takes them). A line's hash is taken over its UTF-8, which is what is
 * written (hashing a string hashes its UTF-8): no Buffer is made per line.
 */
function chain(
  makers: Maker[],
  seq: number,
  head: string,
  records: boolean,
): {
  lines: Array<[string, Record<string, unknown> | undefined]>;
  text: string;
  seq: number;
  head: string;
} {
  const lines: Array<[string, Record<string, unknown> | undefined]> = [];
  let text = '';
  for (const make of makers) {
    seq += 1;
    const made = make(seq, head) as Record<string, unknown>;
    const line = lineOf(made, seq, head);
    lines.push([line, records ? { ...made, seq, prev: head } : undefined]);
    text += `${line}\n`;
    head = sha256(line);
  }
  return { lines, text, seq, head };
}

/**
 * Appends all of `text` in UTF-8; its length in bytes. The string goes to the kernel as it is (node
 * encodes it without a Buffer object per record); a short write (a size limit, a full disk: the next
 * write then fails) goes on from the byte where it stopped.
 */
function writeAll(fd: number, text: string): number {
  const total = Buffer.byteLength(text);
  let off = writeSync(fd, text);
  if (off < total) {
    const bytes = Buffer.from(text);
    while (off < total) off += writeSync(fd, bytes, off);
  }
  return total;
}

/**
 * `JSON.stringify({ ...made, seq, prev })`, byte for byte, without copying the record first (this
 * runs for every call): the two keys are appended to the record's own JSON. A record that has either
 * key already, or its own `toJSON`, takes the copy.
 */
export function lineOf(made: Record<string, unknown>, seq: number, prev: string): string {
  if (Object.hasOwn(made, 'seq') || Object.hasOwn(made, 'prev') || typeof made.toJSON === 'function')
    return JSON.stringify({ ...made, seq, prev });
  const json = JSON.stringify(made);
  const tail = `"seq":${JSON.stringify(seq)},"prev":${JSON.stringify(prev)}}`;
  return json === '{}' ? `{${tail}` : `${json.slice(0, -1)},${tail}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
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

/** The end of a file's chain: its last lines (the last at `seq`), for resuming and anchor checks. */
interface FileEnd {
  seq: number;
  head: string;
  tail: string[];
}

const TAIL_BYTES = 1024 * 1024;

/**
 * Continues the chain of an existing file from its last line. A torn last line (a crash while
 * writing it) is kept as it is and counts as one position: the next record's `prev` is its hash, and
 * `audit verify` names it and goes on after it. An empty file continues the newest rotated one.
 */
function resume(fd: number, path: string): FileEnd & { size: number; ends: FileEnd[] } {
  let size = fstatSync(fd).size;
  const previous = (): FileEnd | undefined => {
    const newest = listRotated(path).at(-1);
    return newest ? endOfFile(newest) : undefined;
  };
  if (size === 0) {
    const prev = previous();
    return { seq: prev?.seq ?? 0, head: prev?.head ?? GENESIS, tail: [], size, ends: prev ? [prev] : [] };
  }
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) {
    // Terminate the torn line so the next record starts on its own line.
    writeSync(fd, '\n');
    size += 1;
  }
  const end = endOfFile(path)!;
  const prev = previous();
  return { ...end, size, ends: prev ? [end, prev] : [end] };
}

/** The end of a file's chain, from its last MiB; undefined for an empty or missing file. */
function endOfFile(file: string): FileEnd | undefined {
  const tail = tailLines(file, TAIL_BYTES);
  if (!tail.length) return undefined;
  let seq = 0;
  for (let i = tail.length - 1; i >= 0; i--) {
    const s = seqOf(tail[i]!);
    if (s !== undefined) {
      // A torn or foreign line after it still took a position.
      seq = s + (tail.length - 1 - i);
      break;
    }
  }
  return { seq, head: sha256(tail.at(-1)!), tail };
}

function seqOf(line: string): number | undefined {
  try {
    const s = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof s === 'number' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** The seq the oldest kept file starts at (skipping the `skip` oldest, about to be pruned). */
function firstSeqOf(path: string, skip = 0): number | undefined {
  const file = [...listRotated(path).slice(skip), path][0]!;
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const n = readSync(fd, buf, 0, buf.length, 0);
      const nl = buf.subarray(0, n).indexOf(0x0a);
      return nl < 0 ? undefined : seqOf(buf.subarray(0, nl).toString('utf8'));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * At start: why the files no longer match their head anchor (records were cut or rewritten while
 * the writer was stopped), written as a checkpoint so that restarting cannot launder a cut.
 * Undefined when they match.
 */
function anchorNotice(
  path: string,
  opened: FileEnd & { ends: FileEnd[] },
  first: number | undefined,
  key: Buffer | undefined,
): { reason: string; detail: string; extra: object } | undefined {
  const read = readAnchor(path);
  const notice = (reason: string, detail: string, more: object = {}) => ({
    reason,
    detail,
    extra: { detail, ...more },
  });
  if ('missing' in read || (key && 'anchor' in read && read.anchor.sig === undefined)) {
    if (opened.seq === 0) return undefined;
    const unsigned = !('missing' in read);
    const what = unsigned ? 'the head anchor was not signed' : `no head anchor at ${anchorPath(path)}`;
    return notice(
      'anchor-missing',
      `${what} when the writer started at seq ${opened.seq}`,
      unsigned ? { unsigned: true } : {},
    );
  }
  if ('invalid' in read) return notice('anchor-mismatch', `the head anchor ${read.invalid}`);
  const a = read.anchor;
  const why = anchorMismatch(a, opened, first, key);
  return why
    ? notice('anchor-mismatch', why, {
        anchor: { seq: a.seq, head: a.head, ...(a.first !== undefined ? { first: a.first } : {}) },
      })
    : undefined;
}

function anchorMismatch(
  a: Anchor,
  opened: FileEnd & { ends: FileEnd[] },
  first: number | undefined,
  key: Buffer | undefined,
): string | undefined {
  const sig = anchorSignatureProblem(a, key);
  if (sig) return sig;
  if (a.seq > opened.seq)
    return `the head anchor says records up to seq ${a.seq} were written; the files ended at seq ${opened.seq}: records ${opened.seq + 1}–${a.seq} were cut off the end`;
  if (a.first !== undefined && first !== undefined && first > a.first)
    return `the oldest file kept started at seq ${a.first}, now at seq ${first}: records ${a.first}–${first - 1} were removed`;
  if (a.seq === 0) return undefined;
  for (const end of opened.ends) {
    const line = end.tail[end.tail.length - 1 - (end.seq - a.seq)];
    if (line !== undefined)
      return sha256(line) === a.head
        ? undefined
        : `the record at seq ${a.seq} is not the one the head anchor holds: it was rewritten`;
  }
  return `the anchored record (seq ${a.seq}) is not in the last MiB of the files, so it was not checked`;
}

/** The rotated files past `retain`, oldest first: to be deleted. */
function toPrune(path: string, retain: number): string[] {
  const rotated = listRotated(path);
  return rotated.slice(0, Math.max(0, rotated.length - retain));
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* already gone */
  }
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
