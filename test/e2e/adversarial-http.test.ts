import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import type { Gateway } from '../../src/server/serve.js';
import { codeOf, type ShopGateway, startShopGateway, textOf } from '../support/gateway.js';
import { LIST_TOOLS, postMcp } from '../support/http.js';
import { es256, ISSUER, type SigningKey as Key, RESOURCE, serveJwks, signJwt } from '../support/jwt.js';
import { ADMIN_TOKEN, type Shop, startShop } from '../support/shop.js';
import { expectAudited } from '../support/wait.js';

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

describe('adversarial HTTP: a JWT whose sub is an API key id is another principal', () => {
  const KEY = 'mwk_writer-key-000000000000000000000000000';
  const AS_KEY = 'key:writer';
  const AS_JWT = `jwt:${ISSUER}#writer`;
  let shop: Shop;
  let fx: ShopGateway;
  let jwks: Awaited<ReturnType<typeof serveJwks>>;
  let signing: Key;
  let policy: string;

  beforeAll(async () => {
    shop = await startShop();
    const pair = await es256();
    signing = pair.privateKey;
    jwks = await serveJwks(pair.jwk);
    policy = [
      'version: 1',
      'mode: read-write',
      'admin: { token: env:ADMIN_TOKEN }',
      'callers:',
      `  resource: ${RESOURCE}`,
      '  apiKeys:',
      `    - { id: writer, hash: "${hashKey(KEY)}", scopes: [tools:read, tools:delete] }`,
      '  jwt:',
      `    jwksUrl: ${jwks.url}`,
      `    issuer: ${ISSUER}`,
      '    algorithms: [ES256]',
      'rules:',
      '  - match: { name: searchProducts }',
      '    rateLimit: { perPrincipal: { calls: 2, perSeconds: 3600 } }',
      '  - match: { name: deleteCustomer }',
      '    enabled: true',
      // The agent's own token flow is what these tests attack (an operator's approval has its own tests).
      '    approval: agent',
      '    reason: the tests attack the token flow',
    ].join('\n');
    fx = await startShopGateway({ shop, policy, admin: true, logLevel: 'fatal' });
  });
  afterAll(async () => {
    await fx?.close();
    await shop?.close();
    await jwks?.close();
  });

  /** The API key holder, and a JWT bearer whose `sub` is that key's id, over real HTTP clients. */
  const asKey = () => fx.connect({ token: KEY });
  const asJwt = async () =>
    fx.connect({ token: await signJwt(signing, { subject: 'writer', scope: 'tools:read tools:delete' }) });
  const admin = async (gw: Gateway, path: string) =>
    (
      await fetch(new URL(path, gw.adminUrl!), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json();
  /** The error code a client's tool result starts with, or OK. */
  const code = (r: { content: unknown }) => codeOf(r as { content: Array<{ text?: string }> });
  const search = (c: Awaited<ReturnType<typeof asKey>>) =>
    c.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } }).then(code);

  it('gets a rate-limit bucket of its own', async () => {
    const key = await asKey();
    expect([await search(key), await search(key), await search(key)]).toEqual(['OK', 'OK', 'RATE_LIMITED']);
    const jwt = await asJwt();
    // The key holder's spent bucket is not the JWT's, and the JWT's own limit still holds.
    expect([await search(jwt), await search(jwt), await search(jwt)]).toEqual(['OK', 'OK', 'RATE_LIMITED']);
  });

  it('cannot use a confirmation token issued to the key holder, and the upstream receives nothing', async () => {
    const key = await asKey();
    const first = await key.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } });
    expect(code(first)).toBe('CONFIRMATION_REQUIRED');
    const token = /mcp_warden_confirmation: (\S+)/.exec(textOf(first))![1]!;
    const before = shop.requests.length;
    const stolen = await (await asJwt()).callTool({
      name: 'deleteCustomer',
      arguments: { customerId: 'c_1003', mcp_warden_confirmation: token },
    });
    expect(code(stolen)).toBe('CONFIRMATION_INVALID');
    expect(textOf(stolen)).toContain('issued for another caller');
    expect(shop.requests.length).toBe(before);
    // The token itself was good: its holder can still use it.
    const own = await key.callTool({
      name: 'deleteCustomer',
      arguments: { customerId: 'c_1003', mcp_warden_confirmation: token },
    });
    expect(code(own)).toBe('OK');
    expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1003' });
    await expectAudited(
      fx.auditFile,
      { tool: 'deleteCustomer', principal: AS_JWT, auth: 'jwt', code: 'CONFIRMATION_INVALID' },
      { tool: 'deleteCustomer', principal: AS_KEY, auth: 'api-key', outcome: 'ok', confirmed: 'token' },
    );
  });

  it('is a separate principal in the audit, its filters and first-use alerts, also after a restart', async () => {
    const key = await asKey();
    const jwt = await asJwt();
    await key.callTool({ name: 'getCustomer', arguments: { customerId: 'c_1001' } });
    await jwt.callTool({ name: 'getCustomer', arguments: { customerId: 'c_1001' } });
    await key.callTool({ name: 'listCustomers', arguments: {} });
    await expectAudited(
      fx.auditFile,
      { tool: 'getCustomer', principal: AS_KEY, auth: 'api-key', decision: 'allowed' },
      { tool: 'getCustomer', principal: AS_JWT, auth: 'jwt', decision: 'allowed' },
    );
    // The dashboard's and `audit query`'s principal filter tells them apart.
    for (const [who, auth] of [
      [AS_KEY, 'api-key'],
      [AS_JWT, 'jwt'],
    ]) {
      const page = (await admin(fx.gw, `/audit?tool=getCustomer&principal=${encodeURIComponent(who!)}`)) as {
        records: Array<{ principal: string; auth: string }>;
      };
      expect(page.records.map((r) => [r.principal, r.auth])).toEqual([[who, auth]]);
    }
    const firstUses = async (gw: Gateway) =>
      ((await admin(gw, '/alerts')) as { alerts: Array<{ rule: string; subject: string }> }).alerts
        .filter((a) => a.rule === 'firstUse')
        .map((a) => a.subject)
        .sort();
    const seen = await firstUses(fx.gw);
    expect(seen).toEqual(
      expect.arrayContaining([
        `${AS_JWT} → getCustomer`,
        `${AS_JWT} → searchProducts`,
        `${AS_KEY} → getCustomer`,
        `${AS_KEY} → listCustomers`,
        `${AS_KEY} → searchProducts`,
      ]),
    );
    expect(seen.filter((x) => !x.startsWith(`${AS_KEY} `) && !x.startsWith(`${AS_JWT} `))).toEqual([]);

    // A restart seeds the pairs already seen from the audit: the key holder's pairs do not silence
    // the JWT's first use of the same tool.
    const auditFile = fx.auditFile;
    await fx.close();
    fx = await startShopGateway({ shop, policy, admin: true, logLevel: 'fatal', serve: { auditFile } });
    await (await asKey()).callTool({ name: 'listCustomers', arguments: {} });
    await (await asJwt()).callTool({ name: 'listCustomers', arguments: {} });
    expect(await firstUses(fx.gw)).toEqual([`${AS_JWT} → listCustomers`]);
  });
});
