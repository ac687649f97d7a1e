import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRotated, openJsonlAudit } from '../../src/audit/jsonl.js';
import { verifyAudit } from '../../src/audit/verify.js';
import type { AnyRecord } from '../../src/model/audit.js';
import { tempTree } from '../support/paths.js';
import { runCli } from '../support/stdio.js';

const KEY = Buffer.from('checkpoint-key-0123456789abcdef');

const call = (i: number): AnyRecord => ({
  kind: 'call',
  time: new Date(1_800_000_000_000 + i * 1000).toISOString(),
  id: `id-${i}`,
  tool: i % 2 ? 'getOrder' : 'createOrder',
  decision: 'allowed',
  outcome: 'ok',
  principal: i % 3 ? 'alice' : 'bob',
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

describe('hash-chained audit', () => {
  it('verifies an untouched file, with signed checkpoints', async () => {
    const file = await writeAudit(25);
    const r = await verifyAudit([file], KEY);
    expect(r).toMatchObject({ ok: true, records: 25, checkpoints: 3, signedCheckpoints: 3 });
  });

  it('finds an edited record, naming it', async () => {
    const file = await writeAudit(25);
    const ls = lines(file);
    ls[6] = ls[6]!.replace('"principal":"bob"', '"principal":"mallory"');
    expect(ls[6]).toContain('mallory');
    writeFileSync(file, `${ls.join('\n')}\n`);
    const r = await verifyAudit([file], KEY);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ line: 8, seq: 8 });
    expect(r.problem!.message).toContain('record 7 was altered');
  });

  it('finds a removed record and a cut-off tail before a checkpoint', async () => {
    const file = await writeAudit(25);
    const ls = lines(file);
    writeFileSync(file, `${[...ls.slice(0, 4), ...ls.slice(5)].join('\n')}\n`);
    expect((await verifyAudit([file])).problem!.message).toBe('records 5–5 are missing');
    // Removing records and re-chaining them by hand still cannot forge a signed checkpoint.
    const file2 = await writeAudit(25);
    const cp = lines(file2).find((l) => l.includes('"kind":"checkpoint"'))!;
    const forged = JSON.parse(cp);
    forged.sig = '0'.repeat(64);
    const ls2 = lines(file2);
    ls2[ls2.indexOf(cp)] = JSON.stringify(forged);
    writeFileSync(file2, `${ls2.join('\n')}\n`);
    const r2 = await verifyAudit([file2], KEY);
    expect(r2.ok).toBe(false);
  });

  it('names a torn last line and continues the chain after a restart', async () => {
    const file = await writeAudit(5, { checkpointEvery: 1000 });
    writeFileSync(file, `${readFileSync(file, 'utf8')}{"kind":"call","time":"2026-`, { flag: 'w' });
    const sink = openJsonlAudit(file, { checkpointEvery: 1000 });
    sink.write(call(99));
    await sink.close();
    const r = await verifyAudit([file]);
    expect(r.problem).toMatchObject({ line: 7, message: expect.stringContaining('torn') });
    // Everything after the torn line is still chained to it.
    const after = lines(file).slice(7);
    expect(after.map((l) => JSON.parse(l).kind)).toEqual(['call', 'checkpoint']);
  });

  it('rotates by size, continues the chain across files, and keeps only `retain` of them', async () => {
    let now = 1_800_000_000_000;
    const file = join(tempTree({}), 'audit.jsonl');
    const sink = openJsonlAudit(file, {
      rotateBytes: 2000,
      retain: 100,
      checkpointEvery: 1000,
      now: () => (now += 1000),
    });
    for (let i = 0; i < 60; i++) sink.write(call(i));
    await sink.close();
    const segments = listRotated(file);
    expect(segments.length).toBeGreaterThan(3);
    expect(await verifyAudit([...segments, file])).toMatchObject({ ok: true, records: 60 });
    // A segment taken out of the middle breaks the chain.
    expect((await verifyAudit([segments[0]!, ...segments.slice(2), file])).ok).toBe(false);
  });

  it('is checked from the command line, with the key taken from the environment', async () => {
    const file = await writeAudit(12);
    const ok = runCli(['audit', 'verify', file, '--key-env', 'K'], { K: KEY.toString() });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('ok: 12 records, 2 checkpoints (2 signed) in 1 file(s)');
    const ls = lines(file);
    ls[2] = ls[2]!.replace('"ms":1', '"ms":1000');
    writeFileSync(file, `${ls.join('\n')}\n`);
    const bad = runCli(['audit', 'verify', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^BROKEN at .*audit\.jsonl:4 \(seq 4\): does not follow the record before it/);
    const q = runCli(['audit', 'query', file, '--principal', 'bob', '--format', 'json']);
    expect(
      q.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['id-0', 'id-3', 'id-6', 'id-9']);
    const tail = runCli(['audit', 'tail', file, '-n', '2', '--kind', 'call', '--format', 'json']);
    expect(
      tail.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['id-10', 'id-11']);
  });
});
