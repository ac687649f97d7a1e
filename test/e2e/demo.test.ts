import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, mcpClient } from '../support/gateway.js';
import { freePort } from '../support/http.js';
import { tempTree } from '../support/paths.js';
import { type RunningScript, startScript } from '../support/script.js';
import { runCli } from '../support/stdio.js';
import { readAudit, waitFor } from '../support/wait.js';

/**
 * `npm start` (scripts/demo.mjs): its audit goes to an ignored folder, its banner's client snippets
 * work as printed, and a port in use (a second `npm start`, or PORT / ADMIN_PORT / SHOP_PORT taken)
 * ends with the port and the variable named, never a stack trace.
 */

const ROOT = new URL('../../', import.meta.url).pathname;
const DEMO = join(ROOT, 'scripts/demo.mjs');

/** Holds a TCP port on 127.0.0.1 (port 0: any free one) until closed. */
function occupy(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s: Server = createServer()
      .once('error', reject)
      .listen(port, '127.0.0.1', () =>
        resolve({
          port: (s.address() as { port: number }).port,
          close: () => new Promise<void>((r) => s.close(() => r())),
        }),
      );
  });
}

/** The demo's environment: its ports, its files in `dir` (not the checkout's .demo/). */
const demoEnv = (ports: { shop: number; mcp: number; admin: number; pets?: number }, dir: string) => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/nonexistent',
  // The real HOME: keep the spec cache out of it (vitest.config.ts).
  MCP_WARDEN_SPEC_CACHE: 'off',
  SHOP_PORT: String(ports.shop),
  // Any free port unless the test holds one (a fixed default could be taken on a shared machine).
  PETS_PORT: String(ports.pets ?? 0),
  PORT: String(ports.mcp),
  ADMIN_PORT: String(ports.admin),
  DEMO_DIR: dir,
});

/** Runs the demo to its end (it ends by itself only when it fails to start). */
function demoFails(env: NodeJS.ProcessEnv, args: string[] = []) {
  const r = spawnSync(process.execPath, [DEMO, ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const noStack = (s: string) => expect(s).not.toMatch(/INTERNAL|\bat .*\.m?js:\d+/);

describe('npm start: the demo', () => {
  const dir = join(tempTree({}), 'demo');
  let ports: { shop: number; mcp: number; admin: number; pets: number };
  let demo: RunningScript;

  beforeAll(async () => {
    ports = {
      shop: await freePort(),
      mcp: await freePort(),
      admin: await freePort(),
      pets: await freePort(),
    };
    demo = await startScript(DEMO, [], demoEnv(ports, dir), 'Ctrl-C stops all three');
  }, 90_000);

  afterAll(async () => {
    await demo?.stop();
  });

  it('the banner names its audit in the demo folder, and how to check it', () => {
    const audit = join(dir, 'audit.jsonl');
    expect(demo.out).toContain(`Audit log          ${audit}`);
    expect(demo.out).toContain(`audit verify ${audit}`);
    expect(demo.err).toContain(`mcp-warden: audit file ${audit}`);
  });

  it('the Cursor snippet (Streamable HTTP URL) works as printed: two APIs behind one endpoint', async () => {
    const snippet = /Cursor \(~\/\.cursor\/mcp\.json\):\n\s+(\{.*\})\n/.exec(demo.out)?.[1];
    const url = JSON.parse(snippet!).mcpServers['warden-demo'].url as string;
    expect(url).toBe(`http://127.0.0.1:${ports.mcp}/mcp`);
    const client = await connectHttp(url);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('shop_searchProducts');
    expect(names).toContain('pets_listPets');
    // The secure defaults hold in each API: no write is listed.
    expect(names).not.toContain('pets_requestAdoption');
    expect(names).not.toContain('shop_createOrder');
    const r = await client.callTool({ name: 'shop_searchProducts', arguments: { q: 'mouse' } });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    const cats = await client.callTool({ name: 'pets_listPets', arguments: { species: 'cat' } });
    expect(cats.isError, JSON.stringify(cats.content)).toBeFalsy();
    expect(JSON.stringify(cats.content)).toContain('Miso');
    await client.close();
    await waitFor(
      () => {
        const calls = readAudit(join(dir, 'audit.jsonl')).filter((x) => x.kind === 'call');
        return (
          calls.some((x) => x.tool === 'shop_searchProducts' && x.api === 'shop') &&
          calls.some((x) => x.tool === 'pets_listPets' && x.api === 'pets')
        );
      },
      { what: 'both calls in the demo audit, each with its API' },
    );
  });

  it('the Claude Desktop snippet (stdio) works as printed; its audit goes to the state directory', async () => {
    const json = /claude_desktop_config\.json[^\n]*\n([\s\S]*?\n {4}\})\n/.exec(demo.out)?.[1];
    const server = JSON.parse(json!).mcpServers['warden-demo'] as {
      command: string;
      args: string[];
      env: Record<string, string>;
    };
    expect(server.args).not.toContain('--audit-file');
    expect(server.args[0]).toBe(join(ROOT, 'dist/cli/main.js'));
    // What Claude Desktop adds: the user's environment (HOME; here a private state directory).
    const xdg = tempTree({});
    const transport = new StdioClientTransport({
      command: server.command,
      args: server.args,
      env: { ...server.env, PATH: process.env.PATH ?? '', XDG_STATE_HOME: xdg },
      cwd: '/',
      stderr: 'pipe',
    });
    const client = mcpClient();
    await client.connect(transport);
    const r = await client.callTool({ name: 'shop_searchProducts', arguments: { q: 'keyboard' } });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    await client.close();
    // The banner names that audit for the user's own state directory; the same rule put this one here.
    const named = /\(its audit: (\S+)\)/.exec(demo.out)?.[1];
    expect(named).toMatch(/\/mcp-warden\/openapi-[0-9a-f]{8}\/audit\.jsonl$/);
    const audit = join(xdg, 'mcp-warden', named!.split('/').at(-2)!, 'audit.jsonl');
    await waitFor(() => readAudit(audit).some((x) => x.tool === 'shop_searchProducts'), {
      what: 'the stdio call in the default audit',
    });
  });

  it('a second npm start while this one runs: the port and SHOP_PORT named, no stack trace', () => {
    const second = join(tempTree({}), 'demo');
    const r = demoFails(demoEnv(ports, second));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `error CONFIG_INVALID: port ${ports.shop} is already in use (EADDRINUSE): stop the other process (another \`npm start\`?) or choose another with SHOP_PORT=<n>`,
    );
    noStack(r.stderr);
    expect(existsSync(second)).toBe(false);
  });

  it('after the run, `audit verify` of the demo audit is OK', async () => {
    await demo.stop();
    const v = runCli(['audit', 'verify', join(dir, 'audit.jsonl')], {});
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/^ok: /);
  });
});

describe('npm start: each port the demo binds, when taken', () => {
  it('PORT (the MCP port): the port and PORT named', async () => {
    const held = await occupy();
    try {
      const ports = { shop: await freePort(), mcp: held.port, admin: await freePort() };
      const r = demoFails(demoEnv(ports, join(tempTree({}), 'demo')));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`port ${held.port} on 127.0.0.1 is already in use (EADDRINUSE)`);
      expect(r.stderr).toContain(`demo: the MCP port ${held.port} is PORT:`);
      expect(r.stderr).toContain('PORT=<n> npm start');
      noStack(r.stderr);
    } finally {
      await held.close();
    }
  });

  it('ADMIN_PORT (npm start -- --policy): the port and ADMIN_PORT named', async () => {
    const held = await occupy();
    try {
      const ports = { shop: await freePort(), mcp: await freePort(), admin: held.port };
      const r = demoFails(demoEnv(ports, join(tempTree({}), 'demo')), ['--policy']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`port ${held.port} on 127.0.0.1 is already in use (EADDRINUSE)`);
      expect(r.stderr).toContain(`demo: the admin port ${held.port} is ADMIN_PORT:`);
      noStack(r.stderr);
    } finally {
      await held.close();
    }
  });

  it('PETS_PORT (the second demo upstream): the port and PETS_PORT named, no stack trace', async () => {
    const held = await occupy();
    try {
      const ports = {
        shop: await freePort(),
        mcp: await freePort(),
        admin: await freePort(),
        pets: held.port,
      };
      const r = demoFails(demoEnv(ports, join(tempTree({}), 'demo')));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`port ${held.port} is already in use .*PETS_PORT=<n>`));
      noStack(r.stderr);
    } finally {
      await held.close();
    }
  });

  it('SHOP_PORT (the demo upstream): the port and SHOP_PORT named', async () => {
    const held = await occupy();
    try {
      const ports = { shop: held.port, mcp: await freePort(), admin: await freePort() };
      const r = demoFails(demoEnv(ports, join(tempTree({}), 'demo')));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`port ${held.port} is already in use .*SHOP_PORT=<n>`));
      noStack(r.stderr);
    } finally {
      await held.close();
    }
  });
});

describe('npm start -- --policy: the apis: policy (examples/gateway.yaml)', () => {
  const dir = join(tempTree({}), 'demo');
  let ports: { shop: number; mcp: number; admin: number; pets: number };
  let demo: RunningScript;

  beforeAll(async () => {
    ports = {
      shop: await freePort(),
      mcp: await freePort(),
      admin: await freePort(),
      pets: await freePort(),
    };
    demo = await startScript(DEMO, ['--policy'], demoEnv(ports, dir), 'Ctrl-C stops all three');
  }, 90_000);

  afterAll(async () => {
    await demo?.stop();
  });

  it("serves both APIs with each API's rules, from a copy of the policy with this run's ports", async () => {
    const copy = join(dir, 'gateway.yaml');
    expect(demo.out).toContain(`Policy ${copy} (`);
    expect(readFileSync(copy, 'utf8')).toContain(`baseUrl: http://127.0.0.1:${ports.pets}/v1`);
    const client = await connectHttp(`http://127.0.0.1:${ports.mcp}/mcp`);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['shop_createOrder', 'shop_deleteCustomer', 'pets_requestAdoption']),
    );
    const r = await client.callTool({
      name: 'pets_requestAdoption',
      arguments: { body: { petId: 'p_102', adopterName: 'Ada' } },
    });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    expect(JSON.stringify(r.content)).toContain('pending');
    await client.close();
  });

  it('`tools list --api pets` lists only the pet store’s tools; an unknown API is named with those served', () => {
    const env = {
      MCP_WARDEN_ADMIN_TOKEN: 'demo-admin-token-0123456789',
      MCP_WARDEN_ADMIN_URL: `http://127.0.0.1:${ports.admin}`,
    };
    const list = runCli(['tools', 'list', '--api', 'pets'], env);
    expect(list.code, list.stderr).toBe(0);
    const rows = list.stdout.trim().split('\n');
    expect(rows.map((l) => l.split(/\s+/)[1])).toEqual([
      'pets_listPets',
      'pets_getPet',
      'pets_requestAdoption',
    ]);
    const unknown = runCli(['tools', 'list', '--api', 'pet'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      'no tools of an API named "pet" (did you mean "pets"?); the gateway serves: pets, shop',
    );
  });
});

describe('the demo folder', () => {
  it('.demo/ is ignored by git: a run leaves `git status` clean', (ctx) => {
    const r = spawnSync('git', ['check-ignore', '-q', '.demo/audit.jsonl'], { cwd: ROOT });
    if (r.error || !existsSync(join(ROOT, '.git'))) ctx.skip('not a git checkout, or no git here');
    expect(r.status).toBe(0);
    expect(existsSync(join(ROOT, 'demo-audit.jsonl'))).toBe(false);
  });
});
