import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definitionHash } from '../../src/control/pins.js';
import { holdSubjectToken, type Principal } from '../../src/model/principal.js';
import { parsePolicy } from '../../src/policy/load.js';
import { type LoadedApi, loadApi } from '../../src/server/served-api.js';
import { authorizationServer, specSchemeTable } from '../../src/server/user-credentials.js';
import { loadCredentials } from '../../src/upstream/credentials.js';
import { createTokenExchanger } from '../../src/upstream/token-exchange.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { catalogOf, jsonOk, minimalSpec, tempTree } from '../support/helpers.js';
import { freePort, listen } from '../support/http.js';
import {
  type OAuthServer,
  openCallback,
  petsOAuthSpec,
  startOAuthServer,
  startProtectedUpstream,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';

const WHAT = 'credentials.pets.userOAuth';

async function loaded(spec: object, baseUrl?: string): Promise<LoadedApi> {
  const dir = tempTree({ 'spec.json': spec });
  return loadApi({ spec: join(dir, 'spec.json'), ...(baseUrl !== undefined ? { baseUrl } : {}) });
}

const setOf = (served: LoadedApi, name?: string) => ({
  parts: [
    {
      member: {
        ...(name !== undefined ? { name } : {}),
        prefix: name ?? '',
        required: true,
        source: { spec: 'spec.json' },
      },
      served,
    },
  ],
});

/** One operation per scheme: relative authorizationCode URLs, an OpenID Connect scheme, client credentials only. */
const SCHEMES_SPEC = minimalSpec(
  {
    '/a': { get: { operationId: 'a', security: [{ code: ['r'] }], responses: jsonOk() } },
    '/b': { get: { operationId: 'b', security: [{ oidc: [] }], responses: jsonOk() } },
    '/c': { get: { operationId: 'c', security: [{ machine: [] }], responses: jsonOk() } },
  },
  {
    servers: [{ url: 'https://api.test/v1' }],
    components: {
      securitySchemes: {
        code: {
          type: 'oauth2',
          flows: {
            authorizationCode: {
              authorizationUrl: '/oauth/authorize',
              tokenUrl: 'oauth/token',
              refreshUrl: 'https://idp.test/refresh',
              scopes: { r: '' },
            },
          },
        },
        oidc: {
          type: 'openIdConnect',
          openIdConnectUrl: 'https://id.test/realms/x/.well-known/openid-configuration',
        },
        machine: {
          type: 'oauth2',
          flows: { clientCredentials: { tokenUrl: 'https://idp.test/token', scopes: {} } },
        },
      },
    },
  },
);

describe("the spec's OAuth URLs as per-user OAuth's defaults", () => {
  it('keeps each scheme’s authorizationCode URLs and openIdConnectUrl per API, resolved against its base URL', async () => {
    const table = specSchemeTable(setOf(await loaded(SCHEMES_SPEC)));
    expect(table.get('/code')).toEqual({
      urls: {
        authorizationUrl: '/oauth/authorize',
        tokenUrl: 'oauth/token',
        refreshUrl: 'https://idp.test/refresh',
      },
      base: 'https://api.test/v1/',
    });
    expect(authorizationServer({}, table.get('/code'), WHAT, 'code')).toEqual({
      authorizationUrl: 'https://api.test/oauth/authorize',
      tokenUrl: 'https://api.test/v1/oauth/token',
      refreshUrl: 'https://idp.test/refresh',
    });
    // --base-url is the API's base URL: relative URLs follow it.
    const moved = specSchemeTable(setOf(await loaded(SCHEMES_SPEC, 'http://127.0.0.1:9/base'), 'crm'));
    expect(moved.has('/code')).toBe(false);
    expect(authorizationServer({}, moved.get('crm/code'), WHAT, 'code')).toMatchObject({
      tokenUrl: 'http://127.0.0.1:9/base/oauth/token',
    });
    // An openIdConnect scheme: discovery from the issuer its URL names.
    expect(authorizationServer({}, table.get('/oidc'), WHAT, 'oidc')).toEqual({
      issuer: 'https://id.test/realms/x',
    });
    expect(table.has('/machine')).toBe(false);
  });

  it('lets the policy win: both URLs, then the issuer, then each URL it gives over the spec’s', async () => {
    const spec = specSchemeTable(setOf(await loaded(SCHEMES_SPEC))).get('/code');
    const both = { authorizationUrl: 'https://p.test/a', tokenUrl: 'https://p.test/t' };
    expect(authorizationServer({ ...both, issuer: 'https://i.test' }, spec, WHAT, 'code')).toEqual(both);
    expect(authorizationServer({ issuer: 'https://i.test' }, spec, WHAT, 'code')).toEqual({
      issuer: 'https://i.test',
    });
    expect(authorizationServer({ tokenUrl: 'https://p.test/t' }, spec, WHAT, 'code')).toEqual({
      authorizationUrl: 'https://api.test/oauth/authorize',
      tokenUrl: 'https://p.test/t',
      refreshUrl: 'https://idp.test/refresh',
    });
  });

  it('refuses to start with CONFIG_INVALID naming the credential and what to add when nothing says where', async () => {
    const table = specSchemeTable(setOf(await loaded(SCHEMES_SPEC)));
    for (const scheme of ['machine', 'unknown'])
      expect(() => authorizationServer({}, table.get(`/${scheme}`), WHAT, scheme)).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: expect.stringMatching(
            /credentials\.pets\.userOAuth.*add `issuer`.*`authorizationUrl` and `tokenUrl`/,
          ),
        }),
      );
    // An openIdConnectUrl that is not a discovery document's address: the issuer cannot be told.
    const odd = { urls: { openIdConnectUrl: 'https://id.test/oidc.json' }, base: 'https://api.test/' };
    expect(() => authorizationServer({}, odd, WHAT, 'oidc')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('add `issuer`') }),
    );
  });

  it('reads a Swagger 2.0 accessCode flow (converted to authorizationCode)', async () => {
    const swagger = {
      swagger: '2.0',
      info: { title: 'S', version: '1' },
      host: 'api.test',
      basePath: '/v2',
      schemes: ['https'],
      securityDefinitions: {
        code: {
          type: 'oauth2',
          flow: 'accessCode',
          authorizationUrl: 'https://idp.test/authorize',
          tokenUrl: 'https://idp.test/token',
          scopes: { a: '' },
        },
      },
      paths: {
        '/x': {
          get: { operationId: 'x', security: [{ code: ['a'] }], responses: { '200': { description: 'ok' } } },
        },
      },
    };
    const table = specSchemeTable(setOf(await loaded(swagger)));
    expect(authorizationServer({}, table.get('/code'), WHAT, 'code')).toEqual({
      authorizationUrl: 'https://idp.test/authorize',
      tokenUrl: 'https://idp.test/token',
    });
  });

  it('leaves every tool’s pin as it was: the URLs are not part of a tool’s definition', async () => {
    const moved = structuredClone(SCHEMES_SPEC) as typeof SCHEMES_SPEC & {
      components: { securitySchemes: { code: { flows: { authorizationCode: Record<string, string> } } } };
    };
    moved.components.securitySchemes.code.flows.authorizationCode.authorizationUrl =
      'https://elsewhere.test/a';
    const [before, after] = await Promise.all([catalogOf(SCHEMES_SPEC), catalogOf(moved)]);
    expect(after.tools.map(definitionHash)).toEqual(before.tools.map(definitionHash));
  });
});

describe('the `scopes` key of the service and token-exchange kinds', () => {
  const asked: string[] = [];
  let tokenUrl: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const server = await listen(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      asked.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('scope') ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          access_token: `tok-${asked.length}`,
          token_type: 'Bearer',
          expires_in: 3600,
          issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        }),
      );
    });
    tokenUrl = `${server.url}/token`;
    close = server.close;
  });
  afterAll(() => close());

  it("oauth2: asks for the policy's scopes instead of the operation's", async () => {
    const catalog = await catalogOf(SCHEMES_SPEC);
    const doc = parsePolicy(
      `version: 1\ncredentials:\n  m:\n    scheme: machine\n    dev:\n      oauth2: { tokenUrl: "${tokenUrl}", clientId: env:C, clientSecret: env:S, scopes: [chosen, other] }\n`,
      'w.yaml',
    ).doc;
    const set = loadCredentials({
      tools: catalog.tools.map((t) => ({ tool: t })),
      defs: doc.credentials!,
      environment: 'dev',
      env: { C: 'client', S: 'client-secret-0123', MCP_WARDEN_CRED_CODE: 'x', MCP_WARDEN_CRED_OIDC: 'y' },
    });
    const held = set.forTool(catalog.tools.find((t) => t.name === 'c')!)!.creds[0]!;
    await held.cred.wireValue(['declared']);
    expect(asked.at(-1)).toBe('chosen other');
  });

  it("tokenExchange: asks for the policy's scopes instead of the operation's", async () => {
    const ex = createTokenExchanger(
      { tokenUrl, clientId: 'env:C', clientSecret: 'env:S', audience: 'urn:api', scopes: ['chosen'] },
      'credentials.o.dev',
      { C: 'client', S: 'client-secret-0123' },
      () => {},
    );
    if (typeof ex === 'string') throw new Error(ex);
    const caller: Principal = { id: 'jwt:i#u', scopes: [], via: 'jwt' };
    holdSubjectToken(caller, 'the-callers-token', Date.now() + 600_000);
    await ex.tokenFor(caller, ['declared']);
    expect(asked.at(-1)).toBe('chosen');
  });
});

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };
const linkIn = (r: CallResult) => /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];

/**
 * End to end against a real authorization server: the spec's authorizationCode flow points at
 * oidc-provider's own endpoints and the policy names no URL at all; the link, the consent and the
 * code exchange work, and `scopes` in the policy replaces the tools' declared scopes in the link.
 */
describe('per-user OAuth from the spec’s URLs alone, and the `scopes` override', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let plain: TestGateway;
  let chosen: TestGateway;
  const scopesAsked: string[] = [];
  const redirects: string[] = [];

  const spec = (base: string, issuer: string) => {
    const s = petsOAuthSpec(base, ['pets:read', 'pets:write', 'pets:count']);
    s.components.securitySchemes.petsAuth.flows.authorizationCode.authorizationUrl = `${issuer}/auth`;
    s.components.securitySchemes.petsAuth.flows.authorizationCode.tokenUrl = `${issuer}/token`;
    return {
      ...s,
      paths: {
        ...s.paths,
        '/pets/count': {
          get: { operationId: 'countPets', security: [{ petsAuth: ['pets:count'] }], responses: jsonOk() },
        },
      },
    };
  };
  const policy = (redirect: string, scopes?: string) =>
    [
      'version: 1',
      'vault:',
      '  keys: [env:VAULT_KEY]',
      'credentials:',
      '  pets:',
      '    scheme: petsAuth',
      '    dev:',
      '      userOAuth:',
      '        clientId: env:PETS_CLIENT_ID',
      '        clientSecret: env:PETS_CLIENT_SECRET',
      `        redirectUrl: ${redirect}`,
      ...(scopes !== undefined ? [`        scopes: ${scopes}`] : []),
    ].join('\n');

  beforeAll(async () => {
    const ports = [await freePort(), await freePort()];
    redirects.push(...ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`));
    as = await startOAuthServer(redirects);
    // The scope of each authorization request, as the authorization server received it.
    as.provider.on('authorization.accepted', (...args: unknown[]) => {
      const ctx = args[0] as { oidc: { params: { scope?: unknown } } };
      scopesAsked.push(String(ctx.oidc.params.scope ?? ''));
    });
    upstream = await startProtectedUpstream(as);
    const env = {
      VAULT_KEY: 'a vault key of at least thirty-two characters!',
      PETS_CLIENT_ID: as.clientId,
      PETS_CLIENT_SECRET: as.clientSecret,
    };
    const base = { spec: spec(upstream.url, as.issuer), baseUrl: upstream.url, env };
    plain = await startTestGateway({
      ...base,
      policy: policy(redirects[0]!),
      serve: { transport: { kind: 'http', port: ports[0]! } },
    });
    chosen = await startTestGateway({
      ...base,
      policy: policy(redirects[1]!, '[pets:read, pets:write]'),
      serve: { transport: { kind: 'http', port: ports[1]! } },
    });
  }, 30_000);

  afterAll(async () => {
    await plain?.close();
    await chosen?.close();
    await upstream?.close();
    await as?.close();
  });

  async function connectThrough(gw: TestGateway, redirect: string, user: string, tool: string) {
    const client = await gw.connect();
    const first = (await client.callTool({ name: tool, arguments: {} })) as CallResult;
    expect(codeOf(first)).toBe('CONNECTION_REQUIRED');
    const back = await as.authorize(linkIn(first)!, user);
    expect(back.url.origin + back.url.pathname).toBe(redirect);
    const page = await openCallback(back);
    expect(page.status, await page.clone().text()).toBe(200);
    return { client, first };
  }

  it("connects with the spec's authorizationCode URLs when the policy names none; the link asks for the tool's scope", async () => {
    const { client, first } = await connectThrough(plain, redirects[0]!, 'gina', 'listPets');
    expect(textOf(first)).toContain('It asks for the scopes: pets:read;');
    expect(scopesAsked.at(-1)).toBe('pets:read');
    const again = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    expect(codeOf(again)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'gina', scopes: ['pets:read'] });
    // A tool declaring more asks again, for the union (least privilege, incrementally).
    const more = (await client.callTool({ name: 'countPets', arguments: {} })) as CallResult;
    expect(codeOf(more)).toBe('CONNECTION_REQUIRED');
    expect(textOf(more)).toContain('It asks for the scopes: pets:count pets:read;');
  });

  it("with `scopes`, asks for exactly the operator's scopes, and a tool declaring others works with them", async () => {
    const { client, first } = await connectThrough(chosen, redirects[1]!, 'hugo', 'listPets');
    expect(textOf(first)).toContain('It asks for the scopes: pets:read pets:write;');
    expect(scopesAsked.at(-1)?.split(' ').sort()).toEqual(['pets:read', 'pets:write']);
    const again = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    expect(codeOf(again)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'hugo', scopes: ['pets:read', 'pets:write'] });
    // countPets declares pets:count, which the operator did not choose: no new link, the call goes
    // with what was granted (the upstream decides).
    const other = (await client.callTool({ name: 'countPets', arguments: {} })) as CallResult;
    expect(codeOf(other)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'hugo', scopes: ['pets:read', 'pets:write'] });
  });

  it('refuses to start, naming the credential, when neither the policy nor the spec says where the server is', async () => {
    const s = petsOAuthSpec(upstream.url);
    const bare = {
      ...s,
      components: {
        securitySchemes: {
          petsAuth: {
            type: 'oauth2',
            flows: { implicit: { authorizationUrl: 'https://x.test/a', scopes: {} } },
          },
        },
      },
    };
    await expect(
      startTestGateway({
        spec: bare,
        baseUrl: upstream.url,
        policy: policy(redirects[0]!),
        env: {
          VAULT_KEY: 'a vault key of at least thirty-two characters!',
          PETS_CLIENT_ID: 'c',
          PETS_CLIENT_SECRET: 's',
        },
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('credentials.pets.dev.userOAuth: the spec'),
    });
  });
});
