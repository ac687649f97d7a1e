import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tool } from '../../src/model/catalog.js';
import type { CallerIdentity, ConnectRequest, TokenOutcome, TokenVault } from '../../src/model/connection.js';
import { OAUTH_CONNECT_PATH } from '../../src/server/http.js';
import { oauthPages } from '../../src/server/oauth-pages.js';
import { PgVault } from '../../src/state/pg-vault.js';
import { FileVault, vaultKey } from '../../src/state/vault.js';
import { CONNECT_PATH, UserOAuth } from '../../src/upstream/user-oauth.js';
import { catalogOf, jsonOk, tempTree } from '../support/helpers.js';
import { type Listening, listen } from '../support/http.js';
import {
  approveConnect,
  type OAuthServer,
  openConnectPage,
  startOAuthServer,
  startProtectedUpstream,
} from '../support/oauth-server.js';

/** The gateway's callback: its pages are served (below) on a real port, for the played browser. */
let CALLBACK = '';

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
  let pages: Listening;
  /** The flow service the pages server answers for (the latest `gateway`). */
  let current: UserOAuth | undefined;

  const gateway = (vault: TokenVault) => {
    current = new UserOAuth({
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
    return current;
  };
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

  /** Plays the person's browser from the link to the callback, and hands the callback to the flow. */
  const connectAs = async (oauth: UserOAuth, link: ConnectRequest, user: string) => {
    const back = await as.authorize(link.url, user);
    return oauth.callback(back.url, back.cookie);
  };

  beforeAll(async () => {
    pages = await listen(async (req, res) => {
      const page = await oauthPages(current!)(req);
      res.writeHead(page.status, page.headers).end(page.body);
    });
    CALLBACK = `${pages.url}/oauth/callback`;
    as = await startOAuthServer([CALLBACK, `${pages.url}/other/callback`]);
    upstream = await startProtectedUpstream(as);
    const catalog = await catalogOf(spec);
    list = catalog.tools.find((t) => t.name === 'listPets')!;
    add = catalog.tools.find((t) => t.name === 'addPet')!;
    dir = tempTree({});
  });
  afterAll(async () => {
    await upstream?.close();
    await as?.close();
    await pages?.close();
  });

  it('connects two callers once each; each acts upstream as itself with only the scopes its tools need', async () => {
    const oauth = gateway(openVault());
    expect(oauth.handles(list)).toBe(true);
    const alice = caller('alice');
    const bob = caller('bob');

    const aLink = connectOf(await oauth.tokenFor(alice, list));
    // The link is the gateway's own page, at the redirect URL's origin; the authorization URL comes
    // only from approving it.
    const link = new URL(aLink.url);
    expect(link.origin + link.pathname).toBe(new URL(CONNECT_PATH, CALLBACK).href);
    // The path the transport routes to the pages is the one the links use.
    expect(OAUTH_CONNECT_PATH).toBe(CONNECT_PATH);
    expect([...link.searchParams.keys()]).toEqual(['flow']);
    const approved = await approveConnect(await openConnectPage(aLink.url));
    const url = new URL(approved.location!);
    expect(url.origin).toBe(as.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('scope')).toBe('pets:read');
    expect(url.searchParams.get('redirect_uri')).toBe(CALLBACK);
    const back = await as.consentAt(url.href, 'alice');
    expect(await oauth.callback(back, approved.cookie)).toMatchObject({ ok: true, scopes: ['pets:read'] });

    const bLink = connectOf(await oauth.tokenFor(bob, list));
    expect(await connectAs(oauth, bLink, 'bob')).toMatchObject({ ok: true });

    const a = await callAs(tokenOf(await oauth.tokenFor(alice, list)));
    expect(a).toMatchObject({ sub: 'alice', scopes: ['pets:read'] });
    const b = await callAs(tokenOf(await oauth.tokenFor(bob, list)));
    expect(b).toMatchObject({ sub: 'bob', scopes: ['pets:read'] });

    // Incremental: a tool needing more asks for the union, never every scope of the scheme.
    const more = connectOf(await oauth.tokenFor(alice, add));
    expect(more.scopes).toEqual(['pets:read', 'pets:write']);
    await connectAs(oauth, more, 'alice');
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
    await connectAs(oauth, connectOf(await oauth.tokenFor(carol, list)), 'carol');
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
      current = instances[0];
      await connectAs(instances[0]!, connectOf(await instances[0]!.tokenFor(who, list)), 'pat');
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
    await connectAs(oauth, connectOf(await oauth.tokenFor(dan, list)), 'dan');
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

  describe('per-client consent', () => {
    it('asks again for a client the person has not approved, and records each approved client', async () => {
      const oauth = gateway(openVault());
      const jo = caller('jo', 'client-a');
      await connectAs(oauth, connectOf(await oauth.tokenFor(jo, list)), 'jo');
      expect(tokenOf(await oauth.tokenFor(jo, list))).toBeTruthy();
      // The same person through another client: a new flow naming that client.
      const other = caller('jo', 'client-b');
      const link = connectOf(await oauth.tokenFor(other, list));
      const page = await openConnectPage(link.url);
      expect(page.html).toContain('client-b');
      expect(await connectAs(oauth, link, 'jo')).toMatchObject({ ok: true });
      expect(tokenOf(await oauth.tokenFor(other, list))).toBeTruthy();
      expect(tokenOf(await oauth.tokenFor(jo, list))).toBeTruthy();
      expect((await oauth.list({ principal: jo.principal.id }))[0]!.clients).toEqual([
        'client-a',
        'client-b',
      ]);
      // A caller without a client (a local stdio client) is one client of its own, `''`.
      const bare: CallerIdentity = { principal: jo.principal };
      const bareLink = connectOf(await oauth.tokenFor(bare, list));
      expect((await openConnectPage(bareLink.url)).html).toContain('a client without a name');
      await connectAs(oauth, bareLink, 'jo');
      expect(tokenOf(await oauth.tokenFor(bare, list))).toBeTruthy();
      expect((await oauth.list({ principal: jo.principal.id }))[0]!.clients).toEqual([
        '',
        'client-a',
        'client-b',
      ]);
    });

    it('a connection stored before clients were recorded asks each client once', async () => {
      const vault = openVault();
      const oauth = gateway(vault);
      const kim = caller('kim');
      await connectAs(oauth, connectOf(await oauth.tokenFor(kim, list)), 'kim');
      const { clients: _dropped, ...legacy } = (await vault.get(kim.principal.id, '/petsAuth'))!;
      await vault.put(legacy);
      expect((await oauth.list({ principal: kim.principal.id }))[0]!.clients).toBeUndefined();
      connectOf(await oauth.tokenFor(kim, list));
    });

    it('a refresh keeps the approved clients', async () => {
      const oauth = gateway(openVault());
      const lee = caller('lee');
      await connectAs(oauth, connectOf(await oauth.tokenFor(lee, list)), 'lee');
      const saved = clock;
      clock += 2 * 3600_000;
      try {
        tokenOf(await oauth.tokenFor(lee, list));
      } finally {
        clock = saved;
      }
      expect((await oauth.list({ principal: lee.principal.id }))[0]!.clients).toEqual(['agent-app']);
    });
  });

  describe('the connect page', () => {
    it('names the principal, client, upstream, scopes and expiry, escaped, and reveals no state', async () => {
      const oauth = gateway(openVault());
      const who = caller('<img src=x onerror=alert(1)>', '"><script>alert(2)</script>');
      const link = connectOf(await oauth.tokenFor(who, list));
      const page = await openConnectPage(link.url);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toBe(
        `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${as.issuer}; frame-ancestors 'none'; base-uri 'none'`,
      );
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      // same-origin, not no-referrer: under no-referrer the form's POST carries `Origin: null`.
      expect(page.headers.get('referrer-policy')).toBe('same-origin');
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
      expect(page.html).not.toContain('<img');
      expect(page.html).not.toContain('<script');
      expect(page.html).toContain('&#60;img src&#61;x onerror&#61;alert(1)&#62;');
      expect(page.html).toContain('security scheme petsAuth');
      expect(page.html).toContain('pets:read');
      expect(page.html).toContain(new Date(link.expiresAt).toISOString());
      expect(page.html).toContain('If you did not ask your agent for this, close this page.');
      expect(page.html).not.toContain(`${as.issuer}/auth`);
      expect(page.html).not.toContain('code_challenge');
    });

    it('refuses an approval that is cross-site, has no Origin or Sec-Fetch-Site, or a wrong token', async () => {
      const oauth = gateway(openVault());
      const mo = caller('mo');
      const link = connectOf(await oauth.tokenFor(mo, list));
      const page = await openConnectPage(link.url);
      for (const o of [
        { origin: 'https://evil.example.test' },
        { origin: 'null' },
        { origin: null },
        { origin: null, fetchSite: 'cross-site' },
        { origin: null, fetchSite: 'same-site' },
        { origin: 'null', fetchSite: 'cross-site' },
        { origin: 'https://evil.example.test', fetchSite: 'same-origin' },
        { csrf: 'not-the-token' },
      ]) {
        const r = await approveConnect(page, o);
        expect(r.status, JSON.stringify(o)).toBe(403);
        expect(r.text).toMatch(/^Refused: /);
        expect(r.location).toBeUndefined();
        expect(r.setCookies).toEqual([]);
      }
      // A form larger than the page ever sends (4 KiB) is not read.
      const big = await fetch(page.form!.action, {
        method: 'POST',
        headers: { origin: page.link.origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: `flow=${page.form!.flow}&csrf=${page.form!.csrf}&action=approve&pad=${'x'.repeat(5000)}`,
      });
      expect(big.status).toBe(413);
      expect(big.headers.getSetCookie()).toEqual([]);
      // Without an Origin (or with `null`), `Sec-Fetch-Site: same-origin` is a same-origin request.
      const ok = await approveConnect(page, { origin: 'null', fetchSite: 'same-origin' });
      expect(ok.status).toBe(303);
      // Approved once: a second approval of the same page finds nothing.
      expect((await approveConnect(page)).status).toBe(400);
      expect((await openConnectPage(link.url)).status).toBe(400);
    });

    it('sets a binding cookie that is HttpOnly, SameSite=Lax, for the flow lifetime, carrying no state', async () => {
      const oauth = gateway(openVault());
      const link = connectOf(await oauth.tokenFor(caller('ned'), list));
      const r = await approveConnect(await openConnectPage(link.url));
      const state = new URL(r.location!).searchParams.get('state')!;
      expect(r.setCookies).toHaveLength(1);
      const [cookie] = r.setCookies;
      expect(cookie).toMatch(/^mcp-warden-connect=[\w-]+; Max-Age=(\d+); Path=\/; HttpOnly; SameSite=Lax$/);
      const maxAge = Number(/Max-Age=(\d+)/.exec(cookie!)![1]);
      expect(maxAge).toBeGreaterThan(550);
      expect(maxAge).toBeLessThanOrEqual(600);
      expect(cookie).not.toContain(state);
      expect(cookie).not.toContain(new URL(link.url).searchParams.get('flow')!);
    });

    it('names the cookie __Host- and marks it Secure when the redirect URL is https', async () => {
      const oauth = new UserOAuth({
        upstreams: [
          {
            scheme: 'petsAuth',
            authorizationUrl: 'https://login.example.test/authorize',
            tokenUrl: 'https://login.example.test/token',
            clientId: 'cid',
            redirectUri: 'https://mcp.example.test/oauth/callback',
          },
        ],
        vault: openVault(),
      });
      const link = connectOf(await oauth.tokenFor(caller('ola'), list));
      expect(link.url).toMatch(/^https:\/\/mcp\.example\.test\/oauth\/connect\?flow=/);
      const view = (await oauth.connectView(new URL(link.url).searchParams.get('flow')!))!;
      const r = await oauth.consent({
        flow: new URL(link.url).searchParams.get('flow')!,
        csrf: view.csrf,
        approve: true,
        origin: 'https://mcp.example.test',
      });
      expect(r).toMatchObject({
        ok: true,
        approved: true,
        cookie: { name: '__Host-mcp-warden-connect', secure: true },
      });
      // Another origin, even a sibling subdomain, is cross-site for the approval.
      const link2 = connectOf(await oauth.tokenFor(caller('ola2'), list));
      const flow2 = new URL(link2.url).searchParams.get('flow')!;
      const view2 = (await oauth.connectView(flow2))!;
      expect(
        await oauth.consent({
          flow: flow2,
          csrf: view2.csrf,
          approve: true,
          origin: 'https://x.mcp.example.test',
        }),
      ).toMatchObject({ ok: false, status: 403 });
    });

    it('Cancel drops the flow: nothing can be approved or stored with it afterwards', async () => {
      const oauth = gateway(openVault());
      const pia = caller('pia');
      const link = connectOf(await oauth.tokenFor(pia, list));
      const page = await openConnectPage(link.url);
      const r = await approveConnect(page, { action: 'cancel' });
      expect(r.status).toBe(200);
      expect(r.text).toContain('nothing was connected');
      expect((await approveConnect(page)).status).toBe(400);
      expect(await oauth.list({ principal: pia.principal.id })).toEqual([]);
    });
  });

  describe('attacks on the callback are refused', () => {
    it('a replayed callback', async () => {
      const oauth = gateway(openVault());
      const link = connectOf(await oauth.tokenFor(caller('erin'), list));
      const back = await as.authorize(link.url, 'erin');
      expect((await oauth.callback(back.url, back.cookie)).ok).toBe(true);
      expect(await oauth.callback(back.url, back.cookie)).toMatchObject({ ok: false, status: 400 });
    });

    it('a callback at another redirect URI', async () => {
      const oauth = gateway(openVault());
      const link = connectOf(await oauth.tokenFor(caller('fay'), list));
      const back = await as.authorize(link.url, 'fay');
      const moved = new URL(`${pages.url}/other/callback${back.url.search}`);
      expect(await oauth.callback(moved, back.cookie)).toMatchObject({ ok: false, status: 400 });
      expect(await oauth.list({ principal: caller('fay').principal.id })).toEqual([]);
    });

    it("a code injected by another user into a victim's callback (the victim's state and cookie)", async () => {
      const oauth = gateway(openVault());
      const victim = caller('gus');
      const attacker = caller('mallory');
      const victimApproved = await approveConnect(
        await openConnectPage(connectOf(await oauth.tokenFor(victim, list)).url),
      );
      const attackerBack = await as.authorize(connectOf(await oauth.tokenFor(attacker, list)).url, 'mallory');
      // The attacker's code with the victim's state: the victim's PKCE verifier does not match it.
      const injected = new URL(CALLBACK);
      injected.searchParams.set('code', attackerBack.url.searchParams.get('code')!);
      injected.searchParams.set('state', new URL(victimApproved.location!).searchParams.get('state')!);
      injected.searchParams.set('iss', attackerBack.url.searchParams.get('iss')!);
      expect(await oauth.callback(injected, victimApproved.cookie)).toMatchObject({
        ok: false,
        reason: expect.stringContaining('refused by the authorization server'),
      });
      expect(await oauth.list({ principal: victim.principal.id })).toEqual([]);
    });

    it("an attacker's approved flow completed in the victim's browser (no cookie, or the victim's own)", async () => {
      const oauth = gateway(openVault());
      const attacker = caller('mallory-2');
      const victim = caller('quinn');
      // The attacker approves their own flow in their own browser and sends the victim the
      // authorization URL; the victim's browser, signed in at the server, comes back with its code.
      const victimApproved = await approveConnect(
        await openConnectPage(connectOf(await oauth.tokenFor(victim, list)).url),
      );
      for (const cookie of [undefined, victimApproved.cookie, 'mcp-warden-connect=forged']) {
        const attackerApproved = await approveConnect(
          await openConnectPage(connectOf(await oauth.tokenFor(attacker, list)).url),
        );
        const inVictimBrowser = await as.consentAt(attackerApproved.location!, 'quinn');
        expect(await oauth.callback(inVictimBrowser, cookie)).toMatchObject({
          ok: false,
          status: 400,
          reason: expect.stringContaining('did not approve this connection'),
        });
        // The state was consumed by the refusal: even the attacker's own cookie cannot use it now.
        expect(await oauth.callback(inVictimBrowser, attackerApproved.cookie)).toMatchObject({
          ok: false,
          reason: expect.stringContaining('unknown, already used or expired'),
        });
      }
      expect(await oauth.list({ principal: attacker.principal.id })).toEqual([]);
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
      // A flow for client-a completed in a browser bound to client-b's flow: refused.
      const forB = await approveConnect(
        await openConnectPage(connectOf(await oauth.tokenFor(caller('hal', 'client-b'), list)).url),
      );
      const forA = await approveConnect(await openConnectPage(link.url));
      const back = await as.consentAt(forA.location!, 'hal');
      expect(await oauth.callback(back, forB.cookie)).toMatchObject({ ok: false, status: 400 });
      expect(await oauth.list({ principal: hal.principal.id })).toEqual([]);
    });
  });

  it('keeps no token in the clear at rest', () => {
    const file = readFileSync(join(dir, 'vault.json'), 'utf8');
    expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) expect(file).not.toContain(s);
  });
});
