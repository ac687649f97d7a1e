import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { createInjectCredential } from '../../src/pipeline/inject-credential.js';
import { credentialEnvVar, loadCredentials } from '../../src/upstream/credentials.js';
import { catalogOf, minimalSpec } from '../support/helpers.js';
import { contextFor, itemsCatalog, toolNamed } from '../support/pipeline.js';

const toolsOf = (catalog: Catalog) => catalog.tools.map((tool) => ({ tool }));

const baseRequest = () => ({
  method: 'GET',
  origin: 'https://api.example.com',
  path: '/v2/items/a/parts/1',
  query: 'q=1',
  headers: { accept: 'application/json' },
});

describe('credential environment variables', () => {
  it('are named after the scheme, upper-cased, non-alphanumerics as _', () => {
    expect(credentialEnvVar('clinicKey')).toBe('MCP_WARDEN_CRED_CLINICKEY');
    expect(credentialEnvVar('api-key.v2')).toBe('MCP_WARDEN_CRED_API_KEY_V2');
  });

  it('refuse a value that could split a header, without printing it', async () => {
    const catalog = await itemsCatalog();
    try {
      loadCredentials({ tools: toolsOf(catalog), env: { MCP_WARDEN_CRED_ITEMKEY: 'abc\r\nX-Evil: 1' } });
      expect.unreachable();
    } catch (e) {
      expect(isWardenError(e) && e.code).toBe('CONFIG_INVALID');
      expect((e as Error).message).toContain('MCP_WARDEN_CRED_ITEMKEY');
      expect((e as Error).message).not.toContain('abc');
    }
  });
});

describe('inject-credential stage', () => {
  it('puts an apiKey header where the scheme says, overriding anything already there', async () => {
    const catalog = await itemsCatalog();
    const inject = createInjectCredential({
      credentials: loadCredentials({
        tools: toolsOf(catalog),
        env: { MCP_WARDEN_CRED_ITEMKEY: 'secret-item-key' },
      }),
    });
    const ctx: CallContext = contextFor({ name: 'getPart' });
    ctx.tool = toolNamed(catalog, 'getPart');
    ctx.request = { ...baseRequest(), headers: { accept: 'x', 'x-item-key': 'agent-supplied' } };
    await inject(ctx);
    expect(ctx.outbound?.headers['x-item-key']).toBe('secret-item-key');
    expect(ctx.outbound?.pathAndQuery).toBe('/v2/items/a/parts/1?q=1');
    // The auditable request is untouched: the credential lives only in `outbound`.
    expect(JSON.stringify(ctx.request)).not.toContain('secret-item-key');
  });

  it('supports bearer, basic, query and cookie placement', async () => {
    const catalog = await catalogOf(
      minimalSpec(
        { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok' } } } } },
        {
          servers: [{ url: 'https://x.test' }],
          components: {
            securitySchemes: {
              bear: { type: 'http', scheme: 'bearer' },
              bas: { type: 'http', scheme: 'basic' },
              qk: { type: 'apiKey', in: 'query', name: 'api_key' },
              ck: { type: 'apiKey', in: 'cookie', name: 'sid' },
            },
          },
          security: [{ bear: [], bas: [], qk: [], ck: [] }],
        },
      ),
    );
    const creds = loadCredentials({
      tools: toolsOf(catalog),
      env: {
        MCP_WARDEN_CRED_BEAR: 'tok-123456',
        MCP_WARDEN_CRED_BAS: 'user:p@ss word',
        MCP_WARDEN_CRED_QK: 'q&k=1',
        MCP_WARDEN_CRED_CK: 'cookie-val',
      },
    });
    const inject = createInjectCredential({ credentials: creds });
    const ctx = contextFor({ name: 'a' });
    ctx.tool = catalog.tools[0];
    ctx.request = { ...baseRequest(), query: '' };
    await inject(ctx);
    // Basic wins over bearer for the Authorization header: both are applied in scheme order.
    expect(ctx.outbound?.headers.authorization).toBe(
      `Basic ${Buffer.from('user:p@ss word').toString('base64')}`,
    );
    expect(ctx.outbound?.pathAndQuery).toBe('/v2/items/a/parts/1?api_key=q%26k%3D1');
    expect(ctx.outbound?.headers.cookie).toBe('sid=cookie-val');
    expect(creds.secrets).toContain('p@ss word');
  });

  it('fails closed with CREDENTIAL_MISSING when the credential is not configured', async () => {
    const catalog = await itemsCatalog();
    const creds = loadCredentials({ tools: toolsOf(catalog), env: {} });
    expect(creds.missing.get('getPart')).toBe('MCP_WARDEN_CRED_ITEMKEY is not set');
    const inject = createInjectCredential({ credentials: creds });
    const ctx = contextFor({ name: 'getPart' });
    ctx.tool = toolNamed(catalog, 'getPart');
    ctx.request = baseRequest();
    await expect(inject(ctx)).rejects.toMatchObject({ code: 'CREDENTIAL_MISSING' });
  });
});

describe('inject-credential stage without a promise per call', () => {
  it('places a key synchronously (nothing to await), and a mix with an async token in order', async () => {
    const catalog = await itemsCatalog();
    const creds = loadCredentials({
      tools: toolsOf(catalog),
      env: { MCP_WARDEN_CRED_ITEMKEY: 'secret-item-key' },
    });
    const ctx: CallContext = contextFor({ name: 'getPart' });
    ctx.tool = toolNamed(catalog, 'getPart');
    ctx.request = baseRequest();
    // A key is at hand: the stage is done when it returns.
    expect(createInjectCredential({ credentials: creds })(ctx)).toBeUndefined();
    expect(ctx.outbound?.headers['x-item-key']).toBe('secret-item-key');

    // An async value (a token being fetched) first, a key after it: both placed, in their order.
    const held = creds.forTool(ctx.tool)!;
    const [key] = held.creds;
    const slow = {
      cred: {
        ...key!.cred,
        placement: { ...key!.cred.placement, name: 'x-first' },
        wireValue: async () => 'tok',
      },
      scopes: [],
    };
    const inject = createInjectCredential({
      credentials: { forTool: () => ({ creds: [slow, key!] as typeof held.creds }) },
    });
    const later: CallContext = contextFor({ name: 'getPart' });
    later.tool = ctx.tool;
    later.request = baseRequest();
    const pending = inject(later);
    expect(pending).toBeInstanceOf(Promise);
    expect(later.outbound).toBeUndefined();
    await pending;
    expect(later.outbound?.headers['x-first']).toBe('tok');
    expect(later.outbound?.headers['x-item-key']).toBe('secret-item-key');
  });

  it('still refuses with a rejected promise when a value cannot be made', async () => {
    const catalog = await itemsCatalog();
    const creds = loadCredentials({ tools: toolsOf(catalog), env: { MCP_WARDEN_CRED_ITEMKEY: 'k' } });
    const [key] = creds.forTool(toolNamed(catalog, 'getPart'))!.creds;
    const broken = {
      cred: {
        ...key!.cred,
        wireValue: () => {
          throw new Error('no value');
        },
      },
      scopes: [],
    };
    const inject = createInjectCredential({ credentials: { forTool: () => ({ creds: [broken] }) } });
    const ctx: CallContext = contextFor({ name: 'getPart' });
    ctx.tool = toolNamed(catalog, 'getPart');
    ctx.request = baseRequest();
    await expect(inject(ctx)).rejects.toThrow('no value');
    expect(ctx.outbound).toBeUndefined();
  });
});
