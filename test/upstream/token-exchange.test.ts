import type { IncomingMessage } from 'node:http';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import Provider, { type AccessToken, errors as oidcErrors } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../src/upstream/token-exchange.js';
import { codeOf, startTestGateway, type TestGateway, textOf } from '../support/gateway.js';
import { minimalSpec } from '../support/helpers.js';
import { type Listening, listen } from '../support/http.js';
import { es256, ISSUER, RESOURCE, type SigningKey, serveJwks, signJwt } from '../support/jwt.js';
import { expectAudited, readAudit } from '../support/wait.js';

const AUDIENCE = 'https://orders.upstream.test';
const CLIENT = { id: 'mcp-warden-gw', secret: 'gw-client-secret-0001' };
const API_KEY = 'mwk_exchange-test-key-0000000000000000000000';

/** Two reads on one OAuth2 scheme, each with its own scopes (what the exchanged token must carry). */
const SPEC = minimalSpec(
  {
    '/orders': {
      get: {
        operationId: 'listOrders',
        security: [{ idp: ['orders:read'] }],
        responses: {
          '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
    },
    '/profile': {
      get: {
        operationId: 'getProfile',
        security: [{ idp: ['orders:read', 'profile:read'] }],
        responses: {
          '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
    },
  },
  {
    components: {
      securitySchemes: {
        idp: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: 'https://idp.example.test/token',
              scopes: { 'orders:read': '', 'profile:read': '' },
            },
          },
        },
      },
    },
  },
);

/**
 * The callers' identity provider: a real oidc-provider with the RFC 8693 grant registered. It
 * accepts a subject token it issued (here: the callers' JWTs, signed with the key the gateway trusts)
 * from the gateway's client only, and mints a JWT access token for the requested audience and scopes.
 */
async function startIdp(callerJwks: string) {
  const signing = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(signing.privateKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  const seen: Array<{ subjectToken: string; audience: string; scope: string }> = [];
  let ttl = 600;
  const trusted = createRemoteJWKSet(new URL(callerJwks));
  // The issuer is known only once listening: a placeholder server, then the provider behind it.
  let provider!: Provider;
  const server = await listen((req, res) => provider.callback()(req, res));
  const issuer = server.url;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        grant_types: [TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        // Its only signing key is ES256 (the default, RS256, would make the client invalid).
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['token-exchange-test-cookie-key'] },
    features: { devInteractions: { enabled: false } },
    // The resource server's own TTL (set per exchange below) decides.
    ttl: {
      AccessToken: (_ctx: unknown, token: AccessToken) => token.resourceServer?.accessTokenTTL ?? 600,
    },
    scopes: ['orders:read', 'profile:read'],
  });
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx, next) => {
      const p = ctx.oidc.params as Record<string, string | undefined>;
      if (p.subject_token_type !== ACCESS_TOKEN_TYPE)
        throw new oidcErrors.InvalidRequest('subject_token_type');
      seen.push({ subjectToken: p.subject_token!, audience: p.audience!, scope: p.scope ?? '' });
      let sub: string;
      try {
        ({
          payload: { sub = '' },
        } = await jwtVerify(p.subject_token!, trusted, { issuer: ISSUER, audience: RESOURCE }));
      } catch {
        throw new oidcErrors.InvalidGrant('subject token not valid');
      }
      if (sub === 'mallory') throw new oidcErrors.InvalidGrant('this user may not use the upstream');
      if (p.audience !== AUDIENCE) throw new oidcErrors.InvalidTarget('unknown audience');
      const at = new ctx.oidc.provider.AccessToken({
        accountId: sub,
        client: ctx.oidc.client!,
        scope: p.scope,
        gty: 'token-exchange',
      });
      at.resourceServer = {
        audience: AUDIENCE,
        scope: 'orders:read profile:read',
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'ES256' } },
      };
      const value = await at.save();
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: at.expiration,
        ...(at.scope ? { scope: at.scope } : {}),
      };
      await next();
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'resource'],
  );
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    jwksUrl: `${issuer}/jwks`,
    seen,
    setTtl: (s: number) => {
      ttl = s;
    },
    close: server.close,
  };
}

/** The upstream: accepts only the IdP's tokens minted for it, and records whom each call acted as. */
async function startUpstream(idpIssuer: string, idpJwks: string) {
  const jwks = createRemoteJWKSet(new URL(idpJwks));
  const calls: Array<{ authorization: string; sub?: string; scope?: string; aud?: unknown }> = [];
  const server = await listen(async (req: IncomingMessage, res) => {
    const authorization = req.headers.authorization ?? '';
    try {
      const { payload } = await jwtVerify(authorization.replace(/^Bearer /, ''), jwks, {
        issuer: idpIssuer,
        audience: AUDIENCE,
      });
      calls.push({ authorization, sub: payload.sub, scope: payload.scope as string, aud: payload.aud });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ actingAs: payload.sub, path: req.url }));
    } catch {
      calls.push({ authorization });
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
    }
  });
  return { ...server, calls };
}

describe('token exchange (RFC 8693) end to end against oidc-provider', () => {
  let callerKey: SigningKey;
  let callerJwks: Awaited<ReturnType<typeof serveJwks>>;
  let idp: Awaited<ReturnType<typeof startIdp>>;
  let upstream: Listening & {
    calls: Array<{ authorization: string; sub?: string; scope?: string; aud?: unknown }>;
  };
  let fx: TestGateway;

  beforeAll(async () => {
    const k = await es256({ use: 'sig' });
    callerKey = k.privateKey;
    callerJwks = await serveJwks(k.jwk);
    idp = await startIdp(callerJwks.url);
    upstream = await startUpstream(idp.issuer, idp.jwksUrl);
    const policy = [
      'version: 1',
      'callers:',
      `  resource: ${RESOURCE}`,
      '  apiKeys:',
      `    - { id: robot, hash: "${hashKey(API_KEY)}", scopes: [tools:read] }`,
      '  jwt:',
      `    jwksUrl: ${callerJwks.url}`,
      `    issuer: ${ISSUER}`,
      '    algorithms: [ES256]',
      'credentials:',
      '  orders:',
      '    scheme: idp',
      '    dev:',
      '      tokenExchange:',
      `        tokenUrl: ${idp.tokenUrl}`,
      '        clientId: env:TX_CLIENT_ID',
      '        clientSecret: env:TX_CLIENT_SECRET',
      `        audience: ${AUDIENCE}`,
    ].join('\n');
    fx = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.url,
      policy,
      env: { TX_CLIENT_ID: CLIENT.id, TX_CLIENT_SECRET: CLIENT.secret },
    });
  });
  afterAll(async () => {
    await fx?.close();
    await upstream?.close();
    await idp?.close();
    await callerJwks?.close();
  });

  const jwtFor = (subject: string) => signJwt(callerKey, { subject, scope: 'tools:read' });
  const call = async (token: string, name: string) => {
    const client = await fx.connect({ token });
    return client.callTool({ name, arguments: {} }) as Promise<{
      content: Array<{ type: string; text: string }>;
      isError?: boolean;
      structuredContent?: Record<string, unknown>;
    }>;
  };

  it("acts upstream as each caller, with the tool's scopes and the upstream's audience, never the caller's token", async () => {
    const alice = await jwtFor('alice');
    const bob = await jwtFor('bob');
    const seenBefore = idp.seen.length;
    const callsBefore = upstream.calls.length;

    const a = await call(alice, 'listOrders');
    expect(a.isError).toBeFalsy();
    expect(textOf(a)).toContain('"actingAs":"alice"');
    const b = await call(bob, 'getProfile');
    expect(b.isError).toBeFalsy();
    expect(textOf(b)).toContain('"actingAs":"bob"');

    const calls = upstream.calls.slice(callsBefore);
    expect(calls.map((c) => [c.sub, c.scope, c.aud])).toEqual([
      ['alice', 'orders:read', AUDIENCE],
      ['bob', 'orders:read profile:read', AUDIENCE],
    ]);
    // The callers' own tokens went to their identity provider only.
    for (const c of calls) expect([`Bearer ${alice}`, `Bearer ${bob}`]).not.toContain(c.authorization);
    expect(idp.seen.slice(seenBefore)).toEqual([
      { subjectToken: alice, audience: AUDIENCE, scope: 'orders:read' },
      { subjectToken: bob, audience: AUDIENCE, scope: 'orders:read profile:read' },
    ]);

    // The audit says on whose behalf each call was made, and never holds a token.
    await expectAudited(
      fx.auditFile,
      {
        tool: 'listOrders',
        outcome: 'ok',
        onBehalfOf: { principal: `jwt:${ISSUER}#alice`, credential: 'tokenExchange' },
      },
      {
        tool: 'getProfile',
        outcome: 'ok',
        onBehalfOf: { principal: `jwt:${ISSUER}#bob`, credential: 'tokenExchange' },
      },
    );
    const audit = JSON.stringify(readAudit(fx.auditFile));
    for (const secret of [alice, bob, ...calls.map((c) => c.authorization.slice(7)), CLIENT.secret])
      expect(audit).not.toContain(secret);
  });

  it('reuses an exchanged token per caller and scope set until it expires', async () => {
    const carol = await jwtFor('carol');
    const before = idp.seen.length;
    await call(carol, 'listOrders');
    await call(carol, 'listOrders');
    // Same caller, same audience and scopes: one exchange.
    expect(idp.seen.length - before).toBe(1);
    // Another scope set is another token.
    await call(carol, 'getProfile');
    expect(idp.seen.length - before).toBe(2);
    // Another caller never gets carol's token.
    await call(await jwtFor('dave'), 'listOrders');
    expect(idp.seen.length - before).toBe(3);
    expect(upstream.calls.at(-1)?.sub).toBe('dave');
  });

  it('exchanges again once the exchanged token is (about to be) expired', async () => {
    // A token that lives only as long as the renewal margin is stale as soon as it arrives.
    idp.setTtl(30);
    try {
      const erin = await jwtFor('erin');
      const before = idp.seen.length;
      await call(erin, 'listOrders');
      await call(erin, 'listOrders');
      expect(idp.seen.length - before).toBe(2);
      expect(upstream.calls.slice(-2).map((c) => c.sub)).toEqual(['erin', 'erin']);
    } finally {
      idp.setTtl(600);
    }
  });

  it('refuses the call clearly when the identity provider refuses the exchange, without reaching the upstream', async () => {
    const mallory = await jwtFor('mallory');
    const callsBefore = upstream.calls.length;
    const r = await call(mallory, 'listOrders');
    expect(r.isError).toBe(true);
    expect(codeOf(r)).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(textOf(r)).toContain('invalid_grant');
    // The provider's own description is not repeated, nor any token.
    expect(textOf(r)).not.toContain('this user may not');
    expect(textOf(r)).not.toContain(mallory);
    expect(upstream.calls.length).toBe(callsBefore);
    await expectAudited(fx.auditFile, {
      tool: 'listOrders',
      code: 'TOKEN_EXCHANGE_REFUSED',
      principal: `jwt:${ISSUER}#mallory`,
    });
  });

  it('refuses a caller that has no token to exchange (an API key)', async () => {
    const callsBefore = upstream.calls.length;
    const r = await call(API_KEY, 'listOrders');
    expect(codeOf(r)).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(textOf(r)).toContain('not an API key');
    expect(upstream.calls.length).toBe(callsBefore);
  });

  it('refuses when the token endpoint cannot be reached', async () => {
    const { loadCredentials } = await import('../../src/upstream/credentials.js');
    const { catalogOf } = await import('../support/helpers.js');
    const { parsePolicy } = await import('../../src/policy/load.js');
    const dead = await listen(() => {});
    const deadUrl = dead.url;
    await dead.close();
    const doc = parsePolicy(
      `version: 1\ncredentials:\n  o:\n    scheme: idp\n    dev: { tokenExchange: { tokenUrl: "${deadUrl}/token", clientId: env:C, clientSecret: env:S, audience: x } }\n`,
      'w.yaml',
    ).doc;
    const catalog = await catalogOf(SPEC);
    const set = loadCredentials({
      tools: catalog.tools.map((t) => ({ tool: t })),
      defs: doc.credentials!,
      env: { C: 'c', S: 'secret-0001' },
    });
    const held = set.forTool(catalog.tools[0]!)!.creds[0]!;
    expect(held.cred.kind).toBe('tokenExchange');
    const caller = { id: 'jwt:x#u', scopes: [], via: 'jwt' as const };
    const { holdSubjectToken } = await import('../../src/model/principal.js');
    holdSubjectToken(caller, 'subject-token-0001', Date.now() + 60_000);
    await expect(Promise.resolve(held.cred.wireValue(held.scopes, caller))).rejects.toMatchObject({
      code: 'TOKEN_EXCHANGE_REFUSED',
      message: expect.stringContaining('could not be reached'),
    });
  });
});
