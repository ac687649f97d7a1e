import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runExplain } from '../../src/cli/policy.js';
import { parsePolicy } from '../../src/policy/load.js';
import { credentialKindOf } from '../../src/policy/schema.js';
import { minimalSpec } from '../support/helpers.js';
import { tempTree } from '../support/paths.js';

/** Three reads: two on an OAuth2 scheme (one with a key alternative), one public. */
const SPEC = minimalSpec(
  {
    '/orders': {
      get: {
        operationId: 'listOrders',
        security: [{ idp: ['orders:read'] }],
        responses: { '200': { description: 'ok' } },
      },
    },
    '/stock': {
      get: { operationId: 'getStock', security: [{ key: [] }], responses: { '200': { description: 'ok' } } },
    },
    '/health': { get: { operationId: 'health', security: [], responses: { '200': { description: 'ok' } } } },
  },
  {
    servers: [{ url: 'https://api.test' }],
    components: {
      securitySchemes: {
        key: { type: 'apiKey', in: 'header', name: 'X-Key' },
        idp: {
          type: 'oauth2',
          flows: {
            authorizationCode: {
              authorizationUrl: 'https://idp.test/authorize',
              tokenUrl: 'https://idp.test/token',
              scopes: { 'orders:read': '' },
            },
          },
        },
      },
    },
  },
);

const POLICY = `version: 1
credentials:
  orders:
    scheme: idp
    dev:
      tokenExchange: { tokenUrl: "https://idp.test/token", clientId: env:CID, clientSecret: env:CSECRET, audience: "https://api.test" }
    staging: env:ORDERS_SERVICE_TOKEN
    prod:
      userOAuth: { clientId: env:CID, clientSecret: env:CSECRET, redirectUrl: "https://mcp.example.com/oauth/callback" }
rules:
  - match: { name: listOrders }
    credential: orders
`;

async function explain(tool: string, env: 'dev' | 'staging' | 'prod', format?: 'json') {
  const dir = tempTree({ 'spec.json': SPEC, 'w.yaml': POLICY });
  let out = '';
  await runExplain(
    tool,
    { spec: join(dir, 'spec.json'), policy: join(dir, 'w.yaml'), env, ...(format ? { format } : {}) },
    { stdout: (s) => (out += s), stderr: () => {} },
  );
  return out;
}

describe('`explain` names the credential kind a tool uses upstream, per environment, and why', () => {
  it('token exchange in dev, a service credential in staging, per-user OAuth in prod', async () => {
    const dev = await explain('listOrders', 'dev');
    expect(dev).toContain('  upstream credential: tokenExchange\n');
    expect(dev).toContain(
      "credentials.orders.dev (named by the rules): credential: token exchange (the caller's token is exchanged for one minted for the upstream)",
    );
    const staging = await explain('listOrders', 'staging');
    expect(staging).toContain('  upstream credential: service\n');
    expect(staging).toContain(
      "credentials.orders.staging (named by the rules): credential: the gateway's own service credential",
    );
    const prod = JSON.parse(await explain('listOrders', 'prod', 'json'));
    expect(prod.credential).toEqual({
      kind: 'userOAuth',
      entries: [{ scheme: 'idp', entry: 'orders', kind: 'userOAuth' }],
    });
    expect(prod.steps.at(-1)).toEqual({
      by: "credentials.orders.prod (named by the rules); authorization server: the spec's authorizationCode flow",
      what: 'credential: per-user OAuth (each caller acts upstream as their own connected account)',
    });
  });

  it('says when a scheme has no entry (its environment variable, a service credential) and when none is needed', async () => {
    const key = JSON.parse(await explain('getStock', 'dev', 'json'));
    expect(key.credential).toEqual({ kind: 'service', entries: [{ scheme: 'key', kind: 'service' }] });
    expect(key.steps.at(-1).by).toBe('no entry for scheme key: its MCP_WARDEN_CRED_* environment variable');
    const open = JSON.parse(await explain('health', 'dev', 'json'));
    expect(open.credential).toEqual({ kind: 'none', entries: [] });
  });
});

describe('the credential kinds in the policy schema', () => {
  const parse = (source: string) => () =>
    parsePolicy(`version: 1\ncredentials:\n  c:\n    scheme: idp\n    dev: ${source}\n`, 'w.yaml');

  it('accepts per-user OAuth and token exchange with their secrets as references', () => {
    expect(
      parse(
        '{ userOAuth: { issuer: "https://idp.test", clientId: env:C, clientSecret: file:/run/s, redirectUrl: "https://gw.test/oauth/callback", scopes: [a] } }',
      ),
    ).not.toThrow();
    expect(
      parse(
        '{ tokenExchange: { tokenUrl: "https://idp.test/token", clientId: env:C, clientSecret: env:S, audience: urn:api, scopes: [a] } }',
      ),
    ).not.toThrow();
  });

  it('refuses a literal secret, a missing redirect URL or audience, and an unknown key', () => {
    expect(
      parse(
        '{ userOAuth: { clientId: env:C, clientSecret: hunter2-literal, redirectUrl: "https://gw.test/cb" } }',
      ),
    ).toThrow(/a secret is a reference/);
    expect(parse('{ userOAuth: { clientId: env:C, clientSecret: env:S } }')).toThrow(/redirectUrl/);
    expect(
      parse(
        '{ tokenExchange: { tokenUrl: "https://idp.test/token", clientId: env:C, clientSecret: env:S } }',
      ),
    ).toThrow(/audience/);
    expect(
      parse(
        '{ tokenExchange: { tokenUrl: "ftp://idp.test/token", clientId: env:C, clientSecret: env:S, audience: x } }',
      ),
    ).toThrow(/tokenUrl/);
    expect(
      parse(
        '{ tokenExchange: { tokenUrl: "https://idp.test/token", clientId: env:C, clientSecret: env:S, audience: x, forward: true } }',
      ),
    ).toThrow(/forward/);
  });

  it('every example in docs/credentials.md is valid policy, one of each kind', () => {
    const md = readFileSync(new URL('../../docs/credentials.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBe(3);
    const kinds = blocks.flatMap((yaml) =>
      Object.values(parsePolicy(`version: 1\n${yaml}`, 'docs/credentials.md').doc.credentials ?? {}).flatMap(
        (c) => (['dev', 'staging', 'prod'] as const).flatMap((e) => (c[e] ? [credentialKindOf(c[e])] : [])),
      ),
    );
    expect(new Set(kinds)).toEqual(new Set(['service', 'userOAuth', 'tokenExchange']));
  });
});
