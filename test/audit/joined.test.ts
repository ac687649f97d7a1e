import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { verifyAudit } from '../../src/audit/verify.js';
import type { AnyRecord } from '../../src/model/audit.js';
import { callPipeline, startShopGateway } from '../support/gateway.js';
import { tempTree } from '../support/paths.js';
import { can, tmpfsAvailable } from '../support/tmpfs.js';

// Issue 22: the records of calls that end in the same turn of the event loop are appended together
// (`writeJoined`: one write for all of them), each still in the kernel before its call is answered.
// The chain, the checkpoints and a failure are those of one `write` per record.

const record = (n: number, pad = 100): AnyRecord => ({
  kind: 'call',
  time: new Date(1_800_000_000_000 + n * 1000).toISOString(),
  id: `joined-${n}`,
  tool: 'getOrder',
  decision: 'allowed',
  outcome: 'ok',
  principal: 'alice',
  args: { pad: 'x'.repeat(pad) },
  ms: 1,
});

const TMPFS = tmpfsAvailable();
if (!TMPFS) console.warn('joined.test.ts: the full-disk test is skipped: it needs root and `mount -t tmpfs`');

describe('records appended together', () => {
  it('land byte for byte as one write per record would have written them, checkpoints included', async () => {
    const dir = tempTree({});
    // A fixed clock: checkpoints carry the time they are made.
    const opts = { checkpointEvery: 3, now: () => 1_800_000_000_000, fsync: 'never' as const };
    const one = openJsonlAudit(join(dir, 'one.jsonl'), opts);
    for (let n = 0; n < 8; n++) one.write(record(n));
    await one.close();

    const joined = openJsonlAudit(join(dir, 'joined.jsonl'), opts);
    // Two turns: five records, then three; nothing is written before the turn ends.
    const first = [0, 1, 2, 3, 4].map((n) => joined.writeJoined(record(n)));
    const before = readFileSync(join(dir, 'joined.jsonl'), 'utf8');
    expect(before).not.toContain('joined-0');
    await Promise.all(first);
    expect(readFileSync(join(dir, 'joined.jsonl'), 'utf8')).toContain('joined-4');
    await Promise.all([5, 6, 7].map((n) => joined.writeJoined(record(n))));
    await joined.close();

    expect(readFileSync(join(dir, 'joined.jsonl'), 'utf8')).toBe(
      readFileSync(join(dir, 'one.jsonl'), 'utf8'),
    );
    expect((await verifyAudit([join(dir, 'joined.jsonl')])).ok).toBe(true);
  });

  it('are written at close when their turn has not ended yet', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = openJsonlAudit(file, { fsync: 'never' });
    const pending = sink.writeJoined(record(1));
    await sink.close();
    await expect(pending).resolves.toBeTypeOf('number');
    expect(readFileSync(file, 'utf8')).toContain('joined-1');
    // Once closed, a record is refused (fail closed), never written to a reused descriptor.
    await expect(sink.writeJoined(record(2))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    // So is a plain write (a call still running when its pipeline closed), even when the descriptor
    // number has been handed to another file since (the lowest free number is reused).
    const closedFile = readFileSync(file, 'utf8');
    const other = join(tempTree({}), 'other.txt');
    const fd = openSync(other, 'w');
    try {
      expect(() => sink.write(record(3))).toThrow(expect.objectContaining({ code: 'AUDIT_UNAVAILABLE' }));
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe(closedFile);
    expect(readFileSync(other, 'utf8')).toBe('');
  });

  it.skipIf(!TMPFS)('all fail when their append fails, leaving the file as it was (full tmpfs)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    try {
      const file = join(dir, 'audit.jsonl');
      const sink = openJsonlAudit(file, { checkpointEvery: 1000, fsync: 'never' });
      await Promise.all([1, 2].map((n) => sink.writeJoined(record(n))));
      const kept = readFileSync(file, 'utf8');
      // Fill the file system to its last byte.
      const filler = join(dir, 'filler');
      const fd = openSync(filler, 'w');
      try {
        for (;;) writeSync(fd, Buffer.alloc(256, 0x61));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
      // Together larger than a page: the room left in the file's last page cannot take them.
      const results = await Promise.allSettled([3, 4, 5].map((n) => sink.writeJoined(record(n, 3000))));
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      }
      expect(readFileSync(file, 'utf8')).toBe(kept);
      // Room again: the next records continue the chain where the last landed one left it.
      unlinkSync(filler);
      await Promise.all([6, 7].map((n) => sink.writeJoined(record(n))));
      await sink.close();
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('joined-7');
      expect(text).not.toContain('joined-3');
      expect((await verifyAudit([file])).ok).toBe(true);
    } finally {
      if (!can('umount', [dir])) execFileSync('umount', ['-l', dir]);
      rmdirSync(dir);
    }
  });
});

describe('concurrent calls through the gateway', () => {
  it('each find their record in the audit file when they are answered, and the chain holds', async () => {
    const g = await startShopGateway({
      policy:
        'version: 1\nrateLimit: { perToolPrincipal: { calls: 1000, perSeconds: 60 }, perPrincipal: { calls: 1000, perSeconds: 60 } }\n',
    });
    try {
      const missing: string[] = [];
      const answered = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          callPipeline(g.gw, 'searchProducts', { q: `mouse${i}` }, 'key:alice', ['tools:read']).then((r) => {
            // Read at the moment the answer is handed back: the record must already be there.
            if (!readFileSync(g.auditFile, 'utf8').includes(`mouse${i}"`)) missing.push(`mouse${i}`);
            return r;
          }),
        ),
      );
      expect(answered.every((r) => !r.isError)).toBe(true);
      expect(missing).toEqual([]);
    } finally {
      await g.close();
    }
    expect((await verifyAudit([g.auditFile])).ok).toBe(true);
  });
});
