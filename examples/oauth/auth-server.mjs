// The per-user OAuth demo's authorization server (`npm run demo:oauth`): a real OAuth 2 / OpenID
// Connect server (oidc-provider, a devDependency: the demo runs from a clone) on 127.0.0.1, with one
// confidential client (mcp-warden), JWT access tokens for the pet store, refresh tokens, and its own
// two small pages: sign in as any name (no password), then allow the scopes asked for.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

/** The scopes of the pet store's API; a link asks only for those its tool needs. */
export const PET_SCOPES = ['pets:read', 'pets:write'];

const esc = (s) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

const page = (res, status, title, body) => {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.4rem .6rem}button{cursor:pointer}.note{color:#555}</style></head>
<body><p class="note">Demo authorization server (local, for the mcp-warden demo)</p><h1>${esc(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
};

const formBody = async (req) => {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(text);
};

/**
 * oidc-provider's storage, in memory (the demo's grants end with the run; oidc-provider's own memory
 * adapter does the same but warns about it on every start). Models: sessions, grants, codes, tokens…
 */
function memoryAdapter() {
  const items = new Map();
  const expired = (e) => e && e.expiresAt !== undefined && e.expiresAt < Date.now();
  const get = (key) => {
    const e = items.get(key);
    if (expired(e)) items.delete(key);
    return expired(e) ? undefined : e?.value;
  };
  const set = (key, value, expiresIn) =>
    items.set(key, { value, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) });
  return class {
    constructor(model) {
      this.model = model;
    }
    key(id) {
      return `${this.model}:${id}`;
    }
    async upsert(id, payload, expiresIn) {
      set(this.key(id), payload, expiresIn);
      if (this.model === 'Session') set(`sessionUid:${payload.uid}`, id, expiresIn);
      if (payload.grantId)
        set(`grant:${payload.grantId}`, [...(get(`grant:${payload.grantId}`) ?? []), this.key(id)]);
    }
    async find(id) {
      return get(this.key(id));
    }
    async findByUid(uid) {
      return this.find(get(`sessionUid:${uid}`));
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id) {
      const e = get(this.key(id));
      if (e) e.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      items.delete(this.key(id));
    }
    async revokeByGrantId(grantId) {
      for (const key of get(`grant:${grantId}`) ?? []) items.delete(key);
      items.delete(`grant:${grantId}`);
    }
  };
}

/** A name anyone may sign in as: letters, digits and . _ - (it becomes the token's `sub`). */
const USER = /^[A-Za-z0-9._-]{1,40}$/;

/**
 * Starts the authorization server on `port` (0: any free one). `redirectUris` are the gateway's
 * callback URLs; `resource` is the pet store's identifier, the audience of its access tokens.
 */
export async function startAuthServer({
  port = 0,
  host = '127.0.0.1',
  clientId = 'mcp-warden-demo',
  clientSecret = 'demo-oauth-client-secret-0123456789',
  redirectUris,
  resource = 'urn:mcp-warden-demo:pets',
} = {}) {
  let provider;
  const server = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/interaction/')) {
      interaction(req, res).catch(() =>
        page(res, 400, 'Something went wrong', '<p>Start again from the link.</p>'),
      );
      return;
    }
    provider.callback()(req, res);
  });
  // A bind failure (port taken) rejects, so the demo can name the port instead of crashing.
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const issuer = `http://${host}:${server.address().port}`;
  // A fresh signing key per run: tokens of an earlier run are not accepted by this one.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  provider = new Provider(issuer, {
    adapter: memoryAdapter(),
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
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'demo', use: 'sig', alg: 'RS256' }] },
    scopes: ['openid', 'offline_access'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: {
      AccessToken: 900,
      AuthorizationCode: 60,
      Grant: 86400,
      Interaction: 600,
      RefreshToken: 86400,
      Session: 86400,
    },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: PET_SCOPES.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 900,
        }),
      },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
  });
  provider.proxy = false;

  /** The two pages: sign in (prompt `login`), then allow what the client asks for (prompt `consent`). */
  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { uid, prompt, params } = details;
    const action = `/interaction/${uid}`;
    if (prompt.name === 'login') {
      if (req.method === 'POST') {
        const name = (await formBody(req)).get('name')?.trim() ?? '';
        if (USER.test(name)) {
          await provider.interactionFinished(
            req,
            res,
            { login: { accountId: name } },
            { mergeWithLastSubmission: false },
          );
          return;
        }
        return loginPage(res, action, 'Use letters, digits, dots, dashes or underscores (up to 40).');
      }
      return loginPage(res, action);
    }
    const missing = prompt.details;
    const asked = [
      ...(missing.missingOIDCScope ?? []),
      ...Object.values(missing.missingResourceScopes ?? {}).flat(),
    ];
    if (req.method !== 'POST')
      return page(
        res,
        200,
        'Allow access?',
        `<p>Signed in as <b>${esc(details.session.accountId)}</b>.</p>
<p><b>${esc(params.client_id)}</b> asks to use the pet store as you, with the scopes:</p>
<ul>${asked.map((s) => `<li><code>${esc(s)}</code></li>`).join('')}</ul>
<form method="post" action="${esc(action)}"><button type="submit" name="allow" value="yes">Allow</button></form>`,
      );
    await formBody(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    for (const [r, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
      grant.addResourceScope(r, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const loginPage = (res, action, problem) =>
    page(
      res,
      200,
      'Sign in',
      `<p>Any name signs in (no password): you act at the pet store as that person.</p>
${problem ? `<p role="alert">${esc(problem)}</p>` : ''}
<form method="post" action="${esc(action)}"><label>Name <input name="name" autofocus required placeholder="alice"></label>
<button type="submit">Sign in</button></form>`,
    );

  return {
    issuer,
    clientId,
    clientSecret,
    resource,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
