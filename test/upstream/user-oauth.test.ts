import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tool } from '../../src/model/catalog.js';
import type { CallerIdentity, TokenOutcome, TokenVault } from '../../src/model/connection.js';
import { PgVault } from '../../src/state/pg-vault.js';
import { FileVault, vaultKey } from '../../src/state/vault.js';
import { UserOAuth } from '../../src/upstream/user-oauth.js';
import { catalogOf, jsonOk, tempTree } from '../support/helpers.js';
import { type OAuthServer, startOAuthServer, startProtectedUpstream } from '../support/oauth-server.js';

const CALLBACK = 'http://127.0.0.1:9/oauth/callback';

const spec = {
  openapi: '3.0.3',
  info: { title: 'Pets', version: '1' },
  servers: [{ url: 'http://127.0.0.1:9' }],
  components: {
    securitySchemes: {
      petsAuth: {
        type: 'oauth2',
        flows: {
          authorizationCode: {
            authorizationUrl: 'http://127.0.0.1:9/auth',
            tokenUrl: 'http://127.0.0.1:9/token',
            scopes: { 'pets:read': 'read', 'pets:write': 'write', 'pets:admin': 'admin' },
          },
        },
      },
    },
  },
  paths: {
    '/pets': {
      get: { operationId: 'listPets', security: [{ petsAuth: ['pets:read'] }], responses: jsonOk() },
      post: {
        operationId: 'addPet',
        security: [{ petsAuth: ['pets:read', 'pets:write'] }],
        responses: jsonOk(),
      },
    },
  },
};

const caller = (sub: string, client = 'agent-app'): CallerIdentity => ({
  principal: { id: `jwt:https://idp.example.test/#${sub}`, scopes: [], via: 'jwt' },
  client,
});

function connectOf(o: TokenOutcome) {
  if (!('connect' in o)) throw new Error('expected a connect link');
  return o.connect;
}
function tokenOf(o: TokenOutcome) {
  if (!('token' in o)) throw new Error(`expected a token, got a connect link for ${o.connect.scopes}`);
  return o.token;
}

describe('per-user delegated OAuth against a real authorization server', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let list: Tool;
  let add: Tool;
  const secrets: string[] = [];
  let clock = Date.now();
  let dir: string;

  const gateway = (vault: TokenVault) =>
    new UserOAuth({
      upstreams: [
        {
          scheme: 'petsAuth',
          issuer: as.issuer,
          clientId: as.clientId,
          clientSecret: as.clientSecret,
          redirectUri: CALLBACK,
        },
      ],
      vault,
      allowInsecure: true,
      onSecret: (v) => secrets.push(...v),
      now: () => clock,
    });
  const openVault = () =>
    FileVault.open({
      file: join(dir, 'vault.json'),
      keyring: [vaultKey('k'.repeat(40))],
      onSecret: (v) => secrets.push(...v),
    });

  /** Calls the upstream as the tool would, with the caller's token. */
  const callAs = async (token: string) => {
    const r = await fetch(`${upstream.url}/pets`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    return upstream.calls.at(-1)!;
  };

  beforeAll(async () => {
    as = await startOAuthServer([CALLBACK, 'http://127.0.0.1:9/other/callback']);
    upstream = await startProtectedUpstream(as);
    const catalog = await catalogOf(spec);
    list = catalog.tools.find((t) => t.name === 'listPets')!;
    add = catalog.tools.find((t) => t.name === 'addPet')!;
    dir = tempTree({});
  });
  afterAll(async () => {
    await upstream?.close();
    await as?.close();
  });

  it('connects two callers once each; each acts upstream as itself with only the scopes its tools need', async () => {
    const oauth = gateway(openVault());
    expect(oauth.handles(list)).toBe(true);
    const alice = caller('alice');
    const bob = caller('bob');

    const aLink = connectOf(await oauth.tokenFor(alice, list));
    const url = new URL(aLink.url);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('scope')).toBe('pets:read');
    expect(url.searchParams.get('redirect_uri')).toBe(CALLBACK);
    const bLink = connectOf(await oauth.tokenFor(bob, list));

    expect(await oauth.callback(await as.authorize(aLink.url, 'alice'))).toMatchObject({
      ok: true,
      scopes: ['pets:read'],
    });
    expect(await oauth.callback(await as.authorize(bLink.url, 'bob'))).toMatchObject({ ok: true });

    const a = await callAs(tokenOf(await oauth.tokenFor(alice, list)));
    expect(a).toMatchObject({ sub: 'alice', scopes: ['pets:read'] });
    const b = await callAs(tokenOf(await oauth.tokenFor(bob, list)));
    expect(b).toMatchObject({ sub: 'bob', scopes: ['pets:read'] });

    // Incremental: a tool needing more asks for the union, never every scope of the scheme.
    const more = connectOf(await oauth.tokenFor(alice, add));
    expect(more.scopes).toEqual(['pets:read', 'pets:write']);
    await oauth.callback(await as.authorize(more.url, 'alice'));
    const a2 = await callAs(tokenOf(await oauth.tokenFor(alice, add)));
    expect(a2.sub).toBe('alice');
    expect(a2.scopes.sort()).toEqual(['pets:read', 'pets:write']);
    expect(a2.scopes).not.toContain('pets:admin');

    // Revoking one asks only that one again.
    expect(await oauth.revoke(alice.principal.id)).toBe(1);
    connectOf(await oauth.tokenFor(alice, list));
    expect((await callAs(tokenOf(await oauth.tokenFor(bob, list)))).sub).toBe('bob');

    const listed = await oauth.list();
    expect(listed.map((c) => c.principal)).toEqual([bob.principal.id]);
    expect(JSON.stringify(listed)).not.toContain(b.token);
  });

  it('refreshes an expired access token silently, once, even with concurrent calls', async () => {
    const oauth = gateway(openVault());
    const carol = caller('carol');
    await oauth.callback(await as.authorize(connectOf(await oauth.tokenFor(carol, list)).url, 'carol'));
    const first = tokenOf(await oauth.tokenFor(carol, list));
    const saved = clock;
    clock += 2 * 3600_000;
    try {
      const [t1, t2, t3] = await Promise.all(
        [1, 2, 3].map(async () => tokenOf(await oauth.tokenFor(carol, list))),
      );
      expect(t1).not.toBe(first);
      expect(new Set([t1, t2, t3]).size).toBe(1);
      expect((await callAs(t1!)).sub).toBe('carol');
    } finally {
      clock = saved;
    }
  });

  it('with three instances sharing PostgreSQL, an expired token is refreshed once', async () => {
    const url = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
    const vaults = await Promise.all(
      [1, 2, 3].map(() => PgVault.open({ url, keyring: [vaultKey('p'.repeat(40))] })),
    );
    const instances = vaults.map((v) => gateway(v));
    const who = caller(`pat-${Date.now()}`);
    let refreshes = 0;
    let counting = true;
    const count = (...args: unknown[]) => {
      const ctx = args[0] as { oidc: { params?: { grant_type?: unknown } } };
      if (counting && ctx.oidc.params?.grant_type === 'refresh_token') refreshes++;
    };
    as.provider.on('grant.success', count);
    try {
      await instances[0]!.callback(
        await as.authorize(connectOf(await instances[0]!.tokenFor(who, list)).url, 'pat'),
      );
      const saved = clock;
      clock += 2 * 3600_000;
      try {
        const tokens = await Promise.all(
          instances.flatMap((g) => [1, 2].map(async () => tokenOf(await g.tokenFor(who, list)))),
        );
        expect(refreshes).toBe(1);
        expect(new Set(tokens).size).toBe(1);
        expect((await callAs(tokens[0]!)).sub).toBe('pat');
      } finally {
        clock = saved;
      }
    } finally {
      // oidc-provider's types declare `on` only: stop counting instead of removing the listener.
      counting = false;
      await instances[0]!.revoke(who.principal.id);
      await Promise.all(vaults.map((v) => v.close()));
    }
  });

  it('a revoked refresh token deletes the connection and asks the user again', async () => {
    const oauth = gateway(openVault());
    const dan = caller('dan');
    await oauth.callback(await as.authorize(connectOf(await oauth.tokenFor(dan, list)).url, 'dan'));
    // Revoke the grant at the authorization server: the refresh token stops working.
    const vault = openVault();
    const stored = (await vault.get(dan.principal.id, '/petsAuth'))!;
    const r = await fetch(`${as.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: stored.refreshToken!,
        client_id: as.clientId,
        client_secret: as.clientSecret,
      }),
    });
    expect(r.ok).toBe(true);
    const saved = clock;
    clock += 2 * 3600_000;
    try {
      connectOf(await oauth.tokenFor(dan, list));
      expect(await oauth.list({ principal: dan.principal.id })).toEqual([]);
    } finally {
      clock = saved;
    }
  });

  describe('attacks on the callback are refused', () => {
    it('a replayed callback', async () => {
      const oauth = gateway(openVault());
      const link = connectOf(await oauth.tokenFor(caller('erin'), list));
      const back = await as.authorize(link.url, 'erin');
      expect((await oauth.callback(back)).ok).toBe(true);
      expect(await oauth.callback(back)).toMatchObject({ ok: false, status: 400 });
    });

    it('a callback at another redirect URI', async () => {
      const oauth = gateway(openVault());
      const link = connectOf(await oauth.tokenFor(caller('fay'), list));
      const back = await as.authorize(link.url, 'fay');
      const moved = new URL(`http://127.0.0.1:9/other/callback${back.search}`);
      expect(await oauth.callback(moved)).toMatchObject({ ok: false });
      expect(await oauth.list({ principal: caller('fay').principal.id })).toEqual([]);
    });

    it("a code injected by another user into a victim's callback", async () => {
      const oauth = gateway(openVault());
      const victim = caller('gus');
      const attacker = caller('mallory');
      const victimLink = connectOf(await oauth.tokenFor(victim, list));
      const attackerLink = connectOf(await oauth.tokenFor(attacker, list));
      const attackerBack = await as.authorize(attackerLink.url, 'mallory');
      // The attacker's code with the victim's state: the victim's PKCE verifier does not match it.
      const injected = new URL(CALLBACK);
      injected.searchParams.set('code', attackerBack.searchParams.get('code')!);
      injected.searchParams.set('state', new URL(victimLink.url).searchParams.get('state')!);
      injected.searchParams.set('iss', attackerBack.searchParams.get('iss')!);
      expect(await oauth.callback(injected)).toMatchObject({ ok: false });
      expect(await oauth.list({ principal: victim.principal.id })).toEqual([]);
    });

    it('a state minted for another caller or client stores only for the flow that minted it', async () => {
      const oauth = gateway(openVault());
      const hal = caller('hal', 'client-a');
      const link = connectOf(await oauth.tokenFor(hal, list));
      expect(oauth.pendingFor(link.id, hal)).toEqual({ upstream: '/petsAuth' });
      expect(oauth.pendingFor(link.id, caller('hal', 'client-b'))).toBeUndefined();
      expect(oauth.pendingFor(link.id, caller('ivy', 'client-a'))).toBeUndefined();
      const forged = new URL(CALLBACK);
      forged.searchParams.set('code', 'x');
      forged.searchParams.set('state', 'not-a-state-anyone-minted');
      expect(await oauth.callback(forged)).toMatchObject({ ok: false, status: 400 });
    });
  });

  it('keeps no token in the clear at rest', () => {
    const file = readFileSync(join(dir, 'vault.json'), 'utf8');
    expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) expect(file).not.toContain(s);
  });
});
