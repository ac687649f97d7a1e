import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { exitCode } from '../../src/errors/index.js';
import { CLI, tempTree } from '../support/paths.js';
import { runCli } from '../support/stdio.js';

/**
 * `audit verify|query|tail` without a file read the default audit in the state directory — when
 * there is exactly one. Several or none: a usage error listing what is there; never the cwd's file.
 */

/** A real, chained audit at `<root>/<folder>/audit.jsonl` with one call to `tool`. */
async function audit(root: string, folder: string, tool: string): Promise<string> {
  mkdirSync(join(root, folder), { recursive: true });
  const file = join(root, folder, 'audit.jsonl');
  const sink = openJsonlAudit(file);
  sink.write({
    kind: 'call',
    time: new Date().toISOString(),
    id: `${tool}-1`,
    tool,
    decision: 'allowed',
    outcome: 'ok',
    principal: 'stdio:local',
    args: {},
    ms: 1,
  });
  await sink.close();
  return file;
}

const noStack = (s: string) => expect(s).not.toMatch(/INTERNAL|\bat .*\.js:\d+/);

describe('audit commands without a file', () => {
  it('one audit in the state directory: verify, query and tail use it and say which', async () => {
    const xdg = tempTree({});
    const file = await audit(join(xdg, 'mcp-warden'), 'openapi-1a2b3c4d', 'searchProducts');
    const env = { XDG_STATE_HOME: xdg, HOME: '/nonexistent' };
    const v = runCli(['audit', 'verify'], env);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok: 1 records/);
    expect(v.stderr).toBe(`audit file: ${file}\n`);
    const q = runCli(['audit', 'query', '--kind', 'call', '--format', 'json'], env);
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({ tool: 'searchProducts' });
    const t = runCli(['audit', 'tail', '-n', '1', '--kind', 'call', '--format', 'json'], env);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ tool: 'searchProducts' });
  });

  it('--state-dir says where to look (the same root `serve --state-dir` takes)', async () => {
    const root = tempTree({});
    const file = await audit(root, 'api-00000000', 'listItems');
    const v = runCli(['audit', 'verify', '--state-dir', root], { HOME: '/nonexistent' });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain(`audit file: ${file}`);
    const q = runCli(['audit', 'query', '--state-dir', root, '--tool', 'listItems'], {
      HOME: '/nonexistent',
    });
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout).toContain('listItems');
    const t = runCli(['audit', 'tail', '--state-dir', root], { HOME: '/nonexistent' });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('listItems');
  });

  it('several: a usage error listing each candidate, asking for one', async () => {
    const root = tempTree({});
    const a = await audit(root, 'openapi-11111111', 'a');
    const b = await audit(root, 'shop-22222222', 'b');
    for (const cmd of [
      ['audit', 'verify'],
      ['audit', 'query'],
      ['audit', 'tail'],
    ]) {
      const r = runCli([...cmd, '--state-dir', root], {});
      expect(r.code, cmd.join(' ')).toBe(exitCode('USAGE'));
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(
        'error USAGE: no audit file given, and the state directory holds 2: name one of them',
      );
      expect(r.stderr).toContain(`  - ${a}\n`);
      expect(r.stderr).toContain(`  - ${b}\n`);
      noStack(r.stderr);
    }
  });

  it('none: a usage error naming where it looked; an audit in the working directory is not guessed', async () => {
    const [xdg, home, cwd] = [tempTree({}), tempTree({}), tempTree({})];
    // The old default file name, in the directory the CLI runs in: not picked up.
    await audit(cwd, '.', 'old');
    renameSync(join(cwd, 'audit.jsonl'), join(cwd, 'mcp-warden-audit.jsonl'));
    const r = spawnSync(process.execPath, [CLI, 'audit', 'verify'], {
      cwd,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', XDG_STATE_HOME: xdg, HOME: home },
    });
    expect(r.status).toBe(exitCode('USAGE'));
    expect(r.stderr).toBe(
      `error USAGE: no audit file given, and none in the state directory (${join(xdg, 'mcp-warden')}, ${join(home, '.local/state/mcp-warden')}): name one\n`,
    );
  });

  it('a named file is used as before; a missing one is a usage error', async () => {
    const root = tempTree({});
    const file = await audit(root, 'x', 'named');
    const v = runCli(['audit', 'verify', file], { HOME: '/nonexistent' });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toBe('');
    const missing = runCli(['audit', 'query', join(root, 'nope.jsonl')], {});
    expect(missing.code).toBe(exitCode('USAGE'));
    expect(missing.stderr).toBe(`error USAGE: no audit file at ${join(root, 'nope.jsonl')}\n`);
  });
});
