import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRotated, openJsonlAudit } from '../../src/audit/jsonl.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import type { AnyRecord } from '../../src/model/audit.js';
import { tempTree } from '../support/paths.js';

// Item 9 of issue 17: with a signing key, records cut off the end (or the start) of the audit must
// not verify. Everything goes through `audit verify` as the operator runs it (in process).
const KEY = Buffer.from('truncation-key-0123456789abcdef');
process.env.TRUNCATION_TEST_KEY = KEY.toString();

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

async function writeAudit(n: number, opts: Parameters<typeof openJsonlAudit>[1] = {}) {
  const file = join(tempTree({}), 'audit.jsonl');
  const sink = openJsonlAudit(file, { checkpointEvery: 10, signingKey: KEY, ...opts });
  for (let i = 0; i < n; i++) sink.write(call(i));
  await sink.close();
  return file;
}

const lines = (f: string) => readFileSync(f, 'utf8').trimEnd().split('\n');
const keep = (f: string, ls: string[]) => writeFileSync(f, ls.length ? `${ls.join('\n')}\n` : '');

async function verify(file: string, withKey = true) {
  let stdout = '';
  let stderr = '';
  const code = await runAuditVerify(file, withKey ? { keyEnv: 'TRUNCATION_TEST_KEY' } : {}, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
  });
  return { code, stdout, stderr };
}

describe('cutting records off the audit (signing key)', () => {
  it('verifies an untouched file and says it was closed cleanly', async () => {
    const file = await writeAudit(25);
    const r = await verify(file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok: 25 records');
    expect(r.stdout).toContain('closed cleanly at seq 28');
  });

  it('finds records cut off the end, wherever the cut is (after or before a signed checkpoint)', async () => {
    // 25 records, a checkpoint every 10: lines 11 and 22 are checkpoints, line 28 the close.
    for (const cutAt of [27, 22, 21, 12, 11, 3]) {
      const file = await writeAudit(25);
      const ls = lines(file);
      expect(JSON.parse(ls[21]!)).toMatchObject({ kind: 'checkpoint', seq: 22 });
      keep(file, ls.slice(0, cutAt));
      const r = await verify(file);
      expect({ cutAt, code: r.code }).toEqual({ cutAt, code: 1 });
      expect(r.stdout).toContain(`records ${cutAt + 1}–28 were cut off the end`);
    }
  });

  it('finds records cut off the start of a single, never-rotated file', async () => {
    for (const from of [1, 3, 11]) {
      const file = await writeAudit(25);
      keep(file, lines(file).slice(from));
      const r = await verify(file);
      expect({ from, code: r.code }).toEqual({ from, code: 1 });
      expect(r.stdout).toContain(`the first record (seq ${from + 1}) does not start a chain`);
    }
  });

  it('cannot be hidden by forging, replacing or removing the head anchor', async () => {
    const file = await writeAudit(25);
    const anchorFile = `${file}.head`;
    const anchor = JSON.parse(readFileSync(anchorFile, 'utf8'));
    expect(anchor).toMatchObject({ seq: 28, sig: expect.stringMatching(/^[0-9a-f]{64}$/) });
    keep(file, lines(file).slice(0, 20));
    // The anchor moved back to the cut, with its old signature.
    const head20 = JSON.parse(lines(file)[19]!).seq;
    writeFileSync(anchorFile, JSON.stringify({ ...anchor, seq: head20 }));
    expect((await verify(file)).stdout).toContain('the head anchor signature does not verify');
    // An unsigned anchor, when a key is given.
    const { sig: _sig, ...unsigned } = anchor;
    writeFileSync(anchorFile, JSON.stringify({ ...unsigned, seq: head20 }));
    expect((await verify(file)).stdout).toContain('the head anchor is not signed');
    // No anchor at all.
    unlinkSync(anchorFile);
    const gone = await verify(file);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toContain('no head anchor');
  });

  it('is not laundered by restarting the writer on the cut file', async () => {
    const file = await writeAudit(25);
    keep(file, lines(file).slice(0, 15));
    const told: string[] = [];
    const sink = openJsonlAudit(file, {
      checkpointEvery: 10,
      signingKey: KEY,
      onAnchorMismatch: (detail) => told.push(detail),
    });
    for (let i = 100; i < 103; i++) sink.write(call(i));
    await sink.close();
    // The operator is told at start (the gateway logs it), and the chain keeps it.
    expect(told).toEqual([expect.stringContaining('records 16–28 were cut off the end')]);
    const r = await verify(file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('did not match its head anchor');
    expect(r.stdout).toContain('records 16–28');
  });

  it("reports a running writer's file as not closed, and verifies it", async () => {
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = openJsonlAudit(file, { checkpointEvery: 10, signingKey: KEY, fsync: 'always' });
    for (let i = 0; i < 5; i++) sink.write(call(i));
    const r = await verify(file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'not closed (the writer may still be running, or records were cut after seq 5)',
    );
    await sink.close();
  });

  it('finds the oldest rotated files removed, but not those retention removed', async () => {
    let now = 1_800_000_000_000;
    const dir = tempTree({});
    const rotate = { rotateBytes: 1500, checkpointEvery: 1000, now: () => (now += 1000) };
    const file = await writeAudit(60, { ...rotate, retain: 100 });
    expect((await verify(file)).code).toBe(0);
    const segments = listRotated(file);
    expect(segments.length).toBeGreaterThan(3);
    unlinkSync(segments[0]!);
    const r = await verify(file);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/records 1–\d+ were removed/);

    const pruned = join(dir, 'pruned.jsonl');
    const sink = openJsonlAudit(pruned, { ...rotate, signingKey: KEY, retain: 2 });
    for (let i = 0; i < 60; i++) sink.write(call(i));
    await sink.close();
    expect(listRotated(pruned)).toHaveLength(2);
    expect((await verify(pruned)).code).toBe(0);
  });
});
