import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpClient, startTestGateway, type TestGateway } from '../support/gateway.js';
import { tempTree } from '../support/helpers.js';
import { freePort } from '../support/http.js';
import {
  approveConnect,
  type OAuthServer,
  openCallback,
  openConnectPage,
  petsOAuthSpec,
  startOAuthServer,
  startProtectedUpstream,
  userOAuthEnv,
  userOAuthPolicy,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { serveArgs, stdioTransport } from '../support/stdio.js';

const spec = (base: string) => petsOAuthSpec(base, ['pets:read', 'pets:write']);

interface UrlElicitation {
  mode?: string;
  url?: string;
  message?: string;
  elicitationId?: string;
}

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };

const linkIn = (r: CallResult) => /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];

/** A client that declared URL-mode elicitation and records every URL it was asked to open (and accepts). */
function urlClient(era: 'legacy' | { pin: '2026-07-28' }, asked: UrlElicitation[], name: string): Client {
  const client = mcpClient({ era, name, options: { capabilities: { elicitation: { url: {} } } } });
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params as UrlElicitation);
    return { action: 'accept' };
  });
  return client;
}

/**
 * The connect link as a URL-mode elicitation: a client that declared `elicitation.url` is asked to
 * open the authorization URL (a 2026-07-28 client through `input_required`, a 2025-11-25 client
 * in-band over stdio); the tool result still carries the link, and a client without URL elicitation
 * gets only that. Real oidc-provider, real gateway, real MCP clients.
 */
describe('per-user OAuth: the connect link as a URL-mode elicitation', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let fx: TestGateway;
  let redirect: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const port = await freePort();
    redirect = `http://127.0.0.1:${port}/oauth/callback`;
    as = await startOAuthServer([redirect]);
    upstream = await startProtectedUpstream(as);
    env = userOAuthEnv(as);
    fx = await startTestGateway({
      spec: spec(upstream.url),
      baseUrl: upstream.url,
      policy: userOAuthPolicy({ as, redirect }),
      env,
      serve: { transport: { kind: 'http', port } },
    });
  }, 30_000);

  afterAll(async () => {
    await fx?.close();
    await upstream?.close();
    await as?.close();
  });

  it('gives a client without URL elicitation the link in the result only', async () => {
    const asked: UrlElicitation[] = [];
    const client = mcpClient({
      era: { pin: '2026-07-28' },
      name: 'modern-form-only',
      options: { capabilities: { elicitation: { form: {} } } },
    });
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push(req.params as UrlElicitation);
      return { action: 'decline' };
    });
    await fx.connect({}, client);
    const r = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    expect(codeOf(r)).toBe('CONNECTION_REQUIRED');
    expect(linkIn(r)).toBeDefined();
    expect(asked).toHaveLength(0);
  });

  it('asks a 2026-07-28 client to open the link; once connected through it, the call acts as the user', async () => {
    const asked: UrlElicitation[] = [];
    const client = await fx.connect({}, urlClient({ pin: '2026-07-28' }, asked, 'modern-url'));
    const first = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    // The retry that answers the elicitation gets the result, which carries a link for any client.
    expect(codeOf(first)).toBe('CONNECTION_REQUIRED');
    expect(linkIn(first)).toBeDefined();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ mode: 'url', message: expect.stringContaining('pets:read') });
    // The URL to open is the gateway's connect page, the same page as the result's link.
    const url = new URL(asked[0]!.url!);
    expect(url.origin + url.pathname).toBe(`${new URL(redirect).origin}/oauth/connect`);
    expect(url.origin + url.pathname).toBe(new URL(linkIn(first)!).origin + new URL(linkIn(first)!).pathname);
    expect(upstream.calls).toHaveLength(0);

    // The user opens the URL the client was asked to open, approves, and the authorization server
    // is asked for only the tool's scope, with PKCE; the callback lands on the gateway.
    const approved = await approveConnect(await openConnectPage(url));
    const authorization = new URL(approved.location!);
    expect(authorization.searchParams.get('scope')).toBe('pets:read');
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    const back = { url: await as.consentAt(authorization.href, 'carol'), cookie: approved.cookie! };
    const page = await openCallback(back);
    expect(page.status).toBe(200);
    const again = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    expect(codeOf(again)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'carol', scopes: ['pets:read'] });
    expect(asked).toHaveLength(1);
  });

  it('asks a 2025-11-25 client over stdio in-band, with the flow id, and the result carries the same link', async () => {
    const dir = tempTree({
      'spec.json': spec(upstream.url),
      'warden.yaml': userOAuthPolicy({ as, redirect }),
    });
    const asked: UrlElicitation[] = [];
    const client = urlClient('legacy', asked, 'stdio-url');
    const { transport, stderr } = stdioTransport(
      serveArgs({
        spec: join(dir, 'spec.json'),
        baseUrl: upstream.url,
        policy: join(dir, 'warden.yaml'),
        auditFile: join(dir, 'audit.jsonl'),
      }),
      env,
    );
    await client.connect(transport);
    try {
      const r = (await client.callTool({ name: 'listPets', arguments: {} })) as CallResult;
      expect(codeOf(r), stderr()).toBe('CONNECTION_REQUIRED');
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatchObject({ mode: 'url', url: linkIn(r) });
      expect(asked[0]!.elicitationId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await client.close();
    }
  });
});
