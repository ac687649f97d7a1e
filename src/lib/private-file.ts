import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';

/**
 * Writes a file only its owner can read (0600), replacing any file there atomically. `writeFileSync`'s
 * `mode` applies only when it creates the file: over an existing 0644 file it would keep 0644. A
 * temporary file beside the target, renamed over it, has the mode whatever was there before (and a
 * reader never sees half a file).
 */
export function writePrivateFile(path: string, text: string | Uint8Array): void {
  // Per process and thread: two threads of one process may write the same file.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${threadId}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
