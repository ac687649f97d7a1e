import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { boundHeapGrowth } from '../../src/server/heap-growth.js';

describe('heap growth bound for a serving gateway', () => {
  it("leaves an operator's own setting on node's command line alone", () => {
    expect(boundHeapGrowth(['--heap-growing-percent=0'])).toBe(false);
    expect(boundHeapGrowth(['--heap_growing_percent=20'])).toBe(false);
    expect(boundHeapGrowth(['--heap-growing-percent'])).toBe(false);
  });

  it('sets it otherwise (other flags do not count)', () => {
    expect(boundHeapGrowth(['--enable-source-maps', '--max-old-space-size=512'])).toBe(true);
    expect(boundHeapGrowth([])).toBe(true);
  });

  it('is a flag V8 takes at run time (an unknown one would print a warning and be ignored)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        "require('node:v8').setFlagsFromString('--heap-growing-percent=100'); globalThis.gc?.(); console.log('ok')",
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout.trim()).toBe('ok');
    expect(r.stderr).toBe('');
  });
});
