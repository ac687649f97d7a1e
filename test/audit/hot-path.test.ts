import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAnchor } from '../../src/audit/anchor.js';
import { lineOf, listRotated, openJsonlAudit, sha256 } from '../../src/audit/jsonl.js';
import { verifyAudit } from '../../src/audit/verify.js';
import type { AnyRecord, AuditRecord } from '../../src/model/audit.js';
import { tempTree } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

/**
 * What issue 22 changed on the audit's hot path: each line is written without copying its record
 * first (byte for byte what the copy gave), and the batch timer's head anchor is written off the
 * event loop (never older than one written on it, never naming a file retention removed).
 */
const KEY = Buffer.from('hot-path-key-0123456789abcdef');

const call = (i: number): AnyRecord => ({
  kind: 'call',
  time: new Date(1_800_000_000_000 + i * 1000).toISOString(),
  id: `id-${i}`,
  tool: 'getOrder',
  decision: 'allowed',
  outcome: 'ok',
  principal: 'alice',
  ms: 1,
});

describe('a chained line', () => {
  it('is exactly JSON.stringify({ ...record, seq, prev }), whatever the record holds', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.nat(), fc.string(), (made, seq, prev) => {
        expect(lineOf(made, seq, prev)).toBe(JSON.stringify({ ...made, seq, prev }));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the place of a seq or prev the record has already, and honours its toJSON', () => {
    const cases: Array<Record<string, unknown>> = [
      {},
      { seq: 1, kind: 'x' },
      { kind: 'x', prev: 'old', tail: true },
      { a: undefined, b: 1 },
      { toJSON: () => ({ replaced: true }) },
      { text: 'ümlaut \u2028 "quoted" \\ \ud800' },
    ];
    for (const made of cases)
      expect(lineOf(made, 7, 'h')).toBe(JSON.stringify({ ...made, seq: 7, prev: 'h' }));
  });
});

describe('a line written as its text', () => {
  it('lands as its UTF-8, chained over those bytes, and counts bytes (not characters) toward rotation', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    // 300 two-byte characters a line (and a few wider ones): two lines hold ~600 more bytes than
    // characters. Counted in characters, the third record would still fit before the limit;
    // counted in bytes, it starts a new file.
    const note = `${'é'.repeat(300)} € 😀 \u2028 \ud800`;
    const wide = (i: number): AuditRecord => ({ ...(call(i) as AuditRecord), args: { note, i } });
    const chars = lineOf(wide(0) as unknown as Record<string, unknown>, 1, 'f'.repeat(64)).length + 1;
    const sink = openJsonlAudit(file, { signingKey: KEY, rotateBytes: 2 * chars + 300 });
    for (let i = 0; i < 3; i++) sink.write(wide(i));
    await sink.close();
    expect(listRotated(file)).toHaveLength(1);
    const files = [...listRotated(file), file];
    const raw = Buffer.concat(files.map((f) => readFileSync(f)));
    const lines: Buffer[] = [];
    for (let at = 0; at < raw.length; ) {
      const nl = raw.indexOf(0x0a, at);
      lines.push(raw.subarray(at, nl));
      at = nl + 1;
    }
    // Each line's `prev` is the SHA-256 of the bytes of the line before it, as they are on disk.
    for (let i = 1; i < lines.length; i++)
      expect(JSON.parse(lines[i]!.toString('utf8')).prev).toBe(
        createHash('sha256')
          .update(lines[i - 1]!)
          .digest('hex'),
      );
    const notes = lines.map((l) => JSON.parse(l.toString('utf8'))).filter((r) => r.kind === 'call');
    expect(notes.map((r) => r.args)).toEqual([0, 1, 2].map((i) => ({ note, i })));
    expect(await verifyAudit(files, KEY)).toMatchObject({ ok: true });
  });
});

describe('the head anchor, written off the event loop by the batch timer', () => {
  it('catches up with the records written, while the writer runs', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = openJsonlAudit(file, { signingKey: KEY, fsyncIntervalMs: 5 });
    for (let i = 0; i < 20; i++) sink.write(call(i));
    const last = readFileSync(file, 'utf8').trimEnd().split('\n').at(-1)!;
    await waitFor(
      () => {
        const a = readAnchor(file);
        return 'anchor' in a && a.anchor.seq === 20 && a.anchor.head === sha256(last);
      },
      { what: 'the anchor at seq 20' },
    );
    await sink.close();
    expect(existsSync(`${file}.head.tmp-async`)).toBe(false);
    expect(await verifyAudit([file], KEY)).toMatchObject({ ok: true, records: 20 });
  });

  it('never ends older than the rotations’ anchors, nor names a file retention removed', async () => {
    let now = 1_800_000_000_000;
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = openJsonlAudit(file, {
      signingKey: KEY,
      fsyncIntervalMs: 1,
      rotateBytes: 1200,
      retain: 2,
      now: () => (now += 1000),
    });
    // Writes between timer ticks, so off-loop anchor writes and rotations interleave.
    for (let i = 0; i < 120; i++) {
      sink.write(call(i));
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await sink.close();
    expect(listRotated(file)).toHaveLength(2);
    const a = readAnchor(file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(a).toMatchObject({ anchor: { seq: JSON.parse(lines.at(-1)!).seq, head: sha256(lines.at(-1)!) } });
    expect(await verifyAudit([...listRotated(file), file], KEY)).toMatchObject({ ok: true });
    // Reopened: the files match their anchor (no anchor-mismatch notice).
    const told: string[] = [];
    const again = openJsonlAudit(file, { signingKey: KEY, onAnchorMismatch: (d) => told.push(d) });
    await again.close();
    expect(told).toEqual([]);
  });
});
