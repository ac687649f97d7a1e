import { type CliGateway, startCliGateway } from './cli-gateway.js';
import { tempTree } from './helpers.js';
import { freePort } from './http.js';
import { es256, type SigningKey, serveJwks } from './jwt.js';
import {
  type OAuthServer,
  type OAuthServerOptions,
  petsOAuthSpec,
  startOAuthServer,
  startProtectedUpstream,
  userOAuthEnv,
  userOAuthPolicy,
} from './oauth-server.js';
import { ADMIN_TOKEN } from './shop.js';

export interface UserOAuthStack {
  as: OAuthServer;
  upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  jwks: Awaited<ReturnType<typeof serveJwks>>;
  /** Signs the callers' JWTs (`signJwt(key, …)`); the gateway trusts its public key. */
  key: SigningKey;
  gateway: CliGateway;
  /** The gateway's files: spec.json, warden.yaml, audit.jsonl, vault.json. */
  dir: string;
  close(): Promise<void>;
}

/**
 * Per-user OAuth end to end: a real oidc-provider, an upstream that accepts only its tokens, a JWKS
 * for the callers' JWTs, and the built CLI serving the pets spec over HTTP with `userOAuthPolicy`
 * (with the admin API when `admin` is set).
 */
export async function startUserOAuthStack(
  o: { admin?: boolean; server?: OAuthServerOptions; scopes?: readonly string[] } = {},
): Promise<UserOAuthStack> {
  const port = await freePort();
  const adminPort = o.admin ? await freePort() : undefined;
  const redirect = `http://127.0.0.1:${port}/oauth/callback`;
  const as = await startOAuthServer([redirect], o.server);
  const upstream = await startProtectedUpstream(as);
  const { privateKey, jwk } = await es256();
  const jwks = await serveJwks(jwk);
  const policy = userOAuthPolicy({ as, redirect, jwks: { url: jwks.url }, admin: o.admin });
  const dir = tempTree({ 'spec.json': petsOAuthSpec(upstream.url, o.scopes), 'warden.yaml': policy });
  const close = async () => {
    await upstream.close();
    await as.close();
    await jwks.close();
  };
  let gateway: CliGateway;
  try {
    gateway = await startCliGateway({
      dir,
      baseUrl: upstream.url,
      port,
      adminPort,
      logLevel: 'debug',
      env: { ...(o.admin ? { ADMIN_TOKEN } : {}), ...userOAuthEnv(as) },
    });
  } catch (e) {
    await close();
    throw e;
  }
  return {
    as,
    upstream,
    jwks,
    key: privateKey,
    gateway,
    dir,
    async close() {
      await gateway.stop();
      await close();
    },
  };
}
