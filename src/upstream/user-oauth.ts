import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { WardenError } from '../errors/index.js';
import type { AuthRequirement, Tool } from '../model/catalog.js';
import {
  type CallerIdentity,
  type Connection,
  type ConnectionFilter,
  type SharedFlows,
  type StoredConnection,
  type TokenOutcome,
  type TokenVault,
  type UpstreamKey,
  type UserCredentials,
  upstreamKey,
} from '../model/connection.js';

/**
 * Per-user delegated OAuth (authorization code + PKCE S256, refresh) with oauth4webapi: the protocol
 * is never written by hand here. One flow per (caller, client, upstream), in three steps:
 * 1. `start` mints a random, single-use, short-lived `flow` handle; the link the agent gets is the
 *    gateway's own connect page (`/oauth/connect?flow=…`), never the authorization server.
 * 2. `consent` (the person pressed Approve on that page: same-origin POST, the flow's CSRF token)
 *    marks the flow consented, once, and answers the authorization URL plus a binding cookie whose
 *    value is a digest of the flow's `state` (derived from the handle, so no store holds it).
 * 3. `callback` consumes the state, and stores only when the browser carries that binding cookie:
 *    a state sent to someone else's browser (account-linking CSRF, the MCP best practices' confused
 *    deputy) stores nothing. The code is exchanged with the flow's own PKCE verifier, so a code minted
 *    for another flow (another user's injected code) is refused by the authorization server itself.
 * A connection records the MCP clients its person approved; another client is asked again (per-client consent).
 */

/** One upstream whose security scheme is per-user OAuth 2 authorization code. */
export interface UserOAuthUpstream {
  /** The API of an API set (`tool.api`); absent when one spec is served alone. */
  api?: string;
  /** The spec's `oauth2` security scheme name. */
  scheme: string;
  /**
   * The authorization server's issuer: its metadata is discovered (RFC 8414 / OpenID discovery)
   * unless both endpoints are given (from the policy, or the spec's `authorizationCode` flow).
   */
  issuer?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  /** The spec's `refreshUrl`, when it differs from the token endpoint. */
  refreshUrl?: string;
  /** The policy's `scopes`: asked for instead of each tool's declared scopes (the operator's choice). */
  scopes?: string[];
  clientId: string;
  /** Resolved from its secret reference; absent for a public client (PKCE alone). */
  clientSecret?: string;
  /** The gateway's callback URL as registered with the authorization server (`…/oauth/callback`). */
  redirectUri: string;
}

export interface UserOAuthOptions {
  upstreams: readonly UserOAuthUpstream[];
  vault: TokenVault;
  /** How long a connect link (its state) works. Default 10 minutes. */
  flowTtlMs?: number;
  /** Refresh when the access token expires within this window. Default 60 s. */
  refreshSkewMs?: number;
  /** Told every token value obtained, so logs and results scrub it (redactor.addSecrets). */
  onSecret?: (values: string[], until?: number) => void;
  /**
   * Pending flows shared by instances (Redis), so a callback can land on any of them; absent: kept
   * in this process only (the callback must reach the instance that minted the link).
   */
  shared?: SharedFlows;
  /** Plain-HTTP authorization servers (a local test server only). */
  allowInsecure?: boolean;
  /** Told when a callback stored a flow's connection (`notifications/elicitation/complete`). */
  onConnected?: (flowId: string, principal: string, client: string | undefined) => void;
  now?: () => number;
}

interface Pending {
  id: string;
  principal: string;
  client: string | undefined;
  upstream: UpstreamKey;
  scopes: string[];
  verifier: string;
  redirectUri: string;
  expiresAt: number;
  /** The connect page's CSRF token: a form that did not come from the page cannot know it. */
  csrf: string;
  /** Set once the person approved on the connect page (the record then lives under the state's digest). */
  consented?: true;
}

/** What the connect page shows about a flow (never its state, verifier or the authorization URL). */
export interface ConnectView {
  principal: string;
  /** The MCP client the flow was minted for; `''` for a caller without one (a local stdio client). */
  client: string;
  upstream: UpstreamKey;
  api?: string;
  scheme: string;
  scopes: string[];
  expiresAt: number;
  csrf: string;
  /** The gateway's public origin (the redirect URL's): the only `Origin` an approval is accepted from. */
  origin: string;
  /** Where Approve sends the browser: the authorization server's origin. */
  authorizationOrigin: string;
}

/** The binding cookie set when the person approves: its value is a digest of the state, never the state. */
export interface BindingCookie {
  name: string;
  value: string;
  maxAgeSeconds: number;
  secure: boolean;
}

/** What an approval or cancel on the connect page ended as. */
export type ConsentOutcome =
  | { ok: true; approved: true; location: string; cookie: BindingCookie }
  | { ok: true; approved: false }
  | { ok: false; status: number; reason: string };

/** The request an approval arrived in, as the connect page's POST handler read it. */
export interface ConsentRequest {
  flow: string;
  csrf: string;
  approve: boolean;
  /** The `Origin` header, if any. */
  origin?: string;
  /** The `Sec-Fetch-Site` header, if any. */
  fetchSite?: string;
}

/** The connect page's path on the gateway (served by src/server/oauth-pages.ts), beside the callback. */
export const CONNECT_PATH = '/oauth/connect';

/** What a callback request ended as, for the page the browser is shown (never a token). */
export type CallbackOutcome =
  | { ok: true; principal: string; upstream: UpstreamKey; scopes: string[] }
  /** `noFlow`: the request brought no flow this gateway knows (nothing was consumed). */
  | { ok: false; status: number; reason: string; noFlow?: true };

interface Server {
  def: UserOAuthUpstream;
  key: UpstreamKey;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  as?: Promise<oauth.AuthorizationServer>;
}

const MAX_PENDING = 10_000;

export class UserOAuth implements UserCredentials {
  private readonly servers = new Map<UpstreamKey, Server>();
  private readonly pending = new Map<string, Pending>();
  private readonly ttl: number;
  private readonly skew: number;
  private readonly now: () => number;

  constructor(private readonly o: UserOAuthOptions) {
    this.ttl = o.flowTtlMs ?? 10 * 60_000;
    this.skew = o.refreshSkewMs ?? 60_000;
    this.now = o.now ?? Date.now;
    for (const def of o.upstreams) {
      const key = upstreamKey(def.api, def.scheme);
      this.servers.set(key, {
        def,
        key,
        client: { client_id: def.clientId },
        auth: def.clientSecret !== undefined ? oauth.ClientSecretPost(def.clientSecret) : oauth.None(),
      });
    }
  }

  /** The tool's per-user OAuth requirement and its server, when it has one. */
  private requirement(tool: Tool): { req: AuthRequirement; server: Server } | undefined {
    for (const alt of tool.auth.alternatives)
      for (const req of alt) {
        if (req.type !== 'oauth2' && req.type !== 'openIdConnect') continue;
        const server = this.servers.get(upstreamKey(tool.api, req.scheme));
        if (server) return { req, server };
      }
    return undefined;
  }

  handles(tool: Tool): boolean {
    return this.requirement(tool) !== undefined;
  }

  private metadata(server: Server): Promise<oauth.AuthorizationServer> {
    const { def } = server;
    if (!server.as && def.authorizationUrl !== undefined && def.tokenUrl !== undefined)
      server.as = Promise.resolve({
        issuer: issuerOf(def),
        authorization_endpoint: def.authorizationUrl,
        token_endpoint: def.tokenUrl,
      });
    if (!server.as) {
      if (def.issuer === undefined)
        throw new WardenError(
          'CREDENTIAL_MISSING',
          `${server.key} names neither an issuer nor both endpoints.`,
        );
      const issuer = new URL(def.issuer);
      const opts = { [oauth.allowInsecureRequests]: this.o.allowInsecure === true };
      server.as = oauth
        .discoveryRequest(issuer, { algorithm: 'oidc', ...opts })
        .then((r) => oauth.processDiscoveryResponse(issuer, r))
        .catch(() => {
          server.as = undefined;
          throw new WardenError(
            'CREDENTIAL_MISSING',
            `The authorization server of ${server.key} could not be reached.`,
          );
        });
    }
    return server.as;
  }

  async tokenFor(caller: CallerIdentity, tool: Tool): Promise<TokenOutcome> {
    const found = this.requirement(tool);
    if (!found)
      throw new WardenError('CREDENTIAL_MISSING', `${tool.name} is not served with per-user OAuth.`);
    const { req, server } = found;
    const principal = caller.principal.id;
    let conn = await this.o.vault.get(principal, server.key);
    // Least privilege, incrementally: ask for what this tool needs on top of what is already granted.
    const wanted = server.def.scopes ?? req.scopes;
    const missing = wanted.filter((s) => !conn?.scopes.includes(s));
    // Per-client consent: a client the person has not approved for this connection asks them first
    // (a connection stored before clients were recorded has none, so each client asks once).
    const approved = conn?.clients?.includes(clientOf(caller)) === true;
    if (!conn || missing.length || !approved)
      return { connect: await this.start(caller, server, [...(conn?.scopes ?? []), ...missing]) };
    if (conn.expiresAt !== undefined && conn.expiresAt - this.skew <= this.now()) {
      const fresh = await this.refresh(server, conn);
      if (!fresh) return { connect: await this.start(caller, server, wanted) };
      conn = fresh;
    }
    await this.o.vault.touch(principal, server.key, this.now());
    return { token: conn.accessToken };
  }

  /**
   * Refreshes under the vault's lock: whoever gets the lock second finds the fresh token already
   * stored and uses it. A refused refresh (revoked, expired grant) or none possible deletes the
   * connection, so the user is asked again.
   */
  private refresh(server: Server, stale: StoredConnection): Promise<StoredConnection | undefined> {
    const lockKey = `${stale.principal}\0${stale.upstream}`;
    return this.o.vault.withRefreshLock(lockKey, async () => {
      const current = await this.o.vault.get(stale.principal, stale.upstream);
      if (!current) return undefined;
      if (current.expiresAt === undefined || current.expiresAt - this.skew > this.now()) return current;
      if (current.refreshToken === undefined) {
        await this.o.vault.delete(current.principal, current.upstream);
        return undefined;
      }
      const known = await this.metadata(server);
      const as = server.def.refreshUrl ? { ...known, token_endpoint: server.def.refreshUrl } : known;
      let tokens: oauth.TokenEndpointResponse;
      try {
        const res = await oauth.refreshTokenGrantRequest(
          as,
          server.client,
          server.auth,
          current.refreshToken,
          {
            signal: AbortSignal.timeout(10_000), // bounded: the refresh lock is held meanwhile
            [oauth.allowInsecureRequests]: this.o.allowInsecure === true,
          },
        );
        tokens = await oauth.processRefreshTokenResponse(as, server.client, res);
      } catch (e) {
        if (e instanceof oauth.ResponseBodyError || e instanceof oauth.AuthorizationResponseError) {
          await this.o.vault.delete(current.principal, current.upstream);
          return undefined;
        }
        throw new WardenError(
          'CREDENTIAL_MISSING',
          `The token of ${server.key} could not be refreshed; retry later.`,
        );
      }
      const next = this.stored(current.principal, server, tokens, current);
      await this.o.vault.put(next);
      return next;
    });
  }

  private stored(
    principal: string,
    server: Server,
    tokens: oauth.TokenEndpointResponse,
    previous: StoredConnection | undefined,
    asked?: string[],
  ): StoredConnection {
    const now = this.now();
    const granted =
      typeof tokens.scope === 'string'
        ? tokens.scope.split(' ').filter(Boolean)
        : (asked ?? previous?.scopes ?? []);
    const c: StoredConnection = {
      principal,
      upstream: server.key,
      issuer: issuerOf(server.def),
      scopes: [...new Set(granted)].sort(),
      createdAt: previous?.createdAt ?? now,
      accessToken: tokens.access_token,
    };
    const refresh = tokens.refresh_token ?? previous?.refreshToken;
    if (refresh !== undefined) c.refreshToken = refresh;
    if (typeof tokens.expires_in === 'number') c.expiresAt = now + tokens.expires_in * 1000;
    if (previous?.lastUsedAt !== undefined) c.lastUsedAt = previous.lastUsedAt;
    if (previous?.clients !== undefined) c.clients = [...previous.clients];
    this.o.onSecret?.(c.refreshToken !== undefined ? [c.accessToken, c.refreshToken] : [c.accessToken]);
    return c;
  }

  private async start(caller: CallerIdentity, server: Server, scopes: string[]) {
    const as = await this.metadata(server);
    if (!as.authorization_endpoint)
      throw new WardenError(
        'CREDENTIAL_MISSING',
        `The authorization server of ${server.key} has no authorization endpoint.`,
      );
    this.sweep();
    const flow = randomBytes(32).toString('base64url');
    const asked = [...new Set(scopes)].sort();
    const p: Pending = {
      id: randomUUID(),
      principal: caller.principal.id,
      client: caller.client,
      upstream: server.key,
      scopes: asked,
      verifier: oauth.generateRandomCodeVerifier(),
      redirectUri: server.def.redirectUri,
      expiresAt: this.now() + this.ttl,
      csrf: randomBytes(24).toString('base64url'),
    };
    await this.keep(connectHandle(flow), p);
    // The handle and the state derived from it are capabilities for this caller's flow: scrubbed
    // from the audit and logs like a token.
    // Forgotten a minute after the link expires: worthless by then, and minted per call.
    this.o.onSecret?.([flow, stateOf(flow)], p.expiresAt + 60_000);
    // The gateway's own page, at the redirect URL's origin: the person sees whose flow this is before
    // anything reaches the authorization server.
    const url = new URL(CONNECT_PATH, p.redirectUri);
    url.searchParams.set('flow', flow);
    return { url: url.href, id: p.id, expiresAt: p.expiresAt, upstream: server.key, scopes: asked };
  }

  /** Keeps a pending flow here and, when shared, for every instance until it expires. */
  private async keep(handle: string, p: Pending): Promise<void> {
    this.pending.set(handle, p);
    await this.o.shared?.put(handle, JSON.stringify(p), Math.max(1, p.expiresAt - this.now()));
  }

  /** A pending flow without consuming it (the connect page and the checks before an approval). */
  private async peek(handle: string): Promise<Pending | undefined> {
    let p = this.pending.get(handle);
    if (this.o.shared) {
      const raw = await this.o.shared.peek(handle);
      p = raw === undefined ? undefined : (JSON.parse(raw) as Pending);
    }
    return p && this.servers.has(p.upstream) && p.expiresAt > this.now() ? p : undefined;
  }

  /**
   * What the connect page shows for `flow`, or undefined when it is unknown, already approved or
   * cancelled, or expired.
   */
  async connectView(flow: string): Promise<ConnectView | undefined> {
    if (!flow) return undefined;
    const p = await this.peek(connectHandle(flow));
    if (!p) return undefined;
    // Minted elsewhere: this instance's logs must scrub the handle and state too.
    this.o.onSecret?.([flow, stateOf(flow)], p.expiresAt + 60_000);
    const server = this.servers.get(p.upstream)!;
    const as = await this.metadata(server);
    return {
      principal: p.principal,
      client: p.client ?? '',
      upstream: p.upstream,
      ...(server.def.api !== undefined ? { api: server.def.api } : {}),
      scheme: server.def.scheme,
      scopes: p.scopes,
      expiresAt: p.expiresAt,
      csrf: p.csrf,
      origin: new URL(p.redirectUri).origin,
      authorizationOrigin: new URL(as.authorization_endpoint!).origin,
    };
  }

  /**
   * The person's answer on the connect page. Refused unless the request is same-origin (its
   * `Origin` is the gateway's, or, without one or with `null`, `Sec-Fetch-Site: same-origin`;
   * neither: refused) and
   * carries the flow's CSRF token. An approval consumes the connect handle (once, across instances),
   * keeps the flow under its state's digest marked consented, and answers where to send the browser
   * with the cookie that binds it to that state; a cancel drops the flow.
   */
  async consent(r: ConsentRequest): Promise<ConsentOutcome> {
    const unknown = {
      ok: false as const,
      status: 400,
      reason: 'This link is unknown, already used or expired. Ask the agent again for a new one.',
    };
    const handle = r.flow ? connectHandle(r.flow) : '';
    let p: Pending | undefined;
    try {
      p = handle ? await this.peek(handle) : undefined;
    } catch {
      return UNREACHABLE;
    }
    if (!p) return unknown;
    // A browser sends `Origin: null` where a referrer policy hides the origin: then, as when there
    // is no Origin, only the browser's own `Sec-Fetch-Site` can say the form came from this origin.
    const origin = new URL(p.redirectUri).origin;
    const sameOrigin =
      r.origin !== undefined && r.origin !== 'null'
        ? r.origin === origin
        : r.fetchSite?.toLowerCase() === 'same-origin';
    if (!sameOrigin)
      return {
        ok: false,
        status: 403,
        reason: 'Refused: the approval did not come from the gateway’s own page (cross-site request).',
      };
    if (!sameSecret(r.csrf, p.csrf))
      return {
        ok: false,
        status: 403,
        reason: 'Refused: the form’s token does not match this link. Open the link again and approve there.',
      };
    let taken: Pending | undefined;
    try {
      taken = await this.take(handle);
    } catch {
      return UNREACHABLE;
    }
    // Two approvals of one page (two tabs, two instances): one wins.
    if (!taken || taken.expiresAt <= this.now()) return unknown;
    if (!r.approve) return { ok: true, approved: false };
    const state = stateOf(r.flow);
    const server = this.servers.get(taken.upstream)!;
    let as: oauth.AuthorizationServer;
    try {
      as = await this.metadata(server);
      await this.keep(flowHandle(state), { ...taken, consented: true });
    } catch {
      return UNREACHABLE;
    }
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', server.def.clientId);
    url.searchParams.set('redirect_uri', taken.redirectUri);
    if (taken.scopes.length) url.searchParams.set('scope', taken.scopes.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(taken.verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    const secure = new URL(taken.redirectUri).protocol === 'https:';
    return {
      ok: true,
      approved: true,
      location: url.href,
      cookie: {
        name: bindingCookieName(taken.redirectUri),
        value: bindingOf(state),
        maxAgeSeconds: Math.max(1, Math.ceil((taken.expiresAt - this.now()) / 1000)),
        secure,
      },
    };
  }

  private sweep(): void {
    const now = this.now();
    for (const [s, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(s);
    // Bounded: an agent looping on connect links cannot grow memory without end; the oldest go first.
    while (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
  }

  /**
   * The browser's return from the authorization server. `url` is the callback URL as received (its
   * Host header and path), `cookies` the request's Cookie header. The state is consumed before
   * anything else, so a replayed callback finds nothing; the browser must carry the binding cookie
   * the approval set for this very state (so a state sent to another person's browser stores
   * nothing); the callback must arrive at the very redirect URI the flow used; the code is exchanged
   * with the flow's own verifier. Only then are the tokens stored, for the principal that started
   * the flow, with its client added to the connection's approved clients.
   */
  async callback(url: URL, cookies?: string): Promise<CallbackOutcome> {
    const state = url.searchParams.get('state');
    let p: Pending | undefined;
    try {
      p = state ? await this.take(flowHandle(state)) : undefined;
    } catch {
      return {
        ok: false,
        status: 503,
        reason: 'The gateway cannot reach its shared state; retry in a moment.',
        noFlow: true,
      };
    }
    if (!state || !p)
      return {
        ok: false,
        status: 400,
        reason: 'This link is unknown, already used or expired. Ask the agent again for a new one.',
        noFlow: true,
      };
    // Minted elsewhere: this instance's logs must scrub the state too.
    this.o.onSecret?.([state], p.expiresAt + 60_000);
    if (p.expiresAt <= this.now())
      return { ok: false, status: 400, reason: 'This link has expired. Ask the agent again for a new one.' };
    const bound = cookieValue(cookies, bindingCookieName(p.redirectUri));
    if (p.consented !== true || bound === undefined || !sameSecret(bound, bindingOf(state)))
      return {
        ok: false,
        status: 400,
        reason:
          'This browser did not approve this connection on the gateway’s page, so nothing was stored. If you asked your agent to connect, open its link again and approve there.',
      };
    const server = this.servers.get(p.upstream)!;
    // Host and path, not scheme: TLS often ends at a proxy in front of the gateway.
    const expected = new URL(p.redirectUri);
    if (url.host !== expected.host || url.pathname !== expected.pathname)
      return {
        ok: false,
        status: 400,
        reason: 'The callback did not arrive at the redirect URI the flow was started with.',
      };
    const as = await this.metadata(server);
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, server.client, url.searchParams, state);
    } catch (e) {
      const denied = e instanceof oauth.AuthorizationResponseError ? e.error : 'invalid response';
      return { ok: false, status: 400, reason: `The authorization server did not grant access (${denied}).` };
    }
    let tokens: oauth.TokenEndpointResponse;
    try {
      const res = await oauth.authorizationCodeGrantRequest(
        as,
        server.client,
        server.auth,
        params,
        p.redirectUri,
        p.verifier,
        {
          [oauth.allowInsecureRequests]: this.o.allowInsecure === true,
        },
      );
      tokens = await oauth.processAuthorizationCodeResponse(as, server.client, res);
    } catch {
      return {
        ok: false,
        status: 400,
        reason: 'The authorization code was refused by the authorization server.',
      };
    }
    const previous = await this.o.vault.get(p.principal, p.upstream);
    const conn = this.stored(p.principal, server, tokens, previous, p.scopes);
    conn.clients = [...new Set([...(previous?.clients ?? []), p.client ?? ''])].sort();
    // An incremental grant keeps what was granted before (servers may answer with only the new scopes).
    if (previous) conn.scopes = [...new Set([...previous.scopes, ...conn.scopes])].sort();
    await this.o.vault.put(conn);
    this.o.onConnected?.(p.id, p.principal, p.client);
    return { ok: true, principal: p.principal, upstream: p.upstream, scopes: conn.scopes };
  }

  /**
   * Consumes the flow kept under `handle`: from the shared store when there is one (GETDEL: once
   * across all instances, whichever minted it), else from this process.
   */
  private async take(handle: string): Promise<Pending | undefined> {
    const local = this.pending.get(handle);
    this.pending.delete(handle);
    if (!this.o.shared) return local;
    const raw = await this.o.shared.take(handle);
    if (raw === undefined) return undefined;
    const p = JSON.parse(raw) as Pending;
    return this.servers.has(p.upstream) ? p : undefined;
  }

  /** The pending flow a client started, for the client that started it only (URL elicitation completion). */
  pendingFor(id: string, caller: CallerIdentity): { upstream: UpstreamKey } | undefined {
    for (const p of this.pending.values())
      if (p.id === id && p.principal === caller.principal.id && p.client === caller.client)
        return { upstream: p.upstream };
    return undefined;
  }

  list(filter?: ConnectionFilter): Promise<Connection[]> {
    return this.o.vault.list(filter);
  }

  async revoke(principal: string, upstream?: UpstreamKey): Promise<number> {
    const targets =
      upstream !== undefined ? [upstream] : (await this.o.vault.list({ principal })).map((c) => c.upstream);
    let n = 0;
    for (const u of targets) if (await this.o.vault.delete(principal, u)) n++;
    return n;
  }
}

/** The shared store's key for a state: a digest, so reading Redis never yields a usable state. */
function flowHandle(state: string): string {
  return createHash('sha256').update(state).digest('base64url');
}

/** The client a connection records for a caller: `''` for one without a client (a local stdio client). */
function clientOf(caller: CallerIdentity): string {
  return caller.client ?? '';
}

/** The shared store's key for a connect page's handle (a digest too, in its own namespace). */
function connectHandle(flow: string): string {
  return `connect-${createHash('sha256').update(`mcp-warden connect\0${flow}`).digest('base64url')}`;
}

/**
 * The OAuth `state` of a flow, derived from its handle: only whoever holds the link can compute it,
 * and no store (Redis) holds it, so reading the store yields neither.
 */
function stateOf(flow: string): string {
  return createHmac('sha256', flow).update('mcp-warden oauth state').digest('base64url');
}

/** The binding cookie's value for a state: a digest, so the cookie never carries the state itself. */
function bindingOf(state: string): string {
  return createHash('sha256').update(`mcp-warden binding\0${state}`).digest('base64url');
}

/**
 * `__Host-` on https: the browser then accepts it only Secure, for Path=/, from this very host (no
 * sibling subdomain can plant one). Plain http (a local gateway) cannot use the prefix.
 */
export function bindingCookieName(redirectUri: string): string {
  return new URL(redirectUri).protocol === 'https:' ? '__Host-mcp-warden-connect' : 'mcp-warden-connect';
}

/** One cookie's value from a Cookie header (the first of that name). */
function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time equality of two secrets of any length (their digests are compared). */
function sameSecret(a: string, b: string): boolean {
  const d = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(d(a), d(b)) && a.length === b.length;
}

const UNREACHABLE = {
  ok: false as const,
  status: 503,
  reason: 'The gateway cannot reach its shared state or the authorization server; retry in a moment.',
};

function issuerOf(def: UserOAuthUpstream): string {
  return def.issuer ?? new URL(def.tokenUrl ?? def.authorizationUrl ?? 'about:blank').origin;
}

/** The page the browser is shown after the callback: plain text, no token, no state. */
export function callbackPage(outcome: CallbackOutcome): { status: number; body: string } {
  if (outcome.ok)
    return {
      status: 200,
      body: `Connected ${outcome.upstream} (scopes: ${outcome.scopes.join(' ') || 'none'}). You can close this page and retry the call in your agent.\n`,
    };
  return { status: outcome.status, body: `${outcome.reason}\n` };
}
