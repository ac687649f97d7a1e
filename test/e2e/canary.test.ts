import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL, ARG_EMAIL, FREE, TYPED } from '../support/canary.js';
import { type Listening, listen } from '../support/http.js';
import { tempTree } from '../support/paths.js';
import { SHOP_SPEC, type Shop, shopEnv, startShop } from '../support/shop.js';
import { onJsonLines, sendJson, serveArgs, spawnCli } from '../support/stdio.js';

const freeText = `Support note: key ${FREE.aws} with ${FREE.awsSecret}, the signing secret is ${FREE.generic}, gh ${FREE.github}, slack ${FREE.slack}, stripe ${FREE.stripe}.
Auth header was "Authorization: Bearer ${FREE.bearer}" and the session JWT ${FREE.jwt}.
DSN postgres://app:${FREE.dbPassword}@db.internal:5432/app; customer card ${FREE.card}, SSN ${FREE.ssn},
mail ${FREE.email}, openai ${FREE.openai}.
-----BEGIN RSA PRIVATE KEY-----
${FREE.pem}
-----END RSA PRIVATE KEY-----`;

const account = (id: string) => ({
  id,
  owner: {
    name: TYPED.ownerName,
    email: TYPED.ownerEmail,
    phone: TYPED.ownerPhone,
    ssn: TYPED.ssn,
    dateOfBirth: TYPED.dob,
  },
  password: TYPED.password,
  apiKey: TYPED.apiKey,
  card: { cardNumber: TYPED.card, cvc: TYPED.cvc },
  iban: TYPED.iban,
  notes: freeText,
  contacts: [{ email: TYPED.contactEmail, notes: `escalate to ${FREE.email}` }],
  metadata: {
    session_secret: TYPED.sessionSecret,
    nested: [{ blob: freeText }],
    passwords: [TYPED.listedPassword],
    apiKeys: [TYPED.listedApiKey],
    secrets: { database: TYPED.databaseSecret },
    credential: TYPED.credential,
    private_key_pem: TYPED.privateKeyPem,
  },
});

const STR = { type: 'string' };
const SPEC = {
  openapi: '3.0.3',
  info: { title: 'Adversarial API', version: '1' },
  paths: {
    '/accounts/{id}': {
      get: {
        operationId: 'getAccount',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'ok',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Account' } } },
          },
        },
      },
    },
    '/search': {
      get: {
        operationId: 'search',
        parameters: [{ name: 'q', in: 'query', schema: { type: 'string' } }],
        responses: { '200': { description: 'untyped', content: { 'application/json': {} } } },
      },
    },
    '/fail': { get: { operationId: 'failing', responses: { '200': { description: 'ok' } } } },
    '/text': {
      get: {
        operationId: 'plainText',
        responses: { '200': { description: 'ok', content: { 'text/plain': {} } } },
      },
    },
    '/mismatch': {
      get: {
        operationId: 'mismatch',
        responses: {
          '200': {
            description: 'ok',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Account' } } },
          },
        },
      },
    },
    '/big': {
      get: {
        operationId: 'big',
        responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
      },
    },
  },
  components: {
    schemas: {
      Account: {
        type: 'object',
        required: ['id'],
        properties: {
          id: STR,
          owner: {
            type: 'object',
            properties: {
              name: STR,
              email: { type: 'string', format: 'email' },
              phone: STR,
              ssn: STR,
              dateOfBirth: STR,
            },
          },
          password: STR,
          apiKey: STR,
          card: { type: 'object', properties: { cardNumber: STR, cvc: STR } },
          iban: STR,
          notes: STR,
          contacts: { type: 'array', items: { type: 'object', properties: { email: STR, notes: STR } } },
          metadata: { type: 'object' },
        },
      },
    },
  },
};

function adversarial(): Promise<Listening> {
  return listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // Secrets in headers: never passed on, never logged.
    res.setHeader('x-debug-token', FREE.aws);
    res.setHeader('set-cookie', `session=${FREE.jwt}; HttpOnly`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname.startsWith('/accounts/')) return json(200, account(url.pathname.split('/')[2] ?? ''));
    if (url.pathname === '/search')
      return json(200, {
        query: url.searchParams.get('q'),
        results: [{ title: 'hit', body: freeText, owner_name: TYPED.ownerName, password: TYPED.password }],
        debug: {
          dsn: `mysql://root:${FREE.dbPassword}@10.0.0.5/prod`,
          headers: { Authorization: `Bearer ${FREE.bearer}` },
        },
        [FREE.email]: { vip: true },
      });
    if (url.pathname === '/fail')
      return json(500, {
        error: 'db failed',
        password: TYPED.password,
        customer: { name: TYPED.ownerName, email: TYPED.ownerEmail },
        trace: freeText,
      });
    if (url.pathname === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(freeText);
    }
    if (url.pathname === '/mismatch') return json(200, { ...account('m1'), id: 42 });
    if (url.pathname === '/big') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          rows: Array.from({ length: 4000 }, () => ({ owner_name: TYPED.ownerName, note: freeText })),
        }),
      );
    }
    res.writeHead(404).end();
  });
}

/** A raw JSON-RPC client over the gateway's stdio, keeping every byte the process writes. */
async function session(
  args: string[],
  env: NodeJS.ProcessEnv,
  calls: Array<{ name: string; arguments: Record<string, unknown> }>,
): Promise<{ stdout: string; stderr: string; results: unknown[] }> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  const waiting = new Map<number, (msg: unknown) => void>();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  onJsonLines(child.stdout, (msg) => {
    if (typeof msg.id === 'number') waiting.get(msg.id)?.(msg);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let next = 1;
  const request = (method: string, params: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${method}`)), 10_000);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sendJson(child, { id, method, params });
    });
  await request('initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'canary', version: '1' },
  });
  sendJson(child, { method: 'notifications/initialized' });
  // Hostile frames carrying secrets: refused, and logged at debug level without them.
  child.stdin.write(
    `{"jsonrpc":"2.0","id":"x","method":"tools/call","params":"${FREE.github} ${FREE.email}"}\n`,
  );
  child.stdin.write(`not json at all ${FREE.aws}\n`);
  const results: unknown[] = [await request('tools/list', {})];
  for (const c of calls) results.push(await request('tools/call', c));
  child.stdin.end();
  // 'close', not 'exit': the child's stdout and stderr are read to their end before they are checked.
  await new Promise((r) => child.once('close', r));
  return { stdout, stderr, results };
}

describe('canary: planted secrets and personal data never leave the gateway', () => {
  let upstream: Listening;
  let shop: Shop;
  let dir: string;
  beforeAll(async () => {
    upstream = await adversarial();
    shop = await startShop();
    dir = tempTree({ 'adversarial.json': SPEC });
  });
  afterAll(async () => {
    await upstream.close();
    await shop.close();
  });

  it('after a full session against an adversarial upstream and the demo shop, nothing planted shows anywhere', async () => {
    const audit = join(dir, 'audit.jsonl');
    const adv = await session(
      serveArgs({
        spec: join(dir, 'adversarial.json'),
        baseUrl: upstream.url,
        auditFile: audit,
        logLevel: 'debug',
        extra: ['--max-response-bytes', '200000'],
      }),
      {},
      [
        { name: 'getAccount', arguments: { id: 'a1' } },
        { name: 'search', arguments: { q: `find ${ARG_EMAIL} and ${FREE.aws}` } },
        { name: 'failing', arguments: {} },
        { name: 'plainText', arguments: {} },
        { name: 'mismatch', arguments: {} },
        { name: 'big', arguments: {} },
        { name: 'nosuchtool', arguments: { password: TYPED.password, note: FREE.github } },
        { name: 'getAccount', arguments: { id: FREE.stripe } },
      ],
    );
    const demo = await session(
      serveArgs({ spec: SHOP_SPEC, baseUrl: shop.url, auditFile: audit, logLevel: 'debug' }),
      shopEnv(shop),
      [
        { name: 'listCustomers', arguments: { limit: 30 } },
        { name: 'getCustomer', arguments: { customerId: 'c_1003' } },
      ],
    );

    // The session really happened: every tool answered, and things were masked and redacted.
    const advResults = JSON.stringify(adv.results);
    expect(advResults).toContain('[REDACTED:aws-access-key]');
    expect(advResults).toContain('J. Q. P.');
    expect(advResults).toContain('UPSTREAM_STATUS');
    expect(advResults).toContain('UPSTREAM_SCHEMA_MISMATCH');
    expect(advResults).toContain('UPSTREAM_TOO_LARGE');
    expect(JSON.stringify(demo.results)).toContain('a***@example.org');
    const auditText = readFileSync(audit, 'utf8');
    expect(auditText.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(10);
    expect(auditText).toContain('"redactions"');
    expect(adv.stderr).toContain('"level":20'); // debug lines were written, and checked below

    const places = {
      'tool results (stdout)': adv.stdout + demo.stdout,
      'logs (stderr)': adv.stderr + demo.stderr,
      'audit file': auditText,
    };
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(places))
      for (const v of ALL) {
        // Short values (a 3-digit security code) occur by chance in hashes and timings: look for them as
        // whole JSON strings.
        const needle = v.length < 6 ? JSON.stringify(v) : v;
        if (text.includes(needle)) leaks.push(`${v} in ${where}`);
      }
    expect(leaks).toEqual([]);
  }, 60_000);
});
