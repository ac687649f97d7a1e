import type * as Api from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { auditDecision, WardenError } from '../errors/index.js';
import { readSecretRef } from '../lib/secret-ref.js';
import type { CallContext, CallSpan, CallTracer, UpstreamSpan, UpstreamTry } from '../pipeline/context.js';
import type { TracesDoc } from '../policy/schema.js';
import { VERSION } from '../version.js';
import type { Logger } from './log.js';

/**
 * OpenTelemetry traces: one SERVER span per `tools/call`, an INTERNAL child per pipeline stage that
 * ran, and a CLIENT span per upstream try, exported over OTLP/HTTP (JSON) in batches. Off unless the
 * policy's `telemetry.traces` or the standard OTEL_* variables configure it; off, no OpenTelemetry
 * package is even loaded and the pipeline runs its plain loop (`tracer` is undefined).
 *
 * What a span may carry is decided here and nowhere else: names, codes, the path template and the
 * upstream's host — never argument values, results, headers, query strings, filled paths, credentials
 * or the principal (only how it authenticated).
 */
export interface Tracing {
  /** The pipeline's hook; undefined when tracing is off. */
  readonly tracer: CallTracer | undefined;
  /** Where spans go (origin and path only), for the start-up log. */
  readonly endpoint?: string;
  /** Ends the provider: what is queued is exported, within a bounded wait. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** The policy's `telemetry.traces`. */
  config?: TracesDoc | undefined;
  env: NodeJS.ProcessEnv;
  /** Learns the export headers' values (API keys), so no log line can show them. */
  addSecrets?: (values: readonly string[]) => void;
  logger?: Logger;
  /** Longest wait for the last export at shutdown (default 5 s). */
  shutdownMs?: number;
}

const OFF: Tracing = { tracer: undefined, shutdown: async () => {} };
const DEFAULT_ENDPOINT = 'http://localhost:4318/v1/traces';
const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
type SamplerName = (typeof SAMPLERS)[number];

/** What start-up decided, before any OpenTelemetry package is loaded. */
export interface TracingPlan {
  endpoint: string;
  /** Which setting named the endpoint (error messages name it, never its value). */
  from: string;
  sampler: SamplerName;
  ratio: number;
  serviceName?: string;
}

/** A trimmed, non-empty variable (the SDK reads blank as unset). */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/**
 * Whether tracing is on, and where to. `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` win
 * over everything (the deployment's off switch); then the policy's endpoint, then
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), then `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`,
 * then `OTEL_TRACES_EXPORTER=otlp` alone (the default collector on localhost:4318). A value the
 * gateway cannot honour stops the start with CONFIG_INVALID naming the setting.
 */
export function planTracing(config: TracesDoc | undefined, env: NodeJS.ProcessEnv): TracingPlan | undefined {
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporters = (envValue(env, 'OTEL_TRACES_EXPORTER') ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.includes('none')) return undefined;
  const other = exporters.find((e) => e !== 'otlp');
  if (other)
    throw new WardenError(
      'CONFIG_INVALID',
      `OTEL_TRACES_EXPORTER=${other.slice(0, 40)} is not supported: use otlp (OTLP/HTTP) or none`,
    );
  const protocolVar = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = envValue(env, protocolVar);
  // OTLP/HTTP receivers take JSON and protobuf on the same path; gRPC is another port and protocol.
  if (protocol !== undefined && protocol !== 'http/json' && protocol !== 'http/protobuf')
    throw new WardenError(
      'CONFIG_INVALID',
      `${protocolVar}=${protocol.slice(0, 40)} is not supported: traces are sent as OTLP/HTTP JSON (http/json or http/protobuf endpoints)`,
    );

  let endpoint: string | undefined;
  let from = '';
  const specific = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const general = envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (config?.endpoint) [endpoint, from] = [config.endpoint, 'telemetry.traces.endpoint'];
  else if (specific) [endpoint, from] = [specific, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  else if (general)
    [endpoint, from] = [`${general.replace(/\/?$/, '/')}v1/traces`, 'OTEL_EXPORTER_OTLP_ENDPOINT'];
  else if (exporters.includes('otlp')) [endpoint, from] = [DEFAULT_ENDPOINT, 'OTEL_TRACES_EXPORTER'];
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new WardenError('CONFIG_INVALID', `${from} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new WardenError('CONFIG_INVALID', `${from} must be an http:// or https:// URL`);

  const [sampler, ratio] = samplerOf(config, env);
  const serviceName = config?.serviceName ?? envValue(env, 'OTEL_SERVICE_NAME');
  return { endpoint: url.href, from, sampler, ratio, ...(serviceName ? { serviceName } : {}) };
}

/** The policy's `sampleRatio` (parent-based), else OTEL_TRACES_SAMPLER / _ARG as the SDK defines them. */
function samplerOf(config: TracesDoc | undefined, env: NodeJS.ProcessEnv): [SamplerName, number] {
  if (config?.sampleRatio !== undefined) return ['parentbased_traceidratio', config.sampleRatio];
  const name = (envValue(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(name))
    throw new WardenError(
      'CONFIG_INVALID',
      `OTEL_TRACES_SAMPLER=${name.slice(0, 40)} is not a sampler: use one of ${SAMPLERS.join(', ')}`,
    );
  const arg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG');
  const ratio = arg === undefined ? 1 : Number(arg);
  if (!(ratio >= 0 && ratio <= 1))
    throw new WardenError('CONFIG_INVALID', 'OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1');
  return [name as SamplerName, ratio];
}

/** A positive whole number from an OTEL_BSP_* variable, else undefined (the SDK's default). */
function envCount(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = envValue(env, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new WardenError('CONFIG_INVALID', `${name} must be a whole number of milliseconds or spans`);
  return n;
}

/**
 * A CommonJS package's exports, by name, however it was loaded: Node gives an `import()` of one its
 * named exports, a bundle (dist/cli is one) only `default`.
 */
function named<T extends object>(m: T): T {
  const keys = Object.keys(m);
  return keys.length === 1 && keys[0] === 'default' ? ((m as { default: T }).default ?? m) : m;
}

/**
 * Builds the tracer provider once, at start-up. Nothing is loaded when tracing is off. The provider
 * is the gateway's own (not registered globally), so nothing else in the process reports into it.
 */
export async function startTracing(o: TracingOptions): Promise<Tracing> {
  const plan = planTracing(o.config, o.env);
  if (!plan) return OFF;
  const headers = exportHeaders(o.config, o.env);
  const [api, core, sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/api').then(named),
    import('@opentelemetry/core').then(named),
    import('@opentelemetry/sdk-trace-base').then(named),
    import('@opentelemetry/exporter-trace-otlp-http').then(named),
    import('@opentelemetry/resources').then(named),
  ]);
  const fromEnv = {
    ...core.parseKeyPairsIntoRecord(envValue(o.env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    ...core.parseKeyPairsIntoRecord(envValue(o.env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  };
  const allHeaders = { ...fromEnv, ...headers };
  // An export header is usually an API key: whole, and the token after an auth scheme.
  o.addSecrets?.(Object.values(allHeaders).flatMap((v) => [v, v.replace(/^\S+\s+/, '')]));

  const ratioSampler = () => new sdk.TraceIdRatioBasedSampler(plan.ratio);
  const root = {
    always_on: () => new sdk.AlwaysOnSampler(),
    always_off: () => new sdk.AlwaysOffSampler(),
    traceidratio: ratioSampler,
    parentbased_always_on: () => new sdk.AlwaysOnSampler(),
    parentbased_always_off: () => new sdk.AlwaysOffSampler(),
    parentbased_traceidratio: ratioSampler,
  }[plan.sampler]();
  const sampler = plan.sampler.startsWith('parentbased_') ? new sdk.ParentBasedSampler({ root }) : root;

  const resourceAttrs = core.parseKeyPairsIntoRecord(envValue(o.env, 'OTEL_RESOURCE_ATTRIBUTES'));
  const resource = resources.defaultResource().merge(
    resources.resourceFromAttributes({
      ...resourceAttrs,
      'service.name': plan.serviceName ?? resourceAttrs['service.name'] ?? 'mcp-warden',
      'service.version': VERSION,
    }),
  );
  const exporter = loggedExporter(
    new otlp.OTLPTraceExporter({ url: plan.endpoint, headers: allHeaders, timeoutMillis: 10_000 }),
    o.logger,
  );
  const bsp = {
    scheduledDelayMillis: envCount(o.env, 'OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: envCount(o.env, 'OTEL_BSP_EXPORT_TIMEOUT'),
    maxQueueSize: envCount(o.env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: envCount(o.env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
  };
  const provider = new sdk.BasicTracerProvider({
    resource,
    sampler,
    // A full queue drops spans, never blocks or fails a call.
    spanProcessors: [
      new sdk.BatchSpanProcessor(
        exporter,
        Object.fromEntries(Object.entries(bsp).filter(([, v]) => v !== undefined)),
      ),
    ],
  });
  const tracer = provider.getTracer('mcp-warden', VERSION);
  const shown = new URL(plan.endpoint);
  o.logger?.info(
    { endpoint: `${shown.origin}${shown.pathname}`, sampler: plan.sampler, ratio: plan.ratio },
    'tracing on: spans are exported over OTLP/HTTP',
  );
  return {
    tracer: callTracer(api, new core.W3CTraceContextPropagator(), tracer),
    endpoint: `${shown.origin}${shown.pathname}`,
    shutdown: () => boundedShutdown(provider, o.shutdownMs ?? 5_000, o.logger),
  };
}

/** The policy's export headers, each read from its secret reference (a missing one stops the start). */
function exportHeaders(config: TracesDoc | undefined, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, ref] of Object.entries(config?.headers ?? {})) {
    const value = readSecretRef(ref, env);
    if (value === undefined)
      throw new WardenError('CONFIG_INVALID', `telemetry.traces.headers.${name}: ${ref} is not set`);
    if (!/^[\t\x20-\x7e]*$/.test(value))
      throw new WardenError(
        'CONFIG_INVALID',
        `telemetry.traces.headers.${name}: ${ref} holds characters a header cannot carry`,
      );
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** The exporter, telling the log when an export fails (at most once a minute); calls never notice. */
function loggedExporter(inner: SpanExporter, logger: Logger | undefined): SpanExporter {
  let quietUntil = 0;
  return {
    export(spans, done) {
      inner.export(spans, (result) => {
        if (result.code !== 0 && Date.now() >= quietUntil) {
          quietUntil = Date.now() + 60_000;
          logger?.warn(
            { spans: spans.length, err: result.error?.message?.slice(0, 300) },
            'trace export failed; spans are dropped, calls are not affected',
          );
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    ...(inner.forceFlush ? { forceFlush: () => inner.forceFlush!() } : {}),
  };
}

async function boundedShutdown(
  provider: { shutdown(): Promise<void> },
  ms: number,
  logger: Logger | undefined,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
    timer.unref();
  });
  const done = provider.shutdown().then(
    () => 'done' as const,
    () => 'done' as const,
  );
  const outcome = await Promise.race([done, late]);
  clearTimeout(timer);
  if (outcome === 'late')
    logger?.warn({ ms }, 'trace export did not finish at shutdown; the rest is dropped');
}

// Attribute names of the GenAI/MCP conventions, still "development" in @opentelemetry/semantic-conventions:
// its own guidance is to copy them rather than import the incubating entry point.
const ATTR = {
  mcpMethod: 'mcp.method.name',
  mcpProtocol: 'mcp.protocol.version',
  mcpSession: 'mcp.session.id',
  jsonrpcId: 'jsonrpc.request.id',
  genAiOperation: 'gen_ai.operation.name',
  genAiTool: 'gen_ai.tool.name',
  urlTemplate: 'url.template',
  // Stable ones (HTTP client, errors).
  errorType: 'error.type',
  httpMethod: 'http.request.method',
  httpStatus: 'http.response.status_code',
  resendCount: 'http.request.resend_count',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  urlScheme: 'url.scheme',
} as const;

const STAGE_PREFIX = 'warden.stage ';
const HTTP_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

/** The pipeline's view of the tracer: spans named and filled from the call's own fields only. */
function callTracer(api: typeof Api, propagator: Api.TextMapPropagator, tracer: Api.Tracer): CallTracer {
  const { SpanKind, SpanStatusCode, ROOT_CONTEXT, trace, defaultTextMapGetter, defaultTextMapSetter } = api;
  const servers = new Map<string, { address: string; port: number; scheme: string }>();
  const serverOf = (origin: string) => {
    let s = servers.get(origin);
    if (!s) {
      const u = new URL(origin);
      const scheme = u.protocol.replace(':', '');
      s = { address: u.hostname, port: u.port ? Number(u.port) : scheme === 'https' ? 443 : 80, scheme };
      servers.set(origin, s);
    }
    return s;
  };

  return {
    startCall(ctx: CallContext): CallSpan {
      const incoming = ctx.input.trace;
      const carrier: Record<string, string> = {};
      if (incoming?.traceparent !== undefined) carrier.traceparent = incoming.traceparent;
      if (incoming?.tracestate !== undefined) carrier.tracestate = incoming.tracestate;
      // A malformed traceparent leaves the root context: a new trace, never an error.
      const parent = incoming?.traceparent
        ? propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter)
        : ROOT_CONTEXT;
      const attributes: Api.Attributes = {
        [ATTR.mcpMethod]: 'tools/call',
        [ATTR.genAiOperation]: 'execute_tool',
        'warden.call.id': ctx.id,
        'warden.auth.method': ctx.input.principal.via,
      };
      // Client-chosen values: kept only in their expected shapes, so no free text rides along.
      const id = incoming?.requestId;
      if (id !== undefined && /^[\w.:-]{1,64}$/.test(String(id))) attributes[ATTR.jsonrpcId] = String(id);
      const version = incoming?.protocolVersion;
      if (version && /^\d{4}-\d{2}-\d{2}$/.test(version)) attributes[ATTR.mcpProtocol] = version;
      const session = incoming?.sessionId;
      if (session && /^[\x21-\x7e]{1,128}$/.test(session)) attributes[ATTR.mcpSession] = session;
      const call = tracer.startSpan('tools/call', { kind: SpanKind.SERVER, attributes }, parent);
      const callContext = trace.setSpan(parent, call);
      let stage: Api.Span | undefined;
      let stageContext = callContext;

      return {
        enterStage(name) {
          stage = tracer.startSpan(
            STAGE_PREFIX + name,
            { kind: SpanKind.INTERNAL, attributes: { 'warden.stage': name } },
            callContext,
          );
          stageContext = trace.setSpan(callContext, stage);
        },
        exitStage(code) {
          if (!stage) return;
          if (code) {
            stage.setAttribute(ATTR.errorType, code);
            stage.setStatus({ code: SpanStatusCode.ERROR });
          }
          stage.end();
          stage = undefined;
          stageContext = callContext;
        },
        upstream(req: UpstreamTry): UpstreamSpan {
          const server = serverOf(req.origin);
          const method = HTTP_METHODS.has(req.method) ? req.method : '_OTHER';
          const attrs: Api.Attributes = {
            [ATTR.httpMethod]: method,
            [ATTR.serverAddress]: server.address,
            [ATTR.serverPort]: server.port,
            [ATTR.urlScheme]: server.scheme,
          };
          if (req.template) attrs[ATTR.urlTemplate] = req.template;
          if (req.resend > 0) attrs[ATTR.resendCount] = req.resend;
          const name = req.template ? `${method} ${req.template}` : method;
          const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: attrs }, stageContext);
          const headers: Record<string, string> = {};
          propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
          return {
            headers,
            end({ status, error }) {
              if (status !== undefined) span.setAttribute(ATTR.httpStatus, status);
              const failure = error ?? (status !== undefined && status >= 400 ? String(status) : undefined);
              if (failure) {
                span.setAttribute(ATTR.errorType, failure);
                span.setStatus({ code: SpanStatusCode.ERROR });
              }
              span.end();
            },
          };
        },
        end(done: CallContext) {
          if (done.tool) {
            call.updateName(`tools/call ${done.tool.name}`);
            call.setAttribute(ATTR.genAiTool, done.tool.name);
          }
          const err = done.error;
          call.setAttribute('warden.decision', err ? auditDecision(err.code) : 'allowed');
          if (err) {
            call.setAttribute(ATTR.errorType, err.code);
            call.setStatus({ code: SpanStatusCode.ERROR });
          }
          call.end();
        },
      };
    },
  };
}
