import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { auditLockHolder, lockPathOf } from '../../src/audit/lock.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import type { WardenError } from '../../src/errors/index.js';
import { mcpClient } from '../support/gateway.js';
import { tempPath, tempTree } from '../support/paths.js';
import { SHOP_SPEC, type Shop, shopEnv, startShop } from '../support/shop.js';
import { connectShopStdio, stdioTransport } from '../support/stdio.js';
import { readAudit } from '../support/wait.js';

// One writer per audit file (src/audit/lock.ts): a second process appending to the same file would
// interleave two hash chains and break both. A default audit moves aside (audit-2.jsonl); an
// explicit --audit-file is refused; a lock whose process is gone is taken over.

const CHILD = new URL('./helpers/append-child.ts', import.meta.url).pathname;

/** A child process holding the writer open on `file` until told to close. */
async function holdInChild(file: string): Promise<{ pid: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => lines.once('line', (l) => resolve(JSON.parse(l))));
  child.stdin.write('write 1\n');
  expect(await next()).toMatchObject({ n: 1, ok: true });
  return {
    pid: child.pid!,
    close: async () => {
      const closed = next();
      child.stdin.write('close\n');
      expect(await closed).toEqual({ closed: true });
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const io = () => {
  let out = '';
  return {
    io: {
      stdout: (s: string) => {
        out += s;
      },
      stderr: (s: string) => {
        out += s;
      },
    },
    text: () => out,
  };
};

describe('the audit file lock', () => {
  it('refuses a second writer in another process, naming its pid and the flags, until it closes', async () => {
    const file = tempPath();
    const holder = await holdInChild(file);
    try {
      expect(auditLockHolder(file)?.pid).toBe(holder.pid);
      let err: unknown;
      try {
        openJsonlAudit(file);
      } catch (e) {
        err = e;
      }
      expect((err as WardenError).code).toBe('CONFIG_INVALID');
      expect(String((err as Error).message)).toContain(`pid ${holder.pid}`);
      expect(String((err as Error).message)).toContain('--audit-file');
    } finally {
      await holder.close();
    }
    // Released on close: the file opens again and its single chain verifies.
    expect(existsSync(lockPathOf(file))).toBe(false);
    const sink = openJsonlAudit(file);
    await sink.close();
    const out = io();
    expect(await runAuditVerify(file, {}, out.io)).toBe(0);
  });

  it('takes over a stale lock (its process is gone) and a half-written one', async () => {
    const file = tempPath();
    // pid 2^22+1 is above Linux's pid_max: no such process.
    writeFileSync(
      lockPathOf(file),
      JSON.stringify({ pid: 4_194_305, host: (await import('node:os')).hostname() }),
    );
    const a = openJsonlAudit(file);
    expect(auditLockHolder(file)?.pid).toBe(process.pid);
    await a.close();
    writeFileSync(lockPathOf(file), '{"pid":');
    const b = openJsonlAudit(file);
    await b.close();
    expect(existsSync(lockPathOf(file))).toBe(false);
  });

  it('a lock held from another host is never taken over (a shared file system)', () => {
    const file = tempPath();
    writeFileSync(lockPathOf(file), JSON.stringify({ pid: 1, host: 'another-host.example' }));
    expect(() => openJsonlAudit(file)).toThrow(/another-host\.example/);
  });
});

describe('two stdio gateways for the same spec (two MCP clients configured alike)', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop();
  });
  afterAll(async () => {
    await shop?.close();
  });

  it('with the default audit: the second writes audit-2.jsonl, both chains verify', async () => {
    const state = tempTree({});
    const env = { ...shopEnv(shop), XDG_STATE_HOME: state };
    const args = ['serve', '--stdio', '--spec', SHOP_SPEC, '--base-url', shop.url];
    const clients = [mcpClient(), mcpClient()];
    for (const c of clients) await c.connect(stdioTransport(args, env).transport);
    try {
      for (const [i, c] of clients.entries()) {
        const r = await c.callTool({ name: 'searchProducts', arguments: { q: `lamp-${i}` } });
        expect(r.isError).toBeFalsy();
      }
    } finally {
      for (const c of clients) await c.close();
    }
    const [folder] = readdirSync(join(state, 'mcp-warden'));
    const dir = join(state, 'mcp-warden', folder!);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
    expect(files).toEqual(['audit-2.jsonl', 'audit.jsonl']);
    for (const f of files) {
      const calls = readAudit(join(dir, f)).filter((r) => r.kind === 'call');
      expect(calls).toHaveLength(1);
      const out = io();
      expect(await runAuditVerify(join(dir, f), {}, out.io), out.text()).toBe(0);
    }
  });

  it('with the same explicit --audit-file: the second is refused with the reason, the first goes on', async () => {
    const first = mcpClient();
    const running = await connectShopStdio(first, { shop });
    try {
      const second = mcpClient();
      const { transport, stderr } = stdioTransport(
        ['serve', '--stdio', '--spec', SHOP_SPEC, '--base-url', shop.url, '--audit-file', running.auditFile],
        shopEnv(shop),
      );
      // Its initialize may be answered while the spec loads (docs/serving.md): then the reason
      // answers its next request.
      await expect(second.connect(transport).then(() => second.listTools())).rejects.toThrow(
        /being written by another mcp-warden/,
      );
      await second.close();
      expect(stderr()).toContain('--audit-file');
      expect(stderr()).not.toMatch(/\n\s+at /);
      const r = await first.callTool({ name: 'searchProducts', arguments: { q: 'still-here' } });
      expect(r.isError).toBeFalsy();
    } finally {
      await running.close();
    }
    const out = io();
    expect(await runAuditVerify(running.auditFile, {}, out.io), out.text()).toBe(0);
  });
});
