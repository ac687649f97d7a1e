import { beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { parsePolicy } from '../../src/policy/load.js';
import { credentialEnvVar, loadCredentials } from '../../src/upstream/credentials.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

/** The same spec (one apiKey scheme `key`) served twice in a set, as `crm` and `billing`. */
let tools: Tool[];
beforeAll(async () => {
  const base: Catalog = await catalogOf(
    minimalSpec(
      { '/a': { get: { operationId: 'readA', responses: jsonOk() } } },
      {
        servers: [{ url: 'https://x.test' }],
        components: { securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'X-Key' } } },
        security: [{ key: [] }],
      },
    ),
  );
  tools = ['crm', 'billing'].flatMap((api) =>
    base.tools.map((t) => ({ ...t, name: `${api}_${t.name}`, api })),
  );
});

const load = (yaml: string, env: NodeJS.ProcessEnv) => {
  const doc = parsePolicy(yaml, 'w.yaml').doc;
  return loadCredentials({
    tools: tools.map((tool) => ({ tool })),
    ...(doc.credentials ? { defs: doc.credentials } : {}),
    apiDefs: Object.fromEntries(Object.entries(doc.apis ?? {}).map(([n, a]) => [n, a.credentials])),
    environment: 'dev',
    env,
  });
};
const wire = async (set: ReturnType<typeof loadCredentials>, name: string) => {
  const held = set.forTool(tools.find((t) => t.name === name)!);
  return held ? Promise.all(held.creds.map((c) => c.cred.wireValue(c.scopes))) : undefined;
};

describe('upstream credentials in an API set', () => {
  it('names the variable after the API and the scheme', () => {
    expect(credentialEnvVar('key', 'crm')).toBe('MCP_WARDEN_CRED_CRM_KEY');
    expect(credentialEnvVar('api_key', 'my-billing')).toBe('MCP_WARDEN_CRED_MY_BILLING_API_KEY');
    expect(credentialEnvVar('key')).toBe('MCP_WARDEN_CRED_KEY');
  });

  it('gives each API its own variable and never the unprefixed one', async () => {
    const set = load('version: 1\napis:\n  crm: { spec: a.yaml }\n  billing: { spec: b.yaml }\n', {
      MCP_WARDEN_CRED_KEY: 'shared-value-0001',
      MCP_WARDEN_CRED_CRM_KEY: 'crm-value-0001',
    });
    expect(await wire(set, 'crm_readA')).toEqual(['crm-value-0001']);
    // billing has none of its own: hidden, naming its own variable; the crm or shared value is not used.
    expect(await wire(set, 'billing_readA')).toBeUndefined();
    expect(set.missing.get('billing_readA')).toBe('MCP_WARDEN_CRED_BILLING_KEY is not set');
  });

  it('uses an API’s own credentials entries for its tools only', async () => {
    const set = load(
      [
        'version: 1',
        'apis:',
        '  crm:',
        '    spec: a.yaml',
        '    credentials:',
        '      k: { scheme: key, dev: env:CRM_SECRET }',
        '  billing: { spec: b.yaml }',
        '',
      ].join('\n'),
      { CRM_SECRET: 'crm-secret-0001', MCP_WARDEN_CRED_BILLING_KEY: 'billing-secret-0001' },
    );
    expect(await wire(set, 'crm_readA')).toEqual(['crm-secret-0001']);
    expect(await wire(set, 'billing_readA')).toEqual(['billing-secret-0001']);
    expect(set.secrets.sort()).toEqual(expect.arrayContaining(['billing-secret-0001', 'crm-secret-0001']));
  });

  it('names the API’s entry when its source is missing', () => {
    const set = load(
      'version: 1\napis:\n  crm:\n    spec: a.yaml\n    credentials:\n      k: { scheme: key, prod: env:X }\n',
      {},
    );
    expect(set.missing.get('crm_readA')).toBe('apis.crm.credentials.k has no source for environment dev');
  });
});

describe('credential variables two APIs would both read', () => {
  it('refuses the variable to both (fail closed) and says to name the credential instead', async () => {
    const scheme = (name: string) => ({
      ...tools[0]!.auth,
      alternatives: [[{ ...tools[0]!.auth.alternatives[0]![0]!, scheme: name }]],
    });
    // `a-b` + `c` and `a` + `b_c` both spell MCP_WARDEN_CRED_A_B_C.
    const clash = [
      { ...tools[0]!, name: 'a-b_readA', api: 'a-b', auth: scheme('c') },
      { ...tools[0]!, name: 'a_readA', api: 'a', auth: scheme('b_c') },
    ];
    expect(credentialEnvVar('c', 'a-b')).toBe(credentialEnvVar('b_c', 'a'));
    const set = loadCredentials({
      tools: clash.map((tool) => ({ tool })),
      environment: 'dev',
      env: { MCP_WARDEN_CRED_A_B_C: 'whose-secret-is-this' },
    });
    for (const t of clash) expect(set.forTool(t)).toBeUndefined();
    expect(set.missing.get('a_readA')).toContain('would serve APIs a and a-b alike');
  });

  it('a tool object of another API under a known name gets nothing (a name taken over by a reload)', async () => {
    const set = load('version: 1\napis:\n  crm: { spec: a.yaml }\n  billing: { spec: b.yaml }\n', {
      MCP_WARDEN_CRED_CRM_KEY: 'crm-value-0001',
    });
    const crm = tools.find((t) => t.name === 'crm_readA')!;
    expect(await wire(set, 'crm_readA')).toBeDefined();
    expect(set.forTool({ ...crm, api: 'billing' })).toBeUndefined();
  });
});
