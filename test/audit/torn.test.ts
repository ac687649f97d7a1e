import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import type { AnyRecord } from '../../src/model/audit.js';
import { tempTree } from '../support/paths.js';

// Item 11 of issue 17: a torn line is reported with where it is, and verification goes on after it.
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

function write(file: string, from: number, n: number): Promise<void> {
  const sink = openJsonlAudit(file, { checkpointEvery: 1000 });
  for (let i = from; i < from + n; i++) sink.write(call(i));
  return sink.close();
}

async function cli(file: string) {
  let stdout = '';
  const code = await runAuditVerify(file, {}, { stdout: (s) => (stdout += s), stderr: (s) => (stdout += s) });
  return { code, stdout };
}

const TORN = '{"kind":"call","time":"2026-';

describe('torn lines', () => {
  it('reports a torn line in the middle (a crash, then more writes) and verifies the records after it', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    await write(file, 0, 5); // lines 1–6 (5 records, the close checkpoint)
    const offset = statSync(file).size;
    appendFileSync(file, TORN); // the crash: line 7 is cut short
    await write(file, 10, 4); // the restart terminates it and goes on: lines 8–12
    // Something wrong after the torn line is still found: record 10 (line 9) edited.
    const ls = readFileSync(file, 'utf8').split('\n');
    ls[8] = ls[8]!.replace('"ms":1', '"ms":2');
    writeFileSync(file, ls.join('\n'));

    const r = await verifyAudit([file]);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.objectContaining({ line: 7, offset, message: expect.stringContaining('torn line') }),
      expect.objectContaining({
        line: 10,
        seq: 10,
        message: expect.stringContaining('record 9 was altered'),
      }),
    ]);
    // Every record was read, the ones after the torn line included.
    expect(r.records).toBe(9);
    expect(r.torn).toBe(1);

    const out = await cli(file);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain(`BROKEN at ${file}:7: torn line`);
    expect(out.stdout).toContain(`[byte ${offset}]`);
    expect(out.stdout).toContain(`BROKEN at ${file}:10 (seq 10): does not follow the record before it`);
    expect(out.stdout).toContain('2 problems (1 torn line); checked 9 records, 2 checkpoints');
  });

  it('reports a torn last line and still counts every record before it', async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    await write(file, 0, 5);
    const offset = statSync(file).size;
    appendFileSync(file, TORN);
    const r = await verifyAudit([file]);
    expect(r).toMatchObject({ ok: false, records: 5, torn: 1 });
    expect(r.problems).toEqual([expect.objectContaining({ line: 7, offset })]);
    const out = await cli(file);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('1 problem (1 torn line); checked 5 records');
  });
});
