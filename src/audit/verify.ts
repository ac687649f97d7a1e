import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GENESIS, sha256, sign } from './jsonl.js';

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
 * checkpoint whose head, position or signature does not match.
 */
export function verifyAudit(files: readonly string[], key?: Buffer): VerifyResult {
  return verifyLines(
    files.map((file) => {
      const lines = readFileSync(file, 'utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      return { file, lines };
    }),
    key,
  );
}

/** The same check over lines from anywhere (files, or the PostgreSQL mirror). */
export function verifyLines(
  segments: ReadonlyArray<{ file: string; lines: readonly string[] }>,
  key?: Buffer,
): VerifyResult {
  const result: VerifyResult = {
    ok: true,
    files: segments.length,
    records: 0,
    checkpoints: 0,
    signedCheckpoints: 0,
  };
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  const fail = (file: string, line: number, message: string, seq?: number): VerifyResult => ({
    ...result,
    ok: false,
    problem: { file, line, ...(seq !== undefined ? { seq } : {}), message },
  });

  for (const { file, lines } of segments) {
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!;
      const lineNo = i + 1;
      let rec: {
        seq?: unknown;
        prev?: unknown;
        kind?: unknown;
        head?: unknown;
        upto?: unknown;
        sig?: unknown;
      };
      try {
        rec = JSON.parse(raw) as typeof rec;
      } catch {
        return fail(file, lineNo, 'not a complete record (a torn write, or an edited line)');
      }
      if (typeof rec.seq !== 'number' || typeof rec.prev !== 'string')
        return fail(file, lineNo, 'not a chained audit record (no seq/prev)');
      if (prevSeq !== undefined) {
        if (rec.seq > prevSeq + 1)
          return fail(file, lineNo, `records ${prevSeq + 1}–${rec.seq - 1} are missing`, rec.seq);
        if (rec.seq <= prevSeq)
          return fail(file, lineNo, `seq ${rec.seq} repeats or goes back (after ${prevSeq})`, rec.seq);
      }
      if (prevHash !== undefined && rec.prev !== prevHash)
        return fail(
          file,
          lineNo,
          `does not follow the record before it: record ${prevSeq} was altered, or records were removed`,
          rec.seq,
        );
      if (
        prevHash === undefined &&
        result.records === 0 &&
        rec.prev !== GENESIS &&
        !/^[0-9a-f]{64}$/.test(rec.prev)
      )
        return fail(file, lineNo, 'the first record has no valid prev', rec.seq);
      if (rec.kind === 'checkpoint') {
        result.checkpoints++;
        if (prevHash !== undefined && rec.head !== prevHash)
          return fail(file, lineNo, 'checkpoint head does not match the chain', rec.seq);
        if (rec.upto !== rec.seq - 1)
          return fail(file, lineNo, 'checkpoint position does not match its seq', rec.seq);
        if (typeof rec.sig === 'string') {
          result.signedCheckpoints++;
          if (key) {
            const want = Buffer.from(sign(key, String(rec.head), rec.upto as number), 'hex');
            const got = Buffer.from(rec.sig, 'hex');
            if (want.length !== got.length || !timingSafeEqual(want, got))
              return fail(
                file,
                lineNo,
                'checkpoint signature does not verify (forged, or another key)',
                rec.seq,
              );
          }
        } else if (key) return fail(file, lineNo, 'checkpoint is not signed, but a key was given', rec.seq);
      } else result.records++;
      prevHash = sha256(raw);
      prevSeq = rec.seq;
    }
  }
  return result;
}
