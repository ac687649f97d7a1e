import { timingSafeEqual } from 'node:crypto';
import { GENESIS, sha256, sign } from './jsonl.js';
import { readLines } from './read.js';

export interface VerifyResult {
  ok: boolean;
  files: number;
  records: number;
  checkpoints: number;
  signedCheckpoints: number;
  /** The first thing wrong, with where it is. */
  problem?: { file: string; line: number; seq?: number; message: string };
}

/**
 * Walks the chain over the given files (oldest first) and reports the first broken or missing
 * record: a line that is not a complete record, a `prev` that is not the hash of the line before
 * (that line was edited, or records between them removed), a gap or repeat in `seq`, or a
 * checkpoint whose head, position or signature does not match. Files are streamed: an audit file
 * can be larger than a string may be.
 */
export async function verifyAudit(files: readonly string[], key?: Buffer): Promise<VerifyResult> {
  const chain = new Chain(files.length, key);
  for (const file of files) {
    let lineNo = 0;
    for await (const raw of readLines(file)) {
      const failed = chain.check(file, ++lineNo, raw);
      if (failed) return failed;
    }
  }
  return chain.result;
}

/** The same check over lines from anywhere (the PostgreSQL mirror). */
export function verifyLines(
  segments: ReadonlyArray<{ file: string; lines: readonly string[] }>,
  key?: Buffer,
): VerifyResult {
  const chain = new Chain(segments.length, key);
  for (const { file, lines } of segments)
    for (let i = 0; i < lines.length; i++) {
      const failed = chain.check(file, i + 1, lines[i]!);
      if (failed) return failed;
    }
  return chain.result;
}

interface ChainedLine {
  seq?: unknown;
  prev?: unknown;
  kind?: unknown;
  head?: unknown;
  upto?: unknown;
  sig?: unknown;
}

/** The chain, one line at a time: between two lines the state is the previous hash and seq. */
class Chain {
  readonly result: VerifyResult;
  private prevHash: string | undefined;
  private prevSeq: number | undefined;

  constructor(
    files: number,
    private readonly key: Buffer | undefined,
  ) {
    this.result = { ok: true, files, records: 0, checkpoints: 0, signedCheckpoints: 0 };
  }

  /** The failed result at this line, or undefined when the line continues the chain. */
  check(file: string, line: number, raw: string): VerifyResult | undefined {
    const { result, key, prevHash, prevSeq } = this;
    const fail = (message: string, seq?: number): VerifyResult => ({
      ...result,
      ok: false,
      problem: { file, line, ...(seq !== undefined ? { seq } : {}), message },
    });
    let rec: ChainedLine;
    try {
      rec = JSON.parse(raw) as ChainedLine;
    } catch {
      return fail('not a complete record (a torn write, or an edited line)');
    }
    if (typeof rec.seq !== 'number' || typeof rec.prev !== 'string')
      return fail('not a chained audit record (no seq/prev)');
    if (prevSeq !== undefined) {
      if (rec.seq > prevSeq + 1) return fail(`records ${prevSeq + 1}–${rec.seq - 1} are missing`, rec.seq);
      if (rec.seq <= prevSeq) return fail(`seq ${rec.seq} repeats or goes back (after ${prevSeq})`, rec.seq);
    }
    if (prevHash !== undefined && rec.prev !== prevHash)
      return fail(
        `does not follow the record before it: record ${prevSeq} was altered, or records were removed`,
        rec.seq,
      );
    if (
      prevHash === undefined &&
      result.records === 0 &&
      rec.prev !== GENESIS &&
      !/^[0-9a-f]{64}$/.test(rec.prev)
    )
      return fail('the first record has no valid prev', rec.seq);
    if (rec.kind === 'checkpoint') {
      result.checkpoints++;
      if (prevHash !== undefined && rec.head !== prevHash)
        return fail('checkpoint head does not match the chain', rec.seq);
      if (rec.upto !== rec.seq - 1) return fail('checkpoint position does not match its seq', rec.seq);
      if (typeof rec.sig === 'string') {
        result.signedCheckpoints++;
        if (key) {
          const want = Buffer.from(sign(key, String(rec.head), rec.upto as number), 'hex');
          const got = Buffer.from(rec.sig, 'hex');
          if (want.length !== got.length || !timingSafeEqual(want, got))
            return fail('checkpoint signature does not verify (forged, or another key)', rec.seq);
        }
      } else if (key) return fail('checkpoint is not signed, but a key was given', rec.seq);
    } else result.records++;
    this.prevHash = sha256(raw);
    this.prevSeq = rec.seq;
    return undefined;
  }
}
