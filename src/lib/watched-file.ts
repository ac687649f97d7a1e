import { readFileSync, statSync } from 'node:fs';

/**
 * A file whose contents are re-read when it changes, checked when used and at most once per
 * `intervalMs`: one `stat` a second on the hot path, no watcher to leak, and no window in which a
 * change made right after start-up goes unseen (as with `fs.watchFile`'s first poll).
 */
export function watchedFile<T>(
  path: string,
  parse: (text: string) => T,
  onError: (e: unknown) => void,
  initial: T,
  intervalMs = 1000,
): () => T {
  let value = initial;
  let checkedAt = Date.now();
  let stamp = stampOf(path);
  return () => {
    const now = Date.now();
    if (now - checkedAt < intervalMs) return value;
    checkedAt = now;
    const next = stampOf(path);
    if (next === stamp) return value;
    stamp = next;
    try {
      value = parse(readFileSync(path, 'utf8'));
    } catch (e) {
      // A bad new version keeps the last good one.
      onError(e);
    }
    return value;
  };
}

export interface FileChangeOptions {
  /** How often the file is `stat`ed. */
  intervalMs?: number;
  /** A change is reported once the file has stayed the same this long (a copy still being written). */
  settleMs?: number;
}

/**
 * Calls `onChange` when the file at `path` changes: written in place, replaced by a rename (editors,
 * `install`), deleted and created again (even on the same inode), or — through a symlink, which
 * `stat` follows — re-pointed, as a Kubernetes ConfigMap's `..data` swap does. It polls `stat` on a
 * timer that never keeps the process alive, rather than watching the folder: a folder watch wakes the
 * process on every write to any file beside it (an audit log kept next to the policy: every call),
 * and misses a ConfigMap swap (the event names `..data`, not the file).
 */
export function watchFileChanges(
  path: string,
  onChange: () => void,
  { intervalMs = 500, settleMs = 100 }: FileChangeOptions = {},
): { close(): void } {
  let seen = stampOf(path);
  let settle: NodeJS.Timeout | undefined;
  const poll = () => {
    const now = stampOf(path);
    if (now === seen) return;
    seen = now;
    // Reported once it holds still for settleMs; a change meanwhile starts the wait again.
    clearTimeout(settle);
    settle = setTimeout(function settled() {
      const again = stampOf(path);
      if (again !== seen) {
        seen = again;
        settle = setTimeout(settled, settleMs);
        settle.unref();
        return;
      }
      onChange();
    }, settleMs);
    settle.unref();
  };
  const timer = setInterval(poll, intervalMs);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      clearTimeout(settle);
    },
  };
}

/**
 * What tells one version of a file from the next without reading it: device and inode (a
 * replacement), size, and modification and change times in nanoseconds where the filesystem keeps
 * them (an edit in place; `ctime` also moves on a rewrite that restores `mtime`).
 */
function stampOf(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? ''}`;
  }
}
