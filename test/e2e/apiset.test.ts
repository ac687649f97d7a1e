import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { connectHttp } from '../support/gateway.js';
import { type Recorded, SHARED_SPECS, startUpstream, tempTree } from '../support/helpers.js';
import { adminApi } from '../support/http.js';
import { codeOf } from '../support/pipeline.js';
import { ADMIN_TOKEN, SHOP_SPEC, type Shop, startShop } from '../support/shop.js';
import { eventually, expectAudited } from '../support/wait.js';

/**
 * One gateway over three real upstreams from three shared specs — the demo shop, the Swagger
 * petstore and Stripe — each with its own credential, plus a fourth API ("mirror", the petstore spec
 * again) whose base URL is the shop's origin. Calls reach the right upstream with the right
 * credential, and no upstream ever receives another API's secret.
 */
const PETSTORE = join(SHARED_SPECS, 'petstore-v3-swagger-api.yaml');
const STRIPE = join(SHARED_SPECS, 'stripe.yaml');
/** The shop's own key is made when it starts (below). */
const SECRETS = {
  shop: '',
  pets: 'pets-secret-0123456789abcdef',
  stripe: 'sk_test_stripe_secret_0123456789',
  mirror: 'mirror-secret-0123456789abcdef',
};

const json = (res: import('node:http').ServerResponse, body: unknown, status = 200) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** Every header value and URL an upstream received, as one text to search for secrets. */
const seen = (requests: ReadonlyArray<Pick<Recorded, 'url' | 'headers'>>) =>
  JSON.stringify(requests.map((r) => [r.url, r.headers]));

describe('an API set: three APIs behind one gateway', () => {
  let shop: Shop;
  let pets: Awaited<ReturnType<typeof startUpstream>>;
  let stripe: Awaited<ReturnType<typeof startUpstream>>;
  /** Stripe answers are held while this is set, to hang that API. */
  let hold: Array<() => void> | undefined;
  let gw: Gateway;
  let client: Client;
  let dir: string;

  beforeAll(async () => {
    shop = await startShop();
    SECRETS.shop = shop.key;
    pets = await startUpstream((req, res) => {
      if (req.url.startsWith('/api/v3/pet/')) json(res, { id: 7, name: 'rex', photoUrls: [] });
      else json(res, { error: 'not here' }, 404);
    });
    stripe = await startUpstream((_req, res) => {
      const answer = () => json(res, { id: 'cus_1', object: 'customer', created: 1, livemode: false });
      if (hold) hold.push(answer);
      else answer();
    });
    dir = tempTree({ 'pets.yaml': readFileSync(PETSTORE, 'utf8') });
    writeFileSync(
      join(dir, 'warden.yaml'),
      [
        'version: 1',
        'admin: { token: env:ADMIN_TOKEN }',
        'apis:',
        '  shop:',
        `    spec: ${SHOP_SPEC}`,
        `    baseUrl: ${shop.url}`,
        '    credentials:',
        '      key: { scheme: shopKey, dev: env:SHOP_SECRET }',
        '  pets:',
        // Relative to the policy file.
        '    spec: pets.yaml',
        `    baseUrl: ${pets.origin}/api/v3`,
        '  stripe:',
        `    spec: ${STRIPE}`,
        `    baseUrl: ${stripe.origin}`,
        '    timeoutMs: 30000',
        '  mirror:',
        `    spec: ${PETSTORE}`,
        // Another API's origin: it must get the mirror's credential there, never the shop's.
        `    baseUrl: ${shop.url}`,
        '    rules:',
        '      - match: { name: mirror_getPetById }',
        '        timeoutMs: 4000',
        '',
      ].join('\n'),
    );
    gw = await startGateway({
      policy: join(dir, 'warden.yaml'),
      auditFile: join(dir, 'audit.jsonl'),
      transport: { kind: 'http', port: 0 },
      admin: { port: 0 },
      logLevel: 'error',
      env: {
        ADMIN_TOKEN,
        SHOP_SECRET: SECRETS.shop,
        // The shop's key under the unprefixed name too: in a set it must not be used for anything.
        MCP_WARDEN_CRED_SHOPKEY: SECRETS.shop,
        MCP_WARDEN_CRED_API_KEY: SECRETS.shop,
        MCP_WARDEN_CRED_PETS_API_KEY: SECRETS.pets,
        MCP_WARDEN_CRED_STRIPE_BEARERAUTH: SECRETS.stripe,
        MCP_WARDEN_CRED_MIRROR_API_KEY: SECRETS.mirror,
      },
    });
    client = await connectHttp(gw.url!);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await gw?.close();
    await shop?.close();
    await pets?.close();
    await stripe?.close();
  });

  it('lists every API’s tools under its prefix, each marked with its API', async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'shop_getCustomer',
        'pets_getPetById',
        'stripe_GetCustomersCustomer',
        'mirror_getPetById',
      ]),
    );
    expect(names.every((n) => /^(shop|pets|stripe|mirror)_/.test(n))).toBe(true);
    const catalog = gw.controller.currentCatalog();
    expect(catalog.title).toBe('shop + pets + stripe + mirror');
    expect(catalog.tools.every((t) => t.name.startsWith(`${t.api}_`))).toBe(true);
    expect(gw.apis().map((a) => [a.name, a.state])).toEqual([
      ['shop', 'serving'],
      ['pets', 'serving'],
      ['stripe', 'serving'],
      ['mirror', 'serving'],
    ]);
  });

  it('sends each call to its API’s upstream with that API’s credential, and no other secret anywhere', async () => {
    const r1 = await client.callTool({ name: 'shop_getCustomer', arguments: { customerId: 'c_1001' } });
    const r2 = await client.callTool({ name: 'pets_getPetById', arguments: { petId: 7 } });
    const r3 = await client.callTool({
      name: 'stripe_GetCustomersCustomer',
      arguments: { customer: 'cus_1' },
    });
    const r4 = await client.callTool({ name: 'mirror_getPetById', arguments: { petId: 8 } });
    for (const r of [r1, r2, r3]) expect(r.isError ?? false, JSON.stringify(r.content)).toBe(false);
    expect(r4.isError).toBe(true); // the shop refuses it (no shop key, no such path), as it should

    expect(shop.requests.find((r) => r.url.includes('/customers/c_1001'))!.headers['x-shop-key']).toBe(
      SECRETS.shop,
    );
    expect(pets.requests.at(-1)!.headers.api_key).toBe(SECRETS.pets);
    expect(stripe.requests.at(-1)!.headers.authorization).toBe(`Bearer ${SECRETS.stripe}`);
    // The mirror's call went to the shop's origin with the mirror's key, not the shop's.
    const mirrored = shop.requests.find((r) => r.url.includes('/pet/8'))!;
    expect(mirrored.headers.api_key).toBe(SECRETS.mirror);
    expect(mirrored.headers['x-shop-key']).toBeUndefined();

    const received = {
      shop: seen(shop.requests.filter((r) => !r.url.includes('/pet/'))),
      mirror: seen(shop.requests.filter((r) => r.url.includes('/pet/'))),
      pets: seen(pets.requests),
      stripe: seen(stripe.requests),
    };
    for (const [api, text] of Object.entries(received))
      for (const [owner, secret] of Object.entries(SECRETS))
        if (owner !== api) expect(text, `${api} received ${owner}'s secret`).not.toContain(secret);
    await expectAudited(gw.auditFile, { tool: 'stripe_GetCustomersCustomer', decision: 'allowed' });
  });

  it('applies an API’s own rules and limits to its tools only', () => {
    const d = (name: string) => gw.controller.decisions().find((x) => x.tool.name === name)!;
    expect(d('mirror_getPetById').limits.timeoutMs).toBe(4000);
    expect(d('pets_getPetById').limits.timeoutMs).toBeUndefined();
    expect(d('stripe_GetCustomersCustomer').limits.timeoutMs).toBe(30000);
    expect(d('stripe_GetCustomersCustomer').steps.map((s) => s.by)).toContain('apis.stripe (warden.yaml:13)');
  });

  it('keeps answering the other APIs while one API hangs', async () => {
    hold = [];
    const hung = Array.from({ length: 40 }, () =>
      client.callTool({ name: 'stripe_GetCustomersCustomer', arguments: { customer: 'cus_2' } }),
    );
    await eventually(() => expect(hold!.length).toBeGreaterThan(0), { what: 'a stripe call held' });
    // Every stripe call is still waiting: the others are answered all the same.
    for (let i = 0; i < 5; i++) {
      const r = await client.callTool({ name: 'pets_getPetById', arguments: { petId: 7 } });
      expect(r.isError ?? false).toBe(false);
      const s = await client.callTool({ name: 'shop_getCustomer', arguments: { customerId: 'c_1001' } });
      expect(s.isError ?? false).toBe(false);
    }
    const waiting = hold;
    hold = undefined;
    for (const release of waiting) release();
    const results = await Promise.all(hung);
    expect(results.length).toBe(40);
  });

  it('reloads one API alone: the others keep their tools; its changed tool waits for approval', async () => {
    const before = gw.controller.currentCatalog().tools;
    const others = before.filter((t) => t.api !== 'pets');
    writeFileSync(
      join(dir, 'pets.yaml'),
      readFileSync(PETSTORE, 'utf8').replace('summary: Find pet by ID.', 'summary: Find a pet, now by ID.'),
    );
    const res = await adminApi(gw.adminUrl!, ADMIN_TOKEN)('POST', '/spec/reload', { api: 'pets' });
    expect(res.status).toBe(200);
    expect((res.body as { apis: Record<string, unknown> }).apis).toEqual({
      pets: { tools: before.filter((t) => t.api === 'pets').length },
    });
    const after = gw.controller.currentCatalog().tools;
    // The other APIs' tools are the very same objects: nothing of theirs was rebuilt.
    for (const t of others) expect(after.find((x) => x.name === t.name)).toBe(t);
    expect([...gw.controller.pending().keys()]).toEqual(['pets_getPetById']);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('pets_getPetById');
    expect(names).toContain('shop_getCustomer');
    const unknown = await adminApi(gw.adminUrl!, ADMIN_TOKEN)('POST', '/spec/reload', { api: 'nope' });
    expect(unknown.status).toBe(400);
  });
});

describe('an API set with an API whose spec cannot be loaded', () => {
  let shop: Shop;
  let dir: string;

  beforeAll(async () => {
    shop = await startShop();
    dir = tempTree({});
  });
  afterAll(async () => {
    await shop?.close();
  });

  const policy = (required: boolean) =>
    [
      'version: 1',
      'admin: { token: env:ADMIN_TOKEN }',
      'apis:',
      '  shop:',
      `    spec: ${SHOP_SPEC}`,
      `    baseUrl: ${shop.url}`,
      '  pets:',
      '    spec: pets-later.yaml',
      '    baseUrl: http://127.0.0.1:9/api/v3',
      `    required: ${required}`,
      '',
    ].join('\n');
  const start = (file: string) =>
    startGateway({
      policy: file,
      auditFile: join(dir, `${file.endsWith('a.yaml') ? 'a' : 'b'}.jsonl`),
      transport: { kind: 'http', port: 0 },
      admin: { port: 0 },
      logLevel: 'silent',
      env: { ADMIN_TOKEN, MCP_WARDEN_CRED_SHOP_SHOPKEY: shop.key },
    });

  it('--watch-spec with an optional API whose spec folder does not exist yet: starts, watching the rest', async () => {
    const file = join(dir, 'w.yaml');
    writeFileSync(file, policy(false).replace('pets-later.yaml', 'not-mounted-yet/pets.yaml'));
    const gw = await startGateway({
      policy: file,
      auditFile: join(dir, 'w.jsonl'),
      transport: { kind: 'http', port: 0 },
      watchSpec: true,
      logLevel: 'silent',
      env: { ADMIN_TOKEN, MCP_WARDEN_CRED_SHOP_SHOPKEY: shop.key },
    });
    try {
      expect(gw.apis().find((a) => a.name === 'shop')).toMatchObject({ state: 'serving' });
      expect(gw.apis().find((a) => a.name === 'pets')).toMatchObject({ state: 'out' });
    } finally {
      await gw.close();
    }
  });

  it('does not start when the API is marked required (all-or-nothing), naming it', async () => {
    writeFileSync(join(dir, 'a.yaml'), policy(true));
    await expect(start(join(dir, 'a.yaml'))).rejects.toMatchObject({
      code: 'SPEC_NOT_FOUND',
      message: expect.stringContaining('API pets'),
    });
  });

  it('takes only that API out when it is not required: ready, named as degraded, its tools unknown', async () => {
    writeFileSync(join(dir, 'b.yaml'), policy(false));
    const gw = await start(join(dir, 'b.yaml'));
    try {
      const ready = await fetch(new URL('/readyz', gw.url));
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', degraded: ['api:pets'] });
      expect(gw.apis().find((a) => a.name === 'pets')).toMatchObject({ state: 'out', tools: 0 });
      const client = await connectHttp(gw.url!);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('shop_getCustomer');
      expect(names.some((n) => n.startsWith('pets_'))).toBe(false);
      // A call to one of its tools is refused exactly as a name the gateway never had.
      const refusal = (name: string) =>
        client.callTool({ name, arguments: {} }).then(
          (r) => ({ result: codeOf(r as { content: Array<{ text?: string }> }) }),
          (e: { code?: unknown; data?: unknown }) => ({ code: e.code, data: e.data }),
        );
      const missing = await refusal('pets_getPetById');
      expect(missing).toEqual(await refusal('nothing_here'));
      expect(JSON.stringify(missing)).toContain('TOOL_NOT_FOUND');
      const shopCall = await client.callTool({
        name: 'shop_getCustomer',
        arguments: { customerId: 'c_1001' },
      });
      expect(shopCall.isError ?? false).toBe(false);

      // The spec appears: reloading that API brings it in; its tools are new to this gateway, so they
      // wait for approval as after any spec change.
      copyFileSync(PETSTORE, join(dir, 'pets-later.yaml'));
      const res = await adminApi(gw.adminUrl!, ADMIN_TOKEN)('POST', '/spec/reload', { api: 'pets' });
      expect(res.status).toBe(200);
      expect(gw.apis().find((a) => a.name === 'pets')).toMatchObject({ state: 'serving' });
      await eventually(
        async () => {
          const r = await fetch(new URL('/readyz', gw.url));
          expect(await r.json()).toEqual({ status: 'ready' });
        },
        { what: 'readiness without degraded APIs' },
      );
      expect(gw.controller.pending().has('pets_getPetById')).toBe(true);
      await client.close();
    } finally {
      await gw.close();
    }
  });
});
