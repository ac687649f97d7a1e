import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminServer, connectionId, startAdmin } from '../../src/admin/api.js';
import { addConnections } from '../../src/cli/connections.js';
import type { ControlEvent } from '../../src/control/controller.js';
import { Controller } from '../../src/control/controller.js';
import { createLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryState } from '../../src/state/memory.js';
import { FileVault, vaultKey } from '../../src/state/vault.js';
import { UserOAuth } from '../../src/upstream/user-oauth.js';
import { haveBrowser, openPage } from '../support/browser.js';
import { catalogOf, minimalSpec } from '../support/helpers.js';
import { adminApi } from '../support/http.js';
import { tempTree } from '../support/paths.js';

const TOKEN = 'admin-token-for-connections-0000000001';
const ALICE = 'jwt:https://idp.example.test/#alice';
const BOB = 'jwt:https://idp.example.test/#bob';
const ACCESS = { alice: 'alice-access-token-canary-0001', bob: 'bob-access-token-canary-0002' };

/** `mcp-warden connections <args>` in process: its stdout (the token from the environment, as the CLI reads it). */
async function runConnections(args: string[], env: Record<string, string>): Promise<string> {
  let out = '';
  const program = new Command().exitOverride();
  addConnections(program, { stdout: (s) => (out += s), stderr: () => {} });
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    await program.parseAsync(['connections', ...args], { from: 'user' });
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
  }
  return out;
}

/**
 * The admin API's `/connections` and the `connections` CLI over oauth-core's real service and the
 * embedded (encrypted file) vault: people's connections are listed without any token and revoked
 * one at a time, audited with the operator who did it.
 */
describe('admin API and CLI: /connections', () => {
  let admin: AdminServer;
  let vault: FileVault;
  const events: ControlEvent[] = [];

  beforeAll(async () => {
    vault = FileVault.open({
      file: join(tempTree({}), 'vault.json'),
      keyring: [vaultKey('a vault key of at least thirty-two characters')],
    });
    const users = new UserOAuth({
      upstreams: [
        {
          scheme: 'gh',
          authorizationUrl: 'https://gh.example.test/authorize',
          tokenUrl: 'https://gh.example.test/token',
          clientId: 'cid',
          redirectUri: 'https://mcp.example.test/oauth/callback',
        },
      ],
      vault,
    });
    const t0 = Date.parse('2026-01-02T03:04:05Z');
    await vault.put({
      principal: ALICE,
      upstream: '/gh',
      issuer: 'https://gh.example.test',
      scopes: ['repo:read'],
      createdAt: t0,
      lastUsedAt: t0 + 60_000,
      accessToken: ACCESS.alice,
    });
    await vault.put({
      principal: BOB,
      upstream: '/gh',
      issuer: 'https://gh.example.test',
      scopes: ['repo:read', 'repo:write'],
      createdAt: t0,
      accessToken: ACCESS.bob,
      refreshToken: 'bob-refresh-token-canary-0003',
    });
    const catalog = await catalogOf(minimalSpec({}));
    const controller = new Controller({
      catalog,
      env: {},
      state: createMemoryState(),
      onSecret: () => {},
      onControl: () => {},
      warn: () => {},
    });
    admin = await startAdmin({
      controller,
      metrics: new Metrics(() => new Set()),
      metricsPublic: false,
      reloadSpec: async () => ({ tools: 0, pending: [] }),
      token: TOKEN,
      port: 0,
      host: '127.0.0.1',
      logger: createLogger({ level: 'silent', redactor: createRedactor() }),
      onControl: (e) => events.push(e),
      onAuthFailure: () => {},
      connections: users,
    });
  });
  afterAll(async () => {
    await admin?.close();
    await vault?.close();
  });

  const api = () => adminApi(admin.url, TOKEN, 'ops-carol');

  it('needs the admin token', async () => {
    const r = await api()('GET', '/connections', undefined, 'wrong-token');
    expect(r.status).toBe(401);
  });

  it('lists who connected which upstream with which scopes and when, never a token', async () => {
    const r = await api()('GET', '/connections');
    expect(r.status).toBe(200);
    const list = r.body.connections as Array<Record<string, unknown>>;
    expect(list).toEqual(
      expect.arrayContaining([
        {
          id: connectionId({ principal: ALICE, upstream: '/gh' }),
          principal: ALICE,
          upstream: '/gh',
          issuer: 'https://gh.example.test',
          scopes: ['repo:read'],
          createdAt: '2026-01-02T03:04:05.000Z',
          lastUsedAt: '2026-01-02T03:05:05.000Z',
        },
        expect.objectContaining({ principal: BOB, scopes: ['repo:read', 'repo:write'] }),
      ]),
    );
    const text = JSON.stringify(r.body);
    for (const t of [...Object.values(ACCESS), 'bob-refresh-token-canary-0003'])
      expect(text).not.toContain(t);
    const one = await api()('GET', `/connections?principal=${encodeURIComponent(BOB)}`);
    expect((one.body.connections as unknown[]).length).toBe(1);
  });

  it('the CLI lists them as a table and revokes one; only that person is affected', async () => {
    const env = { MCP_WARDEN_ADMIN_TOKEN: TOKEN };
    const table = await runConnections(['list', '--admin-url', admin.url], env);
    expect(table).toMatch(/^ID\s+PRINCIPAL\s+UPSTREAM\s+SCOPES\s+LAST USED\s+CONNECTED$/m);
    expect(table).toContain(ALICE);
    expect(table).not.toContain(ACCESS.alice);
    const bobId = connectionId({ principal: BOB, upstream: '/gh' });
    expect(await runConnections(['revoke', bobId, '--admin-url', admin.url], env)).toBe(
      `revoked: ${BOB} on /gh; their next call asks them to connect again\n`,
    );
    expect(await vault.get(BOB, '/gh')).toBeUndefined();
    expect(await vault.get(ALICE, '/gh')).toBeDefined();
    // Audited with who did it (the admin token's identity, plus the CLI's user as the actor's name).
    expect(events).toContainEqual(
      expect.objectContaining({
        action: 'connection.revoke',
        target: `${BOB} /gh`,
        actor: expect.stringMatching(/admin/),
      }),
    );
    const json = JSON.parse(
      await runConnections(['list', '--format', 'json', '--admin-url', admin.url], env),
    );
    expect(json.map((c: { principal: string }) => c.principal)).toEqual([ALICE]);
  });

  it('refuses an unknown or malformed connection id clearly', async () => {
    const gone = await api()('DELETE', `/connections/${connectionId({ principal: BOB, upstream: '/gh' })}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error).toBe('ADMIN_NOT_FOUND');
    const bad = await api()('DELETE', '/connections/not-an-id');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('USAGE');
  });

  it.runIf(haveBrowser)(
    'the dashboard lists connections and revokes one behind a confirmation',
    async () => {
      const { browser, page, pageErrors, cspViolations } = await openPage();
      try {
        await page.goto(admin.url);
        await page.getByLabel('Admin token').fill(TOKEN);
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByRole('link', { name: 'Connections', exact: true }).click();
        await page.getByRole('heading', { level: 1, name: 'Connections' }).waitFor();
        const row = page.locator(
          `tr[data-connection="${connectionId({ principal: ALICE, upstream: '/gh' })}"]`,
        );
        await expect.poll(() => row.textContent()).toContain('repo:read');
        expect(await row.textContent()).toContain(ALICE);
        expect(await page.content()).not.toContain(ACCESS.alice);
        await page.getByRole('button', { name: `Revoke ${ALICE} on /gh` }).click();
        const dialog = page.getByRole('dialog');
        await dialog.getByText('next call to it asks them to connect again').waitFor();
        // Cancel changes nothing; confirming revokes.
        await dialog.getByRole('button', { name: 'Cancel' }).click();
        expect(await vault.get(ALICE, '/gh')).toBeDefined();
        await page.getByRole('button', { name: `Revoke ${ALICE} on /gh` }).click();
        await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
        await expect.poll(() => page.getByRole('status').textContent()).toContain(`Revoked ${ALICE} on /gh`);
        expect(await vault.get(ALICE, '/gh')).toBeUndefined();
        await expect.poll(() => page.getByText('No one has connected an upstream account.').count()).toBe(1);
        expect(pageErrors).toEqual([]);
        expect(cspViolations).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
