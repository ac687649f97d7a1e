import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writePrivateFile } from '../../src/lib/private-file.js';
import { tempTree } from '../support/paths.js';

describe('writePrivateFile', () => {
  it('makes a new file 0600, and an existing 0644 one too (writeFileSync mode alone would keep 0644)', () => {
    const dir = tempTree({});
    const fresh = join(dir, 'new.yaml');
    writePrivateFile(fresh, 'a: 1\n');
    expect(statSync(fresh).mode & 0o777).toBe(0o600);

    const old = join(dir, 'old.yaml');
    writeFileSync(old, 'before\n');
    chmodSync(old, 0o644);
    writePrivateFile(old, 'after\n');
    expect(readFileSync(old, 'utf8')).toBe('after\n');
    expect(statSync(old).mode & 0o777).toBe(0o600);
    // No temporary file is left beside it.
    expect(readdirSync(dir).sort()).toEqual(['new.yaml', 'old.yaml']);
  });

  it('leaves the target as it was, and no temporary file, when the write fails', () => {
    const dir = tempTree({});
    expect(() => writePrivateFile(join(dir, 'missing-dir', 'x.yaml'), 'x')).toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });
});
