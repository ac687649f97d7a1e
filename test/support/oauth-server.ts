import { createRemoteJWKSet, jwtVerify } from 'jose';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { jsonOk } from './helpers.js';
import { type Listening, listen } from './http.js';
import { ISSUER, RESOURCE } from './jwt.js';

/**
 * A real OAuth 2 authorization server (oidc-provider, in process on 127.0.0.1) with one confidential
 * client registered for the gateway, issuing JWT access tokens for one resource (the upstream). The
 * person's browser is played over HTTP by `authorize`: the gateway's connect page (approved as a
 * person would, same-origin with its CSRF token), then this server's login and consent as the named
 * user, with cookie jars as a browser would have.
 */
export interface OAuthServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The resource (audience) its access tokens are for. */
  resource: string;
  provider: Provider;
  /**
   * Plays the person's browser from a connect link (the gateway's `/oauth/connect` page) to the
   * callback: opens the page, presses Approve (a same-origin POST with the page's CSRF token), keeps
   * the binding cookie the gateway sets, follows on to this server, logs in as `user`, consents, and
   * returns the callback URL (with `code` and `state`) and the Cookie header the browser sends with
   * it, without following it: `openCallback(back)` does.
   */
  authorize(link: string, user: string): Promise<BrowserCallback>;
  /** This server's part alone: from an authorization URL, logs in as `user`, consents; the callback URL. */
  consentAt(authorizationUrl: string, user: string): Promise<URL>;
  /** How many token requests of `grantType` (e.g. `refresh_token`) the server granted so far. */
  grants(grantType: string): number;
  close(): Promise<void>;
}

export const RESOURCE_SCOPES = ['pets:read', 'pets:write', 'pets:admin'];

export interface OAuthServerOptions {
  /**
   * Serve oidc-provider's own login and consent pages (devInteractions) for a real browser to fill
   * in, instead of the screens `authorize` answers at once.
   */
  pages?: boolean;
  /** Lifetime of the access tokens it issues, in seconds (default 3600): short, to make the gateway refresh. */
  accessTokenTtl?: number;
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
  const accessTokenTtl = options.accessTokenTtl ?? 3600;
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
      AccessToken: accessTokenTtl,
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
          accessTokenTTL: accessTokenTtl,
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
  const granted = new Map<string, number>();
  provider.on('grant.success', (...args: unknown[]) => {
    const type = String((args[0] as KoaContextWithOIDC).oidc.params.grant_type);
    granted.set(type, (granted.get(type) ?? 0) + 1);
  });

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

  async function authorize(link: string, user: string): Promise<BrowserCallback> {
    const approved = await approveConnect(await openConnectPage(link));
    if (approved.status !== 303 || !approved.location || !approved.cookie)
      throw new Error(`the connect page refused the approval with ${approved.status}: ${approved.text}`);
    return { url: await consentAt(approved.location, user), cookie: approved.cookie };
  }

  async function consentAt(url: string, user: string): Promise<URL> {
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
    consentAt,
    grants: (grantType) => granted.get(grantType) ?? 0,
    close: server.close,
  };
}

/** Where the played browser ended: the callback URL and the Cookie header it sends there. */
export interface BrowserCallback {
  url: URL;
  /** `name=value` of the gateway's binding cookie, as the browser would send it to the callback. */
  cookie: string;
}

/** The gateway's connect page as a browser received it, with its form's fields. */
export interface ConnectPage {
  link: URL;
  status: number;
  headers: Headers;
  html: string;
  /** The form's hidden fields (`flow`, `csrf`) and where it posts; absent when the page has no form. */
  form?: { action: URL; flow: string; csrf: string };
}

/** GET the connect link as a browser would, and read its form. */
export async function openConnectPage(link: string | URL): Promise<ConnectPage> {
  const url = new URL(link);
  const res = await fetch(url, { redirect: 'manual' });
  const html = await res.text();
  const field = (name: string) =>
    new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html)?.[1];
  const action = /<form method="post" action="([^"]*)"/.exec(html)?.[1];
  const flow = field('flow');
  const csrf = field('csrf');
  const unescaped = (v: string) => v.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  return {
    link: url,
    status: res.status,
    headers: res.headers,
    html,
    ...(action !== undefined && flow !== undefined && csrf !== undefined
      ? { form: { action: new URL(unescaped(action), url), flow: unescaped(flow), csrf: unescaped(csrf) } }
      : {}),
  };
}

/** What pressing a button on the connect page led to. */
export interface ConnectAnswer {
  status: number;
  /** Where the gateway sent the browser (the authorization URL, on approval). */
  location?: string;
  /** The binding cookie it set, as `name=value` (what the browser would send back). */
  cookie?: string;
  /** Every Set-Cookie header, as received. */
  setCookies: string[];
  text: string;
}

/**
 * Presses Approve (or Cancel) on the page: a form POST from the gateway's own origin unless `origin`
 * says otherwise (`null`: no Origin header at all, as a non-browser client might send), with the
 * page's CSRF token unless `csrf` overrides it.
 */
export async function approveConnect(
  page: ConnectPage,
  o: {
    action?: 'approve' | 'cancel';
    origin?: string | null;
    fetchSite?: string;
    csrf?: string;
    flow?: string;
  } = {},
): Promise<ConnectAnswer> {
  if (!page.form) throw new Error(`the connect page has no form (${page.status}): ${page.html}`);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const origin = o.origin === undefined ? page.link.origin : o.origin;
  if (origin !== null) headers.origin = origin;
  if (o.fetchSite !== undefined) headers['sec-fetch-site'] = o.fetchSite;
  const res = await fetch(page.form.action, {
    method: 'POST',
    redirect: 'manual',
    headers,
    body: new URLSearchParams({
      flow: o.flow ?? page.form.flow,
      csrf: o.csrf ?? page.form.csrf,
      action: o.action ?? 'approve',
    }),
  });
  const setCookies = res.headers.getSetCookie();
  const bound = setCookies.find((c) => /^(__Host-)?mcp-warden-connect=/.test(c));
  const location = res.headers.get('location');
  return {
    status: res.status,
    ...(location !== null ? { location } : {}),
    ...(bound !== undefined ? { cookie: bound.split(';')[0]! } : {}),
    setCookies,
    text: await res.text(),
  };
}

/**
 * Follows the callback as the browser would: with its cookie (or another `cookie`, or none with
 * `null`), at its URL or another `url` (a replay elsewhere).
 */
export function openCallback(
  back: BrowserCallback,
  o: { url?: URL | string; cookie?: string | null } = {},
): Promise<Response> {
  const cookie = o.cookie === undefined ? back.cookie : o.cookie;
  return fetch(o.url ?? back.url, {
    redirect: 'manual',
    ...(cookie !== null ? { headers: { cookie } } : {}),
  });
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

export interface UserOAuthPolicy {
  as: OAuthServer;
  /** The gateway's callback, as registered with `as`. */
  redirect: string;
  /** JWT callers, verified with this key set (issuer `ISSUER` unless given). */
  jwks?: { url: string; issuer?: string };
  /** Lines after `version: 1`, before the callers (state, audit). */
  head?: string[];
  /** The admin API, its token from `ADMIN_TOKEN`. */
  admin?: boolean;
  /** Where the vault keeps connections (the embedded file unless given). */
  vaultStore?: 'postgres';
}

/**
 * The policy every per-user OAuth test serves: the `pets` credential connected per user through `as`
 * (client id and secret from `PETS_CLIENT_ID` / `PETS_CLIENT_SECRET`), the vault keyed by `VAULT_KEY`.
 */
export function userOAuthPolicy(o: UserOAuthPolicy): string {
  return [
    'version: 1',
    ...(o.head ?? []),
    ...(o.jwks
      ? [
          'callers:',
          `  resource: ${RESOURCE}`,
          '  jwt:',
          `    jwksUrl: ${o.jwks.url}`,
          `    issuer: ${o.jwks.issuer ?? ISSUER}`,
          '    algorithms: [ES256]',
        ]
      : []),
    ...(o.admin ? ['admin:', '  token: env:ADMIN_TOKEN'] : []),
    'vault:',
    '  keys: [env:VAULT_KEY]',
    ...(o.vaultStore ? [`  store: ${o.vaultStore}`] : []),
    'credentials:',
    '  pets:',
    '    scheme: petsAuth',
    '    dev:',
    '      userOAuth:',
    `        issuer: ${o.as.issuer}`,
    '        clientId: env:PETS_CLIENT_ID',
    '        clientSecret: env:PETS_CLIENT_SECRET',
    `        redirectUrl: ${o.redirect}`,
  ].join('\n');
}

/** The environment `userOAuthPolicy` reads (and the vault key, unless given). */
export const userOAuthEnv = (
  as: OAuthServer,
  vaultKey = 'a vault key of at least thirty-two characters!',
): Record<string, string> => ({
  VAULT_KEY: vaultKey,
  PETS_CLIENT_ID: as.clientId,
  PETS_CLIENT_SECRET: as.clientSecret,
});
