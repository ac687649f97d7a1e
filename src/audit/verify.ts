import {
  type AnchorRead,
  anchorPath,
  anchorSignatureProblem,
  readAnchor,
  sameHex,
  sha256,
  sign,
  signCheckpoint,
} from './anchor.js';
import { GENESIS } from './jsonl.js';
import { readLinesAt } from './read.js';

/** Something wrong, with where it is (`offset`: the byte the line starts at). */
export interface Problem {
  file: string;
  line: number;
  offset?: number;
  seq?: number;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  records: number;
  checkpoints: number;
  signedCheckpoints: number;
  /** Lines that are not complete records (a write cut short by a crash, or an edited line). */
  torn: number;
  /** The first thing wrong. */
  problem?: Problem;
  /** Everything wrong, in file order (the first MAX_LISTED); `problemCount` counts them all. */
  problems: Problem[];
  problemCount: number;
  /** The last seq of the chain, when there is one. */
  lastSeq?: number;
  /** Whether the chain ends in a `close` checkpoint. */
  closed: boolean;
  /** What holds but is worth saying: closed or not, what the anchor covered. */
  notes: string[];
}

export interface VerifyOptions {
  /** The live audit path: the files must reach its head anchor (`<path>.head`). */
  anchorOf?: string;
  /** The database mirror's last line of this chain: the files must reach it too. */
  mirrorHead?: { seq: number; line: string; where: string };
}

const MAX_LISTED = 1000;

/**
 * Walks the chain over the given files (oldest first) and reports every broken, missing or torn
 * record, going on after each: a line that is not a complete record, a `prev` that is not the hash
 * of the line before (that line was edited, or records between them removed), a gap or repeat in
 * `seq`, a first record that does not start a chain, a checkpoint whose head, position or signature
 * does not match; then whether the files reach the head anchor and the database mirror (records cut
 * off the end). Files are streamed: an audit file can be larger than a string may be.
 */
export async function verifyAudit(
  files: readonly string[],
  key?: Buffer,
  o: VerifyOptions = {},
): Promise<VerifyResult> {
  const anchor = o.anchorOf ? readAnchor(o.anchorOf) : undefined;
  const chain = new Chain(files, key, [
    ...(anchor && 'anchor' in anchor ? [anchor.anchor.seq] : []),
    ...(o.mirrorHead ? [o.mirrorHead.seq] : []),
  ]);
  for (const file of files) {
    let line = 0;
    for await (const { text, offset } of readLinesAt(file)) chain.check(file, ++line, offset, text);
  }
  return finish(chain, key, o, anchor);
}

/** The same check over lines from anywhere (the PostgreSQL mirror). */
export function verifyLines(
  segments: ReadonlyArray<{ file: string; lines: readonly string[] }>,
  key?: Buffer,
): VerifyResult {
  const chain = new Chain(
    segments.map((x) => x.file),
    key,
    [],
  );
  for (const { file, lines } of segments) {
    let offset = 0;
    for (let i = 0; i < lines.length; i++) {
      chain.check(file, i + 1, offset, lines[i]!);
      offset += Buffer.byteLength(lines[i]!) + 1;
    }
  }
  return finish(chain, key, {}, undefined);
}

function finish(chain: Chain, key: Buffer | undefined, o: VerifyOptions, anchor?: AnchorRead): VerifyResult {
  chain.end();
  if (o.anchorOf && anchor) checkAnchor(chain, anchor, key, anchorPath(o.anchorOf));
  if (o.mirrorHead)
    chain.reach(o.mirrorHead.seq, sha256(o.mirrorHead.line), `the database mirror (${o.mirrorHead.where})`);
  const r = chain.result;
  r.ok = r.problemCount === 0;
  if (r.problems[0]) r.problem = r.problems[0];
  return r;
}

/** The files must reach the anchor (records cut off the end) and start where it says (files removed). */
function checkAnchor(chain: Chain, read: AnchorRead, key: Buffer | undefined, where: string): void {
  if ('missing' in read) {
    if (chain.sawFormat2)
      chain.endProblem(
        `no head anchor at ${where}: this version keeps one beside the file, so it was removed, and records cut off the end cannot be ruled out`,
      );
    else
      chain.note(
        `no head anchor at ${where} (files written by an earlier version): records cut off the end are not detectable`,
      );
    return;
  }
  if ('invalid' in read) {
    chain.endProblem(`the head anchor ${where} ${read.invalid}`);
    return;
  }
  const a = read.anchor;
  const sig = anchorSignatureProblem(a, key);
  if (sig) {
    chain.endProblem(sig);
    return;
  }
  const before = chain.result.problemCount;
  chain.reach(a.seq, a.head, `the head anchor (${where})`);
  const first = chain.firstSeq;
  if (a.first !== undefined && first !== undefined && first > a.first)
    chain.endProblem(
      `the files start at seq ${first}, but the head anchor says the oldest file kept starts at seq ${a.first}: records ${a.first}–${first - 1} were removed`,
    );
  if (chain.result.problemCount === before)
    chain.note(
      `the files reach their head anchor (seq ${a.seq}${a.sig === undefined ? ', unsigned' : key ? ', signature verifies' : ', signature not checked without a key'})`,
    );
}

interface ChainedLine {
  seq: number;
  prev: string;
  kind?: unknown;
  reason?: unknown;
  format?: unknown;
  head?: unknown;
  upto?: unknown;
  sig?: unknown;
  detail?: unknown;
  unsigned?: unknown;
}

/** A parsed chained record, or why the line is not one. */
function parse(raw: string): ChainedLine | { torn: boolean; message: string } {
  let rec: unknown;
  try {
    rec = JSON.parse(raw);
  } catch {
    return {
      torn: true,
      message:
        'torn line: not a complete record (a write cut short by a crash, or an edited line); the records after it are still checked',
    };
  }
  const r = rec as Partial<ChainedLine> | null;
  if (r === null || typeof r !== 'object' || typeof r.seq !== 'number' || typeof r.prev !== 'string')
    return { torn: false, message: 'not a chained audit record (no seq/prev)' };
  return r as ChainedLine;
}

/** The chain, one line at a time: between two lines the state is the previous hash and seq. */
class Chain {
  readonly result: VerifyResult;
  /** Set once a checkpoint written by this version (format 2) was seen: it keeps a head anchor. */
  sawFormat2 = false;
  private sawSignedFormat2 = false;
  firstSeq: number | undefined;
  private prevHash: string | undefined;
  private prevSeq: number | undefined;
  private closedAt: number | undefined;
  /** Where the last line was (where a cut off the end is reported); before any, the last file's start. */
  private last: { file: string; line: number; offset: number };
  private readonly found = new Map<number, string>();
  private readonly wanted: Set<number>;

  constructor(
    files: readonly string[],
    private readonly key: Buffer | undefined,
    wanted: number[],
  ) {
    this.wanted = new Set(wanted);
    this.last = { file: files.at(-1) ?? '', line: 0, offset: 0 };
    this.result = {
      ok: true,
      files: files.length,
      records: 0,
      checkpoints: 0,
      signedCheckpoints: 0,
      torn: 0,
      problems: [],
      problemCount: 0,
      closed: false,
      notes: [],
    };
  }

  check(file: string, line: number, offset: number, raw: string): void {
    const at = { file, line, offset };
    this.last = { file, line, offset: offset + Buffer.byteLength(raw) + 1 };
    const rec = parse(raw);
    if ('message' in rec) {
      if (rec.torn) this.result.torn++;
      this.problem({ ...at, message: rec.message });
      // It took a position: the writer chains the next record to it.
      this.advance(raw, this.prevSeq === undefined ? undefined : this.prevSeq + 1);
      return;
    }
    const starting = this.prevHash === undefined;
    const link = starting ? this.startProblem(rec) : this.linkProblem(rec);
    if (link) this.problem({ ...at, seq: rec.seq, message: link });
    if (rec.kind === 'checkpoint') {
      const cp = this.checkpointProblem(rec);
      if (cp) this.problem({ ...at, seq: rec.seq, message: cp });
    } else this.result.records++;
    this.advance(raw, rec.seq, rec);
  }

  private advance(raw: string, seq: number | undefined, rec?: ChainedLine): void {
    this.prevHash = sha256(raw);
    if (seq === undefined) return;
    if (this.wanted.has(seq)) this.found.set(seq, this.prevHash);
    this.firstSeq ??= seq;
    this.prevSeq = seq;
    this.closedAt = rec?.kind === 'checkpoint' && rec.reason === 'close' ? seq : undefined;
  }

  private startProblem(rec: ChainedLine): string | undefined {
    if (rec.seq === 1 && rec.prev === GENESIS) return undefined;
    // Its signature is checked below with every checkpoint's.
    if (rec.kind === 'checkpoint' && rec.reason === 'start' && rec.format === 2) return undefined;
    return `the first record (seq ${rec.seq}) does not start a chain: records before it were cut off, or the files before this one were removed (a chain starts at seq 1 from the genesis, and each file after a rotation opens with a signed start checkpoint; files rotated by earlier versions have none)`;
  }

  private linkProblem(rec: ChainedLine): string | undefined {
    const { prevSeq } = this;
    if (prevSeq !== undefined && rec.seq > prevSeq + 1)
      return `records ${prevSeq + 1}–${rec.seq - 1} are missing`;
    if (prevSeq !== undefined && rec.seq <= prevSeq)
      return `seq ${rec.seq} repeats or goes back (after ${prevSeq})`;
    if (rec.prev !== this.prevHash)
      return `does not follow the record before it: record ${prevSeq ?? rec.seq - 1} was altered, or records were removed`;
    return undefined;
  }

  private checkpointProblem(rec: ChainedLine): string | undefined {
    const { key } = this;
    this.result.checkpoints++;
    if (this.prevHash !== undefined && rec.head !== this.prevHash)
      return 'checkpoint head does not match the chain';
    if (rec.upto !== rec.seq - 1) return 'checkpoint position does not match its seq';
    const format2 = rec.format === 2;
    if (typeof rec.sig !== 'string') {
      if (key) return 'checkpoint is not signed, but a key was given';
    } else {
      this.result.signedCheckpoints++;
      if (key) {
        const head = String(rec.head);
        const want = format2
          ? signCheckpoint(key, String(rec.reason), head, rec.upto)
          : sign(key, head, rec.upto);
        if (!sameHex(want, rec.sig)) return 'checkpoint signature does not verify (forged, or another key)';
      }
    }
    const notice = format2 ? this.noticeProblem(rec) : undefined;
    if (format2) this.sawFormat2 = true;
    if (format2 && typeof rec.sig === 'string') this.sawSignedFormat2 = true;
    return notice;
  }

  /** What the writer found at start about the head anchor (jsonl.ts writes these checkpoints). */
  private noticeProblem(rec: ChainedLine): string | undefined {
    const detail = String(rec.detail ?? '');
    if (rec.reason === 'anchor-mismatch')
      return `at start, the writer found that the file did not match its head anchor: ${detail}`;
    if (rec.reason !== 'anchor-missing') return undefined;
    const hadOne = rec.unsigned ? this.sawSignedFormat2 : this.sawFormat2;
    if (hadOne)
      return `at start, the writer found no valid head anchor although this version had written the files before (it was removed or replaced): ${detail}`;
    this.note(
      `${detail}: the first start of a version that keeps a signed head anchor; records cut off before seq ${rec.seq} would not show`,
    );
    return undefined;
  }

  problem(p: Problem): void {
    this.result.problemCount++;
    if (this.result.problems.length < MAX_LISTED) this.result.problems.push(p);
  }

  /** A problem found after the last line (something is missing at the end). */
  endProblem(message: string): void {
    const { file, line, offset } = this.last;
    this.problem({ file, line: line + 1, offset, seq: (this.prevSeq ?? 0) + 1, message });
  }

  note(text: string): void {
    this.result.notes.push(text);
  }

  end(): void {
    const last = this.prevSeq;
    if (last !== undefined) this.result.lastSeq = last;
    this.result.closed = this.closedAt !== undefined && this.closedAt === last;
    if (this.result.closed) this.note(`closed cleanly at seq ${last}`);
    else if (last !== undefined)
      this.note(`not closed (the writer may still be running, or records were cut after seq ${last})`);
  }

  /** The files must hold the record at `seq` whose hash is `hash` (an anchor of the head). */
  reach(seq: number, hash: string, what: string): void {
    const last = this.prevSeq ?? 0;
    if (seq > last) {
      this.endProblem(
        `${what} says records up to seq ${seq} were written, but the files end at seq ${last}: records ${last + 1}–${seq} were cut off the end`,
      );
      return;
    }
    const found = this.found.get(seq);
    if (seq === 0 || (found === undefined && this.firstSeq !== undefined && seq < this.firstSeq)) return;
    if (found !== hash)
      this.endProblem(
        `${what} holds another record at seq ${seq}: it was rewritten, or records were cut and the chain rebuilt`,
      );
  }
}
