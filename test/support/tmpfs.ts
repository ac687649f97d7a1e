import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a command runs and succeeds here (a tool that may be missing, or need root). */
export function can(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether a tmpfs can be mounted here (root, and mount allowed): the full-disk tests need one. */
export function tmpfsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), 'warden-probe-'));
  const ok = can('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir]) && can('umount', [dir]);
  rmdirSync(dir);
  return ok;
}
