import { createRemoteJWKSet, jwtVerify } from 'jose';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { jsonOk } from './helpers.js';
import { type Listening, listen } from './http.js';

/**
 * A real OAuth 2 authorization server (oidc-provider, in process on 127.0.0.1) with one confidential
 * client registered for the gateway, issuing JWT access tokens for one resource (the upstream). The
 * consent step is driven over HTTP by `authorize`, acting as the named user, with a cookie jar as a
 * browser would have.
 */
export interface OAuthServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The resource (audience) its access tokens are for. */
  resource: string;
  provider: Provider;
  /**
   * Plays the browser: follows the authorization URL, logs in as `user`, consents, and returns the
   * redirect back to the client (the callback URL with `code` and `state`), without following it.
   */
  authorize(url: string, user: string): Promise<URL>;
  close(): Promise<void>;
}

export const RESOURCE_SCOPES = ['pets:read', 'pets:write', 'pets:admin'];

export interface OAuthServerOptions {
  /**
   * Serve oidc-provider's own login and consent pages (devInteractions) for a real browser to fill
   * in, instead of the screens `authorize` answers at once.
   */
  pages?: boolean;
}

export async function startOAuthServer(
  redirectUris: string[],
  options: OAuthServerOptions = {},
): Promise<OAuthServer> {
  const clientId = 'mcp-warden';
  const clientSecret = 'client-secret-for-the-gateway-0123456789';
  let provider: Provider | undefined;
  const server = await listen((req, res) => {
    if (!options.pages && (req.url ?? '').startsWith('/interaction/')) void interaction(req, res);
    else provider!.callback()(req, res);
  });
  const issuer = server.url;
  const resource = 'https://upstream.example.test/';
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    scopes: ['openid', 'offline_access'],
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      RefreshToken: 86400,
      Session: 3600,
    },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: options.pages === true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: RESOURCE_SCOPES.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
        }),
      },
    },
    issueRefreshToken: async (_ctx: KoaContextWithOIDC, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx: KoaContextWithOIDC, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    ...(options.pages
      ? {}
      : { interactions: { url: (_ctx: KoaContextWithOIDC, i) => `/interaction/${i.uid}` } }),
  });
  provider.proxy = false;

  // The login and consent screens, answered at once: `as` names the user who logs in.
  async function interaction(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) {
    try {
      const user = new URL(req.url!, issuer).searchParams.get('as') ?? 'nobody';
      const details = await provider!.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider!.interactionFinished(
          req,
          res,
          { login: { accountId: user } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      const grant = details.grantId
        ? (await provider!.Grant.find(details.grantId))!
        : new provider!.Grant({ accountId: details.session!.accountId, clientId });
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      for (const [r, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
        grant.addResourceScope(r, scopes.join(' '));
      const grantId = await grant.save();
      await provider!.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  }

  async function authorize(url: string, user: string): Promise<URL> {
    const jar = new Map<string, string>();
    let next = url;
    for (let hop = 0; hop < 12; hop++) {
      const target = new URL(next, issuer);
      if (target.origin !== issuer) return target;
      if (target.pathname.startsWith('/interaction/')) target.searchParams.set('as', user);
      const res = await fetch(target, {
        redirect: 'manual',
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq);
        const value = pair!.slice(eq + 1);
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name);
        else jar.set(name, value);
      }
      const location = res.headers.get('location');
      if (!location)
        throw new Error(
          `authorization stopped at ${target.pathname} with ${res.status}: ${await res.text()}`,
        );
      next = location;
    }
    throw new Error('too many redirects');
  }

  return {
    issuer,
    clientId,
    clientSecret,
    resource,
    provider,
    authorize,
    close: server.close,
  };
}

/** One call the upstream served: as whom, with which scopes, with which token. */
export interface ActedAs {
  sub: string;
  scopes: string[];
  token: string;
}

/**
 * An upstream API that accepts only the authorization server's access tokens for its resource (JWT,
 * verified against the server's JWKS) and records whom each call acted as.
 */
export async function startProtectedUpstream(as: OAuthServer): Promise<Listening & { calls: ActedAs[] }> {
  const jwks = createRemoteJWKSet(new URL(`${as.issuer}/jwks`));
  const calls: ActedAs[] = [];
  const server = await listen(async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    try {
      if (!token) throw new Error('no token');
      const { payload } = await jwtVerify(token, jwks, { issuer: as.issuer, audience: as.resource });
      const scopes = String(payload.scope ?? '')
        .split(' ')
        .filter(Boolean);
      calls.push({ sub: String(payload.sub), scopes, token });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ sub: payload.sub, path: req.url }));
    } catch {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
    }
  });
  return Object.assign(server, { calls });
}

/**
 * The pet store's OpenAPI spec as the per-user OAuth tests serve it: one `petsAuth` authorization-code
 * scheme declaring `scopes`, and `listPets` needing only `pets:read` (so a link that asks for more
 * than the tool needs shows).
 */
export const petsOAuthSpec = (base: string, scopes: readonly string[] = RESOURCE_SCOPES) => ({
  openapi: '3.0.3',
  info: { title: 'Pets', version: '1' },
  servers: [{ url: base }],
  components: {
    securitySchemes: {
      petsAuth: {
        type: 'oauth2',
        flows: {
          authorizationCode: {
            authorizationUrl: `${base}/auth`,
            tokenUrl: `${base}/token`,
            scopes: Object.fromEntries(scopes.map((s) => [s, s.slice('pets:'.length)])),
          },
        },
      },
    },
  },
  paths: {
    '/pets': {
      get: { operationId: 'listPets', security: [{ petsAuth: ['pets:read'] }], responses: jsonOk() },
    },
  },
});
