import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import type { AnyRecord } from '../../src/model/audit.js';
import { codeOf, startShopGateway } from '../support/gateway.js';
import { tempTree } from '../support/paths.js';
import { can, tmpfsAvailable } from '../support/tmpfs.js';

// Item 10 of issue 17: a refused or failed append (full disk, file-size limit) leaves the file as it
// was and takes no sequence number; once the fault clears, the chain verifies and every acknowledged
// record is there. The tmpfs tests need root (mount), the limit test prlimit; elsewhere they are
// skipped, saying why.
const KEY = Buffer.from('full-disk-key-0123456789abcdef');
process.env.FULL_DISK_TEST_KEY = KEY.toString();
const CHILD = new URL('./helpers/append-child.ts', import.meta.url).pathname;

const TMPFS = tmpfsAvailable();
const PRLIMIT = can('prlimit', ['--fsize=100000:unlimited', 'true']);
if (!TMPFS) console.warn('full-disk.test.ts: tmpfs tests skipped: they need root and `mount -t tmpfs`');
if (!PRLIMIT) console.warn('full-disk.test.ts: file-size limit test skipped: it needs prlimit (util-linux)');

async function onTmpfs(size: string, run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  try {
    await run(dir);
  } finally {
    // Lazily when a failed test left a file open: its failure is what should show, not a busy mount.
    if (!can('umount', [dir])) execFileSync('umount', ['-l', dir]);
    rmdirSync(dir);
  }
}

/** Fills the file system of `dir` to the last byte; returns the filler, whose removal clears it. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(256, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return filler;
}

const record = (n: number): AnyRecord => ({
  kind: 'call',
  time: new Date(1_800_000_000_000 + n * 1000).toISOString(),
  id: `disk-${n}`,
  tool: 'getOrder',
  decision: 'allowed',
  outcome: 'ok',
  principal: 'alice',
  args: { pad: 'x'.repeat(200) },
  ms: 1,
});

/** `audit verify --key-env` as the operator runs it; its exit code and output. */
async function verify(file: string) {
  let out = '';
  const code = await runAuditVerify(
    file,
    { keyEnv: 'FULL_DISK_TEST_KEY' },
    { stdout: (s) => (out += s), stderr: (s) => (out += s) },
  );
  return { code, out };
}

function parsed(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The chain has no gap and no repeat, and the call records are exactly the acknowledged ones, in order. */
function expectExactly(file: string, acked: string[]): void {
  const recs = parsed(file);
  expect(recs.map((r) => r.seq)).toEqual(recs.map((_, i) => i + 1));
  expect(recs.filter((r) => r.kind === 'call').map((r) => r.id)).toEqual(acked);
}

/**
 * The writer in a child process under a file-size limit: prlimit sets it and execs node, so the
 * child's pid is the writer's (to lift the limit later). `ask` sends one command, awaits its answer.
 */
function appendChild(file: string, limit: number) {
  const child = spawn(
    'prlimit',
    // A soft limit under an unlimited hard one: lifting it later needs no privilege.
    [`--fsize=${limit}:unlimited`, process.execPath, '--import', 'tsx', CHILD, file, KEY.toString()],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  child.stdin.on('error', () => {}); // a child that died is reported by the assertions, not as EPIPE
  const replies = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    pid: child.pid,
    exited,
    kill: () => child.kill(),
    async ask(line: string): Promise<{ n?: number; ok?: boolean; code?: string; closed?: boolean }> {
      child.stdin.write(`${line}\n`);
      const next = await replies.next();
      if (next.done) throw new Error('the writer child exited');
      return JSON.parse(String(next.value));
    },
  };
}

describe('the audit on a full disk and under a file-size limit', () => {
  it.skipIf(!TMPFS)('refuses appends while the disk is full, leaving the file as it was (tmpfs)', () =>
    onTmpfs('64k', async (dir) => {
      const file = join(dir, 'audit.jsonl');
      // `always` moves the head anchor after every record: its own writes fail on the full disk too,
      // which must not refuse a record that was written.
      const sink = openJsonlAudit(file, { checkpointEvery: 7, signingKey: KEY, fsync: 'always' });
      const acked: string[] = [];
      let refused = 0;
      const attempt = (n: number) => {
        const before = readFileSync(file);
        try {
          sink.write(record(n));
          acked.push(`disk-${n}`);
        } catch (e) {
          expect(e).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
          refused++;
          // Not a byte of the refused record (or of its checkpoint) stays behind.
          expect(readFileSync(file).equals(before)).toBe(true);
        }
      };
      let n = 0;
      for (; n < 5; n++) attempt(n);
      const filler = fillDisk(dir);
      for (; n < 60; n++) attempt(n);
      expect(refused).toBeGreaterThan(20);
      // The last page of the file had room for some: those were written and acknowledged.
      expect(acked.length).toBeGreaterThan(5);
      unlinkSync(filler); // the fault clears
      try {
        for (; n < 70; n++) attempt(n);
        expect(acked.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => `disk-${60 + i}`));
      } finally {
        await sink.close();
      }
      expectExactly(file, acked);
      const v = await verify(file);
      expect(v.out).toContain('closed cleanly');
      expect(v.code).toBe(0);
    }),
  );

  it.skipIf(!TMPFS)(
    'through a gateway: every acknowledged call has its record after the disk filled up (tmpfs)',
    () =>
      onTmpfs('256k', async (dir) => {
        const auditFile = join(dir, 'gateway.jsonl');
        const fx = await startShopGateway({
          policy: 'version: 1\naudit:\n  signingKey: env:AUDIT_KEY\n  checkpointEvery: 5\n',
          env: { AUDIT_KEY: KEY.toString() },
          serve: { auditFile },
        });
        const client = await fx.connect({ name: 'full-disk' });
        const acked: string[] = [];
        let refused = 0;
        const call = async (n: number) => {
          const r = await client.callTool({ name: 'searchProducts', arguments: { q: `mark-${n}` } });
          const code = codeOf(r as { content: Array<{ text?: string }> });
          if (code === 'OK') acked.push(`mark-${n}`);
          else {
            expect(code).toBe('AUDIT_UNAVAILABLE');
            refused++;
          }
        };
        let n = 0;
        for (; n < 5; n++) await call(n);
        const filler = fillDisk(dir);
        for (; n < 40; n++) await call(n);
        expect(refused).toBeGreaterThan(0);
        unlinkSync(filler);
        for (; n < 50; n++) await call(n);
        await fx.close();
        const calls = parsed(auditFile).filter((r) => r.kind === 'call');
        expect(calls.map((r) => (r.args as { q: string }).q)).toEqual(acked);
        expect(acked.length + refused).toBe(50);
        const v = await verify(auditFile);
        expect(v.code).toBe(0);
      }),
  );

  it.skipIf(!PRLIMIT)(
    'refuses appends past a file-size limit (EFBIG), then goes on when it is lifted',
    async () => {
      const file = join(tempTree({}), 'audit.jsonl');
      const LIMIT = 8000;
      const child = appendChild(file, LIMIT);
      const acked: string[] = [];
      const codes = new Set<string>();
      const attempt = async (n: number) => {
        const r = await child.ask(`write ${n}`);
        if (r.ok) acked.push(`fsize-${n}`);
        else codes.add(String(r.code));
      };
      try {
        let n = 0;
        for (; n < 40; n++) await attempt(n);
        // SIGXFSZ did not kill the writer (Node ignores it): it answered every write, refusing those
        // past the limit.
        expect([...codes]).toEqual(['AUDIT_UNAVAILABLE']);
        expect(acked.length).toBeLessThan(40);
        expect(statSync(file).size).toBeLessThanOrEqual(LIMIT);
        expectExactly(file, acked);
        execFileSync('prlimit', ['--pid', String(child.pid), '--fsize=unlimited:unlimited']); // the fault clears
        for (; n < 50; n++) await attempt(n);
        expect(acked.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => `fsize-${40 + i}`));
        expect(await child.ask('close')).toEqual({ closed: true });
        await child.exited;
      } finally {
        child.kill();
      }
      expectExactly(file, acked);
      const v = await verify(file);
      expect(v.out).toContain('closed cleanly');
      expect(v.code).toBe(0);
    },
  );
});
