import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Era, startTestGateway, type TestGateway, textOf } from '../support/gateway.js';
import { jsonOk, minimalSpec, SHARED_SPECS, startUpstream } from '../support/helpers.js';
import { tempPath } from '../support/paths.js';

/**
 * Issue 23, lists a model can afford: `tools/list` leaves output schemas out by default (the
 * policy's `toolsList.outputSchemas: true` lists them), while results are still checked and masked
 * against them, `describe_tool` still shows them, results stay valid for clients of both eras and
 * of both SDKs, and pins do not move with the setting.
 */
const product = {
  type: 'object',
  required: ['sku', 'name'],
  properties: { sku: { type: 'string' }, name: { type: 'string' }, price: { type: 'number' } },
};
const SPEC = minimalSpec({
  '/products': { get: { operationId: 'listProducts', responses: jsonOk({ type: 'array', items: product }) } },
  '/products/{sku}': {
    get: {
      operationId: 'getProduct',
      parameters: [{ name: 'sku', in: 'path', required: true, schema: { type: 'string' } }],
      responses: jsonOk(product),
    },
  },
});
const MASKING = `fields:
  price: financial
rules:
  - match: { name: "*" }
    masking: { financial: drop }
`;
const LISTED = `version: 1\ntoolsList: { outputSchemas: true }\n${MASKING}`;
const DEFAULT = `version: 1\n${MASKING}`;

const ERAS: Array<[string, Era]> = [
  ['2025-11-25', 'legacy'],
  ['2026-07-28', { pin: '2026-07-28' }],
];

let upstream: Awaited<ReturnType<typeof startUpstream>>;
beforeAll(async () => {
  upstream = await startUpstream((r, res) => {
    const one = (sku: string) => ({ sku, name: `Product ${sku}`, price: 12.5 });
    const body = r.url.startsWith('/products/bad')
      ? { sku: 42 } // violates the declared schema: sku is a string, name is required
      : r.url.startsWith('/products/')
        ? one(r.url.slice('/products/'.length))
        : [one('a'), one('b')];
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
});
afterAll(() => upstream?.close());

async function v1Client(url: string): Promise<V1Client> {
  const c = new V1Client({ name: 'v1-sdk', version: '1' });
  await c.connect(new V1Transport(new URL(url)));
  return c;
}

describe('output schemas left out of tools/list by default', () => {
  let fx: TestGateway;
  beforeAll(async () => {
    fx = await startTestGateway({ spec: SPEC, baseUrl: upstream.origin, policy: DEFAULT });
  });
  afterAll(() => fx?.close());

  for (const [label, era] of ERAS) {
    it(`${label}: no tool lists an outputSchema; results keep structuredContent, masked`, async () => {
      const client: Client = await fx.connect({ era });
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['getProduct', 'listProducts']);
      for (const t of tools) expect(t.outputSchema).toBeUndefined();

      const one = await client.callTool({ name: 'getProduct', arguments: { sku: 'x1' } });
      expect(one.isError).toBeFalsy();
      // Masked by the schema the list no longer carries: the financial field is dropped.
      expect(one.structuredContent).toEqual({ sku: 'x1', name: 'Product x1' });
      // A JSON array arrives as `{ result }`, as it did when its wrapped schema was listed.
      const list = await client.callTool({ name: 'listProducts', arguments: {} });
      expect(list.structuredContent).toEqual({
        result: [
          { sku: 'a', name: 'Product a' },
          { sku: 'b', name: 'Product b' },
        ],
      });
    });

    it(`${label}: an answer that breaks the (unlisted) schema is still refused`, async () => {
      const client = await fx.connect({ era });
      const r = await client.callTool({ name: 'getProduct', arguments: { sku: 'bad' } });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/^\[UPSTREAM_SCHEMA_MISMATCH\]/);
    });
  }

  it('a v1 SDK client accepts the results (no schema listed to check them against)', async () => {
    const c = await v1Client(fx.gw.url!);
    try {
      const { tools } = await c.listTools();
      expect(tools.every((t) => t.outputSchema === undefined)).toBe(true);
      const r = await c.callTool({ name: 'getProduct', arguments: { sku: 'x2' } });
      expect(r.structuredContent).toEqual({ sku: 'x2', name: 'Product x2' });
    } finally {
      await c.close();
    }
  });
});

describe('toolsList.outputSchemas: true', () => {
  let fx: TestGateway;
  beforeAll(async () => {
    fx = await startTestGateway({ spec: SPEC, baseUrl: upstream.origin, policy: LISTED });
  });
  afterAll(() => fx?.close());

  for (const [label, era] of ERAS) {
    it(`${label}: lists the published (masked) outline, and results validate against it`, async () => {
      const client = await fx.connect({ era });
      const { tools } = await client.listTools();
      const get = tools.find((t) => t.name === 'getProduct')!;
      expect(get.outputSchema).toMatchObject({ type: 'object', properties: { sku: { type: 'string' } } });
      expect(JSON.stringify(get.outputSchema)).not.toContain('price');
      const r = await client.callTool({ name: 'getProduct', arguments: { sku: 'x3' } });
      expect(r.structuredContent).toEqual({ sku: 'x3', name: 'Product x3' });
    });
  }

  it('a v1 SDK client validates the results against the listed schema and accepts them', async () => {
    const c = await v1Client(fx.gw.url!);
    try {
      const { tools } = await c.listTools();
      expect(tools.find((t) => t.name === 'listProducts')!.outputSchema).toBeDefined();
      const r = await c.callTool({ name: 'listProducts', arguments: {} });
      expect((r.structuredContent as { result: unknown[] }).result).toHaveLength(2);
    } finally {
      await c.close();
    }
  });
});

describe('dynamic mode: describe_tool shows the output schema whatever tools/list does', () => {
  it('describes getProduct with its outputSchema under the default policy', async () => {
    const fx = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.origin,
      policy: DEFAULT,
      serve: { dynamic: true },
    });
    try {
      const client = await fx.connect();
      const r = await client.callTool({ name: 'describe_tool', arguments: { name: 'getProduct' } });
      const described = r.structuredContent as { outputSchema?: unknown; inputSchema: unknown };
      expect(described.outputSchema).toMatchObject({ type: 'object', properties: { name: {} } });
      expect(JSON.stringify(described.outputSchema)).not.toContain('price');
    } finally {
      await fx.close();
    }
  });
});

describe('pins', () => {
  it('do not move with the setting: tools pinned with schemas left out stay approved when listed', async () => {
    const pinsFile = tempPath('pins.json');
    const names = async (policy: string) => {
      const fx = await startTestGateway({
        spec: SPEC,
        baseUrl: upstream.origin,
        policy,
        serve: { pinsFile, watchPolicy: false },
      });
      try {
        const client = await fx.connect();
        return (await client.listTools()).tools.map((t) => t.name).sort();
      } finally {
        await fx.close();
      }
    };
    expect(await names(DEFAULT)).toEqual(['getProduct', 'listProducts']);
    // A changed definition would be hidden until approved; the listing setting changes none.
    expect(await names(LISTED)).toEqual(['getProduct', 'listProducts']);
  });
});

describe('what a default tools/list costs (o200k tokens)', () => {
  it('Slack: at most 300 tokens per listed tool', { timeout: 120_000 }, async () => {
    const fx = await startTestGateway({
      spec: join(SHARED_SPECS, 'slack-web.json'),
      baseUrl: upstream.origin,
      env: { MCP_WARDEN_CRED_SLACKAUTH: 'test-placeholder' },
    });
    try {
      const client = await fx.connect();
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(40);
      expect(countTokens(JSON.stringify(tools)) / tools.length).toBeLessThanOrEqual(300);
    } finally {
      await fx.close();
    }
  });
});
