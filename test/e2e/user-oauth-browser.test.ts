import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, openPage, SHOTS } from '../support/browser.js';
import type { CliGateway } from '../support/cli-gateway.js';
import { connectHttp } from '../support/gateway.js';
import { ISSUER, signJwt } from '../support/jwt.js';
import { type OAuthServer, petsOAuthSpec } from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { startUserOAuthStack, type UserOAuthStack } from '../support/user-oauth.js';

const _spec = (base: string) => petsOAuthSpec(base, ['pets:read', 'pets:write']);

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };

/**
 * The consent step as a person does it: the link CONNECTION_REQUIRED gives is opened in headless
 * Chromium, which shows the gateway's own connect page (whose principal, which client, which scopes);
 * the person presses Approve, signs in and consents on the authorization server's own pages
 * (oidc-provider's devInteractions), the browser lands on the gateway's callback page carrying the
 * binding cookie the approval set, and the retried call reaches an upstream that accepts only that
 * server's tokens, as that person.
 */
describe.runIf(haveBrowser)('per-user OAuth consent in headless Chromium', () => {
  let stack: UserOAuthStack;
  let as: OAuthServer;
  let upstream: UserOAuthStack['upstream'];
  let gateway: CliGateway;
  let mcpUrl: string;
  let token: string;
  let client: Client | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    stack = await startUserOAuthStack({ server: { pages: true }, scopes: ['pets:read', 'pets:write'] });
    ({ as, upstream, gateway } = stack);
    token = await signJwt(stack.key, { subject: 'carol', scope: 'tools:read' });
    mcpUrl = gateway.mcpUrl;
    ({ browser, page, pageErrors } = await openPage());
  }, 40_000);

  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await stack?.close();
  });

  it('signs in and consents on the authorization server pages, lands on the callback, and the retry acts as that person', async () => {
    client = await connectHttp(mcpUrl, { token });
    const call = async () => (await client!.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    const first = await call();
    expect(codeOf(first)).toBe('CONNECTION_REQUIRED');
    const link = /open this link and approve access: (\S+)/.exec(textOf(first))?.[1];
    expect(link).toBeDefined();
    expect(upstream.calls).toHaveLength(0);

    await page.goto(link!);
    // The gateway's page first: it names the principal the account will be connected to.
    await page.getByRole('button', { name: 'Approve' }).waitFor();
    const body = (await page.locator('body').textContent()) ?? '';
    expect(body).toContain(`jwt:${ISSUER}#carol`);
    expect(body).toContain('pets:read');
    expect(body).toContain('If you did not ask your agent for this, close this page.');
    await page.screenshot({ path: join(SHOTS, 'oauth-connect.png') });
    await page.getByRole('button', { name: 'Approve' }).click();
    // The approval's redirect leaves for the authorization server (the page's CSP allows that origin only).
    await page.waitForURL((u) => u.origin === as.issuer);
    const bound = (await page.context().cookies(new URL(mcpUrl).origin)).find(
      (c) => c.name === 'mcp-warden-connect',
    );
    expect(bound).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    await page.locator('input[name="login"]').fill('carol');
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    // The consent page names what is asked for: only the scope the tool needs.
    await page.getByRole('button', { name: 'Continue' }).waitFor();
    expect(await page.content()).toContain('pets:read');
    expect(await page.content()).not.toContain('pets:write');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.origin === new URL(mcpUrl).origin && u.pathname === '/oauth/callback');
    // waitForURL waits for the page's load event, so its text is there.
    expect(await page.locator('body').textContent()).toContain('Connected /petsAuth (scopes: pets:read)');
    await page.screenshot({ path: join(SHOTS, 'oauth-callback.png') });
    expect(pageErrors).toEqual([]);
    // The binding has served: the callback cleared it.
    expect(
      (await page.context().cookies(new URL(mcpUrl).origin)).find((c) => c.name === 'mcp-warden-connect'),
    ).toBeUndefined();

    const retried = await call();
    expect(codeOf(retried)).toBe('OK');
    expect(upstream.calls).toHaveLength(1);
    expect(upstream.calls[0]).toMatchObject({ sub: 'carol', scopes: ['pets:read'] });
  }, 60_000);
});
