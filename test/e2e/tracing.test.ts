import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planTracing } from '../../src/observe/tracing.js';
import { parsePolicy } from '../../src/policy/load.js';
import { ALL, ARG_EMAIL, FREE, TYPED } from '../support/canary.js';
import { mcpClient, startTestGateway, type TestGateway } from '../support/gateway.js';
import { type Listening, listen } from '../support/http.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp.js';
import { tempTree } from '../support/paths.js';
import { stdioTransport } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

const JSON_OK = { '200': { description: 'ok', content: { 'application/json': {} } } };
const SPEC = {
  openapi: '3.0.3',
  info: { title: 'Traced API', version: '1' },
  components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } } },
  security: [{ apiKey: [] }],
  paths: {
    '/accounts/{id}': {
      get: {
        operationId: 'getAccount',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
          // A spec may declare trace headers: the gateway keeps them for itself.
          { name: 'traceparent', in: 'header', schema: { type: 'string' } },
          { name: 'tracestate', in: 'header', schema: { type: 'string' } },
        ],
        responses: JSON_OK,
      },
    },
    '/search': {
      get: {
        operationId: 'search',
        parameters: [{ name: 'q', in: 'query', schema: { type: 'string' } }],
        responses: JSON_OK,
      },
    },
    '/fail': { get: { operationId: 'failing', responses: JSON_OK } },
  },
};
/** The upstream credential: a canary value, which no span may carry. */
const CREDENTIAL = FREE.stripe;

const tp = (trace: string, span: string, flags = '01') => `00-${trace}-${span}-${flags}`;
const TRACE = {
  a: `${'a'.repeat(31)}1`,
  b: `${'b'.repeat(31)}2`,
  c: `${'c'.repeat(31)}3`,
  g: `${'d'.repeat(31)}4`,
};
const SPAN = { a: '1'.repeat(16), b: '2'.repeat(16), c: '3'.repeat(16), g: '4'.repeat(16) };

interface Seen {
  path: string;
  traceparent?: string;
  tracestate?: string;
}

/** An upstream that records the trace headers it got, and answers with data full of canaries. */
async function recordingUpstream(): Promise<Listening & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({
      path: url.pathname,
      ...(req.headers.traceparent ? { traceparent: String(req.headers.traceparent) } : {}),
      ...(req.headers.tracestate ? { tracestate: String(req.headers.tracestate) } : {}),
    });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-debug-token': FREE.aws });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-api-key'] !== CREDENTIAL) return json(401, { error: 'no key' });
    if (url.pathname === '/fail') return json(500, { error: 'db failed', password: TYPED.password });
    return json(200, {
      id: url.pathname.split('/')[2] ?? 'x',
      query: url.searchParams.get('q'),
      owner: { name: TYPED.ownerName, email: TYPED.ownerEmail },
      password: TYPED.password,
      note: `key ${FREE.aws}, gh ${FREE.github}`,
    });
  });
  return { ...server, seen };
}

/** A legacy-era client whose every HTTP request carries `headers` (e.g. a traceparent). */
async function clientWithHeaders(url: string, headers: Record<string, string>): Promise<Client> {
  const client = mcpClient();
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

const byTrace = (spans: ReceivedSpan[], traceId: string) => spans.filter((s) => s.traceId === traceId);
const callSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === 2);

describe('tracing: spans per call, stage and upstream request, W3C context in and out, nothing secret', () => {
  let receiver: OtlpReceiver;
  let upstream: Listening & { seen: Seen[] };
  let fixture: TestGateway;
  const clients: Client[] = [];
  const results: unknown[] = [];

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    upstream = await recordingUpstream();
    fixture = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.url,
      env: {
        MCP_WARDEN_CRED_APIKEY: CREDENTIAL,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'warden-e2e',
        OTEL_BSP_SCHEDULE_DELAY: '20',
      },
    });
    const legacy = await fixture.connect();
    const modern = await fixture.connect({ era: { pin: '2026-07-28' } });
    const withHeader = await clientWithHeaders(fixture.gw.url!, {
      traceparent: tp(TRACE.b, SPAN.b),
      tracestate: 'from=header',
    });
    clients.push(withHeader);
    // A: _meta trace context; B: the HTTP header's; C: both, _meta wins; D: malformed, a new trace.
    results.push(
      await legacy.callTool({
        name: 'getAccount',
        arguments: { id: FREE.github },
        _meta: { traceparent: tp(TRACE.a, SPAN.a), tracestate: 'vendor=a' },
      }),
      await withHeader.callTool({ name: 'search', arguments: { q: `find ${ARG_EMAIL} and ${FREE.aws}` } }),
      await withHeader.callTool({
        name: 'search',
        arguments: { q: TYPED.password },
        _meta: { traceparent: tp(TRACE.c, SPAN.c) },
      }),
      await legacy.callTool({
        name: 'getAccount',
        arguments: { id: 'plain-1' },
        _meta: { traceparent: `00-${FREE.generic}-zz-01` },
      }),
      await legacy.callTool({ name: 'failing', arguments: {} }),
      // An argument cannot set the upstream's trace context: the spec's trace headers are not arguments.
      await legacy.callTool({
        name: 'getAccount',
        arguments: { id: 'a2', traceparent: tp(TRACE.g, SPAN.g) },
      }),
      await modern.callTool({
        name: 'getAccount',
        arguments: { id: TYPED.ssn },
        _meta: { traceparent: tp(TRACE.g, SPAN.g) },
      }),
    );
    // Seven calls, each with its span (the argument-smuggling one is refused at validate).
    await waitFor(() => callSpans(receiver.spans()).length >= 7, { what: 'seven call spans exported' });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await fixture?.close();
    await upstream?.close();
    await receiver?.close();
  });

  it('names and nests the spans: call (SERVER) → one per stage that ran (INTERNAL) → upstream try (CLIENT)', () => {
    const trace = byTrace(receiver.spans(), TRACE.a);
    const call = trace.find((s) => s.kind === 2)!;
    expect(call).toMatchObject({ name: 'tools/call getAccount', parentSpanId: SPAN.a, status: 0 });
    expect(call.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'getAccount',
      'gen_ai.operation.name': 'execute_tool',
      'mcp.protocol.version': '2025-11-25',
      'warden.decision': 'allowed',
      'warden.auth.method': 'anonymous',
    });
    expect(call.attributes['jsonrpc.request.id']).toBeDefined();
    expect(call.resource['service.name']).toBe('warden-e2e');
    const stages = trace.filter((s) => s.kind === 1);
    expect(stages.map((s) => s.name)).toEqual(
      expect.arrayContaining(fixture.gw.pipeline.stages.map((n) => `warden.stage ${n}`)),
    );
    expect(stages).toHaveLength(fixture.gw.pipeline.stages.length);
    for (const s of stages) expect(s.parentSpanId).toBe(call.spanId);
    const send = stages.find((s) => s.name === 'warden.stage send')!;
    const client = trace.find((s) => s.kind === 3)!;
    expect(client).toMatchObject({ name: 'GET /accounts/{id}', parentSpanId: send.spanId });
    expect(client.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(upstream.url).port),
      'url.template': '/accounts/{id}',
      'http.response.status_code': 200,
    });
    // The upstream got the client span as its parent, in the caller's trace, with the caller's tracestate.
    const seen = upstream.seen.find((s) => s.traceparent?.includes(TRACE.a));
    expect(seen).toEqual({
      path: `/accounts/${FREE.github}`,
      traceparent: tp(TRACE.a, client.spanId),
      tracestate: 'vendor=a',
    });
  });

  it('takes the HTTP traceparent header when _meta has none, and _meta over the header', () => {
    const spans = receiver.spans();
    const b = callSpans(byTrace(spans, TRACE.b));
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ name: 'tools/call search', parentSpanId: SPAN.b });
    const c = callSpans(byTrace(spans, TRACE.c));
    expect(c).toHaveLength(1);
    expect(c[0]?.parentSpanId).toBe(SPAN.c);
    // _meta's traceparent comes without the header's tracestate: never a mix of the two.
    const seenC = upstream.seen.find((s) => s.traceparent?.includes(TRACE.c));
    expect(seenC?.tracestate).toBeUndefined();
    expect(upstream.seen.find((s) => s.traceparent?.includes(TRACE.b))?.tracestate).toBe('from=header');
  });

  it('a malformed traceparent starts a new trace; the call itself is unaffected', () => {
    expect(results[3]).not.toMatchObject({ isError: true });
    const seen = upstream.seen.find((s) => s.path === '/accounts/plain-1')!;
    const trace = seen.traceparent!.split('-')[1]!;
    const call = callSpans(byTrace(receiver.spans(), trace))[0];
    expect(call?.parentSpanId).toBeUndefined();
  });

  it('a failed call: error.type is the error code on the call span, the status code on the client span', () => {
    const call = callSpans(receiver.spans()).find((s) => s.name === 'tools/call failing')!;
    expect(call).toMatchObject({ status: 2 });
    expect(call.attributes).toMatchObject({ 'error.type': 'UPSTREAM_STATUS', 'warden.decision': 'allowed' });
    const client = byTrace(receiver.spans(), call.traceId).find((s) => s.kind === 3)!;
    expect(client).toMatchObject({ name: 'GET /fail', status: 2 });
    expect(client.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500' });
  });

  it('an argument can never set the upstream traceparent: trace headers are not arguments', async () => {
    const listed = (await (await fixture.connect()).listTools()).tools;
    const getAccount = listed.find((t) => t.name === 'getAccount')!;
    expect(Object.keys(getAccount.inputSchema.properties ?? {})).toEqual(['id']);
    expect(results[5]).toMatchObject({ isError: true });
    expect(JSON.stringify(results[5])).toContain('INVALID_ARGUMENT');
    const refused = callSpans(receiver.spans()).find(
      (s) => s.attributes['error.type'] === 'INVALID_ARGUMENT',
    );
    expect(refused?.name).toBe('tools/call getAccount');
    // The only upstream request in trace g is the modern client's, parented by the gateway's client span.
    const inG = upstream.seen.filter((s) => s.traceparent?.includes(TRACE.g));
    expect(inG).toHaveLength(1);
    expect(inG[0]?.traceparent).not.toBe(tp(TRACE.g, SPAN.g));
    expect(upstream.seen.some((s) => s.path === '/accounts/a2')).toBe(false);
  });

  it('a 2026-07-28 client: the protocol version comes from its request envelope', () => {
    const call = callSpans(byTrace(receiver.spans(), TRACE.g))[0]!;
    expect(call).toMatchObject({ parentSpanId: SPAN.g });
    expect(call.attributes['mcp.protocol.version']).toBe('2026-07-28');
  });

  it('no span carries an argument value, a result, a filled path, a query, a header or the credential', () => {
    const exported = receiver.requests.map((r) => r.body).join('\n');
    const leaks = [...ALL, CREDENTIAL, '/accounts/plain-1', 'q=', 'find '].filter((v) =>
      exported.includes(v.length < 6 ? JSON.stringify(v) : v),
    );
    expect(leaks).toEqual([]);
    // The calls really carried those values (the upstream saw them).
    expect(upstream.seen.some((s) => s.path === `/accounts/${FREE.github}`)).toBe(true);
    const keys = new Set(receiver.spans().flatMap((s) => Object.keys(s.attributes)));
    for (const k of keys)
      expect(k).not.toMatch(/url\.full|url\.path|url\.query|header|principal\.id|args|result/);
  });
});

describe('tracing configuration end to end', () => {
  it('the policy example in docs/tracing.md is valid and means what the page says', () => {
    const md = readFileSync(new URL('../../docs/tracing.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(`version: 1\n${yaml}`, 'docs/tracing.md');
    expect(planTracing(doc.telemetry?.traces, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' })).toEqual({
      endpoint: 'https://otel.example.com/v1/traces',
      from: 'telemetry.traces.endpoint',
      sampler: 'parentbased_traceidratio',
      ratio: 0.25,
      serviceName: 'shop-gateway',
    });
    expect(doc.telemetry?.traces?.headers).toEqual({ 'x-api-key': 'env:OTEL_COLLECTOR_KEY' });
  });

  it('nothing configured: no span, no traceparent upstream (even when the caller sends one), no OpenTelemetry loaded', async () => {
    const upstream = await recordingUpstream();
    const fixture = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.url,
      env: { MCP_WARDEN_CRED_APIKEY: CREDENTIAL },
    });
    try {
      const client = await fixture.connect();
      await client.callTool({
        name: 'getAccount',
        arguments: { id: 'x1' },
        _meta: { traceparent: tp(TRACE.a, SPAN.a) },
      });
      expect(upstream.seen).toEqual([{ path: '/accounts/x1' }]);
    } finally {
      await fixture.close();
      await upstream.close();
    }
    // A whole gateway start and call in a fresh process, off: no OpenTelemetry SDK module is loaded
    // (only @opentelemetry/api, which prom-client loads for its exemplars).
    const dir = tempTree({ 'spec.json': SPEC });
    const script = `
      import { createRequire } from 'node:module';
      import { startGateway } from ${JSON.stringify(join(process.cwd(), 'dist/server/serve.js'))};
      const gw = await startGateway({ spec: ${JSON.stringify(join(dir, 'spec.json'))}, baseUrl: 'http://127.0.0.1:9',
        auditFile: ${JSON.stringify(join(dir, 'audit.jsonl'))}, transport: { kind: 'http', port: 0 }, logLevel: 'error', env: { MCP_WARDEN_CRED_APIKEY: 'k' } });
      await gw.pipeline.call({ name: 'getAccount', arguments: { id: 'x' }, principal: { id: 'p', scopes: ['tools:read'], via: 'api-key' } });
      await gw.close();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/@opentelemetry/') && !k.includes('/@opentelemetry/api/'));
      console.log(JSON.stringify({ loaded: loaded.length }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({ loaded: 0 });
  }, 40_000);

  it('the policy key: endpoint, a header from a secret reference, sample ratio and service name', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await recordingUpstream();
    const fixture = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.url,
      policy: `version: 1
telemetry:
  traces:
    endpoint: ${receiver.url}/v1/traces
    headers: { x-collector-key: env:COLLECTOR_KEY }
    sampleRatio: 1
    serviceName: warden-policy
`,
      env: {
        MCP_WARDEN_CRED_APIKEY: CREDENTIAL,
        COLLECTOR_KEY: 'collector-key-0123456789',
        OTEL_BSP_SCHEDULE_DELAY: '20',
      },
    });
    try {
      const client = await fixture.connect();
      await client.callTool({ name: 'getAccount', arguments: { id: 'p1' } });
      await waitFor(() => callSpans(receiver.spans()).length >= 1, { what: 'a call span exported' });
      expect(receiver.requests[0]?.headers['x-collector-key']).toBe('collector-key-0123456789');
      expect(receiver.spans()[0]?.resource['service.name']).toBe('warden-policy');
      expect(upstream.seen[0]?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    } finally {
      await fixture.close();
      await upstream.close();
      await receiver.close();
    }
  });

  it('OTEL_SDK_DISABLED=true wins over the policy key', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await recordingUpstream();
    const fixture = await startTestGateway({
      spec: SPEC,
      baseUrl: upstream.url,
      policy: `version: 1\ntelemetry: { traces: { endpoint: ${receiver.url}/v1/traces } }\n`,
      env: { MCP_WARDEN_CRED_APIKEY: CREDENTIAL, OTEL_SDK_DISABLED: 'true' },
    });
    try {
      const client = await fixture.connect();
      await client.callTool({ name: 'getAccount', arguments: { id: 'd1' } });
    } finally {
      await fixture.close();
    }
    // Closed: anything queued would have been exported by now.
    expect(receiver.requests).toEqual([]);
    expect(upstream.seen).toEqual([{ path: '/accounts/d1' }]);
    await upstream.close();
    await receiver.close();
  });

  it('the CLI over stdio reads the OTEL_* variables and flushes the last spans when the client leaves', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await recordingUpstream();
    const dir = tempTree({ 'spec.json': SPEC });
    const { transport } = stdioTransport(
      [
        'serve',
        '--stdio',
        '--spec',
        join(dir, 'spec.json'),
        '--base-url',
        upstream.url,
        '--audit-file',
        join(dir, 'a.jsonl'),
      ],
      {
        MCP_WARDEN_CRED_APIKEY: CREDENTIAL,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_SERVICE_NAME: 'warden-stdio',
        // Long: only the flush at exit can deliver the spans in time.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
    );
    const client = mcpClient();
    try {
      await client.connect(transport);
      await client.callTool({
        name: 'getAccount',
        arguments: { id: 's1' },
        _meta: { traceparent: tp(TRACE.c, SPAN.c) },
      });
    } finally {
      await client.close();
    }
    const call = await waitFor(() => callSpans(receiver.spans())[0], {
      what: 'the call span, flushed at exit',
    });
    expect(call).toMatchObject({ traceId: TRACE.c, parentSpanId: SPAN.c, name: 'tools/call getAccount' });
    expect(call.resource['service.name']).toBe('warden-stdio');
    expect(upstream.seen[0]?.traceparent?.startsWith(`00-${TRACE.c}-`)).toBe(true);
    await upstream.close();
    await receiver.close();
  }, 30_000);
});
