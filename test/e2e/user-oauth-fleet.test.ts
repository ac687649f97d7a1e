import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliGateway, startCliGateway } from '../support/cli-gateway.js';
import { connectHttp } from '../support/gateway.js';
import { tempTree } from '../support/helpers.js';
import { adminApi, freePort } from '../support/http.js';
import { es256, serveJwks, signJwt } from '../support/jwt.js';
import {
  type OAuthServer,
  openCallback,
  petsOAuthSpec,
  startOAuthServer,
  startProtectedUpstream,
  userOAuthEnv,
  userOAuthPolicy,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { ADMIN_TOKEN } from '../support/shop.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
/** The gateway refreshes a token expiring within 60 s (its default): 70 s tokens enter that window after 10 s. */
const ACCESS_TOKEN_TTL = 70;
const REFRESH_SKEW_MS = 60_000;

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };
/** The parameters of a connect link that are not capabilities (all others are checked as secrets). */
const PUBLIC_LINK_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'code_challenge',
  'code_challenge_method',
]);

/** A Redis key's value as text, whatever its type (DUMP would compress long strings). */
async function redisText(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  if (type === 'string') return (await redis.get(key)) ?? '';
  if (type === 'hash') return JSON.stringify(await redis.hgetall(key));
  if (type === 'set') return (await redis.smembers(key)).join('\n');
  if (type === 'zset') return (await redis.zrange(key, 0, -1)).join('\n');
  if (type === 'list') return (await redis.lrange(key, 0, -1)).join('\n');
  return '';
}

/** An instance with its admin API (each is started with one). */
type Instance = CliGateway & { name: string; adminUrl: string };

/**
 * Three gateway processes (the built CLI over HTTP) sharing one Redis (pending flows, state) and one
 * PostgreSQL database (`vault.store: postgres`, the audit mirrored there), in front of one upstream
 * that accepts only a real oidc-provider's tokens. The tables are shared with other test files, so
 * this run isolates itself by its JWT issuer (every principal is `jwt:<issuer>#<sub>`), its audit
 * instance names and its Redis prefix, and deletes exactly those at the end.
 */
describe('per-user OAuth on three instances sharing PostgreSQL and Redis', () => {
  const run = randomBytes(4).toString('hex');
  const issuer = `https://idp-fleet-${run}.example.test/`;
  const principal = (sub: string) => `jwt:${issuer}#${sub}`;
  const prefix = `fleet-${run}`;
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let jwks: Awaited<ReturnType<typeof serveJwks>>;
  let redis: Redis;
  let db: pg.Pool;
  const fleet: Instance[] = [];
  const clients: Client[] = [];
  const jwts: Record<string, string> = {};
  /** Per person, one MCP client on each instance (index = instance). */
  const on: Record<string, Client[]> = {};
  // What the canary check looks for everywhere: every result, and every flow and token value seen.
  const results: string[] = [];
  const links: string[] = [];
  const callbacks: URL[] = [];
  /** Refresh tokens the authorization server issued, per account (opaque: the value is the jti). */
  const refreshTokens = new Map<string, string[]>();

  beforeAll(async () => {
    const ports = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
    // The redirect URL registered with the server is instance 2's: links minted elsewhere come back there.
    const redirect = `http://127.0.0.1:${ports[1]}/oauth/callback`;
    as = await startOAuthServer([redirect], { accessTokenTtl: ACCESS_TOKEN_TTL });
    const keep = (...args: unknown[]) => {
      const t = args[0] as { jti: string; accountId: string };
      refreshTokens.set(t.accountId, [...(refreshTokens.get(t.accountId) ?? []), t.jti]);
    };
    as.provider.on('refresh_token.issued', keep);
    as.provider.on('refresh_token.saved', keep);
    upstream = await startProtectedUpstream(as);
    const { privateKey, jwk } = await es256();
    jwks = await serveJwks(jwk);
    for (const who of ['alice', 'bob'])
      jwts[who] = await signJwt(privateKey, { issuer, subject: who, scope: 'tools:read', expires: '10m' });
    redis = new Redis(REDIS_URL);
    db = new pg.Pool({ connectionString: PG_URL, max: 2 });

    const env = {
      REDIS_URL,
      PG_URL,
      ADMIN_TOKEN,
      ...userOAuthEnv(as, `a vault key shared by the fleet ${run}, long enough`),
    };
    const starting = ['a', 'b', 'c'].map(async (name, i) => {
      const policy = userOAuthPolicy({
        as,
        redirect,
        jwks: { url: jwks.url, issuer },
        admin: true,
        vaultStore: 'postgres',
        head: [
          `state: { redis: env:REDIS_URL, prefix: ${prefix} }`,
          'audit:',
          '  postgres: env:PG_URL',
          `  instance: ${prefix}-${name}`,
        ],
      });
      const dir = tempTree({ 'spec.json': petsOAuthSpec(upstream.url), 'warden.yaml': policy });
      const gateway = await startCliGateway({
        dir,
        baseUrl: upstream.url,
        port: ports[i]!,
        adminPort: ports[i + 3]!,
        logLevel: 'debug',
        env,
        name: `instance ${name}`,
        timeout: 40_000,
      });
      // By index: instance b (index 1) is the one whose callback the server has registered.
      fleet[i] = Object.assign(gateway, { name, adminUrl: gateway.adminUrl! });
    });
    await Promise.all(starting);
    for (const who of ['alice', 'bob']) {
      on[who] = [];
      for (const inst of fleet) {
        const c = await connectHttp(inst.mcpUrl, { token: jwts[who]!, name: `fleet-${who}` });
        clients.push(c);
        on[who]!.push(c);
      }
    }
  }, 60_000);

  const stop = async () => {
    for (const inst of fleet) await inst?.stop();
  };

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await stop();
    await upstream?.close();
    await as?.close();
    await jwks?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
    if (db) {
      await db.query('DELETE FROM mcp_warden_connections WHERE principal LIKE $1', [`jwt:${issuer}#%`]);
      await db.query('DELETE FROM mcp_warden_audit WHERE instance LIKE $1', [`${prefix}-%`]);
      await db.end();
    }
  });

  const call = async (c: Client) => {
    const r = (await c.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    results.push(textOf(r));
    return r;
  };
  /** Plays the person's browser from the link in CONNECTION_REQUIRED to the gateway's callback. */
  const connect = async (r: CallResult, who: string) => {
    expect(codeOf(r)).toBe('CONNECTION_REQUIRED');
    const link = /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];
    expect(link).toBeDefined();
    links.push(link!);
    // The link (the gateway's connect page) and the callback are on the redirect URL's origin,
    // instance 2's, whichever instance minted the link: the flow is found there through Redis.
    expect(new URL(link!).origin).toBe(new URL(fleet[1]!.mcpUrl).origin);
    const back = await as.authorize(link!, who);
    callbacks.push(back.url);
    expect(back.url.origin).toBe(new URL(fleet[1]!.mcpUrl).origin);
    const page = await openCallback(back);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Connected /petsAuth (scopes: pets:read)');
  };
  const admin = (i: number) => adminApi(fleet[i]!.adminUrl, ADMIN_TOKEN, 'ops');
  const connectionOf = async (who: string, i = 0) => {
    const res = await admin(i)('GET', `/connections?principal=${encodeURIComponent(principal(who))}`);
    expect(res.status).toBe(200);
    return (res.body.connections as Array<{ id: string; expiresAt?: string; scopes: string[] }>)[0];
  };
  /** Waits until the stored access token is inside the gateway's refresh window (no fixed sleep). */
  const untilRefreshDue = async (who: string) => {
    const conn = await connectionOf(who);
    expect(conn?.expiresAt).toBeDefined();
    const due = Date.parse(conn!.expiresAt!) - REFRESH_SKEW_MS;
    await waitFor(() => Date.now() > due + 50, {
      what: `${who}'s access token to enter the refresh window`,
      timeout: (ACCESS_TOKEN_TTL + 5) * 1000,
      interval: 100,
    });
  };

  it('a link minted on instance 1 completes on instance 2; then all three act upstream as alice with the tool scopes only', async () => {
    const [a, b, c] = on.alice!;
    const first = await call(a!);
    expect(upstream.calls).toHaveLength(0);
    await connect(first, 'alice');

    for (const client of [a!, b!, c!]) {
      expect(codeOf(await call(client))).toBe('OK');
      expect(upstream.calls.at(-1)).toMatchObject({ sub: 'alice', scopes: ['pets:read'] });
    }
    expect(await connectionOf('alice', 2)).toMatchObject({ scopes: ['pets:read'] });

    // Bob connects through a link minted on instance 3; alice's connection is not his.
    const bobFirst = await call(on.bob![2]!);
    await connect(bobFirst, 'bob');
    expect(codeOf(await call(on.bob![0]!))).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'bob', scopes: ['pets:read'] });
  });

  it('refreshes an expiring token once for concurrent calls spread over the three instances, unnoticed', async () => {
    const stale = upstream.calls.filter((c) => c.sub === 'alice').at(-1)!.token;
    await untilRefreshDue('alice');
    const refreshesBefore = as.grants('refresh_token');
    const callsBefore = upstream.calls.length;

    const burst = await Promise.all(on.alice!.flatMap((client) => [1, 2, 3].map(() => call(client))));
    expect(burst.map(codeOf)).toEqual(Array(9).fill('OK'));
    expect(as.grants('refresh_token') - refreshesBefore).toBe(1);
    const seen = upstream.calls.slice(callsBefore);
    expect(seen).toHaveLength(9);
    expect(new Set(seen.map((c) => c.sub))).toEqual(new Set(['alice']));
    expect(new Set(seen.map((c) => c.token)).size).toBe(1);
    expect(seen[0]!.token).not.toBe(stale);
    expect(seen[0]!.scopes).toEqual(['pets:read']);
  });

  it('a refresh the authorization server refuses asks alice again on every instance; bob keeps working', async () => {
    // Revoke alice's refresh token at the server (RFC 7009): her grant is gone there.
    const aliceRefresh = refreshTokens.get('alice') ?? [];
    expect(aliceRefresh.length).toBeGreaterThan(0);
    for (const token of new Set(aliceRefresh)) {
      const r = await fetch(`${as.issuer}/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, client_id: as.clientId, client_secret: as.clientSecret }),
      });
      expect(r.ok).toBe(true);
    }
    await untilRefreshDue('alice');
    const refreshesBefore = as.grants('refresh_token');
    const callsBefore = upstream.calls.filter((c) => c.sub === 'alice').length;

    const [a, b, c] = on.alice!;
    const refused = await call(c!);
    expect(codeOf(refused)).toBe('CONNECTION_REQUIRED');
    expect(await connectionOf('alice')).toBeUndefined();
    expect(codeOf(await call(a!))).toBe('CONNECTION_REQUIRED');
    expect(codeOf(await call(b!))).toBe('CONNECTION_REQUIRED');
    expect(upstream.calls.filter((x) => x.sub === 'alice')).toHaveLength(callsBefore);
    expect(as.grants('refresh_token')).toBe(refreshesBefore);

    // Bob's token is older than alice's refreshed one, so it is due too: his calls refresh it (once,
    // whichever instance) and go on as bob with the new token.
    const bobsOld = upstream.calls.filter((x) => x.sub === 'bob').at(-1)!.token;
    for (const client of on.bob!) {
      expect(codeOf(await call(client))).toBe('OK');
      expect(upstream.calls.at(-1)).toMatchObject({ sub: 'bob', scopes: ['pets:read'] });
      expect(upstream.calls.at(-1)!.token).not.toBe(bobsOld);
    }
    expect(as.grants('refresh_token') - refreshesBefore).toBe(1);

    // Alice connects again (a link minted on instance 3) and is served on all three.
    await connect(refused, 'alice');
    for (const client of on.alice!) expect(codeOf(await call(client))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('alice');
  });

  it("revoking alice's connection through instance 1's admin API asks her again on instances 2 and 3", async () => {
    const conn = (await connectionOf('alice'))!;
    const res = await admin(0)('DELETE', `/connections/${encodeURIComponent(conn.id)}`);
    expect(res.status).toBe(200);
    const before = upstream.calls.length;
    expect(codeOf(await call(on.alice![1]!))).toBe('CONNECTION_REQUIRED');
    expect(codeOf(await call(on.alice![2]!))).toBe('CONNECTION_REQUIRED');
    expect(upstream.calls).toHaveLength(before);
    expect(await connectionOf('alice', 2)).toBeUndefined();
    expect(codeOf(await call(on.bob![1]!))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('bob');
  });

  it('no token, state or code reaches a result, an audit row, the vault table, Redis or any log', async () => {
    // Every instance's calls are in PostgreSQL (the mirror inserts in the background).
    const audited = async () =>
      (
        await db.query<{ instance: string; line: string }>(
          'SELECT instance, line FROM mcp_warden_audit WHERE instance LIKE $1 ORDER BY instance, seq',
          [`${prefix}-%`],
        )
      ).rows;
    const onBehalf = (rows: Array<{ line: string }>) =>
      rows.filter((r) => (JSON.parse(r.line) as { onBehalfOf?: unknown }).onBehalfOf !== undefined);
    const upstreamCalls = upstream.calls.length;
    await waitFor(async () => onBehalf(await audited()).length >= upstreamCalls, {
      what: 'every call made on behalf of alice and bob in the PostgreSQL audit',
    });
    // Stop the instances, so every log line and audit record is written before it is read.
    await stop();
    const rows = await audited();
    expect(new Set(rows.map((r) => r.instance))).toEqual(
      new Set(['a', 'b', 'c'].map((n) => `${prefix}-${n}`)),
    );
    expect(
      new Set(
        onBehalf(rows).map(
          (r) => (JSON.parse(r.line) as { onBehalfOf: { principal: string } }).onBehalfOf.principal,
        ),
      ),
    ).toEqual(new Set([principal('alice'), principal('bob')]));
    for (const inst of fleet) expect(inst.stderr).toContain('used listPets for the first time');

    const tokens = [
      ...new Set(upstream.calls.map((c) => c.token)),
      ...new Set([...refreshTokens.values()].flat()),
      as.clientSecret,
    ];
    // Two connects each for alice, one for bob, one refresh each at least: tokens of every kind.
    expect(new Set(upstream.calls.map((c) => c.token)).size).toBeGreaterThanOrEqual(4);
    expect(refreshTokens.get('alice')?.length).toBeGreaterThanOrEqual(2);
    // The link is the caller's own (in its result, by design); it, its state and the codes go nowhere else.
    const flow = [
      ...links.flatMap((l) =>
        [...new URL(l).searchParams].filter(([k]) => !PUBLIC_LINK_PARAMS.has(k)).map(([, v]) => v),
      ),
      ...callbacks.flatMap((u) => [u.searchParams.get('state')!, u.searchParams.get('code')!]),
    ];
    expect(flow.length).toBeGreaterThanOrEqual(6);
    const vaultRows = await db.query('SELECT * FROM mcp_warden_connections WHERE principal LIKE $1', [
      `jwt:${issuer}#%`,
    ]);
    const redisKeys = await redis.keys(`${prefix}:*`);
    const inRedis = [...redisKeys, ...(await Promise.all(redisKeys.map((k) => redisText(redis, k))))];
    const surfaces: Array<[string, string, string[]]> = [
      ['tool results', results.join('\n'), tokens],
      ['audit (PostgreSQL)', JSON.stringify(rows), [...tokens, ...flow]],
      ['vault table (encrypted)', JSON.stringify(vaultRows.rows), [...tokens, ...flow]],
      ['Redis', inRedis.join('\n'), [...tokens, ...flow]],
      ...fleet.flatMap(
        (inst): Array<[string, string, string[]]> => [
          [`audit file of ${inst.name}`, readFileSync(inst.auditFile, 'utf8'), [...tokens, ...flow]],
          [`log of ${inst.name}`, inst.stderr, [...tokens, ...flow]],
        ],
      ),
    ];
    for (const [where, text, secrets] of surfaces)
      for (const secret of secrets)
        expect(text.includes(secret), `${where} carries a secret (${secret.slice(0, 6)}…)`).toBe(false);
  });
});
