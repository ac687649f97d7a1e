/**
 * How the caller was authenticated, recorded with every call (`auth` in the audit): the policy's
 * local principal (`stdio`), an API key, a JWT bearer token, or the anonymous caller the policy
 * allows. `none`: no authentication ran, so no scopes (a served request never gets there).
 */
export type AuthMethod = 'stdio' | 'api-key' | 'jwt' | 'anonymous' | 'none';

/** Who is calling: the one shape authentication produces and the pipeline and the audit receive. */
export interface Principal {
  /**
   * Namespaced by how the caller authenticated, so two methods never share an id (`principalIds` in
   * src/server/callers.ts, the only producer): `key:<id>`, `jwt:<issuer>#<sub>`, `stdio:<name>`,
   * `anonymous`. Confirmations, rate limits, alerts and the audit key on it as it is.
   */
  id: string;
  scopes: readonly string[];
  via: AuthMethod;
}

/**
 * The caller's own verified token, held beside (never inside) its Principal: the Principal is logged,
 * audited and shown; this is read only by token exchange (RFC 8693), which trades it at the caller's
 * identity provider and never forwards it. Weakly held, so it lives no longer than the request.
 */
const subjectTokens = new WeakMap<Principal, { token: string; expiresAt: number }>();

/** Called by authentication only, with a token it has just verified (`expiresAt`: its `exp`, in ms). */
export function holdSubjectToken(p: Principal, token: string, expiresAt: number): void {
  subjectTokens.set(p, { token, expiresAt });
}

/** The caller's verified token, or undefined (API keys, stdio and anonymous callers have none). */
export function subjectTokenOf(p: Principal): { token: string; expiresAt: number } | undefined {
  return subjectTokens.get(p);
}

/**
 * The OAuth client the caller's token was issued to (`client_id`, RFC 9068, else `azp`), held beside
 * the Principal like the subject token: an identity the caller's identity provider vouches for, so
 * per-client consent keys on it rather than on the name a client declares about itself.
 */
const tokenClients = new WeakMap<Principal, string>();

/** Called by authentication only, with a claim of a token it has just verified. */
export function holdTokenClient(p: Principal, clientId: string): void {
  tokenClients.set(p, clientId);
}

/** The OAuth client id of the caller's verified token, or undefined (no token, or no such claim). */
export function tokenClientOf(p: Principal): string | undefined {
  return tokenClients.get(p);
}
