import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { type ShopGateway, startShopGateway } from '../support/gateway.js';
import { LIST_TOOLS, postMcp } from '../support/http.js';
import { es256, ISSUER, type SigningKey as Key, RESOURCE, serveJwks, signJwt } from '../support/jwt.js';

describe('adversarial HTTP: JWT header tricks and random frames', () => {
  let fx: ShopGateway;
  let gw: Gateway;
  let good: Key;
  let evil: Key;
  let evilJwks: Awaited<ReturnType<typeof serveJwks>>;
  let goodJwks: Awaited<ReturnType<typeof serveJwks>>;

  beforeAll(async () => {
    const goodPair = await es256();
    good = goodPair.privateKey;
    const evilPair = await es256();
    evil = evilPair.privateKey;
    goodJwks = await serveJwks(goodPair.jwk);
    evilJwks = await serveJwks(evilPair.jwk);
    fx = await startShopGateway({
      policy: `version: 1\ncallers:\n  resource: ${RESOURCE}\n  jwt:\n    jwksUrl: ${goodJwks.url}\n    issuer: ${ISSUER}\n    algorithms: [ES256]\n`,
      logLevel: 'fatal',
    });
    gw = fx.gw;
  });
  afterAll(async () => {
    await fx?.close();
    await goodJwks?.close();
    await evilJwks?.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) => postMcp(gw.url!, body, headers);
  const sign = (header: Record<string, unknown>, claims: Record<string, unknown> = {}, key: Key = good) =>
    signJwt(key, { header, claims });
  const list = LIST_TOOLS;

  it('ignores a jku/x5u header pointing at an attacker key set, and never fetches it', async () => {
    const token = await sign({ jku: evilJwks.url, x5u: evilJwks.url }, {}, evil);
    const res = await post(list, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(evilJwks.hits).toBe(0);
  });

  it('refuses tokens not valid yet, with unknown critical headers, or claiming other audiences only', async () => {
    const future = await signJwt(good, { notBefore: '10m', expires: '20m' });
    // A critical header the gateway does not understand must make it refuse the token (RFC 7515 §4.1.11).
    const now = Math.floor(Date.now() / 1000);
    const crit = await new CompactSign(
      new TextEncoder().encode(
        JSON.stringify({ iss: ISSUER, aud: RESOURCE, sub: 'u1', scope: 'tools:read', exp: now + 300 }),
      ),
    )
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', crit: ['x-evil'], 'x-evil': true })
      .sign(good, { crit: { 'x-evil': true } });
    const other = await signJwt(good, { audience: ['https://other.example/mcp', 'https://third.example/'] });
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
    const before = fx.shop.requests.length;
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
    expect(fx.shop.requests.length).toBe(before);
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
