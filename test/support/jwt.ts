import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { listen } from './http.js';

/** The protected resource and the issuer the JWT tests' policies name. */
export const RESOURCE = 'https://mcp.example.test/mcp';
export const ISSUER = 'https://idp.example.test/';

export type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** An ES256 key pair and its public key as a JWK with kid `k1` (plus `extra` members). */
export async function es256(extra: Partial<JWK> = {}): Promise<{ privateKey: SigningKey; jwk: JWK }> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return {
    privateKey: pair.privateKey,
    jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', ...extra },
  };
}

/** A JWKS endpoint serving `jwk`, counting how often it was fetched. */
export async function serveJwks(jwk: JWK): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  let hits = 0;
  const server = await listen((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  return {
    url: `${server.url}/jwks.json`,
    get hits() {
      return hits;
    },
    close: server.close,
  };
}

export interface JwtOptions {
  /** The `scope` claim (default tools:read). */
  scope?: string;
  claims?: Record<string, unknown>;
  /** Protected header members beside alg ES256 and kid k1. */
  header?: Record<string, unknown>;
  issuer?: string;
  audience?: string | string[];
  subject?: string;
  /** `exp`: a span from now ('5m', the default) or seconds since the epoch. */
  expires?: string | number;
  notBefore?: string;
  issuedAt?: boolean;
}

/** A signed ES256 JWT for RESOURCE from ISSUER, changed by `o` where a test needs it wrong. */
export function signJwt(key: SigningKey, o: JwtOptions = {}): Promise<string> {
  let jwt = new SignJWT({ scope: o.scope ?? 'tools:read', ...o.claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', ...o.header })
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? RESOURCE)
    .setSubject(o.subject ?? 'u1');
  if (o.issuedAt) jwt = jwt.setIssuedAt();
  if (o.notBefore) jwt = jwt.setNotBefore(o.notBefore);
  return jwt.setExpirationTime(o.expires ?? '5m').sign(key);
}
