import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchFileChanges } from '../../src/lib/watched-file.js';
import { waitFor } from '../support/wait.js';

const FAST = { intervalMs: 20, settleMs: 10 };
const open: { close(): void }[] = [];
afterEach(() => {
  for (const w of open.splice(0)) w.close();
});

/** A watch on `path` counting its reports. */
function counted(path: string) {
  const seen = { n: 0 };
  open.push(watchFileChanges(path, () => seen.n++, FAST));
  return seen;
}

/** Polls until the count reaches `n` (then checks it stays exactly there after one more change-free settle). */
async function reaches(seen: { n: number }, n: number, what: string) {
  await waitFor(() => seen.n >= n, { what, timeout: 5000 });
  expect(seen.n).toBe(n);
}

function dir() {
  return mkdtempSync(join(tmpdir(), 'warden-watch-'));
}

describe('watchFileChanges', () => {
  it('reports an edit in place, even one that keeps the size', async () => {
    const f = join(dir(), 'policy.yaml');
    writeFileSync(f, 'version: 1\n');
    const seen = counted(f);
    writeFileSync(f, 'version: 2\n');
    await reaches(seen, 1, 'the same-size edit');
    appendFileSync(f, 'mode: read-only\n');
    await reaches(seen, 2, 'the append');
  });

  it('reports a replacement by rename, and a delete followed by a new file (inode reused or not)', async () => {
    const d = dir();
    const f = join(d, 'policy.yaml');
    writeFileSync(f, 'a: 1\n');
    const seen = counted(f);
    writeFileSync(join(d, '.tmp'), 'a: 2\n');
    renameSync(join(d, '.tmp'), f);
    await reaches(seen, 1, 'the rename');
    const ino = statSync(f).ino;
    unlinkSync(f);
    writeFileSync(f, 'a: 3\n');
    // ext4 often hands the freed inode straight back: the change must not hide behind it.
    expect(typeof ino).toBe('number');
    await reaches(seen, 2, 'the delete and re-create');
  });

  it('follows a symlink re-pointed to another file, and a ConfigMap-style ..data swap', async () => {
    const d = dir();
    writeFileSync(join(d, 'one.yaml'), 'a: 1\n');
    writeFileSync(join(d, 'two.yaml'), 'a: 2\n');
    symlinkSync(join(d, 'one.yaml'), join(d, 'policy.yaml'));
    const seen = counted(join(d, 'policy.yaml'));
    unlinkSync(join(d, 'policy.yaml'));
    symlinkSync(join(d, 'two.yaml'), join(d, 'policy.yaml'));
    await reaches(seen, 1, 'the re-pointed symlink');

    // Kubernetes mounts a ConfigMap as policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>;
    // an update writes a new timestamped folder and renames a new ..data link over the old one.
    const cm = dir();
    mkdirSync(join(cm, '..2026_01'));
    writeFileSync(join(cm, '..2026_01', 'policy.yaml'), 'a: 1\n');
    symlinkSync('..2026_01', join(cm, '..data'));
    symlinkSync(join('..data', 'policy.yaml'), join(cm, 'policy.yaml'));
    const cmSeen = counted(join(cm, 'policy.yaml'));
    mkdirSync(join(cm, '..2026_02'));
    writeFileSync(join(cm, '..2026_02', 'policy.yaml'), 'a: 1\n');
    symlinkSync('..2026_02', join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    rmSync(join(cm, '..2026_01'), { recursive: true });
    await reaches(cmSeen, 1, 'the ..data swap');
  });

  it('is not woken by writes to other files in the folder (an audit log beside the policy)', async () => {
    const d = dir();
    const f = join(d, 'policy.yaml');
    writeFileSync(f, 'a: 1\n');
    const seen = counted(f);
    for (let i = 0; i < 20; i++) {
      appendFileSync(join(d, 'audit.jsonl'), `{"n":${i}}\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // The first report must come from this edit, not from the appends before it.
    writeFileSync(f, 'a: 2\n');
    await reaches(seen, 1, 'the policy edit after 20 audit appends');
  });

  it('reports a file that appears, and one that goes away', async () => {
    const d = dir();
    const f = join(d, 'later.yaml');
    const seen = counted(f);
    writeFileSync(f, 'a: 1\n');
    await reaches(seen, 1, 'the new file');
    unlinkSync(f);
    await reaches(seen, 2, 'the removal');
  });

  it('waits for a file being written to hold still, and reports nothing after close', async () => {
    const f = join(dir(), 'spec.yaml');
    writeFileSync(f, '');
    const seen = { n: 0, size: -1 };
    const w = watchFileChanges(
      f,
      () => {
        seen.n++;
        seen.size = statSync(f).size;
      },
      // Gaps between the writes below are ~10 ms: far shorter than settleMs, so one report at the end.
      { intervalMs: 10, settleMs: 1000 },
    );
    open.push(w);
    for (let i = 0; i < 10; i++) {
      appendFileSync(f, `line${i}: x\n`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await reaches(seen, 1, 'one report once the writes stop');
    expect(seen.size).toBe(statSync(f).size);
    w.close();
    writeFileSync(f, 'changed: after close\n');
    // A live watch started now sees the next edit; the closed one had as long and saw nothing.
    const probe = counted(f);
    writeFileSync(f, 'changed: again, longer\n');
    await reaches(probe, 1, 'a live watch sees the edit');
    expect(seen.n).toBe(1);
  });
});
