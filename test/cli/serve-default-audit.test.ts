import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCode } from '../../src/errors/index.js';
import { specDirName } from '../../src/lib/state-dir.js';
import { startGateway } from '../../src/server/serve.js';
import { mcpClient } from '../support/gateway.js';
import { CLI, tempTree } from '../support/paths.js';
import { SHOP_SPEC, type Shop, shopEnv, startShop } from '../support/shop.js';
import { onJsonLines, runCli, sendJson } from '../support/stdio.js';
import { readAudit, waitFor } from '../support/wait.js';

/**
 * With no --audit-file, the audit goes to the per-user state directory (docs/files.md), never the
 * working directory: an MCP client may start the server in `/`, as a user who cannot write there.
 */

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const SETPRIV = ['--reuid=nobody', '--regid=nogroup', '--clear-groups'];

/** The command that runs the built CLI as an unprivileged user: `nobody` when we are root, else ourselves. */
function unprivileged(args: string[]): { command: string; args: string[] } {
  return asRoot
    ? { command: 'setpriv', args: [...SETPRIV, process.execPath, CLI, ...args] }
    : { command: process.execPath, args: [CLI, ...args] };
}

/** Why the `nobody` runs cannot happen here, or undefined when they can. */
function whyNotAsNobody(): string | undefined {
  if (!asRoot) return undefined;
  const r = spawnSync('setpriv', [...SETPRIV, process.execPath, CLI, '--version'], { encoding: 'utf8' });
  if (r.error) return `setpriv is not available (${(r.error as NodeJS.ErrnoException).code})`;
  if (r.status !== 0) return `nobody cannot run this checkout's dist/cli/main.js: ${r.stderr.trim()}`;
  return undefined;
}
const skip = whyNotAsNobody();

/** A copy of the demo spec in a folder anyone may read (temp folders are 0700). */
function readableSpec(): string {
  const dir = tempTree({});
  chmodSync(dir, 0o755);
  const spec = join(dir, 'openapi.yaml');
  copyFileSync(SHOP_SPEC, spec);
  chmodSync(spec, 0o644);
  return spec;
}

describe(`serve --stdio started from / as an unprivileged user${asRoot ? ' (nobody)' : ''}`, () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop();
  });
  afterAll(async () => {
    await shop?.close();
  });

  it.skipIf(skip !== undefined)(
    `starts, and audits into $HOME/.local/state/mcp-warden/<spec>/${skip ? ` — skipped: ${skip}` : ''}`,
    async () => {
      const spec = readableSpec();
      const home = tempTree({});
      if (asRoot) chownSync(home, NOBODY, NOBODY);
      const cmd = unprivileged(['serve', '--stdio', '--spec', spec, '--base-url', shop.url]);
      const transport = new StdioClientTransport({
        ...cmd,
        cwd: '/',
        env: { PATH: process.env.PATH ?? '', HOME: home, ...shopEnv(shop) } as Record<string, string>,
        stderr: 'pipe',
      });
      let stderr = '';
      transport.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const client = mcpClient();
      await client.connect(transport);
      const r = await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      await client.close();

      const folder = join(home, '.local', 'state', 'mcp-warden', specDirName(spec));
      const audit = join(folder, 'audit.jsonl');
      expect(stderr).toContain(`mcp-warden: audit file ${audit}`);
      await waitFor(() => readAudit(audit).some((x) => x.kind === 'call' && x.tool === 'searchProducts'), {
        what: 'the call in the default audit',
      });
      for (const dir of [join(home, '.local', 'state', 'mcp-warden'), folder]) {
        expect(statSync(dir).mode & 0o777, dir).toBe(0o700);
        if (asRoot) expect(statSync(dir).uid, dir).toBe(NOBODY);
      }
      expect(existsSync('/mcp-warden-audit.jsonl')).toBe(false);
      // `audit verify` with no file finds it: the only audit in that state directory.
      const v = runCli(['audit', 'verify'], { HOME: home });
      expect(v.code, v.stderr).toBe(0);
      expect(v.stderr).toContain(`audit file: ${audit}`);
      expect(v.stdout).toMatch(/^ok: /);
    },
  );

  it.skipIf(skip !== undefined)(
    `HOME=/nonexistent, no XDG_STATE_HOME: the reason on stderr and in the answer to initialize${skip ? ` — skipped: ${skip}` : ''}`,
    async () => {
      const spec = readableSpec();
      const cmd = unprivileged(['serve', '--stdio', '--spec', spec, '--base-url', shop.url]);
      const child = spawn(cmd.command, cmd.args, {
        cwd: '/',
        env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...shopEnv(shop) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const answers: Array<Record<string, unknown>> = [];
      onJsonLines(child.stdout, (m) => answers.push(m));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      sendJson(child as never, {
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      const code = await exited;
      const why = new RegExp(
        `no writable state directory for the audit: tried /nonexistent/\\.local/state/mcp-warden/${specDirName(spec)} \\(EACCES\\); choose the file with --audit-file <path> or a writable root with --state-dir <dir>`,
      );
      expect(code).toBe(exitCode('CONFIG_INVALID'));
      expect(stderr).toMatch(new RegExp(`error CONFIG_INVALID: ${why.source}`));
      expect(stderr).not.toMatch(/INTERNAL|\bat .*\.js:\d+/);
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({ id: 1, error: { message: expect.stringMatching(why) } });
      expect((answers[0]!.error as { message: string }).message).toMatch(/^mcp-warden could not start: /);
    },
  );
});

describe('where the audit goes otherwise', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop();
  });
  afterAll(async () => {
    await shop?.close();
  });

  /** `serve --stdio` in `cwd` with a real client: one call, then closed; what it logged. */
  async function oneCall(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'serve', '--stdio', '--spec', SHOP_SPEC, '--base-url', shop.url, ...args],
      cwd,
      env: { PATH: process.env.PATH ?? '', ...shopEnv(shop), ...env } as Record<string, string>,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const client = mcpClient();
    await client.connect(transport);
    await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
    await client.close();
    return stderr;
  }
  const called = (file: string) =>
    waitFor(() => readAudit(file).some((x) => x.kind === 'call'), { what: `a call in ${file}` });

  it('$XDG_STATE_HOME/mcp-warden/<spec>/audit.jsonl, not the working directory', async () => {
    const [cwd, xdg] = [tempTree({}), tempTree({})];
    const stderr = await oneCall([], { XDG_STATE_HOME: xdg, HOME: '/nonexistent' }, cwd);
    const audit = join(xdg, 'mcp-warden', specDirName(SHOP_SPEC), 'audit.jsonl');
    expect(stderr).toContain(`mcp-warden: audit file ${audit}`);
    await called(audit);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('--state-dir <dir> moves the root: <dir>/<spec>/audit.jsonl', async () => {
    const [cwd, root] = [tempTree({}), tempTree({})];
    const stderr = await oneCall(['--state-dir', root], { HOME: '/nonexistent' }, cwd);
    const audit = join(root, specDirName(SHOP_SPEC), 'audit.jsonl');
    expect(stderr).toContain(`mcp-warden: audit file ${audit}`);
    await called(audit);
  });

  it('a relative --audit-file is resolved against the working directory, as before', async () => {
    const cwd = tempTree({});
    const stderr = await oneCall(['--audit-file', 'here.jsonl'], { HOME: '/nonexistent' }, cwd);
    expect(stderr).toContain(`mcp-warden: audit file ${join(cwd, 'here.jsonl')}`);
    await called(join(cwd, 'here.jsonl'));
  });

  it('startGateway (library use) without auditFile takes the same default; with one, that file', async () => {
    const xdg = tempTree({});
    const gw = await startGateway({
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      env: { XDG_STATE_HOME: xdg, ...shopEnv(shop) },
    });
    try {
      expect(gw.auditFile).toBe(join(xdg, 'mcp-warden', specDirName(SHOP_SPEC), 'audit.jsonl'));
    } finally {
      await gw.close();
    }
    const file = join(tempTree({}), 'given.jsonl');
    const given = await startGateway({
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      auditFile: file,
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      env: { XDG_STATE_HOME: '/nonexistent', HOME: '/nonexistent', ...shopEnv(shop) },
    });
    expect(given.auditFile).toBe(file);
    await given.close();
  });
});
