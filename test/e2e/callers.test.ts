import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { connectHttp, type Era, mcpClient, type ShopGateway, startShopGateway } from '../support/gateway.js';
import { LIST_TOOLS, type Listening, postMcp } from '../support/http.js';
import { es256, ISSUER, RESOURCE, type SigningKey, serveJwks, signJwt } from '../support/jwt.js';
import { tempPath } from '../support/paths.js';
import { SHOP_SPEC, type Shop, startShop } from '../support/shop.js';
import { connectShopStdio } from '../support/stdio.js';
import { expectAudited } from '../support/wait.js';

const KEYS = {
  reader: 'mwk_reader-key-000000000000000000000000000',
  ordersOnly: 'mwk_orders-only-key-0000000000000000000000',
  writer: 'mwk_writer-key-000000000000000000000000000',
  expired: 'mwk_expired-key-00000000000000000000000000',
  prodOnly: 'mwk_prod-only-key-000000000000000000000000',
  noMcp: 'mwk_no-mcp-key-0000000000000000000000000000',
};

describe('HTTP callers, scopes and confirmations (real MCP clients, real upstream)', () => {
  let shop: Shop;
  let fx: ShopGateway;
  let gw: Gateway;
  let jwks: Listening;
  let signKey: SigningKey;
  let otherKey: SigningKey;

  beforeAll(async () => {
    shop = await startShop();
    const signing = await es256({ use: 'sig' });
    signKey = signing.privateKey;
    otherKey = (await es256()).privateKey;
    jwks = await serveJwks(signing.jwk);
    const key = (id: string, k: string, scopes: string[], extra = '') =>
      `    - { id: ${id}, hash: "${hashKey(k)}", scopes: [${scopes.join(', ')}]${extra} }`;
    const policy = [
      'version: 1',
      'mode: read-write',
      'callers:',
      `  resource: ${RESOURCE}`,
      '  requiredScopes: [mcp]',
      '  apiKeys:',
      key('reader', KEYS.reader, ['mcp', 'tools:read']),
      key('orders-only', KEYS.ordersOnly, ['mcp', 'orders']),
      key('writer', KEYS.writer, ['mcp', 'tools:read', 'tools:write', 'tools:delete']),
      key('old', KEYS.expired, ['mcp', 'tools:read'], ', expires: "2020-01-01T00:00:00Z"'),
      key('prod-bot', KEYS.prodOnly, ['mcp', 'tools:read'], ', environment: prod'),
      key('no-mcp', KEYS.noMcp, ['tools:read']),
      '  jwt:',
      `    jwksUrl: ${jwks.url}`,
      `    issuer: ${ISSUER}`,
      '    algorithms: [ES256]',
      'credentials:',
      '  shop: { scheme: shopKey, dev: env:SHOP_KEY_DEV, prod: env:SHOP_KEY_PROD }',
      'rules:',
      '  - match: { name: getOrder }',
      '    scopes: [orders]',
      '  - match: { name: createOrder }',
      '    enabled: true',
      '  - match: { name: deleteCustomer }',
      '    enabled: true',
      // The token flow bound to each caller is what is tested here (operator approvals: approvals.test.ts).
      '    approval: agent',
      '    reason: the tests bind tokens to callers',
    ].join('\n');
    fx = await startShopGateway({ shop, policy, logLevel: 'warn', env: { SHOP_KEY_DEV: shop.key } });
    gw = fx.gw;
  });
  afterAll(async () => {
    await fx?.close();
    await shop?.close();
    await jwks?.close();
  });

  /** A client with `token`; `elicit`: it declares elicitation and answers every question so. */
  function connect(token: string, era: Era = 'legacy', elicit?: 'accept' | 'decline') {
    const c = mcpClient({
      name: 'callers-e2e',
      era,
      ...(elicit ? { options: { capabilities: { elicitation: { form: {} } } } } : {}),
    });
    if (elicit)
      c.setRequestHandler('elicitation/create', async () =>
        elicit === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' },
      );
    return connectHttp(gw.url!, { token }, c);
  }
  const post = (headers: Record<string, string>) => postMcp(gw.url!, LIST_TOOLS, headers);
  const jwt = (claims: Record<string, unknown>, key: SigningKey = signKey) =>
    signJwt(key, { scope: 'mcp tools:read', claims, subject: 'user-42', issuedAt: true });
  const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();

  describe('as an OAuth 2.1 resource server', () => {
    it('answers 401 with a WWW-Authenticate pointing at the protected-resource metadata', async () => {
      const res = await post({});
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(
        'Bearer resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"',
      );
    });

    it('publishes the RFC 9728 document', async () => {
      for (const path of [
        '/.well-known/oauth-protected-resource',
        '/.well-known/oauth-protected-resource/mcp',
      ]) {
        const res = await fetch(new URL(path, gw.url!));
        expect(res.status).toBe(200);
        const doc = (await res.json()) as { scopes_supported: string[] };
        expect(doc).toMatchObject({
          resource: RESOURCE,
          authorization_servers: [ISSUER],
          bearer_methods_supported: ['header'],
        });
        // The scopes the running policy actually uses, so a client can ask for the right ones.
        expect(doc.scopes_supported).toEqual(
          expect.arrayContaining(['mcp', 'orders', 'tools:read', 'tools:write', 'tools:delete']),
        );
      }
    });

    it('refuses expired, foreign-environment and unknown API keys as invalid_token', async () => {
      for (const token of [KEYS.expired, KEYS.prodOnly, 'mwk_not-a-key-at-all-00000000000000000']) {
        const res = await post({ authorization: `Bearer ${token}` });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(
          /^Bearer error="invalid_token", error_description="[^"]+", resource_metadata=/,
        );
        expect(await res.text()).not.toContain(token);
      }
    });

    it('answers 403 insufficient_scope naming the scope the endpoint requires', async () => {
      const res = await post({ authorization: `Bearer ${KEYS.noMcp}` });
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="mcp"');
    });

    it('accepts a valid JWT and takes its scopes from the scope claim', async () => {
      const c = await connect(await jwt({}));
      expect(await names(c)).toEqual([
        'getCustomer',
        'listCustomerOrders',
        'listCustomers',
        'searchProducts',
      ]);
      const r = await c.callTool({ name: 'searchProducts', arguments: { q: 'jwt-audited' } });
      expect(r.isError).toBeFalsy();
      await c.close();
      await expectAudited(fx.auditFile, { tool: 'searchProducts', decision: 'allowed', auth: 'jwt' });
    });

    const u = { scope: 'mcp tools:read', subject: 'u' };
    it.each([
      ['expired', () => signJwt(signKey, { ...u, expires: Math.floor(Date.now() / 1000) - 3600 }), 'expired'],
      [
        'for another audience',
        () => signJwt(signKey, { ...u, audience: 'https://other.example/mcp' }),
        'audience',
      ],
      ['from another issuer', () => signJwt(signKey, { ...u, issuer: 'https://evil.example/' }), 'issuer'],
      ['signed with another key', () => jwt({}, otherKey), 'signature'],
      [
        'unsigned (alg: none)',
        async () => {
          const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
          return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: ISSUER, aud: RESOURCE, sub: 'u', scope: 'mcp tools:read tools:write tools:delete', exp: Math.floor(Date.now() / 1000) + 300 })}.`;
        },
        'algorithm',
      ],
    ])('refuses a JWT %s', async (_label, make, why) => {
      const res = await post({ authorization: `Bearer ${await make()}` });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(res.headers.get('www-authenticate')).toContain(why);
    });
  });

  describe('per-tool scopes', () => {
    it('shows each caller only the tools its scopes allow', async () => {
      const reader = await connect(KEYS.reader);
      const orders = await connect(KEYS.ordersOnly, { pin: '2026-07-28' });
      const writer = await connect(KEYS.writer);
      expect(await names(reader)).toEqual([
        'getCustomer',
        'listCustomerOrders',
        'listCustomers',
        'searchProducts',
      ]);
      expect(await names(orders)).toEqual(['getOrder']);
      expect(await names(writer)).toEqual([
        'createOrder',
        'deleteCustomer',
        'getCustomer',
        'listCustomerOrders',
        'listCustomers',
        'searchProducts',
      ]);
      await Promise.all([reader.close(), orders.close(), writer.close()]);
    });

    it('denies escalation: a caller scoped to one tool can neither see nor call another, and the upstream receives nothing', async () => {
      const c = await connect(KEYS.ordersOnly);
      const before = shop.requests.length;
      const other = await c.callTool({ name: 'searchProducts', arguments: { q: 'x' } }).catch((e) => e);
      const write = await c
        .callTool({
          name: 'createOrder',
          arguments: { body: { customerId: 'c_1001', items: [{ sku: 'KB-01', quantity: 1 }] } },
        })
        .catch((e) => e);
      const unknown = await c.callTool({ name: 'searchProductz', arguments: { q: 'x' } }).catch((e) => e);
      for (const e of [other, write]) {
        expect(e.code).toBe(-32602);
        expect(e.message.replace(/searchProducts|createOrder/, 'X')).toBe(
          unknown.message.replace('searchProductz', 'X'),
        );
      }
      expect(shop.requests.length).toBe(before);
      const ok = await c.callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } });
      expect(ok.isError).toBeFalsy();
      await c.close();
      await expectAudited(
        fx.auditFile,
        {
          tool: 'searchProducts',
          principal: 'key:orders-only',
          decision: 'denied',
          code: 'DENIED_SCOPE',
          auth: 'api-key',
        },
        {
          tool: 'createOrder',
          principal: 'key:orders-only',
          decision: 'denied',
          code: 'DENIED_SCOPE',
          auth: 'api-key',
        },
        { tool: 'getOrder', principal: 'key:orders-only', decision: 'allowed', auth: 'api-key' },
      );
    });

    it('presents the policy credential upstream and never the caller token', async () => {
      const c = await connect(KEYS.writer);
      await c.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
      const last = shop.requests.at(-1)!;
      expect(last.headers['x-shop-key']).toBe(shop.key);
      expect(JSON.stringify(last.headers)).not.toContain(KEYS.writer);
      expect(last.headers.authorization).toBeUndefined();
      await c.close();
    });
  });

  describe('confirmation of destructive calls', () => {
    it('gives a 2025-11-25 client without elicitation a preview and a single-use token', async () => {
      const c = await connect(KEYS.writer);
      const before = shop.requests.length;
      const first = await c.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } });
      expect(first.isError).toBe(true);
      const text = (first.content as Array<{ text: string }>).map((x) => x.text).join('\n');
      expect(text).toContain('[CONFIRMATION_REQUIRED]');
      expect(text).toContain('Allow deleteCustomer (DELETE /customers/{customerId})');
      expect(shop.requests.length).toBe(before);
      const token = /mcp_warden_confirmation: (\S+)/.exec(text)![1]!;

      // Another caller cannot use it, and neither can other arguments.
      const reader = await connect(KEYS.reader);
      expect(
        (
          await reader
            .callTool({
              name: 'deleteCustomer',
              arguments: { customerId: 'c_1003', mcp_warden_confirmation: token },
            })
            .catch((e) => e)
        ).code,
      ).toBe(-32602);
      const changed = await c.callTool({
        name: 'deleteCustomer',
        arguments: { customerId: 'c_1002', mcp_warden_confirmation: token },
      });
      expect(JSON.stringify(changed.content)).toContain('CONFIRMATION_INVALID');
      expect(shop.requests.length).toBe(before);

      // The token was consumed by the refused attempt above: a fresh one is needed.
      const again = await c.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } });
      const token2 = /mcp_warden_confirmation: (\S+)/.exec(
        (again.content as Array<{ text: string }>).map((x) => x.text).join('\n'),
      )![1]!;
      const done = await c.callTool({
        name: 'deleteCustomer',
        arguments: { customerId: 'c_1003', mcp_warden_confirmation: token2 },
      });
      expect(done.isError).toBeFalsy();
      expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1003' });
      const replay = await c.callTool({
        name: 'deleteCustomer',
        arguments: { customerId: 'c_1003', mcp_warden_confirmation: token2 },
      });
      expect(JSON.stringify(replay.content)).toContain('already been used');
      await Promise.all([c.close(), reader.close()]);
      await expectAudited(
        fx.auditFile,
        { tool: 'deleteCustomer', decision: 'denied', code: 'CONFIRMATION_REQUIRED' },
        { tool: 'deleteCustomer', decision: 'denied', code: 'CONFIRMATION_INVALID' },
        { tool: 'deleteCustomer', decision: 'allowed', outcome: 'ok', confirmed: 'token' },
      );
    });

    it('asks a 2026-07-28 client through input_required, and runs only when the user accepts', async () => {
      const no = await connect(KEYS.writer, { pin: '2026-07-28' }, 'decline');
      const before = shop.requests.length;
      const declined = await no.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(declined.isError).toBe(true);
      expect(JSON.stringify(declined.content)).toContain('CONFIRMATION_DECLINED');
      expect(shop.requests.length).toBe(before);
      const yes = await connect(KEYS.writer, { pin: '2026-07-28' }, 'accept');
      const done = await yes.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(done.isError).toBeFalsy();
      expect(shop.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/customers/c_1002' });
      await Promise.all([no.close(), yes.close()]);
    });

    it('runs writes the policy enabled without confirmation', async () => {
      const c = await connect(KEYS.writer);
      const r = await c.callTool({
        name: 'createOrder',
        arguments: { body: { customerId: 'c_1001', items: [{ sku: 'KB-01', quantity: 1 }] } },
      });
      expect(r.content).toEqual(expect.anything());
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      expect(shop.requests.at(-1)).toMatchObject({ method: 'POST', url: '/v1/orders' });
      await c.close();
    });
  });
});

describe('HTTP beyond loopback', () => {
  it('refuses to start without configured callers', async () => {
    const err = await startGateway({
      spec: SHOP_SPEC,
      baseUrl: 'http://127.0.0.1:9',
      auditFile: tempPath('a.jsonl'),
      transport: { kind: 'http', port: 0, host: '0.0.0.0' },
      logLevel: 'error',
      env: {},
    }).catch((e) => e);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('needs callers');
  });
});

describe('the stdio principal', () => {
  it.each([
    ['stdio:local by default', undefined, 'stdio:local'],
    [
      'stdio:<name> for the name the policy gives',
      'version: 1\ncallers:\n  stdio: { principal: ops }\n',
      'stdio:ops',
    ],
  ])('is %s', async (_label, policy, principal) => {
    const client = mcpClient({ name: 'stdio-principal' });
    const served = await connectShopStdio(client, policy === undefined ? {} : { policy });
    try {
      await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
      await expectAudited(served.auditFile, { tool: 'searchProducts', principal, auth: 'stdio' });
    } finally {
      await served.close();
    }
  });
});
