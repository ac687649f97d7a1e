import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Environment } from '../../src/policy/schema.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { loadCredentials, secretForms } from '../../src/upstream/credentials.js';
import { catalogOf, minimalSpec, tempTree } from '../support/helpers.js';
import { listen } from '../support/http.js';
import { eventually, holds } from '../support/wait.js';

/** Two operations on one apiKey scheme, one on an OAuth2 scheme with per-operation scopes. */
const SPEC = minimalSpec(
  {
    '/a': {
      get: { operationId: 'readA', responses: { '200': { description: 'ok' } } },
      post: { operationId: 'writeA', responses: { '200': { description: 'ok' } } },
    },
    '/b': {
      get: {
        operationId: 'readB',
        security: [{ oauth: ['b:read'] }],
        responses: { '200': { description: 'ok' } },
      },
      put: {
        operationId: 'writeB',
        security: [{ oauth: ['b:read', 'b:write'] }],
        responses: { '200': { description: 'ok' } },
      },
    },
  },
  {
    servers: [{ url: 'https://x.test' }],
    components: {
      securitySchemes: {
        key: { type: 'apiKey', in: 'header', name: 'X-Key' },
        oauth: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: 'https://idp.test/token',
              scopes: { 'b:read': '', 'b:write': '' },
            },
          },
        },
      },
    },
    security: [{ key: [] }],
  },
);

let catalog: Catalog;
const tool = (name: string): Tool => catalog.tools.find((t) => t.name === name)!;
const credentialsFor = (
  yaml: string,
  environment: Environment,
  env: NodeJS.ProcessEnv,
  credentialOf: Record<string, string> = {},
) => {
  const doc = parsePolicy(yaml, 'w.yaml').doc;
  return loadCredentials({
    tools: catalog.tools.map((t) => ({
      tool: t,
      ...(credentialOf[t.name] ? { credential: credentialOf[t.name] } : {}),
    })),
    ...(doc.credentials ? { defs: doc.credentials } : {}),
    environment,
    env,
  });
};
async function headerOf(
  set: ReturnType<typeof loadCredentials>,
  name: string,
): Promise<Record<string, string>> {
  const held = set.forTool(tool(name));
  if (!held) throw new Error(`no credential for ${name}`);
  const out: Record<string, string> = {};
  for (const { cred, scopes } of held.creds) out[cred.placement.name] = await cred.wireValue(scopes);
  return out;
}

beforeAll(async () => {
  catalog = await catalogOf(SPEC);
});

describe('upstream credentials from the policy', () => {
  const POLICY = [
    'version: 1',
    'credentials:',
    '  reader: { scheme: key, dev: env:KEY_DEV_READ, prod: env:KEY_PROD_READ }',
    '  writer: { scheme: key, dev: env:KEY_DEV_WRITE }',
  ].join('\n');

  it('picks the source for the chosen environment, per tool', async () => {
    const env = {
      KEY_DEV_READ: 'dev-read-0001',
      KEY_PROD_READ: 'prod-read-0001',
      KEY_DEV_WRITE: 'dev-write-0001',
    };
    const dev = credentialsFor(POLICY, 'dev', env, { writeA: 'writer' });
    expect(await headerOf(dev, 'readA')).toEqual({ 'x-key': 'dev-read-0001' });
    expect(await headerOf(dev, 'writeA')).toEqual({ 'x-key': 'dev-write-0001' });
    const prod = credentialsFor(POLICY, 'prod', env, { writeA: 'writer' });
    expect(await headerOf(prod, 'readA')).toEqual({ 'x-key': 'prod-read-0001' });
    // No prod source for the writer: the tool has no credential, and says why (naming the reference only).
    expect(prod.forTool(tool('writeA'))).toBeUndefined();
    expect(prod.missing.get('writeA')).toBe('credentials.writer has no source for environment prod');
  });

  it('reports a missing environment variable by name, never a value', () => {
    const set = credentialsFor(POLICY, 'dev', { KEY_DEV_WRITE: 'dev-write-0001' });
    expect(set.missing.get('readA')).toBe('credentials.reader.dev: env:KEY_DEV_READ is not set or is empty');
  });

  it('re-reads a file reference when the file changes, and tells the scrubber the new value', async () => {
    const dir = tempTree({ 'key.txt': 'first-secret-value\n' });
    const file = join(dir, 'key.txt');
    const learned: string[] = [];
    const doc = parsePolicy(
      `version: 1\ncredentials:\n  k: { scheme: key, dev: "file:${file}" }\n`,
      'w.yaml',
    ).doc;
    const set = loadCredentials({
      tools: catalog.tools.map((t) => ({ tool: t })),
      defs: doc.credentials!,
      environment: 'dev',
      env: {},
      onSecret: (v) => learned.push(...v),
    });
    try {
      expect(await headerOf(set, 'readA')).toEqual({ 'x-key': 'first-secret-value' });
      expect(set.secrets).toContain('first-secret-value');
      writeFileSync(file, 'second-secret-value\n');
      await eventually(
        async () => expect(await headerOf(set, 'readA')).toEqual({ 'x-key': 'second-secret-value' }),
        {
          what: 'the rewritten key file to be read again',
          interval: 100,
        },
      );
      expect(learned).toContain('second-secret-value');
      // A broken rewrite keeps the last good value.
      writeFileSync(file, 'bad\r\nvalue');
      await holds(
        async () => expect(await headerOf(set, 'readA')).toEqual({ 'x-key': 'second-secret-value' }),
        {
          during: 1500,
          what: 'the last good key through a broken rewrite',
        },
      );
    } finally {
      set.close();
    }
  }, 20_000);

  it('falls back to MCP_WARDEN_CRED_<SCHEME> when the policy names none', async () => {
    const set = credentialsFor('version: 1', 'dev', { MCP_WARDEN_CRED_KEY: 'env-fallback-01' });
    expect(await headerOf(set, 'readA')).toEqual({ 'x-key': 'env-fallback-01' });
  });
});

describe('OAuth2 client credentials for the upstream', () => {
  const requests: Array<{ auth: string; body: URLSearchParams }> = [];
  let tokenUrl: string;
  let issued = 0;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const server = await listen(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = new URLSearchParams(Buffer.concat(chunks).toString());
      requests.push({ auth: req.headers.authorization ?? '', body });
      if (
        req.headers.authorization !== `Basic ${Buffer.from('client-1:client-secret-1').toString('base64')}`
      ) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
        return;
      }
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          access_token: `tok-${issued}-${body.get('scope')?.replace(/ /g, '+')}`,
          token_type: 'Bearer',
          expires_in: 3600,
        }),
      );
    });
    tokenUrl = `${server.url}/token`;
    close = server.close;
  });
  afterAll(() => close());

  const policy = (secretVar: string) =>
    `version: 1\ncredentials:\n  idp:\n    scheme: oauth\n    dev:\n      oauth2: { tokenUrl: "${tokenUrl}", clientId: env:CID, clientSecret: env:${secretVar} }\n`;

  it("requests a token with exactly the operation's scopes, and caches it per scope set", async () => {
    const learned: string[] = [];
    const doc = parsePolicy(policy('CSECRET'), 'w.yaml').doc;
    const set = loadCredentials({
      tools: catalog.tools.map((t) => ({ tool: t })),
      defs: doc.credentials!,
      environment: 'dev',
      env: { CID: 'client-1', CSECRET: 'client-secret-1', MCP_WARDEN_CRED_KEY: 'k-000001' },
      onSecret: (v) => learned.push(...v),
    });
    const n = requests.length;
    expect(await headerOf(set, 'readB')).toEqual({ authorization: 'Bearer tok-1-b:read' });
    expect(await headerOf(set, 'writeB')).toEqual({ authorization: 'Bearer tok-2-b:read+b:write' });
    expect(await headerOf(set, 'readB')).toEqual({ authorization: 'Bearer tok-1-b:read' });
    expect(requests.slice(n).map((r) => r.body.get('scope'))).toEqual(['b:read', 'b:read b:write']);
    expect(requests[n]!.body.get('grant_type')).toBe('client_credentials');
    // Tokens and the client secret are scrubbed from logs and results.
    expect(learned).toEqual(expect.arrayContaining(['client-secret-1', 'tok-1-b:read']));
  });

  it('fails the call with CREDENTIAL_MISSING when the token endpoint refuses, without quoting it', async () => {
    const doc = parsePolicy(policy('WRONG'), 'w.yaml').doc;
    const set = loadCredentials({
      tools: catalog.tools.map((t) => ({ tool: t })),
      defs: doc.credentials!,
      environment: 'dev',
      env: { CID: 'client-1', WRONG: 'not-the-secret' },
    });
    const held = set.forTool(tool('readB'))!;
    await expect(Promise.resolve(held.creds[0]!.cred.wireValue(['b:read']))).rejects.toMatchObject({
      code: 'CREDENTIAL_MISSING',
      message: expect.not.stringContaining('not-the-secret'),
    });
  });
});

describe('the forms of a secret the redactor learns', () => {
  const secret = 'pa55/w0rd:with+symbols=';
  const user = 'svc-user';
  /** Wherever an encoded form sits in a longer text, the redactor learning `secretForms` removes it. */
  const scrubbed = (forms: string[], text: string) => {
    const out = createRedactor(forms).text(text);
    return !out.includes(text.slice(text.indexOf('<') + 1, text.indexOf('>')));
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const b64url = (s: string) => Buffer.from(s).toString('base64url');
  const hex = (s: string) => Buffer.from(s).toString('hex');

  it('covers base64, base64url and hex of the value, alone and inside longer encoded text', () => {
    const forms = secretForms(secret, { kind: 'bearer' });
    const texts = [
      b64(secret),
      b64url(secret),
      hex(secret),
      hex(secret).toUpperCase(),
      // At each of the three byte alignments inside a longer encoded document.
      ...['', 'x', 'xy'].flatMap((pad) => [
        b64(`{"t":"${pad}${secret}","n":1}`),
        b64url(`${pad}token=${secret}&next=2`),
      ]),
    ];
    for (const t of texts) {
      const out = createRedactor(forms).text(`see <${t}> here`);
      expect(out, t).toContain('[REDACTED:credential]');
      // What is left of the encoded text carries at most a few bits of the secret at either edge.
      expect(out, t).not.toContain(b64(secret).slice(4, 12));
      expect(out, t).not.toContain(hex(secret).slice(4, 20));
    }
    expect(scrubbed(forms, `x <${b64(secret)}> y`)).toBe(true);
  });

  it('covers the user:secret pair of basic auth, and the secret alone', () => {
    const forms = secretForms(`${user}:${secret}`, { kind: 'basic' });
    for (const t of [
      `${user}:${secret}`,
      secret,
      b64(`${user}:${secret}`),
      b64url(`${user}:${secret}`),
      b64(secret),
      b64(`{"auth":"${user}:${secret}"}`),
    ])
      expect(scrubbed(forms, `x <${t}> y`), t).toBe(true);
  });

  it('adds no partial encoded form for a short value (it could occur by chance)', () => {
    const forms = secretForms('abcd12', { kind: 'raw' });
    expect(forms).toEqual(expect.arrayContaining(['abcd12', b64('abcd12')]));
    expect(forms.every((f) => f.length >= 4)).toBe(true);
    expect(forms).not.toContain(hex('abcd12'));
  });
});
