import { randomBytes } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
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

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';

const spec = (base: string) => petsOAuthSpec(base, ['pets:read']);

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };
const linkIn = (r: CallResult) => /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];

/**
 * Pending connect flows in the shared state (Redis): the link minted by instance A is shown and
 * approved by instance B (as a load balancer would send the browser), the approval is consumed
 * once across both, the browser comes back to B, which completes the flow; the state is consumed
 * once across both (GETDEL), and Redis holds only digests, never the link's handle or the state.
 */
describe('per-user OAuth: a callback lands on another instance sharing Redis', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let a: TestGateway;
  let b: TestGateway;
  let redis: Redis;
  const prefix = `oauth-e2e-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    const portB = await freePort();
    const redirect = `http://127.0.0.1:${portB}/oauth/callback`;
    as = await startOAuthServer([redirect]);
    upstream = await startProtectedUpstream(as);
    redis = new Redis(REDIS_URL);
    const policy = userOAuthPolicy({
      as,
      redirect,
      head: [`state: { redis: env:REDIS_URL, prefix: ${prefix} }`],
    });
    const env = {
      REDIS_URL,
      ...userOAuthEnv(as),
    };
    const base = { spec: spec(upstream.url), baseUrl: upstream.url, policy, env };
    a = await startTestGateway(base);
    b = await startTestGateway({ ...base, serve: { transport: { kind: 'http', port: portB } } });
  }, 30_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await upstream?.close();
    await as?.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('completes on B a flow minted on A, once', async () => {
    const onA: Client = await a.connect();
    const first = (await onA.callTool({ name: 'listPets', arguments: {} })) as CallResult;
    expect(codeOf(first)).toBe('CONNECTION_REQUIRED');
    // The link points at B (the redirect URL's origin): B shows the page of a flow A minted.
    const link = new URL(linkIn(first)!);
    expect(link.origin).toBe(new URL(b.gw.url!).origin);
    const handle = link.searchParams.get('flow')!;
    const stored = await redis.keys(`${prefix}:oauthflow:*`);
    expect(stored).toHaveLength(1);
    const page1 = await openConnectPage(link);
    expect(page1.status).toBe(200);
    // Approved on B once; the same page approved again, on A this time, finds nothing.
    const approved = await approveConnect(page1);
    expect(approved.status).toBe(303);
    const onAPage = { ...page1, form: { ...page1.form!, action: new URL(page1.form!.action) } };
    onAPage.form.action.host = new URL(a.gw.url!).host;
    expect((await approveConnect(onAPage, { origin: new URL(b.gw.url!).origin })).status).toBe(400);
    const state = new URL(approved.location!).searchParams.get('state')!;
    // Redis holds the flow under digests, never the link's handle or the state.
    const dump = JSON.stringify(
      await Promise.all(
        (await redis.keys(`${prefix}:oauthflow:*`)).map(async (k) => [k, await redis.get(k)]),
      ),
    );
    expect(dump).not.toContain(handle);
    expect(dump).not.toContain(state);

    const back = { url: await as.consentAt(approved.location!, 'dana'), cookie: approved.cookie! };
    expect(back.url.origin).toBe(new URL(b.gw.url!).origin);
    const page = await openCallback(back);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Connected /petsAuth');
    expect(await redis.keys(`${prefix}:oauthflow:*`)).toHaveLength(0);

    // B's vault now holds the connection: the call through B acts as dana.
    const onB = await b.connect();
    expect(codeOf((await onB.callTool({ name: 'listPets', arguments: {} })) as CallResult)).toBe('OK');
    expect(upstream.calls.at(-1)).toMatchObject({ sub: 'dana', scopes: ['pets:read'] });

    // Replayed, on B or on A (which minted it and still remembers it locally): refused by both.
    const replayB = await openCallback(back);
    expect(replayB.status).toBe(400);
    const onAUrl = new URL(back.url.href);
    onAUrl.host = new URL(a.gw.url!).host;
    const replayA = await openCallback(back, { url: onAUrl });
    expect(replayA.status).toBe(400);
    expect(await replayA.text()).toContain('unknown, already used or expired');
  });
});
