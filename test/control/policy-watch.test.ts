import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type PolicyWatch, watchPolicyFile } from '../../src/control/policy-watch.js';

// Real files in a temporary directory: the watch is the kernel's (inotify on Linux).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const open: PolicyWatch[] = [];
afterEach(() => {
  for (const w of open.splice(0)) w.close();
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'policy-watch-'));
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, 'version: 1\n');
  const changes: number[] = [];
  const errors: unknown[] = [];
  const w = watchPolicyFile(
    file,
    () => changes.push(Date.now()),
    (e) => errors.push(e),
  );
  open.push(w);
  return { dir, file, changes, errors, w };
}

describe('watchPolicyFile', () => {
  it('reports an edit in place once, after the burst', async () => {
    const { file, changes, errors } = setup();
    writeFileSync(file, 'version: 1\n# a\n');
    appendFileSync(file, '# b\n');
    await until(() => changes.length === 1, 'the change');
    await sleep(250);
    expect(changes).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('follows a file replaced by rename (editors, rollback): the new file’s later edits are heard', async () => {
    const { dir, file, changes } = setup();
    const tmp = join(dir, '.warden.yaml.tmp');
    writeFileSync(tmp, 'version: 1\n# replaced\n');
    renameSync(tmp, file);
    await until(() => changes.length === 1, 'the replacement');
    writeFileSync(file, 'version: 1\n# edited after\n');
    await until(() => changes.length === 2, 'the edit of the new file');
  });

  it('hears a deleted file come back, then its edits', async () => {
    const { file, changes } = setup();
    rmSync(file);
    await until(() => changes.length === 1, 'the deletion');
    writeFileSync(file, 'version: 1\n# back\n');
    await until(() => changes.length === 2, 'the file back');
    await sleep(150);
    const n = changes.length;
    appendFileSync(file, '# edited\n');
    await until(() => changes.length === n + 1, 'the edit after');
  });

  it('is not woken by writes to other files in its directory (an audit appended per call)', async () => {
    const { dir, changes, w } = setup();
    const audit = join(dir, 'audit.jsonl');
    for (let i = 0; i < 50; i++) appendFileSync(audit, `{"seq":${i}}\n`);
    writeFileSync(join(dir, 'other.tmp'), 'x');
    renameSync(join(dir, 'other.tmp'), join(dir, 'audit.jsonl.head'));
    await sleep(300);
    expect(w.heard).toBe(0);
    expect(changes).toEqual([]);
  });

  it('after close, hears nothing', async () => {
    const { file, changes, w } = setup();
    w.close();
    writeFileSync(file, 'version: 1\n# late\n');
    await sleep(300);
    expect(changes).toEqual([]);
  });
});
