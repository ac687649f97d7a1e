import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliGateway } from '../support/cli-gateway.js';
import { connectHttp, startTestGateway } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ISSUER, signJwt } from '../support/jwt.js';
import {
  type BrowserCallback,
  type OAuthServer,
  openCallback,
  openConnectPage,
  petsOAuthSpec,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { ADMIN_TOKEN } from '../support/shop.js';
import { startUserOAuthStack, type UserOAuthStack } from '../support/user-oauth.js';
import { waitFor } from '../support/wait.js';

const spec = (base: string) => petsOAuthSpec(base);

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };

/**
 * Per-user OAuth through the running gateway (the built CLI, serving HTTP with JWT callers): two
 * people use the same tool, each connects once in the browser (played over HTTP against a real
 * oidc-provider), the callback lands on the gateway, and each call then reaches an upstream that
 * accepts only that server's tokens, as that person, with only the tool's scopes. Revoking one
 * connection through the admin API asks only that person again. No token, state or code appears in
 * any result, audit record or log line.
 */
describe('per-user OAuth end to end (gateway, oidc-provider, protected upstream)', () => {
  let stack: UserOAuthStack;
  let as: OAuthServer;
  let upstream: UserOAuthStack['upstream'];
  let gateway: CliGateway;
  let mcpUrl: string;
  let adminUrl: string;
  let dir: string;
  const clients: Client[] = [];
  const results: string[] = [];
  const links: string[] = [];
  const callbacks: BrowserCallback[] = [];
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startUserOAuthStack({ admin: true });
    ({ as, upstream, gateway, dir } = stack);
    tokens.alice = await signJwt(stack.key, { subject: 'alice', scope: 'tools:read' });
    tokens.bob = await signJwt(stack.key, { subject: 'bob', scope: 'tools:read' });
    mcpUrl = gateway.mcpUrl;
    adminUrl = gateway.adminUrl!;
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await stack?.close();
  });

  const client = async (who: string) => {
    const c = await connectHttp(mcpUrl, { token: tokens[who]! });
    clients.push(c);
    return c;
  };
  const call = async (c: Client) => {
    const r = (await c.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    results.push(textOf(r));
    return r;
  };
  /** The link CONNECTION_REQUIRED gives, followed as the named user's browser; the callback lands on the gateway. */
  const connect = async (r: CallResult, user: string) => {
    expect(codeOf(r)).toBe('CONNECTION_REQUIRED');
    const link = /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];
    expect(link).toBeDefined();
    links.push(link!);
    const back = await as.authorize(link!, user);
    callbacks.push(back);
    expect(back.url.origin).toBe(new URL(mcpUrl).origin);
    const page = await openCallback(back);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Connected /petsAuth (scopes: pets:read)');
    // The binding has served: the callback clears the cookie.
    expect(page.headers.getSetCookie()).toContain(
      'mcp-warden-connect=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax',
    );
  };

  it('asks each caller to connect once, then acts upstream as that caller with only the tool scopes', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const aFirst = await call(alice);
    const bFirst = await call(bob);
    expect(upstream.calls).toHaveLength(0);
    // The link is the gateway's own connect page; the authorization URL comes only from approving it.
    const link = new URL(/open this link and approve access: (\S+)/.exec(textOf(aFirst))![1]!);
    expect(link.origin + link.pathname).toBe(`${new URL(mcpUrl).origin}/oauth/connect`);
    const page = await openConnectPage(link);
    expect(page.html).toContain(`jwt:${ISSUER}#alice`);
    expect(page.html).toContain('pets:read');
    expect(page.html).not.toContain('code_challenge');

    await connect(aFirst, 'alice');
    await connect(bFirst, 'bob');

    const a = await call(alice);
    expect(codeOf(a)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'alice', scopes: ['pets:read'] });
    const b = await call(bob);
    expect(codeOf(b)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'bob', scopes: ['pets:read'] });
    // Connected once: the next call needs no new link.
    expect(codeOf(await call(alice))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('alice');
  });

  it('a replayed callback is refused and stores nothing', async () => {
    const page = await openCallback(callbacks[0]!);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('unknown, already used or expired');
  });

  it('revoking one connection through the admin API asks only that caller again', async () => {
    const admin = adminApi(adminUrl, ADMIN_TOKEN, 'ops');
    const listed = await admin('GET', '/connections');
    expect(listed.status).toBe(200);
    const rows = listed.body.connections as Array<{ id: string; principal: string; scopes: string[] }>;
    expect(rows.map((r) => r.principal).sort()).toEqual([`jwt:${ISSUER}#alice`, `jwt:${ISSUER}#bob`]);
    const aliceRow = rows.find((r) => r.principal.endsWith('#alice'))!;
    expect(aliceRow.scopes).toEqual(['pets:read']);
    expect((await admin('DELETE', `/connections/${encodeURIComponent(aliceRow.id)}`)).status).toBe(200);

    const [alice, bob] = clients;
    const before = upstream.calls.length;
    const again = await call(alice!);
    expect(codeOf(again)).toBe('CONNECTION_REQUIRED');
    expect(upstream.calls).toHaveLength(before);
    expect(codeOf(await call(bob!))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('bob');

    await connect(again, 'alice');
    expect(codeOf(await call(alice!))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('alice');
  });

  it('records on whose behalf each call was made, and no token reaches a result, the audit or a log', async () => {
    const auditFile = join(dir, 'audit.jsonl');
    const onBehalf = await waitFor(
      () => {
        const lines = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean);
        const found = lines
          .map((l) => JSON.parse(l) as { onBehalfOf?: { principal: string; credential: string } })
          .filter((r) => r.onBehalfOf);
        return found.length >= 5 ? found : undefined;
      },
      { what: 'the audited calls made on behalf of alice and bob' },
    );
    expect(new Set(onBehalf.map((r) => r.onBehalfOf!.principal))).toEqual(
      new Set([`jwt:${ISSUER}#alice`, `jwt:${ISSUER}#bob`]),
    );
    expect(onBehalf.every((r) => r.onBehalfOf!.credential === 'userOAuth')).toBe(true);

    // Stop the gateway, so every log line is written before it is read.
    await gateway.stop();
    const { stderr } = gateway;
    expect(stderr).toContain('used listPets for the first time'); // the log was captured

    const tokensAndSecret = [...new Set(upstream.calls.map((c) => c.token)), as.clientSecret];
    // The state is the caller's own link (in its result, by design); it and the codes go nowhere else.
    const flow = [
      ...links.map((l) => new URL(l).searchParams.get('flow')!),
      ...callbacks.map((b) => b.url.searchParams.get('state')!),
      ...callbacks.map((b) => b.url.searchParams.get('code')!),
    ];
    expect(flow.every(Boolean)).toBe(true);
    expect(tokensAndSecret.length).toBeGreaterThanOrEqual(4);
    const surfaces: Array<[string, string, string[]]> = [
      ['tool results', results.join('\n'), tokensAndSecret],
      ['audit', readFileSync(auditFile, 'utf8'), [...tokensAndSecret, ...flow]],
      ['logs (stderr)', stderr, [...tokensAndSecret, ...flow]],
      ['vault file (encrypted)', readFileSync(join(dir, 'vault.json'), 'utf8'), tokensAndSecret],
    ];
    for (const [where, text, secrets] of surfaces)
      for (const secret of secrets)
        expect(text.includes(secret), `${where} carries a secret (${secret.slice(0, 6)}…)`).toBe(false);
  });
});

describe('per-user OAuth start-up checks', () => {
  const policy = (vault: string) =>
    [
      'version: 1',
      ...(vault ? [vault] : []),
      'credentials:',
      '  pets:',
      '    scheme: petsAuth',
      '    dev:',
      '      userOAuth:',
      '        issuer: https://login.example.test/',
      '        clientId: env:PETS_CLIENT_ID',
      '        clientSecret: env:PETS_CLIENT_SECRET',
      '        redirectUrl: http://127.0.0.1:9/oauth/callback',
    ].join('\n');
  const start = (vault: string, env: NodeJS.ProcessEnv) =>
    startTestGateway({
      spec: spec('http://127.0.0.1:9'),
      baseUrl: 'http://127.0.0.1:9',
      policy: policy(vault),
      env,
    });
  const env = { PETS_CLIENT_ID: 'cid', PETS_CLIENT_SECRET: 'client-secret-value-0001' };

  it('refuses a userOAuth credential without vault.keys, naming the key', async () => {
    await expect(start('', env)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('vault.keys'),
    });
  });

  it('refuses an unset vault key or client secret, naming the reference and never a value', async () => {
    await expect(start('vault: { keys: [env:VAULT_KEY] }', env)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('env:VAULT_KEY'),
    });
    const e = await start('vault: { keys: [env:VAULT_KEY] }', {
      PETS_CLIENT_ID: 'cid',
      VAULT_KEY: 'a vault key of at least thirty-two characters!',
    }).catch((x: unknown) => x as Error);
    expect(e).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('env:PETS_CLIENT_SECRET'),
    });
  });

  it('refuses vault.store: postgres without an audit database', async () => {
    await expect(
      start('vault: { keys: [env:VAULT_KEY], store: postgres }', {
        ...env,
        VAULT_KEY: 'a vault key of at least thirty-two characters!',
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('audit.postgres') });
  });
});
