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
