import { afterEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors/index.js';
import type { Logger } from '../../src/observe/log.js';
import { planTracing, startTracing, type Tracing } from '../../src/observe/tracing.js';
import type { CallContext, IncomingTrace } from '../../src/pipeline/context.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp.js';

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${PARENT_TRACE}-${PARENT_SPAN}-01`;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof WardenError ? e.code : 'not a WardenError';
  }
  return undefined;
}

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

/** A call context as the pipeline builds it, for the tracer alone. */
function callCtx(trace?: IncomingTrace): CallContext {
  return {
    id: 'call-1',
    startedAt: 0,
    input: {
      name: 'getThing',
      arguments: {},
      principal: { id: 'key:ci', scopes: [], via: 'api-key' },
      ...(trace ? { trace } : {}),
    },
  };
}

/** One whole call through the tracer: two stages, one upstream try; returns the upstream's headers. */
function oneCall(t: Tracing, trace?: IncomingTrace, status = 200): Record<string, string> {
  const ctx = callCtx(trace);
  const span = t.tracer!.startCall(ctx);
  span.enterStage('resolve');
  ctx.tool = { name: 'getThing' } as CallContext['tool'];
  span.exitStage();
  span.enterStage('send');
  const up = span.upstream({
    method: 'GET',
    origin: 'http://api.test:8080',
    template: '/things/{id}',
    resend: 0,
  });
  up.end({ status });
  span.exitStage();
  span.end(ctx);
  return { ...up.headers };
}

function logSink(): { logger: Logger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  const at =
    (level: string) =>
    (a: unknown, b?: string): void => {
      lines.push({ level, msg: typeof a === 'string' ? a : (b ?? '') });
    };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger, lines };
}

describe('planTracing: off unless configured, by the policy or the standard OTEL_* variables', () => {
  it('is off with nothing configured', () => {
    expect(planTracing(undefined, {})).toBeUndefined();
    expect(
      planTracing(undefined, { OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }),
    ).toBeUndefined();
  });

  it('reads the endpoint as the SDK does: the traces variable as is, the general one + /v1/traces', () => {
    expect(planTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })?.endpoint).toBe(
      'http://c:4318/v1/traces',
    );
    expect(planTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/base/' })?.endpoint).toBe(
      'http://c:4318/base/v1/traces',
    );
    expect(
      planTracing(undefined, {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://specific:4318/custom',
      })?.endpoint,
    ).toBe('http://specific:4318/custom');
    expect(planTracing(undefined, { OTEL_TRACES_EXPORTER: 'otlp' })?.endpoint).toBe(
      'http://localhost:4318/v1/traces',
    );
  });

  it('takes the policy endpoint over the variables', () => {
    const plan = planTracing(
      { endpoint: 'https://collector.example/v1/traces' },
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://env:4318/v1/traces' },
    );
    expect(plan).toMatchObject({
      endpoint: 'https://collector.example/v1/traces',
      from: 'telemetry.traces.endpoint',
    });
  });

  it('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none win over everything', () => {
    const policy = { endpoint: 'http://c:4318/v1/traces' };
    expect(planTracing(policy, { OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(planTracing(policy, { OTEL_SDK_DISABLED: 'TRUE' })).toBeUndefined();
    expect(planTracing(policy, { OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(
      planTracing(undefined, { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
    ).toBe(undefined);
    expect(planTracing(policy, { OTEL_SDK_DISABLED: 'false' })?.endpoint).toBe(policy.endpoint);
  });

  it('refuses what it cannot honour, naming the setting and never echoing a URL', () => {
    expect(codeOf(() => planTracing(undefined, { OTEL_TRACES_EXPORTER: 'zipkin' }))).toBe('CONFIG_INVALID');
    expect(
      codeOf(() =>
        planTracing(undefined, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
      ),
    ).toBe('CONFIG_INVALID');
    const bad = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://user:hunter2-secret@collector/v1/traces' };
    expect(codeOf(() => planTracing(undefined, bad))).toBe('CONFIG_INVALID');
    expect(messageOf(() => planTracing(undefined, bad))).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(messageOf(() => planTracing(undefined, bad))).not.toContain('hunter2');
    expect(
      messageOf(() => planTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url with s3cr3t' })),
    ).not.toContain('s3cr3t');
    // Protobuf endpoints take JSON on the same path.
    expect(
      planTracing(undefined, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }),
    ).toBeDefined();
  });

  it('reads the sampler from OTEL_TRACES_SAMPLER/_ARG, or the policy ratio (parent-based)', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(planTracing(undefined, on)).toMatchObject({ sampler: 'parentbased_always_on', ratio: 1 });
    expect(
      planTracing(undefined, { ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }),
    ).toMatchObject({ sampler: 'traceidratio', ratio: 0.25 });
    expect(
      planTracing({ endpoint: 'http://c/v1/traces', sampleRatio: 0 }, { OTEL_TRACES_SAMPLER: 'always_on' }),
    ).toMatchObject({ sampler: 'parentbased_traceidratio', ratio: 0 });
    expect(codeOf(() => planTracing(undefined, { ...on, OTEL_TRACES_SAMPLER: 'sometimes' }))).toBe(
      'CONFIG_INVALID',
    );
    expect(
      codeOf(() =>
        planTracing(undefined, { ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }),
      ),
    ).toBe('CONFIG_INVALID');
  });

  it('names the service from the policy, else OTEL_SERVICE_NAME', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'from-env' };
    expect(planTracing(undefined, on)?.serviceName).toBe('from-env');
    expect(planTracing({ endpoint: 'http://c/v1/traces', serviceName: 'from-policy' }, on)?.serviceName).toBe(
      'from-policy',
    );
  });
});

describe('startTracing', () => {
  let receiver: OtlpReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('with nothing configured, is the no-op: no tracer, nothing to shut down', async () => {
    const t = await startTracing({ env: {} });
    expect(t.tracer).toBeUndefined();
    await t.shutdown();
  });

  it('exports call → stage → client spans with the incoming trace as parent, and names the client span upstream', async () => {
    receiver = await startOtlpReceiver();
    const learnt: string[] = [];
    const t = await startTracing({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20otlp-env-token-123',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.name=ignored',
        OTEL_SERVICE_NAME: 'warden-unit',
      },
      addSecrets: (v) => learnt.push(...v),
    });
    const headers = oneCall(t, { traceparent: TRACEPARENT, tracestate: 'vendor=abc', requestId: 7 }, 503);
    await t.shutdown();

    const spans = receiver.spans();
    const call = spans.find((s) => s.kind === 2)!;
    const stages = spans.filter((s) => s.kind === 1);
    const client = spans.find((s) => s.kind === 3)!;
    expect(call).toMatchObject({
      name: 'tools/call getThing',
      traceId: PARENT_TRACE,
      parentSpanId: PARENT_SPAN,
    });
    expect(call.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'getThing',
      'gen_ai.operation.name': 'execute_tool',
      'jsonrpc.request.id': '7',
      'warden.decision': 'allowed',
      'warden.auth.method': 'api-key',
    });
    expect(stages.map((s) => s.name).sort()).toEqual(['warden.stage resolve', 'warden.stage send']);
    for (const s of stages) expect(s.parentSpanId).toBe(call.spanId);
    const send = stages.find((s) => s.name === 'warden.stage send')!;
    expect(client).toMatchObject({ name: 'GET /things/{id}', parentSpanId: send.spanId, status: 2 });
    expect(client.attributes).toEqual({
      'http.request.method': 'GET',
      'server.address': 'api.test',
      'server.port': 8080,
      'url.scheme': 'http',
      'url.template': '/things/{id}',
      'http.response.status_code': 503,
      'error.type': '503',
    });
    // The upstream learns the client span as its parent, in the caller's trace, with its tracestate.
    expect(headers).toEqual({
      traceparent: `00-${PARENT_TRACE}-${client.spanId}-01`,
      tracestate: 'vendor=abc',
    });
    expect(call.resource).toMatchObject({
      'service.name': 'warden-unit',
      'deployment.environment.name': 'test',
    });
    // The export carried the header, and the redactor learnt its value (whole and the bare token).
    expect(receiver.requests[0]?.headers.authorization).toBe('Bearer otlp-env-token-123');
    expect(learnt).toEqual(expect.arrayContaining(['Bearer otlp-env-token-123', 'otlp-env-token-123']));
  });

  it('the policy key: endpoint, headers from secret references (added to the variables, winning per name), service name', async () => {
    receiver = await startOtlpReceiver();
    const t = await startTracing({
      config: {
        endpoint: `${receiver.url}/v1/traces`,
        headers: { 'X-Api-Key': 'env:OTLP_KEY' },
        serviceName: 'warden-policy',
      },
      env: {
        OTLP_KEY: 'policy-otlp-key-456',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=from-env,x-general=g',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-general=traces-wins,x-traces=t',
      },
    });
    oneCall(t);
    await t.shutdown();
    expect(receiver.requests[0]?.headers).toMatchObject({
      'x-api-key': 'policy-otlp-key-456',
      'x-general': 'traces-wins',
      'x-traces': 't',
    });
    expect(receiver.spans()[0]?.resource['service.name']).toBe('warden-policy');
  });

  it('reads the batch processor settings from OTEL_BSP_*', async () => {
    receiver = await startOtlpReceiver();
    const t = await startTracing({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_EXPORT_TIMEOUT: '5000',
      },
    });
    oneCall(t);
    await t.shutdown();
    // Four spans (call, two stages, client), one per export.
    expect(receiver.spans()).toHaveLength(4);
    expect(receiver.requests).toHaveLength(4);
    for (const name of [
      'OTEL_BSP_SCHEDULE_DELAY',
      'OTEL_BSP_MAX_QUEUE_SIZE',
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
      'OTEL_BSP_EXPORT_TIMEOUT',
    ]) {
      const start = startTracing({ env: { OTEL_TRACES_EXPORTER: 'otlp', [name]: 'soon' } });
      await expect(start).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(name),
      });
    }
  });

  it('a missing header secret stops the start, naming the key', async () => {
    const start = startTracing({
      config: { endpoint: 'http://127.0.0.1:9/v1/traces', headers: { 'x-api-key': 'env:NOT_SET_ANYWHERE' } },
      env: {},
    });
    await expect(start).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(start).rejects.toThrow(/telemetry\.traces\.headers\.x-api-key/);
  });

  it('a malformed traceparent starts a new trace, never an error', async () => {
    receiver = await startOtlpReceiver();
    const t = await startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    for (const bad of ['00-xyz-00f067aa0ba902b7-01', `00-${'0'.repeat(32)}-${PARENT_SPAN}-01`, 'garbage'])
      oneCall(t, { traceparent: bad });
    await t.shutdown();
    const calls = receiver.spans().filter((s) => s.kind === 2);
    expect(calls).toHaveLength(3);
    for (const c of calls) {
      expect(c.parentSpanId).toBeUndefined();
      expect(c.traceId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('ratio 0 records no new trace yet still propagates an unsampled context; a sampled caller is followed', async () => {
    receiver = await startOtlpReceiver();
    const t = await startTracing({
      config: { endpoint: `${receiver.url}/v1/traces`, sampleRatio: 0 },
      env: {},
    });
    const headers = oneCall(t);
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    oneCall(t, { traceparent: TRACEPARENT });
    await t.shutdown();
    const traces = new Set(receiver.spans().map((s) => s.traceId));
    expect([...traces]).toEqual([PARENT_TRACE]);
  });

  it('a failing collector is logged, never thrown; shutdown waits a bounded time for one that hangs', async () => {
    receiver = await startOtlpReceiver(400);
    const { logger, lines } = logSink();
    const failing = await startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, logger });
    oneCall(failing);
    await failing.shutdown();
    expect(lines.some((l) => l.level === 'warn' && /trace export failed/.test(l.msg))).toBe(true);
    await receiver.close();

    receiver = await startOtlpReceiver('hang');
    const hanging = await startTracing({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
      logger,
      shutdownMs: 200,
    });
    oneCall(hanging);
    await hanging.shutdown();
    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(lines.some((l) => /did not finish at shutdown/.test(l.msg))).toBe(true);
  });
});
