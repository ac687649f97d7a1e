import { readFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, textOf } from '../support/gateway.js';
import { jsonOk, minimalSpec, startUpstream } from '../support/helpers.js';
import { LIST_TOOLS, rawPost } from '../support/http.js';
import { eventually } from '../support/wait.js';

const SECRET = 'adv-secret-9f8e7d6c5b4a';

const SPEC = minimalSpec(
  {
    '/slow': { get: { operationId: 'slow', responses: jsonOk() } },
    '/huge': { get: { operationId: 'huge', responses: jsonOk() } },
    '/mirror': { get: { operationId: 'mirror', responses: jsonOk() } },
    '/moved': { get: { operationId: 'moved', responses: jsonOk() } },
    '/boom': { get: { operationId: 'boom', responses: jsonOk() } },
  },
  {
    components: { securitySchemes: { advKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ advKey: [] }],
  },
);

let up: Awaited<ReturnType<typeof startUpstream>>;
let fx: TestGateway;
let client: Client;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/slow')
      return void setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
        3000,
      );
    if (path === '/huge') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('error', () => {});
      res.end(`{"items":[${'"xxxxxxxxxxxxxxxx",'.repeat(200_000)}"end"]}`);
      return;
    }
    // A careless upstream that reflects the caller's Authorization header.
    if (path === '/mirror')
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ youSent: req.headers.authorization }));
    if (path === '/moved') return void res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
    if (path === '/boom')
      return void res
        .writeHead(500, { 'content-type': 'text/plain' })
        .end(`stack trace with ${req.headers.authorization}`);
    res.writeHead(404).end();
  });
  fx = await startTestGateway({
    spec: SPEC,
    baseUrl: up.origin,
    logLevel: 'warn',
    env: { MCP_WARDEN_CRED_ADVKEY: SECRET },
    // Only the slow tool gets a short timeout: a gateway-wide one would race the huge response on a
    // loaded machine (seen in CI: UPSTREAM_TIMEOUT instead of UPSTREAM_TOO_LARGE).
    policy: 'version: 1\nrules:\n  - match: { name: slow }\n    timeoutMs: 300\n',
    serve: { maxResponseBytes: 64 * 1024 },
  });
  client = await fx.connect({ name: 'guards', era: { pin: '2026-07-28' } });
});
afterAll(async () => {
  await fx.close();
  await up.close();
});

describe('upstream guards, end to end', () => {
  it('cuts a slow upstream at the timeout', async () => {
    const t0 = Date.now();
    const r = await client.callTool({ name: 'slow', arguments: {} });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('[UPSTREAM_TIMEOUT]');
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('caps a huge response and says so', async () => {
    const r = await client.callTool({ name: 'huge', arguments: {} });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('[UPSTREAM_TOO_LARGE]');
    expect(textOf(r).length).toBeLessThan(70 * 1024);
  });

  it('scrubs the credential when the upstream echoes it, in results and error excerpts', async () => {
    const r = await client.callTool({ name: 'mirror', arguments: {} });
    expect(JSON.stringify(r)).not.toContain(SECRET);
    expect(JSON.stringify(r.structuredContent)).toContain('[REDACTED:credential]');
    const boom = await client.callTool({ name: 'boom', arguments: {} });
    expect(textOf(boom)).toContain('[UPSTREAM_STATUS]');
    expect(JSON.stringify(boom)).not.toContain(SECRET);
    expect(up.requests.find((q) => q.url === '/mirror')?.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('does not follow a redirect to another origin', async () => {
    const r = await client.callTool({ name: 'moved', arguments: {} });
    expect(textOf(r)).toContain('[UPSTREAM_REDIRECT]');
  });

  it('audits failures with their codes and never the credential', async () => {
    // Written just after each answer: wait until the four failures are all recorded.
    const text = await eventually(
      () => {
        const text = readFileSync(fx.auditFile, 'utf8');
        const codes = text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).code);
        expect(codes).toEqual(
          expect.arrayContaining([
            'UPSTREAM_TIMEOUT',
            'UPSTREAM_TOO_LARGE',
            'UPSTREAM_STATUS',
            'UPSTREAM_REDIRECT',
          ]),
        );
        return text;
      },
      { what: 'the four failure codes in the audit' },
    );
    expect(text).not.toContain(SECRET);
  });
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  rawPost(fx.gw.url!, path, body, headers);

describe('HTTP transport guards', () => {
  const list = LIST_TOOLS;

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const r = await post('/mcp', list, { host: 'evil.example.com' });
    expect(r.status).toBe(403);
  });

  it('refuses a foreign Origin', async () => {
    const r = await post('/mcp', list, { origin: 'https://evil.example.com' });
    expect(r.status).toBe(403);
  });

  it('answers 404 off the MCP path', async () => {
    expect((await post('/admin', list)).status).toBe(404);
  });

  it('refuses an oversized body with 413 and a non-JSON body with a parse error', async () => {
    const big = await post(
      '/mcp',
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(2 * 1024 * 1024) } }),
    );
    expect(big.status).toBe(413);
    const bad = await post('/mcp', '{"jsonrpc":');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe(-32700);
  });

  it('refuses deeply nested JSON without crashing', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const r = await post('/mcp', deep);
    expect(r.status).toBe(400);
    // Still serving.
    const ok = await client.listTools();
    expect(ok.tools.length).toBe(5);
  });

  it('answers malformed JSON-RPC frames with an error, not a crash', async () => {
    for (const frame of [
      '[]',
      '{}',
      '{"jsonrpc":"2.0"}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}',
      'null',
      '"x"',
    ]) {
      const r = await post('/mcp', frame);
      expect(r.status).toBeGreaterThanOrEqual(200);
      expect(r.body).not.toMatch(/at .*\.(js|ts):\d+/);
    }
    expect((await client.listTools()).tools.length).toBe(5);
  });
});
