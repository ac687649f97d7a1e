import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliGateway } from '../support/cli-gateway.js';
import { connectHttp } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ISSUER, signJwt } from '../support/jwt.js';
import {
  approveConnect,
  type BrowserCallback,
  type ConnectAnswer,
  type OAuthServer,
  openCallback,
  openConnectPage,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { ADMIN_TOKEN } from '../support/shop.js';
import { startUserOAuthStack, type UserOAuthStack } from '../support/user-oauth.js';

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };

/**
 * The attacks on per-user OAuth's connect flow, each through a running gateway (the built CLI over
 * HTTP, JWT callers, a real oidc-provider, an upstream accepting only its tokens): account-linking
 * CSRF with the attacker's own link, a state from another caller or another client, a replayed
 * callback, a callback at another redirect URI, an injected code, a callback without the binding
 * cookie. Each is refused with its status and message, stores nothing (the next calls still ask to
 * connect; the admin API lists no connection), and no token, state, code or link handle reaches an
 * output, the audit or a log line.
 */
describe('per-user OAuth: attacks through a running gateway are refused', () => {
  let stack: UserOAuthStack;
  let as: OAuthServer;
  let upstream: UserOAuthStack['upstream'];
  let gateway: CliGateway;
  let origin: string;
  let mcpUrl: string;
  let adminUrl: string;
  let dir: string;
  const clients: Client[] = [];
  const tokens: Record<string, string> = {};
  /** Everything the gateway answered: tool results and every page the browser was shown. */
  const outputs: string[] = [];
  /** The connect pages (they carry their own link's handle in the form, by design). */
  const connectPages: string[] = [];
  const handles: string[] = [];
  const states: string[] = [];
  const codes: string[] = [];

  beforeAll(async () => {
    stack = await startUserOAuthStack({ admin: true });
    ({ as, upstream, gateway, dir } = stack);
    origin = gateway.origin;
    const privateKey = stack.key;
    for (const who of ['alice', 'bob', 'mallory'])
      tokens[who] = await signJwt(privateKey, { subject: who, scope: 'tools:read' });
    // One person through two OAuth clients of the identity provider (RFC 9068 client_id; OIDC azp).
    for (const [key, claims] of [
      ['carol@app-1', { client_id: 'app-1' }],
      ['carol@app-2', { client_id: 'app-2' }],
      ['carol@azp-1', { azp: 'app-1' }],
    ] as const)
      tokens[key] = await signJwt(privateKey, { subject: 'carol', scope: 'tools:read', claims });
    mcpUrl = gateway.mcpUrl;
    adminUrl = gateway.adminUrl!;
  }, 40_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await stack?.close();
  });

  // 2026-07-28 clients name themselves in every request, so the stateless HTTP gateway knows the client.
  const client = async (who: string, name = 'agent-x') => {
    const c = await connectHttp(mcpUrl, { token: tokens[who]!, name, era: { pin: '2026-07-28' } });
    clients.push(c);
    return c;
  };
  const call = async (c: Client) => {
    const r = (await c.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    outputs.push(textOf(r));
    return r;
  };
  /** The connect link a caller's call answers with. */
  const linkFor = async (c: Client) => {
    const r = await call(c);
    expect(codeOf(r)).toBe('CONNECTION_REQUIRED');
    const link = /open this link and approve access: (\S+)/.exec(textOf(r))![1]!;
    handles.push(new URL(link).searchParams.get('flow')!);
    return link;
  };
  const page = async (link: string) => {
    const p = await openConnectPage(link);
    outputs.push(p.html);
    connectPages.push(p.html);
    return p;
  };
  const approve = async (link: string, o: Parameters<typeof approveConnect>[1] = {}) => {
    const a = await approveConnect(await page(link), o);
    outputs.push(a.text);
    if (a.location) states.push(new URL(a.location).searchParams.get('state')!);
    return a;
  };
  /** A browser that approved `a` signs in at the server as `user`: the callback it is sent back to. */
  const consent = async (a: ConnectAnswer, user: string): Promise<BrowserCallback> => {
    const url = await as.consentAt(a.location!, user);
    codes.push(url.searchParams.get('code')!);
    return { url, cookie: a.cookie! };
  };
  const callback = async (back: BrowserCallback, o: Parameters<typeof openCallback>[1] = {}) => {
    const r = await openCallback(back, o);
    const text = await r.text();
    outputs.push(text);
    return { status: r.status, text };
  };
  const admin = () => adminApi(adminUrl, ADMIN_TOKEN, 'ops');
  const listed = async () => {
    const r = await admin()('GET', '/connections');
    expect(r.status).toBe(200);
    return r.body.connections as Array<{ id: string; principal: string; clients?: string[] }>;
  };
  /** Nothing was stored: no connection, and each named caller's next call still asks to connect. */
  const nothingStored = async (...callers: Client[]) => {
    expect(await listed()).toEqual([]);
    for (const c of callers) expect(codeOf(await call(c))).toBe('CONNECTION_REQUIRED');
    expect(upstream.calls).toHaveLength(0);
  };

  it("a) the attacker's own link opened by the victim: the page names the attacker; nothing happens without approval; cross-site approvals are refused", async () => {
    const mallory = await client('mallory');
    const alice = await client('alice');
    const link = await linkFor(mallory);
    // The link is the gateway's own page, not the authorization server.
    expect(new URL(link).origin).toBe(origin);
    const shown = await page(link);
    expect(shown.status).toBe(200);
    expect(shown.html).toContain(`jwt:${ISSUER}#mallory`);
    expect(shown.html).toContain('If you did not ask your agent for this, close this page.');
    expect(shown.html).not.toContain(`${as.issuer}/auth`);
    // Opened, not approved: nothing.
    await nothingStored(alice, mallory);

    // A page elsewhere posting the form for the victim's browser: foreign Origin, none at all,
    // an opaque one from a cross-site context, or the right origin with a guessed token.
    for (const o of [
      { origin: 'https://evil.example.test' },
      { origin: null },
      { origin: 'null', fetchSite: 'cross-site' },
      { csrf: 'guessed-token' },
    ]) {
      const r = await approve(link, o);
      expect(r.status, JSON.stringify(o)).toBe(403);
      expect(r.text).toMatch(/^Refused: /);
      expect(r.location).toBeUndefined();
      expect(r.setCookies).toEqual([]);
    }
    await nothingStored(alice, mallory);

    // The classic account-linking CSRF: Mallory approves her own flow in her own browser and sends
    // Alice the authorization URL; Alice's browser, signed in there, comes back with Alice's code,
    // but without the cookie Mallory's browser holds.
    const approved = await approve(link);
    expect(approved.status).toBe(303);
    const inAlicesBrowser = await consent(approved, 'alice');
    const r = await callback(inAlicesBrowser, { cookie: null });
    expect(r.status).toBe(400);
    expect(r.text).toContain('This browser did not approve this connection');
    // Refused once, the state is spent: a forged cookie afterwards finds nothing either.
    const forged = await callback(inAlicesBrowser, { cookie: 'mcp-warden-connect=forged-value' });
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('unknown, already used or expired');
    await nothingStored(alice, mallory);
  });

  it("b) a callback with another caller's state (Bob's state in Alice's browser, with Alice's code)", async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const bobs = await approve(await linkFor(bob));
    const alices = await approve(await linkFor(alice));
    const back = await consent(alices, 'alice');
    const forged = new URL(back.url);
    forged.searchParams.set('state', new URL(bobs.location!).searchParams.get('state')!);
    const r = await callback({ url: forged, cookie: alices.cookie! });
    expect(r.status).toBe(400);
    expect(r.text).toContain('This browser did not approve this connection');
    await nothingStored(alice, bob);
  });

  it("c) a state from another client of the same person (client X's flow, the browser bound to client Y's)", async () => {
    const viaX = await client('alice', 'client-x');
    const viaY = await client('alice', 'client-y');
    const x = await approve(await linkFor(viaX));
    const y = await approveConnect(await page(await linkFor(viaY)));
    expect(y.status).toBe(303);
    states.push(new URL(y.location!).searchParams.get('state')!);
    const backX = await consent(x, 'alice');
    const r = await callback(backX, { cookie: y.cookie! });
    expect(r.status).toBe(400);
    expect(r.text).toContain('This browser did not approve this connection');
    await nothingStored(viaX, viaY);
  });

  it('e) a callback at another redirect URI: another host is refused, another path does not exist', async () => {
    const alice = await client('alice');
    const back = await consent(await approve(await linkFor(alice)), 'alice');
    const otherPath = new URL(back.url);
    otherPath.pathname = '/oauth/callback2';
    const r1 = await callback(back, { url: otherPath });
    expect(r1.status).toBe(404);
    // `localhost` is an allowed Host of this loopback gateway, but not the redirect URI's host.
    const otherHost = new URL(back.url);
    otherHost.hostname = 'localhost';
    const r2 = await callback(back, { url: otherHost });
    expect(r2.status).toBe(400);
    expect(r2.text).toContain('did not arrive at the redirect URI');
    await nothingStored(alice);
  });

  it("f) an authorization code injected by another user (Mallory's code with Alice's state and cookie): the server refuses it (PKCE)", async () => {
    const alice = await client('alice');
    const mallory = await client('mallory');
    const mallorys = await consent(await approve(await linkFor(mallory)), 'mallory');
    const alices = await approve(await linkFor(alice));
    const injected = new URL(`${origin}/oauth/callback`);
    injected.searchParams.set('code', mallorys.url.searchParams.get('code')!);
    injected.searchParams.set('state', new URL(alices.location!).searchParams.get('state')!);
    injected.searchParams.set('iss', mallorys.url.searchParams.get('iss')!);
    const r = await callback({ url: injected, cookie: alices.cookie! });
    expect(r.status).toBe(400);
    expect(r.text).toContain('The authorization code was refused by the authorization server.');
    await nothingStored(alice, mallory);
  });

  it('g) a callback without the cookie; once refused, the state is spent', async () => {
    const alice = await client('alice');
    const back = await consent(await approve(await linkFor(alice)), 'alice');
    const r = await callback(back, { cookie: null });
    expect(r.status).toBe(400);
    expect(r.text).toContain('This browser did not approve this connection');
    const again = await callback(back);
    expect(again.status).toBe(400);
    expect(again.text).toContain('unknown, already used or expired');
    await nothingStored(alice);
  });

  it('d) a replayed callback: refused, and the connection it made stays as it was', async () => {
    const bob = await client('bob', 'client-b');
    const back = await consent(await approve(await linkFor(bob)), 'bob');
    const first = await callback(back);
    expect(first.status).toBe(200);
    expect(first.text).toContain('Connected /petsAuth');
    const before = await listed();
    expect(before).toEqual([
      expect.objectContaining({ principal: `jwt:${ISSUER}#bob`, clients: [expect.any(String)] }),
    ]);
    const replay = await callback(back);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('unknown, already used or expired');
    expect(await listed()).toEqual(before);
    expect(codeOf(await call(bob))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('bob');
    expect((await admin()('DELETE', `/connections/${encodeURIComponent(before[0]!.id)}`)).status).toBe(200);
    expect(await listed()).toEqual([]);
  });

  it('h) the client is the OAuth client its token was issued to (client_id, else azp), not the name it declares', async () => {
    const viaApp1 = await client('carol@app-1', 'agent-x');
    const back = await consent(await approve(await linkFor(viaApp1)), 'carol');
    expect((await callback(back)).status).toBe(200);
    const stored = await listed();
    expect(stored).toEqual([
      expect.objectContaining({ principal: `jwt:${ISSUER}#carol`, clients: ['oauth:app-1'] }),
    ]);
    // Another declared name through the same token client: the same client, no new consent.
    expect(codeOf(await call(await client('carol@app-1', 'renamed')))).toBe('OK');
    expect(codeOf(await call(await client('carol@azp-1', 'renamed-again')))).toBe('OK');
    expect(upstream.calls.at(-1)!.sub).toBe('carol');
    // The approved client's name, declared through a token issued to another client: asked again.
    expect(codeOf(await call(await client('carol@app-2', 'agent-x')))).toBe('CONNECTION_REQUIRED');
    expect((await admin()('DELETE', `/connections/${encodeURIComponent(stored[0]!.id)}`)).status).toBe(200);
    expect(await listed()).toEqual([]);
  });

  it('no token, state, code or link handle reaches an output, the audit or a log line', async () => {
    await gateway.stop();
    const { stderr } = gateway;
    expect(stderr).toContain('MCP endpoint'); // the log was captured
    const tokensAndSecret = [...new Set(upstream.calls.map((c) => c.token)), as.clientSecret];
    expect(states.length).toBeGreaterThanOrEqual(8);
    expect(codes.length).toBeGreaterThanOrEqual(7);
    const flow = [...handles, ...states, ...codes];
    expect(flow.every(Boolean)).toBe(true);
    const others = outputs.filter((o) => !connectPages.includes(o));
    const surfaces: Array<[string, string, string[]]> = [
      // A connect page carries its own link's handle (its form posts it back), nothing else.
      ['connect pages', connectPages.join('\n'), [...tokensAndSecret, ...states, ...codes]],
      ['tool results and other pages', others.join('\n'), [...tokensAndSecret, ...states, ...codes]],
      ['audit', readFileSync(join(dir, 'audit.jsonl'), 'utf8'), [...tokensAndSecret, ...flow]],
      ['logs (stderr)', stderr, [...tokensAndSecret, ...flow]],
    ];
    for (const [where, text, secrets] of surfaces)
      for (const secret of secrets)
        expect(text.includes(secret), `${where} carries a secret (${secret.slice(0, 6)}…)`).toBe(false);
  });
});
