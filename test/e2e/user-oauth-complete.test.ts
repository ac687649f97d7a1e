import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpClient, startTestGateway, type TestGateway } from '../support/gateway.js';
import { tempTree } from '../support/helpers.js';
import { freePort } from '../support/http.js';
import {
  type OAuthServer,
  openCallback,
  petsOAuthSpec,
  startOAuthServer,
  startProtectedUpstream,
  userOAuthEnv,
  userOAuthPolicy,
} from '../support/oauth-server.js';
import { codeOf, textOf } from '../support/pipeline.js';
import { serveArgs, stdioTransport } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';

const spec = (base: string) => petsOAuthSpec(base, ['pets:read']);

type CallResult = { content: Array<{ text?: string }>; isError?: boolean };
const linkIn = (r: CallResult) => /open this link and approve access: (\S+)/.exec(textOf(r))?.[1];

/** A 2025-11-25 client that declared URL elicitation: records what it was asked to open and what completed. */
function urlClient(name: string) {
  const asked: Array<{ url?: string; elicitationId?: string }> = [];
  const completed: string[] = [];
  const client: Client = mcpClient({
    era: 'legacy',
    name,
    options: { capabilities: { elicitation: { url: {} } } },
  });
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params as { url?: string; elicitationId?: string });
    return { action: 'accept' };
  });
  client.setNotificationHandler('notifications/elicitation/complete', (n) => {
    completed.push(String(n.params.elicitationId));
  });
  return { client, asked, completed };
}

/**
 * `notifications/elicitation/complete` (MCP 2025-11-25): a stdio gateway asks its client to open the
 * connect link in-band (URL elicitation, the flow's id as `elicitationId`); a stdio gateway has no
 * callback port, so the browser comes back to an HTTP gateway sharing Redis, which completes the
 * flow and announces it; the stdio gateway then tells its client, with that very id. Real
 * oidc-provider, real gateways (one spawned, built CLI), real SDK client, real Redis.
 */
describe('per-user OAuth: the client that was asked hears that the flow completed', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let http: TestGateway;
  let redis: Redis;
  let env: NodeJS.ProcessEnv;
  let policy: string;
  const prefix = `oauth-complete-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    const port = await freePort();
    const redirect = `http://127.0.0.1:${port}/oauth/callback`;
    as = await startOAuthServer([redirect]);
    upstream = await startProtectedUpstream(as);
    redis = new Redis(REDIS_URL);
    policy = userOAuthPolicy({
      as,
      redirect,
      head: [`state: { redis: env:REDIS_URL, prefix: ${prefix} }`],
    });
    env = {
      REDIS_URL,
      ...userOAuthEnv(as),
    };
    http = await startTestGateway({
      spec: spec(upstream.url),
      baseUrl: upstream.url,
      policy,
      env,
      serve: { transport: { kind: 'http', port } },
    });
  }, 30_000);

  afterAll(async () => {
    await http?.close();
    await upstream?.close();
    await as?.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('sends notifications/elicitation/complete with the flow id to the stdio session that was asked', async () => {
    const dir = tempTree({ 'spec.json': spec(upstream.url), 'warden.yaml': policy });
    const { client, asked, completed } = urlClient('stdio-complete');
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
      const id = asked[0]!.elicitationId!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(completed).toEqual([]);

      // The user opens the link; the browser comes back to the HTTP gateway, which completes the flow.
      const back = await as.authorize(linkIn(r)!, 'ivy');
      expect(back.url.host).toBe(new URL(http.gw.url!).host);
      const page = await openCallback(back);
      expect(page.status, await page.clone().text()).toBe(200);
      expect(await page.text()).toContain('Connected /petsAuth');

      await waitFor(() => completed.length > 0, { what: 'notifications/elicitation/complete on stdio' });
      expect(completed).toEqual([id]);
    } finally {
      await client.close();
    }
  }, 30_000);
});
