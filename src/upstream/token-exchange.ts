import type * as OAuth from 'oauth4webapi';
import { WardenError } from '../errors/index.js';
import { readSecretRef } from '../lib/secret-ref.js';
import { type Principal, subjectTokenOf } from '../model/principal.js';
import type { TokenExchangeSource } from '../policy/schema.js';

/** RFC 8693 names. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * oauth4webapi, loaded by the first exchange rather than by every start (issue 22: credentials.ts,
 * which every start loads, imports this module). A failed load is not kept: the next exchange tries
 * again, and the one that failed is refused.
 */
let loadingOAuth: Promise<typeof OAuth> | undefined;
function loadOAuth(): Promise<typeof OAuth> {
  loadingOAuth ??= import('oauth4webapi').catch((e: unknown) => {
    loadingOAuth = undefined;
    throw e;
  });
  return loadingOAuth;
}

/** An exchanged token is renewed this long before it (or the caller's own token) expires. */
const EARLY_MS = 30_000;
/** Exchanged tokens kept at once; the oldest go first (each caller × audience × scope set is one). */
const MAX_CACHED = 10_000;

export interface TokenExchanger {
  /** A token for the upstream acting as `caller`, with `scopes` (the policy's, else the tool's). */
  tokenFor(caller: Principal, scopes: readonly string[]): Promise<string>;
}

/**
 * Token exchange (RFC 8693) at the callers' identity provider: the caller's verified token (the
 * subject) is traded for one whose audience is the upstream and whose scopes are the tool's. The
 * caller's own token is sent only to that token endpoint, never upstream. Results are cached per
 * caller, audience and scope set until shortly before the earlier of the two expiries (an exchanged
 * token never outlives the caller's authentication); concurrent calls share one request. Any
 * failure is a refusal naming the step, never the provider's words or a token.
 */
export function createTokenExchanger(
  cfg: TokenExchangeSource,
  label: string,
  env: NodeJS.ProcessEnv,
  onSecret: (values: string[]) => void,
): TokenExchanger | string {
  const clientId = readSecretRef(cfg.clientId, env);
  const clientSecret = readSecretRef(cfg.clientSecret, env);
  if (clientId === undefined) return `${label}: ${cfg.clientId} is not set`;
  if (clientSecret === undefined) return `${label}: ${cfg.clientSecret} is not set`;
  onSecret([clientSecret, `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`]);
  const url = new URL(cfg.tokenUrl);
  // Only the token endpoint is used: no discovery, so the issuer is nominal (no ID token is asked for).
  const as: OAuth.AuthorizationServer = { issuer: url.origin, token_endpoint: url.href };
  const client: OAuth.Client = { client_id: clientId };
  const secret: string = clientSecret;
  const cache = new Map<string, { token: Promise<string>; expires: number }>();

  return {
    tokenFor(caller, opScopes) {
      const subject = subjectTokenOf(caller);
      if (!subject)
        return Promise.reject(
          new WardenError(
            'TOKEN_EXCHANGE_REFUSED',
            `${label} acts as the caller by token exchange, which needs a caller signed in with a token from the identity provider (not an API key or a local session).`,
          ),
        );
      const scopes = [...new Set(cfg.scopes ?? opScopes)].sort();
      const key = `${caller.id}\0${cfg.audience}\0${scopes.join(' ')}`;
      const hit = cache.get(key);
      const now = Date.now();
      if (hit && hit.expires > now) return hit.token;
      cache.delete(key);
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
      const entry = { token: exchange(subject.token, scopes), expires: subject.expiresAt - EARLY_MS };
      cache.set(key, entry);
      entry.token.then(
        (t) => onSecret([t]),
        () => cache.delete(key),
      );
      return entry.token;

      async function exchange(subjectToken: string, want: string[]): Promise<string> {
        const params = new URLSearchParams({
          subject_token: subjectToken,
          subject_token_type: ACCESS_TOKEN_TYPE,
          requested_token_type: ACCESS_TOKEN_TYPE,
          audience: cfg.audience,
        });
        if (want.length) params.set('scope', want.join(' '));
        let res: OAuth.TokenEndpointResponse;
        let oauth: typeof OAuth | undefined;
        try {
          oauth = await loadOAuth();
          const auth = oauth.ClientSecretBasic(secret);
          const response = await oauth.genericTokenEndpointRequest(
            as,
            client,
            auth,
            TOKEN_EXCHANGE_GRANT,
            params,
            { signal: AbortSignal.timeout(10_000), [oauth.allowInsecureRequests]: url.protocol === 'http:' },
          );
          res = await oauth.processGenericTokenEndpointResponse(as, client, response);
        } catch (e) {
          throw refusal(e, oauth);
        }
        if (!/^[\x21-\x7e]+$/.test(res.access_token))
          throw new WardenError(
            'TOKEN_EXCHANGE_REFUSED',
            `${label}: the identity provider returned a token that cannot be sent in a request.`,
          );
        const ttl = typeof res.expires_in === 'number' && res.expires_in > 0 ? res.expires_in : 300;
        entry.expires = Math.min(entry.expires, Date.now() + ttl * 1000 - EARLY_MS);
        return res.access_token;
      }
    },
  };

  function refusal(e: unknown, oauth: typeof OAuth | undefined): WardenError {
    if (oauth === undefined)
      return new WardenError(
        'TOKEN_EXCHANGE_REFUSED',
        // A rejection may be anything, not an Error: only a short, printable code is shown.
        `${label}: the token exchange client could not be loaded (${loadCode(e)}).`,
      );
    // The provider's `error` code is a fixed vocabulary (RFC 6749 §5.2) and safe to show; its
    // description is not (it may quote the subject token's claims).
    if (e instanceof oauth.ResponseBodyError)
      return new WardenError(
        'TOKEN_EXCHANGE_REFUSED',
        `${label}: the identity provider refused to exchange the caller's token (${/^[\x20-\x7e]{1,64}$/.test(e.error) ? e.error : 'error'}, HTTP ${e.status}).`,
      );
    return new WardenError(
      'TOKEN_EXCHANGE_REFUSED',
      `${label}: the identity provider's token endpoint could not be reached or answered unusably.`,
    );
  }
}

function loadCode(e: unknown): string {
  const code = e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'error';
}
