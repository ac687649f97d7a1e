import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/index.js';
import { DETECTOR_KINDS, PLANTED } from '../protect/planted.js';
import { mcpClient } from '../support/gateway.js';
import { catalogOf, minimalSpec, startUpstream, tempTree } from '../support/helpers.js';
import { memoryAudit, pipelineFor, textOf } from '../support/pipeline.js';
import { serveArgs, stdioTransport } from '../support/stdio.js';
import { eventually } from '../support/wait.js';

/**
 * Leaks at a cut: every excerpt the gateway shows of an upstream body is cut to a length. A value of
 * any detector kind placed so that the cut runs through it must not show in part: the text right
 * after the filler is its context, then a placeholder (or the cut's ellipsis inside those).
 */
const MARK = '|';
/** Every call fails on purpose: no breaker may open and no limit may stop the run. */
const NO_GUARDS = `version: 1
originBreaker: false
rateLimit:
  perPrincipal: { calls: 100000, perSeconds: 1 }
  perToolPrincipal: { calls: 100000, perSeconds: 1 }
rules:
  - match: { name: "*" }
    breaker: false
    retries: false
`;
const EXCERPT = 500;

interface Reply {
  status: number;
  ct: string;
  body: string;
}

/** One way an excerpt is made, with where its cut falls in the body as sent. */
interface CutPath {
  name: string;
  tool: string;
  code: string;
  /** The body, given a filler and the planted text; and how many characters of the body come before the filler. */
  reply(filler: string, planted: string): Reply;
  /** Characters of the excerpt before the filler. */
  lead: number;
  cut: number;
  /** How the planted text is written in the excerpt (JSON-escaped inside a JSON string). */
  escape(s: string): string;
}

const raw = (s: string) => s;
const inJson = (s: string) => JSON.stringify(s).slice(1, -1);

const PATHS: CutPath[] = [
  {
    name: 'error status, text body',
    tool: 'fail',
    code: 'UPSTREAM_STATUS',
    reply: (f, p) => ({ status: 500, ct: 'text/plain', body: `${f}${p} tail` }),
    lead: 0,
    cut: EXCERPT,
    escape: raw,
  },
  {
    name: 'error status, JSON body (masked by field name first)',
    tool: 'fail',
    code: 'UPSTREAM_STATUS',
    reply: (f, p) => ({
      status: 502,
      ct: 'application/json',
      body: JSON.stringify({ message: `${f}${p} tail` }),
    }),
    lead: '{"message":"'.length,
    cut: EXCERPT,
    escape: inJson,
  },
  {
    name: 'body labelled JSON that is not JSON',
    tool: 'fail',
    code: 'UPSTREAM_SCHEMA_MISMATCH',
    reply: (f, p) => ({ status: 200, ct: 'application/json', body: `{${f}${p} tail` }),
    lead: 1,
    cut: EXCERPT,
    escape: raw,
  },
  {
    name: 'response that does not match the schema',
    tool: 'typed',
    code: 'UPSTREAM_SCHEMA_MISMATCH',
    reply: (f, p) => ({
      status: 200,
      ct: 'application/json',
      body: JSON.stringify({ id: 5, note: `${f}${p} tail` }),
    }),
    lead: '{"id":5,"note":"'.length,
    cut: EXCERPT,
    escape: inJson,
  },
  {
    name: 'response over the size cap (its beginning is shown)',
    tool: 'fail',
    code: 'UPSTREAM_TOO_LARGE',
    reply: (f, p) => ({ status: 200, ct: 'text/plain', body: `${f}${p} ${'z'.repeat(80 * 1024)}` }),
    lead: 0,
    cut: 8 * EXCERPT,
    escape: raw,
  },
];

const SPEC = minimalSpec({
  '/fail': { get: { operationId: 'fail', responses: { '200': { description: 'ok' } } } },
  '/typed': {
    get: {
      operationId: 'typed',
      responses: {
        '200': {
          description: 'ok',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['id'],
                properties: { id: { type: 'string' }, note: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
});

let next: Reply = { status: 200, ct: 'text/plain', body: '' };
let up: Awaited<ReturnType<typeof startUpstream>>;
let pipeline: Pipeline;
const audit = memoryAudit();

beforeAll(async () => {
  up = await startUpstream((_req, res) => {
    res.writeHead(next.status, { 'content-type': next.ct });
    res.on('error', () => {});
    res.end(next.body);
  });
  pipeline = pipelineFor(await catalogOf(SPEC), {
    origin: up.origin,
    audit,
    policy: NO_GUARDS,
    send: { maxResponseBytes: 64 * 1024, originBreaker: false },
  });
});
afterAll(async () => {
  await pipeline.close();
  await up.close();
});

const call = async (tool: string) =>
  textOf(
    await pipeline.call({
      name: tool,
      arguments: {},
      principal: { id: 'leaks', scopes: ['tools:read'], via: 'stdio' },
    }),
  );

describe('leaks at a cut: excerpts are redacted whole, then cut', () => {
  it('has a planted value for every detector kind', () => {
    expect(Object.keys(PLANTED).sort()).toEqual(DETECTOR_KINDS);
  });

  for (const path of PATHS)
    it(`${path.name}: no value of any kind shows in part, wherever the cut runs through it`, async () => {
      const leaks: string[] = [];
      for (const [kind, p] of Object.entries(PLANTED)) {
        const before = path.escape(p.before);
        const value = path.escape(p.value);
        const safe = `${before}[REDACTED:`;
        // Every position of the cut inside the value (and the first one past it).
        for (let k = 1; k <= value.length; k++) {
          const fill = path.cut - path.lead - before.length - k;
          next = path.reply(`${'w'.repeat(fill - 1)}${MARK}`, `${p.before}${p.value}${p.after}`);
          const text = await call(path.tool);
          expect(text, `${kind} at ${k}`).toContain(`[${path.code}]`);
          const shown = text.slice(text.indexOf(MARK) + 1);
          const ok = shown.startsWith(safe) || safe.startsWith(shown.replace(/…[\s\S]*$/, ''));
          if (!ok || text.includes(p.value.slice(0, 8)))
            leaks.push(`${kind} cut at ${k}: ${shown.slice(0, 40)}`);
        }
      }
      expect(leaks).toEqual([]);
    }, 120_000);

  it("the audit's copy of an unknown tool's name: no value of any kind shows in part at its cut", async () => {
    const leaks: string[] = [];
    for (const [kind, p] of Object.entries(PLANTED))
      for (let k = 1; k <= p.value.length; k++) {
        const name = `${'w'.repeat(200 - p.before.length - k - 1)}${MARK}${p.before}${p.value}${p.after}`;
        // An unknown tool is a protocol error for the caller; the audit records it all the same.
        await pipeline
          .call({ name, arguments: {}, principal: { id: 'leaks', scopes: ['tools:read'], via: 'stdio' } })
          .catch(() => undefined);
        const tool = String((audit.records.at(-1) as { tool?: unknown } | undefined)?.tool);
        const shown = tool.slice(tool.indexOf(MARK) + 1).replace(/…$/, '');
        const safe = `${p.before}[REDACTED:`;
        if (!(shown.startsWith(safe) || safe.startsWith(shown))) leaks.push(`${kind} cut at ${k}: ${shown}`);
      }
    expect(leaks).toEqual([]);
  });

  it('counts what an excerpt redacted with the call, once', async () => {
    next = {
      status: 500,
      ct: 'text/plain',
      body: `boom: Authorization: Bearer ${PLANTED.authorization!.value}`,
    };
    await call('fail');
    expect(audit.records.at(-1)).toMatchObject({ code: 'UPSTREAM_STATUS', redactions: { authorization: 1 } });
  });
});

/**
 * The gateway's own upstream credentials, written back by a careless upstream (or sent by the agent)
 * under every encoding servers use: none may reach a result, an error, the audit or a log line.
 */
describe('the upstream credential under every encoding, on every output path', () => {
  const BEARER = 'Sx9/k:Q@p+Lr=7w~Zv"q<3&y';
  const USER = 'svc-user';
  const BASIC = 'B4s1c/Pa:ss@word+9';
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const b64url = (s: string) => Buffer.from(s).toString('base64url');
  const hex = (s: string) => Buffer.from(s).toString('hex');
  const forms = (s: string): Record<string, string> => ({
    raw: s,
    encodeURIComponent: encodeURIComponent(s),
    encodeURI: encodeURI(s),
    'form encoding': new URLSearchParams({ v: s }).toString().slice(2),
    'percent, lower-case hex': encodeURIComponent(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    'percent, twice': encodeURIComponent(encodeURIComponent(s)),
    JSON: JSON.stringify(s).slice(1, -1),
    'JSON \\u escapes': [...s]
      .map((c) => (/[A-Za-z0-9]/.test(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
      .join(''),
    HTML: s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/\//g, '&#x2F;'),
    base64: b64(s),
    base64url: b64url(s),
    'base64 inside a document': b64(`{"session":{"token":"${s}","n":1}}`),
    'base64url inside a document': b64url(`user=x&token=${s}&n=1`),
    hex: hex(s),
    'hex, upper case': hex(s).toUpperCase(),
  });
  const FORMS: Record<string, string> = {};
  for (const [k, v] of Object.entries(forms(BEARER))) FORMS[`bearer ${k}`] = v;
  for (const [k, v] of Object.entries(forms(`${USER}:${BASIC}`))) FORMS[`basic pair ${k}`] = v;
  for (const [k, v] of Object.entries(forms(BASIC))) FORMS[`basic secret ${k}`] = v;
  /** In the base URL, so the start-up log line carries them: forms that are valid in a URL path. */
  const IN_URL = ['encodeURIComponent', 'encodeURI', 'percent, lower-case hex', 'base64url', 'hex'];

  const spec = minimalSpec(
    {
      '/echo': { get: echoOp('echo', 'bearerAuth') },
      '/fail': { get: echoOp('fail', 'bearerAuth') },
      '/basic/echo': { get: echoOp('echoBasic', 'basicAuth') },
      '/basic/fail': { get: echoOp('failBasic', 'basicAuth') },
    },
    {
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer' },
          basicAuth: { type: 'http', scheme: 'basic' },
        },
      },
    },
  );
  function echoOp(operationId: string, scheme: string) {
    return {
      operationId,
      security: [{ [scheme]: [] }],
      parameters: [
        { name: 'form', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'note', in: 'query', schema: { type: 'string' } },
      ],
      responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
    };
  }

  it('scrubs each form from results, error excerpts, the audit and the logs', async () => {
    const echo = await startUpstream((req, res) => {
      const url = new URL(req.url, 'http://x');
      const value = FORMS[url.searchParams.get('form') ?? ''] ?? '';
      if (url.pathname.endsWith('/fail'))
        return void res.writeHead(500, { 'content-type': 'text/plain' }).end(`failed near ${value} (retry)`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ link: `https://up.example/cb?t=${value}&x=1`, note: `see ${value}` }));
    });
    const dir = tempTree({ 'spec.json': spec, 'warden.yaml': NO_GUARDS });
    const audit = join(dir, 'audit.jsonl');
    const base = `${echo.origin}/base/${IN_URL.map((k) => FORMS[`bearer ${k}`]).join('/')}`;
    const { transport, stderr } = stdioTransport(
      serveArgs({
        spec: join(dir, 'spec.json'),
        policy: join(dir, 'warden.yaml'),
        baseUrl: base,
        auditFile: audit,
        logLevel: 'debug',
      }),
      { MCP_WARDEN_CRED_BEARERAUTH: BEARER, MCP_WARDEN_CRED_BASICAUTH: `${USER}:${BASIC}` },
    );
    const client = mcpClient({ name: 'leaks' });
    await client.connect(transport);
    const results: string[] = [];
    try {
      for (const form of Object.keys(FORMS)) {
        const basic = form.startsWith('basic');
        for (const tool of basic ? ['echoBasic', 'failBasic'] : ['echo', 'fail']) {
          // The agent sends the form back as an argument too: the audit's copy must not keep it.
          const r = await client.callTool({ name: tool, arguments: { form, note: FORMS[form] } });
          const text = JSON.stringify(r);
          expect(text, `${tool} ${form}`).toContain('[REDACTED:credential]');
          results.push(text);
        }
      }
    } finally {
      await client.close();
      await echo.close();
    }
    // The upstream really got the credentials (so what it echoed was theirs).
    expect(echo.requests.some((q) => q.headers.authorization === `Bearer ${BEARER}`)).toBe(true);
    expect(echo.requests.some((q) => q.headers.authorization === `Basic ${b64(`${USER}:${BASIC}`)}`)).toBe(
      true,
    );
    const places = {
      'results and errors': results.join('\n'),
      audit: await eventually(
        () => {
          const text = readFileSync(audit, 'utf8');
          expect(text.trim().split('\n').length).toBeGreaterThanOrEqual(2 * Object.keys(FORMS).length);
          return text;
        },
        { what: 'a record of every call' },
      ),
      logs: stderr(),
    };
    expect(places.audit).toContain('[REDACTED:credential]');
    expect(places.logs).toContain('[REDACTED:credential]');
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(places))
      for (const [form, value] of Object.entries(FORMS))
        if (text.includes(value)) leaks.push(`${form} in ${where}`);
    expect(leaks).toEqual([]);
  }, 60_000);
});
