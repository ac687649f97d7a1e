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

function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}
