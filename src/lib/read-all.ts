import { fstatSync, readSync } from 'node:fs';

/**
 * An open file's bytes, read to the size fstat gave (`size`: one just taken; readFileSync would
 * fstat again), and whether it was all there (a file that shrank since gives what it has).
 */
export function readAll(fd: number, size = fstatSync(fd).size): { buf: Buffer; complete: boolean } {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, null);
    if (n === 0) break;
    off += n;
  }
  return off === size ? { buf, complete: true } : { buf: buf.subarray(0, off), complete: false };
}
