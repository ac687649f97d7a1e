import { type McpRequestContext, Server } from '@modelcontextprotocol/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load.js';
import { Callers, carriedPrincipal, carryPrincipal, newApiKey } from '../../src/server/callers.js';
import { type RunningHttp, startHttp, TRANSPORT_STEPS } from '../../src/server/http.js';
import { connectHttp } from '../support/gateway.js';
import { LIST_TOOLS, rawPost } from '../support/http.js';

describe('HTTP transport order', () => {
  it('runs path, probes, Host/Origin, metadata, OAuth callback, authenticate, body cap, parse, batch, depth, stream slot, fast lane, then the SDK', () => {
    expect(
      TRANSPORT_STEPS,
      'The transport order is a security argument: Host/Origin before anything but the probes is answered (DNS ' +
        'rebinding), authentication before the body is read (an unauthenticated caller costs only its ' +
        'headers), the size cap before parsing (memory is bounded), batch and depth refusals before the ' +
        'SDK walks the message, a held-open stream counted only once every check passed. Moving a step moves a guarantee: change docs/serving.md with it.',
    ).toEqual([
      'path',
      'probe',
      'host',
      'metadata',
      'callback',
      'authenticate',
      'body',
      'parse',
      'batch',
      'depth',
      'stream',
      'lane',
      'sdk',
    ]);
  });
});

describe('HTTP transport steps', () => {
  const key = newApiKey();
  const auth = { authorization: `Bearer ${key.key}` };
  let http: RunningHttp;
  let base: string;

  beforeAll(async () => {
    const doc = parsePolicy(
      `version: 1\ncallers:\n  apiKeys:\n    - { id: ci-bot, hash: "${key.hash}", scopes: [tools:read] }\n`,
      'w.yaml',
    ).doc;
    http = await startHttp({
      // Lists one tool named after the caller the SDK hands the factory: the principal, read back.
      factory: (ctx: McpRequestContext) => {
        const server = new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } });
        const p = carriedPrincipal(ctx.authInfo);
        server.setRequestHandler('tools/list', () => ({
          tools: [{ name: `${p.id}.${p.via}.${p.scopes.join('+')}`, inputSchema: { type: 'object' } }],
        }));
        return server;
      },
      logger: pino({ level: 'silent' }),
      callers: (url) =>
        new Callers({
          callers: doc.callers,
          environment: 'dev',
          resource: url,
          loopback: true,
          scopesInUse: () => ['tools:read'],
          warn: () => {},
        }),
      port: 0,
      maxBodyBytes: 4096,
      maxJsonDepth: 8,
    });
    base = new URL(http.url).origin;
  });
  afterAll(() => http.close());

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    rawPost(base, path, body, headers).then((r) => ({ status: r.status, json: JSON.parse(r.body) }));
  const codeOf = (r: { json: { error?: { code: number; data?: { code?: string } } } }) => [
    r.json.error?.data?.code,
    r.json.error?.code,
  ];

  it('refuses another path before looking at the Host', async () => {
    const r = await post('/admin', LIST_TOOLS, { host: 'evil.example' });
    expect([r.status, ...codeOf(r)]).toEqual([404, 'HTTP_NOT_FOUND', -32000]);
  });

  it('answers a foreign Host or Origin with its own code, before authentication', async () => {
    const host = await post('/mcp', LIST_TOOLS, { host: 'evil.example' });
    expect([host.status, ...codeOf(host)]).toEqual([403, 'HTTP_FORBIDDEN_HOST', -32000]);
    expect(host.json.error.message).not.toContain('evil');
    const origin = await post('/mcp', LIST_TOOLS, { origin: 'https://evil.example' });
    expect([origin.status, ...codeOf(origin)]).toEqual([403, 'HTTP_FORBIDDEN_HOST', -32000]);
    const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({ resource: http.url });
  });

  it('authenticates before reading the body: an oversized body without a credential is a 401', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(10_000) });
    const anonymous = await post('/mcp', big);
    expect([anonymous.status, ...codeOf(anonymous)]).toEqual([401, 'AUTH_REQUIRED', -32001]);
    const known = await post('/mcp', big, auth);
    expect([known.status, ...codeOf(known)]).toEqual([413, 'HTTP_BODY_TOO_LARGE', -32000]);
  });

  it('refuses bad JSON, a batch and deep nesting with the JSON-RPC numbers clients know', async () => {
    const bad = await post('/mcp', '{"jsonrpc":', auth);
    expect([bad.status, ...codeOf(bad)]).toEqual([400, 'HTTP_PARSE_ERROR', -32700]);
    // A deep array is a batch first: the batch step runs before the depth step.
    const deepArray = await post('/mcp', `${'['.repeat(20)}${']'.repeat(20)}`, auth);
    expect([deepArray.status, ...codeOf(deepArray)]).toEqual([400, 'HTTP_BAD_REQUEST', -32600]);
    expect(deepArray.json.error.message).toMatch(/Batched/);
    const deep = await post('/mcp', `${'{"a":'.repeat(20)}1${'}'.repeat(20)}`, auth);
    expect([deep.status, ...codeOf(deep)]).toEqual([400, 'HTTP_BAD_REQUEST', -32600]);
    expect(deep.json.error.message).toMatch(/nests deeper than 8/);
  });

  it('hands the SDK the Principal authentication produced, how it authenticated included', async () => {
    const client = await connectHttp(http.url, { token: key.key });
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['key:ci-bot.api-key.tools:read']);
    } finally {
      await client.close();
    }
  });
});

describe('the principal carried through the SDK', () => {
  it('comes back as the very object authentication produced', () => {
    const p = { id: 'svc-7', scopes: ['tools:read'], via: 'jwt' } as const;
    const carried = carryPrincipal(p);
    expect(carried).toMatchObject({ token: '', clientId: 'svc-7', scopes: ['tools:read'] });
    expect(carriedPrincipal(carried)).toBe(p);
  });

  it('is nobody, without scopes, when nothing was carried', () => {
    expect(carriedPrincipal(undefined)).toEqual({ id: 'unauthenticated', scopes: [], via: 'none' });
  });
});
