import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { CompactSign, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the demo upstream is plain JavaScript
import { startShop } from '../../examples/shop/server.mjs';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { tempTree } from '../support/helpers.js';

const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;
const RESOURCE = 'https://mcp.example.test/mcp';
const ISSUER = 'https://idp.example.test/';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('adversarial HTTP: JWT header tricks and random frames', () => {
  let shop: { url: string; key: string; requests: unknown[]; close(): Promise<void> };
  let gw: Gateway;
  let good: Key;
  let evil: Key;
  let evilJwks: { url: string; hits: number; close(): Promise<void> };
  let jwksClose: () => Promise<void>;

  beforeAll(async () => {
    shop = await startShop();
    const pair = await generateKeyPair('ES256', { extractable: true });
    good = pair.privateKey;
    const evilPair = await generateKeyPair('ES256', { extractable: true });
    evil = evilPair.privateKey;
    const serveJwks = async (jwk: object, counter?: { hits: number }) => {
      const s = createServer((_q, r) => {
        if (counter) counter.hits++;
        r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return {
        url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/jwks.json`,
        close: () => new Promise<void>((r) => s.close(() => r())),
      };
    };
    const goodJwks = await serveJwks({ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' });
    jwksClose = goodJwks.close;
    const counter = { hits: 0 };
    const ej = await serveJwks(
      { ...(await exportJWK(evilPair.publicKey)), kid: 'k1', alg: 'ES256' },
      counter,
    );
    evilJwks = {
      ...ej,
      get hits() {
        return counter.hits;
      },
    };
    const dir = tempTree({
      'warden.yaml': `version: 1\ncallers:\n  resource: ${RESOURCE}\n  jwt:\n    jwksUrl: ${goodJwks.url}\n    issuer: ${ISSUER}\n    algorithms: [ES256]\n`,
    });
    gw = await startGateway({
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      policy: join(dir, 'warden.yaml'),
      auditFile: join(dir, 'audit.jsonl'),
      transport: { kind: 'http', port: 0 },
      logLevel: 'fatal',
      env: { MCP_WARDEN_CRED_SHOPKEY: shop.key },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await shop?.close();
    await jwksClose?.();
    await evilJwks?.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(gw.url!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body,
    });
  const sign = (header: Record<string, unknown>, claims: Record<string, unknown> = {}, key: Key = good) =>
    new SignJWT({ scope: 'tools:read', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header })
      .setIssuer(ISSUER)
      .setAudience(RESOURCE)
      .setSubject('u1')
      .setExpirationTime('5m')
      .sign(key);
  const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

  it('ignores a jku/x5u header pointing at an attacker key set, and never fetches it', async () => {
    const token = await sign({ jku: evilJwks.url, x5u: evilJwks.url }, {}, evil);
    const res = await post(list, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(evilJwks.hits).toBe(0);
  });

  it('refuses tokens not valid yet, with unknown critical headers, or claiming other audiences only', async () => {
    const future = await new SignJWT({ scope: 'tools:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(RESOURCE)
      .setSubject('u1')
      .setNotBefore('10m')
      .setExpirationTime('20m')
      .sign(good);
    // A critical header the gateway does not understand must make it refuse the token (RFC 7515 §4.1.11).
    const now = Math.floor(Date.now() / 1000);
    const crit = await new CompactSign(
      new TextEncoder().encode(
        JSON.stringify({ iss: ISSUER, aud: RESOURCE, sub: 'u1', scope: 'tools:read', exp: now + 300 }),
      ),
    )
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', crit: ['x-evil'], 'x-evil': true })
      .sign(good, { crit: { 'x-evil': true } });
    const other = await new SignJWT({ scope: 'tools:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(['https://other.example/mcp', 'https://third.example/'])
      .setSubject('u1')
      .setExpirationTime('5m')
      .sign(good);
    for (const t of [future, crit, other])
      expect((await post(list, { authorization: `Bearer ${t}` })).status).toBe(401);
    // The real thing still works.
    expect(
      (await post(list, { authorization: `Bearer ${await sign({})}`, 'mcp-protocol-version': '2025-11-25' }))
        .status,
    ).toBeLessThan(500);
  });

  it('answers any random frame without crashing, and never reaches the upstream without a valid call', async () => {
    const token = await sign({});
    const before = shop.requests.length;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
          fc
            .record({
              jsonrpc: fc.oneof(fc.constant('2.0'), fc.string()),
              id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
              method: fc.oneof(
                fc.constantFrom('tools/call', 'tools/list', 'initialize', 'ping'),
                fc.string(),
              ),
              params: fc.jsonValue({ maxDepth: 4 }),
            })
            .map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 200 }),
        ),
        async (body) => {
          const res = await post(body, { authorization: `Bearer ${token}` });
          expect(res.status).toBeGreaterThanOrEqual(200);
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 300 },
    );
    expect(shop.requests.length).toBe(before);
    // Still serving afterwards.
    expect(
      (await post(list, { authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-11-25' })).status,
    ).toBeLessThan(500);
  }, 60_000);

  it('keeps memory bounded under a stream of hostile frames (no per-frame leak)', async () => {
    // A collectable heap, measured after a full collection: growth is what the frames left behind.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const token = await sign({});
    const frames = fc.sample(
      fc.oneof(
        fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)),
        fc.string({ maxLength: 2000 }),
        fc.constant(`${'['.repeat(5000)}${']'.repeat(5000)}`),
        fc.constant(
          JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'tools/call',
            params: { name: 'x'.repeat(10_000) },
          }),
        ),
      ),
      { numRuns: 400, seed: 42 },
    );
    const round = async () => {
      for (const body of frames) await (await post(body, { authorization: `Bearer ${token}` })).arrayBuffer();
    };
    await round(); // warm-up: caches, pools and JIT settle
    gc();
    const base = process.memoryUsage().heapUsed;
    for (let i = 0; i < 4; i++) await round();
    gc();
    const grown = process.memoryUsage().heapUsed - base;
    // 1,600 frames: a leak of even 6 KiB per frame would pass 10 MB.
    expect(grown).toBeLessThan(10 * 1024 * 1024);
  }, 120_000);
});
