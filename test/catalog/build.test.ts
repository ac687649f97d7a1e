import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { Tool } from '../../src/model/catalog.js';
import { loadSpec } from '../../src/openapi/load.js';
import { minimalSpec, tempTree } from '../support/helpers.js';

const spec = minimalSpec(
  {
    '/shops/{shopId}/customers': {
      parameters: [
        {
          name: 'shopId',
          in: 'path',
          required: true,
          schema: { type: 'string' },
          description: 'Shop, path-level.',
        },
        { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 10 } },
      ],
      get: {
        operationId: 'listCustomers',
        summary: 'List \u001b[31mcustomers\u200b',
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 50, default: 20 } },
          { name: 'X-Shop-Key', in: 'header', schema: { type: 'string' } },
          { name: 'Authorization', in: 'header', schema: { type: 'string' } },
          { name: 'Host', in: 'header', schema: { type: 'string' } },
          { name: 'id', in: 'query', schema: { type: 'string' } },
          { name: 'id', in: 'header', schema: { type: 'string' } },
          {
            name: 'expand[]',
            in: 'query',
            style: 'deepObject',
            explode: true,
            schema: { type: 'array', items: { type: 'string' } },
          },
          { name: 'starting_after', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'ok',
            content: {
              'application/json': {
                schema: { type: 'array', items: { $ref: '#/components/schemas/Customer' } },
              },
            },
          },
        },
      },
      post: {
        operationId: 'createCustomer',
        requestBody: {
          required: true,
          content: {
            'application/x-www-form-urlencoded': {
              schema: { type: 'object', properties: { name: { type: 'string' }, token: { type: 'string' } } },
            },
            'application/json': { schema: { $ref: '#/components/schemas/Customer' } },
          },
        },
        responses: {
          '201': {
            description: 'created',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Customer' } } },
          },
        },
      },
    },
    '/public/status': {
      get: { security: [], responses: { '200': { description: 'ok', content: { 'text/plain': {} } } } },
    },
    '/files': {
      post: {
        operationId: 'uploadFile',
        requestBody: {
          content: {
            'multipart/form-data': {
              schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } },
            },
          },
        },
        responses: { '200': { description: 'ok' } },
      },
    },
  },
  {
    servers: [
      {
        url: 'https://{region}.shop.example/v1',
        variables: { region: { default: 'eu', enum: ['eu', 'us'] } },
      },
    ],
    security: [{ shopKey: [] }, { oauth: ['customers:read', 'admin:shops'] }],
    components: {
      securitySchemes: {
        shopKey: { type: 'apiKey', in: 'header', name: 'x-shop-key' },
        oauth: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: 'https://auth.example/token',
              scopes: { 'customers:read': '', 'admin:shops': '' },
            },
          },
        },
      },
      schemas: {
        Customer: {
          type: 'object',
          required: ['id', 'email'],
          properties: {
            id: { type: 'string', readOnly: true },
            email: { type: 'string', format: 'email' },
            referrer: { $ref: '#/components/schemas/Customer' },
          },
        },
      },
    },
  },
);

async function catalog() {
  const dir = tempTree({ 'shop.json': spec });
  return buildCatalog(await loadSpec(join(dir, 'shop.json')));
}
const tool = (tools: Tool[], name: string) => tools.find((t) => t.name === name)!;

describe('the tool catalogue', () => {
  it('merges path-level and operation-level parameters, the operation winning', async () => {
    const t = tool((await catalog()).tools, 'listCustomers');
    const props = t.inputSchema.properties as Record<string, Record<string, unknown>>;
    expect(props.limit).toMatchObject({ maximum: 50, default: 20 });
    expect(props.shopId).toMatchObject({ type: 'string', description: 'Shop, path-level.' });
    expect(t.inputSchema.required).toEqual(['shopId']);
    expect(t.inputSchema.additionalProperties).toBe(false);
  });

  it('never makes credentials or gateway headers agent arguments, saying why', async () => {
    const t = tool((await catalog()).tools, 'listCustomers');
    const args = Object.keys(t.inputSchema.properties ?? {});
    expect(args).not.toContain('X-Shop-Key');
    expect(args).not.toContain('Authorization');
    expect(args).not.toContain('Host');
    expect(t.strippedParams.map((p) => p.name).sort()).toEqual(['Authorization', 'Host', 'X-Shop-Key']);
    expect(t.strippedParams.find((p) => p.name === 'X-Shop-Key')?.reason).toMatch(/shopKey/);
  });

  it('gives colliding and unsafe parameter names distinct safe argument names bound to their wire names', async () => {
    const t = tool((await catalog()).tools, 'listCustomers');
    const byWire = Object.fromEntries(t.bindings.map((b) => [`${b.in}:${b.name}`, b.arg]));
    expect(byWire['query:id']).toBe('id');
    expect(byWire['header:id']).toBe('header_id');
    expect(byWire['query:expand[]']).toBe('expand');
    expect(t.bindings.find((b) => b.arg === 'expand')).toMatchObject({ style: 'deepObject', explode: true });
  });

  it('prefers a JSON body, drops readOnly fields from it, and strips credential-named form fields', async () => {
    const tools = (await catalog()).tools;
    const create = tool(tools, 'createCustomer');
    expect(create.bindings.find((b) => b.in === 'body')).toMatchObject({
      arg: 'body',
      contentType: 'application/json',
      required: true,
    });
    expect(create.inputSchema.required).toEqual(['shopId', 'body']);
    const defs = create.inputSchema.$defs as Record<string, { properties: object; required: string[] }>;
    expect(Object.keys(defs.Customer!.properties)).toEqual(['email', 'referrer']);
    expect(defs.Customer!.required).toEqual(['email']);
  });

  it('describes multipart uploads and falls back to method + path for names', async () => {
    const tools = (await catalog()).tools;
    expect(tool(tools, 'uploadFile').bindings[0]).toMatchObject({
      in: 'body',
      contentType: 'multipart/form-data',
    });
    const status = tool(tools, 'get_public_status');
    expect(status.auth.public).toBe(true);
    expect(status.outputSchema).toBeUndefined();
  });

  it('wraps a non-object response as {result} and keeps object responses as they are', async () => {
    const tools = (await catalog()).tools;
    const list = tool(tools, 'listCustomers');
    expect(list.outputWrapped).toBe(true);
    expect(list.outputSchema).toMatchObject({ type: 'object', required: ['result'] });
    const create = tool(tools, 'createCustomer');
    expect(create.outputWrapped).toBe(false);
    expect(create.outputSchema).toMatchObject({ type: 'object', $ref: '#/$defs/Customer' });
    // readOnly fields stay in outputs.
    const outDefs = create.outputSchema!.$defs as Record<string, { properties: object }>;
    expect(Object.keys(outDefs.Customer!.properties)).toContain('id');
    const compiler = createSchemaCompiler((await catalog()).formats);
    expect(compiler.compile(create.outputSchema!)({ id: 'c1', email: 'a@b.example' })).toBe(true);
  });

  it('classifies data, auth, paging, risk and exposure per tool', async () => {
    const tools = (await catalog()).tools;
    const list = tool(tools, 'listCustomers');
    // The recursive `referrer` is not walked again: each schema's fields are listed once per path.
    expect(list.dataClasses.map((d) => `${d.path} ${d.class}`)).toEqual(['$[*].email pii']);
    expect(list.pageSize).toEqual({ arg: 'limit', maximum: 50 });
    expect(list.risk.unbounded).toBe(false);
    expect(list.auth.alternatives).toHaveLength(2);
    expect(list.auth.alternatives[1]![0]).toMatchObject({
      type: 'oauth2',
      flows: ['clientCredentials'],
      scopes: ['customers:read', 'admin:shops'],
    });
    // The admin:shops scope makes every secured operation admin, so hidden by default.
    expect(list.risk.classes).toEqual(['read', 'admin']);
    expect(list.exposure.exposed).toBe(false);
    expect(list.annotations).toMatchObject({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: true,
    });
    expect(tool(tools, 'get_public_status').exposure).toEqual({
      exposed: true,
      reasons: ['read-only operation'],
    });
    expect(tool(tools, 'createCustomer').annotations.readOnlyHint).toBe(false);
  });

  it('strips escapes and invisible characters from summaries, and records servers with variables', async () => {
    const t = tool((await catalog()).tools, 'listCustomers');
    expect(t.title).toBe('List customers');
    expect(t.source.servers[0]).toEqual({
      url: 'https://{region}.shop.example/v1',
      variables: { region: { default: 'eu', enum: ['eu', 'us'] } },
    });
  });
});
