import type { Tool } from './catalog.js';
import type { Principal } from './principal.js';

/**
 * Per-user delegated OAuth: a caller's own upstream token, held by the gateway (the caller's token is
 * never passed through). The contract between the vault (src/state/), the flow (src/upstream/user-oauth.ts),
 * the inject stage and the surfaces (CLI `connections`, dashboard, audit).
 */

/**
 * Which upstream a connection is for: `<api>/<scheme>` (`/<scheme>` when one spec is served alone).
 * One authorization server per key; the issuer is part of the connection, not of the key.
 */
export type UpstreamKey = string;

/**
 * Where the browser's redirect of a connection flow lands (the HTTP transport serves it). Here, not
 * in server/http.ts, so that code naming the path does not load the HTTP stack: a stdio start does
 * not (issue 22: start-up).
 */
export const OAUTH_CALLBACK_PATH = '/oauth/callback';

/** `upstreamKey(undefined, 'oauth')` → `/oauth`; `upstreamKey('gh', 'oauth')` → `gh/oauth`. */
export function upstreamKey(api: string | undefined, scheme: string): UpstreamKey {
  return `${api ?? ''}/${scheme}`;
}

/** What a connection is, without its secrets: safe to list, show and audit. Times are epoch ms. */
export interface Connection {
  /** The namespaced principal id (`Principal.id`) the tokens act for. */
  principal: string;
  upstream: UpstreamKey;
  /** The authorization server's issuer the tokens came from. */
  issuer: string;
  /** Scopes granted so far (the union of every tool the caller connected for). */
  scopes: string[];
  /** When the access token expires; absent when the server did not say. */
  expiresAt?: number;
  lastUsedAt?: number;
  createdAt: number;
  /**
   * The MCP clients (`CallerIdentity.client`, `''` for a caller without one) the person approved on
   * the connect page for this connection; a call through any other client asks them again. Absent
   * on connections stored before clients were recorded: every client then asks once.
   */
  clients?: string[];
}

/** A connection with its tokens: only the vault and the flow ever hold one. Never logged. */
export interface StoredConnection extends Connection {
  accessToken: string;
  refreshToken?: string;
}

export interface ConnectionFilter {
  principal?: string;
  upstream?: UpstreamKey;
}

/**
 * Where connections live, encrypted at rest (embedded file by default, PostgreSQL when shared).
 * Keyed by (principal, upstream).
 */
export interface TokenVault {
  get(principal: string, upstream: UpstreamKey): Promise<StoredConnection | undefined>;
  /** Inserts or replaces the (principal, upstream) record. */
  put(connection: StoredConnection): Promise<void>;
  /** True when a record was removed. */
  delete(principal: string, upstream: UpstreamKey): Promise<boolean>;
  list(filter?: ConnectionFilter): Promise<Connection[]>;
  /** Records a use (best effort; no error when the record is gone). */
  touch(principal: string, upstream: UpstreamKey, at: number): Promise<void>;
  /**
   * Runs `fn` while holding the refresh lock for `key` across every instance sharing this vault
   * (in process for the embedded file; a PostgreSQL advisory lock or Redis SET NX PX when shared),
   * so one refresh happens per expiry.
   */
  withRefreshLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Where to send the user to connect: the gateway's connect page, minted for this caller and client only. */
export interface ConnectRequest {
  /**
   * The gateway's connect page (`<redirect URL origin>/oauth/connect?flow=…`): it names the principal,
   * client, upstream and scopes, and only its Approve button leads on to the authorization server.
   */
  url: string;
  /** Identifies the pending flow (not the state itself): for the elicitation id and the audit. */
  id: string;
  /** When the link stops working (epoch ms). */
  expiresAt: number;
  upstream: UpstreamKey;
  /** The scopes the link asks for (what the caller already has plus what the tool needs). */
  scopes: string[];
}

/**
 * Pending connect flows shared by every instance (Redis), so the connect page and the browser's
 * callback can land on any of them. `handle` is a digest of the link's handle or of the state, never
 * either itself; `take` reads and deletes in one step (GETDEL), so a flow is approved once and
 * consumed once across all instances; `peek` reads without consuming (the page shown).
 */
export interface SharedFlows {
  put(handle: string, flow: string, ttlMs: number): Promise<void>;
  take(handle: string): Promise<string | undefined>;
  peek(handle: string): Promise<string | undefined>;
}

export type TokenOutcome = { token: string } | { connect: ConnectRequest };

/** Who is asking, for the state binding: the principal and the MCP client it calls through. */
export interface CallerIdentity {
  principal: Principal;
  /**
   * The MCP client: the OAuth client id of the caller's token where there is one, else the client's
   * declared name. A state minted for one client is refused for another.
   */
  client?: string;
}

/** What the inject stage and the surfaces call. Implemented by src/upstream/user-oauth.ts. */
export interface UserCredentials {
  /** True when the tool's upstream credential is per-user OAuth here. */
  handles(tool: Tool): boolean;
  /**
   * The caller's access token for the tool's scheme (refreshed first when near expiry), or where to
   * connect when there is no connection, it lacks the tool's scopes, or its refresh failed.
   */
  tokenFor(caller: CallerIdentity, tool: Tool): Promise<TokenOutcome>;
  list(filter?: ConnectionFilter): Promise<Connection[]>;
  /** Revokes (deletes) the caller's connection(s): one upstream, or all of them. Returns how many. */
  revoke(principal: string, upstream?: UpstreamKey): Promise<number>;
}
