import { createHash, randomBytes, randomUUID } from 'node:crypto';
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
 * is never written by hand here. One flow per (caller, client, upstream); its `state` is a random,
 * single-use, short-lived handle to a record kept here that says whose connection the callback may
 * store, for which MCP client and upstream, with which PKCE verifier and redirect URI. The code a
 * callback brings is exchanged with that verifier, so a code minted for another flow (another user's
 * injected code) is refused by the authorization server itself.
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
  onSecret?: (values: string[]) => void;
  /**
   * Pending flows shared by instances (Redis), so a callback can land on any of them; absent: kept
   * in this process only (the callback must reach the instance that minted the link).
   */
  shared?: SharedFlows;
  /** Plain-HTTP authorization servers (a local test server only). */
  allowInsecure?: boolean;
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
}

/** What a callback request ended as, for the page the browser is shown (never a token). */
export type CallbackOutcome =
  | { ok: true; principal: string; upstream: UpstreamKey; scopes: string[] }
  | { ok: false; status: number; reason: string };

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
    const missing = req.scopes.filter((s) => !conn?.scopes.includes(s));
    if (!conn || missing.length)
      return { connect: await this.start(caller, server, [...(conn?.scopes ?? []), ...missing]) };
    if (conn.expiresAt !== undefined && conn.expiresAt - this.skew <= this.now()) {
      const fresh = await this.refresh(server, conn);
      if (!fresh) return { connect: await this.start(caller, server, req.scopes) };
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
      const as = await this.metadata(server);
      let tokens: oauth.TokenEndpointResponse;
      try {
        const res = await oauth.refreshTokenGrantRequest(
          as,
          server.client,
          server.auth,
          current.refreshToken,
          {
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
    const verifier = oauth.generateRandomCodeVerifier();
    const state = randomBytes(32).toString('base64url');
    const asked = [...new Set(scopes)].sort();
    const p: Pending = {
      id: randomUUID(),
      principal: caller.principal.id,
      client: caller.client,
      upstream: server.key,
      scopes: asked,
      verifier,
      redirectUri: server.def.redirectUri,
      expiresAt: this.now() + this.ttl,
    };
    this.pending.set(state, p);
    await this.o.shared?.put(flowHandle(state), JSON.stringify(p), this.ttl);
    // The state is a capability for this caller's flow: scrubbed from the audit and logs like a token.
    this.o.onSecret?.([state]);
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', server.def.clientId);
    url.searchParams.set('redirect_uri', p.redirectUri);
    if (asked.length) url.searchParams.set('scope', asked.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    return { url: url.href, id: p.id, expiresAt: p.expiresAt, upstream: server.key, scopes: asked };
  }

  private sweep(): void {
    const now = this.now();
    for (const [s, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(s);
    // Bounded: an agent looping on connect links cannot grow memory without end; the oldest go first.
    while (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
  }

  /**
   * The browser's return from the authorization server. `url` is the callback URL as received (its
   * Host header and path). The state is consumed before anything else, so a
   * replayed callback finds nothing; the callback must arrive at the very redirect URI the flow used;
   * the code is exchanged with the flow's own verifier. Only then are the tokens stored, for the
   * principal that started the flow.
   */
  async callback(url: URL): Promise<CallbackOutcome> {
    const state = url.searchParams.get('state');
    let p: Pending | undefined;
    try {
      p = state ? await this.take(state) : undefined;
    } catch {
      return {
        ok: false,
        status: 503,
        reason: 'The gateway cannot reach its shared state; retry in a moment.',
      };
    }
    if (!state || !p)
      return {
        ok: false,
        status: 400,
        reason: 'This link is unknown, already used or expired. Ask the agent again for a new one.',
      };
    if (p.expiresAt <= this.now())
      return { ok: false, status: 400, reason: 'This link has expired. Ask the agent again for a new one.' };
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
    // An incremental grant keeps what was granted before (servers may answer with only the new scopes).
    if (previous) conn.scopes = [...new Set([...previous.scopes, ...conn.scopes])].sort();
    await this.o.vault.put(conn);
    return { ok: true, principal: p.principal, upstream: p.upstream, scopes: conn.scopes };
  }

  /**
   * Consumes the flow of `state`: from the shared store when there is one (GETDEL: once across all
   * instances, whichever minted it), else from this process.
   */
  private async take(state: string): Promise<Pending | undefined> {
    const local = this.pending.get(state);
    this.pending.delete(state);
    if (!this.o.shared) return local;
    const raw = await this.o.shared.take(flowHandle(state));
    if (raw === undefined) return undefined;
    const p = JSON.parse(raw) as Pending;
    // Minted elsewhere: this instance's logs must scrub the state too.
    this.o.onSecret?.([state]);
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
