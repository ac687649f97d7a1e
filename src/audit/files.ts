import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

// The audit's files: rotated segments beside the live file, and bounded reads of their ends.

export function rotatedName(path: string, at: number): string {
  const ext = extname(path);
  const stamp = new Date(at).toISOString().replace(/[:.]/g, '-');
  return join(dirname(path), `${basename(path, ext)}.${stamp}${ext}`);
}

/** Rotated files of an audit path, oldest first (their names sort by time). */
export function listRotated(path: string): string[] {
  const ext = extname(path);
  const stem = basename(path, ext);
  const re = new RegExp(`^${escapeRe(stem)}\\.\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z${escapeRe(ext)}$`);
  try {
    return readdirSync(dirname(path))
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dirname(path), f));
  } catch {
    return [];
  }
}

/**
 * The last `maxBytes` of a file, as whole lines (a last line without its newline included): a
 * bounded read, for start-up. A missing file has none.
 */
export function tailLines(file: string, maxBytes: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    // The first line may be cut in the middle when the read did not start at the file's start.
    if (len < size) lines.shift();
    if (lines.at(-1) === '') lines.pop();
    return lines;
  } finally {
    closeSync(fd);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
