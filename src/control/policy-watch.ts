import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface PolicyWatch {
  close(): void;
  /** Raw watch events heard so far (tests: a sibling file's writes must not wake the gateway). */
  readonly heard: number;
}

/**
 * Watches the policy file and calls `onChange` 100 ms after the last change (edits come in bursts).
 *
 * The file itself is watched, not its directory: a directory watch is woken by every write of every
 * file beside the policy, and an audit file kept there is appended on every call (issue 22: two
 * reads and a wake-up per call for nothing). Editors and ConfigMaps replace the file rather than
 * write it: the replaced file's watch reports that (its link count drops, or it is deleted or moved),
 * and the watch moves to whatever file the path names before `onChange` reads it, so no edit after
 * the read goes unseen. While the path names no file (deleted, mid-replace), its directory is watched
 * for the name, as before, until the file is back.
 */
export function watchPolicyFile(
  file: string,
  onChange: () => void,
  onError: (e: NodeJS.ErrnoException) => void,
): PolicyWatch {
  let watcher: FSWatcher | undefined;
  /** The watched file (device and inode), or undefined while the directory is watched. */
  let watched: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let heard = 0;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(fire, 100);
  };
  const fire = () => {
    if (closed) return;
    arm();
    onChange();
  };
  const identity = (): string | undefined => {
    try {
      const s = statSync(file);
      return `${s.dev}:${s.ino}`;
    } catch {
      return undefined;
    }
  };
  /** Watches the file the path names now, or the directory while it names none. */
  const arm = () => {
    const now = identity();
    if (watcher && now !== undefined && now === watched) return;
    watcher?.close();
    watcher = undefined;
    watched = undefined;
    if (now !== undefined) {
      try {
        watcher = watch(file, { persistent: false }, (event) => {
          heard++;
          schedule();
          // Deleted or moved away: the watch is gone with it; find the path's file (or none) again.
          if (event === 'rename') setImmediate(() => !closed && arm());
        });
        watched = now;
      } catch {
        // Gone between stat and watch: the directory below.
      }
    }
    if (!watcher) {
      const name = basename(file);
      try {
        watcher = watch(dirname(file), { persistent: false }, (_ev, n) => {
          heard++;
          if (n !== null && n !== name) return;
          schedule();
        });
      } catch (e) {
        // The directory is gone too: nothing left to watch (reported, as a failed watch always was).
        onError(e as NodeJS.ErrnoException);
        return;
      }
    }
    watcher.on('error', (e) => onError(e as NodeJS.ErrnoException));
  };

  arm();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
    get heard() {
      return heard;
    },
  };
}
