import { createHash, randomBytes } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import type { McpRequestContext, Server } from '@modelcontextprotocol/server';
import { Agent } from 'undici';
import { type AdminServer, startAdmin } from '../admin/api.js';
import { openJsonlAudit } from '../audit/jsonl.js';
import { openPgMirror } from '../audit/postgres.js';
import { auditFiles, matches, parseRecord, tailLines } from '../audit/read.js';
import { buildCatalog } from '../catalog/build.js';
import { type ControlEvent, Controller } from '../control/controller.js';
import { Pins } from '../control/pins.js';
import { MetaTools } from '../discover/meta-tools.js';
import { ToolSearch } from '../discover/search.js';
import { ERROR_CODES, toWardenError, WardenError } from '../errors/index.js';
import type { AuditSink } from '../model/audit.js';
import type { Catalog } from '../model/catalog.js';
import type { Principal } from '../model/principal.js';
import { Alerts } from '../observe/alerts.js';
import { createLogger, type Logger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { Scrubber } from '../observe/scrub.js';
import { CallSeries } from '../observe/series.js';
import { type LoadOptions, loadSpec } from '../openapi/load.js';
import { createPipeline, type Pipeline } from '../pipeline/index.js';
import { readPolicyFile } from '../policy/load.js';
import { alertsSchema, type CallersDoc, DEFAULT_SCOPES, type Environment } from '../policy/schema.js';
import { createMemoryReplayGuard, createMemoryState } from '../state/memory.js';
import { createRedisState } from '../state/redis.js';
import { resolveTargets } from '../upstream/base-url.js';
import { Callers } from './callers.js';
import { startHttp } from './http.js';
import { createServerFactory } from './mcp.js';

export interface ServeOptions {
  spec: string;
  baseUrl?: string;
  policy?: string;
  environment?: Environment;
  auditFile?: string;
  transport: { kind: 'stdio' } | { kind: 'http'; port: number; host?: string; allowedHosts?: string[] };
  /** Admin API port (needs `admin.token` in the policy). */
  admin?: { port: number; host?: string };
  /** Watch the policy file and apply valid edits (default on when a policy file is given). */
  watchPolicy?: boolean;
  /** Watch a local spec file and reload it; new or changed tools wait for approval. */
  watchSpec?: boolean;
  /** PostgreSQL URL (or env:/file: reference) to mirror the audit to; overrides the policy's. */
  auditDb?: string;
  /** Redis URL (or env:/file: reference) for state shared by instances; overrides the policy's. */
  stateUrl?: string;
  /** Where approved tool definitions are pinned (default: in memory, trusting the first spec). */
  pinsFile?: string;
  timeoutMs?: number;
  maxResponseBytes?: number;
  maxPageSize?: number;
  maxBodyBytes?: number;
  logLevel?: string;
  /** Serve only the tools of these toolsets (tags, path groups or policy-defined groups). */
  toolsets?: string[];
  /** List three meta-tools (search, describe, call) instead of every tool. */
  dynamic?: boolean;
  load?: LoadOptions;
  env?: NodeJS.ProcessEnv;
}

export interface Gateway {
  catalog: Catalog;
  readonly pipeline: Pipeline;
  /** Resolves when every audit record so far is in the database mirror (when there is one). */
  flushAudit(): Promise<void>;
  /** Reloads the spec now (new and changed tools wait for approval). */
  reloadSpec(actor: string): Promise<{ tools: number; pending: string[] }>;
  controller: Controller;
  metrics: Metrics;
  readonly alerts: Alerts;
  logger: Logger;
  auditFile: string;
  /** The MCP endpoint when serving HTTP. */
  url?: string;
  /** The admin API, when enabled. */
  adminUrl?: string;
  close(): Promise<void>;
}

export const DEFAULT_AUDIT_FILE = 'mcp-warden-audit.jsonl';

/**
 * Everything `mcp-warden serve` does, in order: load the spec and the policy, build the catalogue,
 * fix each tool's upstream target, resolve credentials, open the audit, assemble the pipeline, then
 * listen. Anything wrong is reported before the first client can connect.
 */
export async function startGateway(o: ServeOptions): Promise<Gateway> {
  const env = o.env ?? process.env;
  const policy = o.policy !== undefined ? readPolicyFile(o.policy) : undefined;
  if (
    o.transport.kind === 'http' &&
    !isLoopback(o.transport.host ?? '127.0.0.1') &&
    !callersConfigured(policy?.doc.callers)
  )
    throw new WardenError(
      'CONFIG_INVALID',
      'serving HTTP beyond loopback needs callers: API keys, JWT or an explicit `callers.anonymous` with a reason',
    );
  const spec = await loadSpec(o.spec, o.load ?? {});
  const catalog = buildCatalog(spec);
  const targets = resolveTargets(catalog.tools, {
    ...(o.baseUrl !== undefined ? { baseUrl: o.baseUrl } : {}),
    specSource: spec.source.location,
    docServers: catalog.servers,
  });
  const scrubber = new Scrubber([]);
  const logger = createLogger({ ...(o.logLevel ? { level: o.logLevel } : {}), scrubber });
  const auditFile = resolvePath(o.auditFile ?? DEFAULT_AUDIT_FILE);
  const auditCfg = policy?.doc.audit;
  const metrics = new Metrics(() => toolNames(controller.currentCatalog()));
  const pgRef = o.auditDb ?? auditCfg?.postgres;
  const mirror = pgRef
    ? await openPgMirror({
        url: /^(env|file):/.test(pgRef)
          ? readSecretRef(pgRef, env, 'audit.postgres').toString('utf8')
          : pgRef,
        instance:
          auditCfg?.instance ??
          `${hostname()}:${createHash('sha256').update(auditFile).digest('hex').slice(0, 8)}`,
        onError: (e) =>
          logger.warn({ err: e.message.split('\n')[0] }, 'audit database write failed; retrying'),
      })
    : undefined;
  const fileSink = openJsonlAudit(auditFile, {
    ...(mirror ? { mirror } : {}),
    fsync: auditCfg?.fsync ?? 'batch',
    ...(auditCfg?.fsyncIntervalMs ? { fsyncIntervalMs: auditCfg.fsyncIntervalMs } : {}),
    ...(auditCfg?.rotateMb ? { rotateBytes: auditCfg.rotateMb * 1024 * 1024 } : {}),
    ...(auditCfg?.rotateHours ? { rotateAgeMs: auditCfg.rotateHours * 3_600_000 } : {}),
    ...(auditCfg?.retain ? { retain: auditCfg.retain } : {}),
    ...(auditCfg?.checkpointEvery ? { checkpointEvery: auditCfg.checkpointEvery } : {}),
    ...(auditCfg?.signingKey
      ? { signingKey: readSecretRef(auditCfg.signingKey, env, 'audit.signingKey') }
      : {}),
  });
  let alerts: Alerts | undefined;
  // Every append is timed and every failure counted (and alerted on).
  const audit: AuditSink = {
    write(record) {
      const t0 = performance.now();
      try {
        fileSink.write(record);
      } catch (e) {
        metrics.auditFailures.inc();
        alerts?.auditFailed();
        throw e;
      } finally {
        metrics.auditWriteSeconds.observe((performance.now() - t0) / 1000);
      }
    },
    close: async () => {
      await fileSink.close();
      await mirror?.close();
    },
  };
  const stateCfg = o.stateUrl
    ? {
        redis: o.stateUrl,
        prefix: policy?.doc.state?.prefix ?? 'mcp-warden',
        readsWhenDown: policy?.doc.state?.readsWhenDown ?? 'local',
      }
    : policy?.doc.state;
  const redis = stateCfg
    ? await createRedisState({
        url:
          stateCfg.redis.startsWith('env:') || stateCfg.redis.startsWith('file:')
            ? readSecretRef(stateCfg.redis, env, 'state.redis').toString('utf8')
            : stateCfg.redis,
        prefix: stateCfg.prefix,
        onDegraded: (d) => {
          metrics.stateDegraded.set(d ? 1 : 0);
          alerts?.stateDegraded(d);
          if (d) logger.error('shared state (Redis) unreachable: writes fail closed, reads use local limits');
          else logger.warn('shared state (Redis) reachable again');
        },
      })
    : undefined;
  const state = redis ?? createMemoryState();
  // With shared state, approvals are shared too: approving on one instance approves on all.
  if (redis && o.pinsFile !== undefined)
    logger.warn('--pins is not used with shared state: tool approvals are kept in Redis');
  const pins = new Pins(o.pinsFile !== undefined ? resolvePath(o.pinsFile) : undefined, redis?.pins);
  // Trust on first use, for the whole fleet: the first instance to start pins what it serves.
  if (redis && pins.empty) await pins.approve(catalog.tools);
  const recordControl = (e: ControlEvent): void => {
    metrics.controlChanges.inc({ action: e.action });
    audit.write({ kind: 'control', time: new Date().toISOString(), ...e });
  };
  const series = new CallSeries();
  const controller = new Controller({
    catalog,
    pins,
    ...(policy ? { policy } : {}),
    ...(o.environment ? { environment: o.environment } : {}),
    env,
    state,
    ...(o.toolsets?.length ? { toolsets: o.toolsets } : {}),
    onSecret: (values) => scrubber.add(values),
    onControl: recordControl,
    warn: (msg, data) => logger.warn(data ?? {}, msg),
  });
  const doc = controller.policy();
  // Defaults hold with no `alerts:` section: error rate, denied rate and volume with their defaults.
  alerts = new Alerts({
    config: doc.alerts ?? DEFAULT_ALERTS,
    logger,
    onFire: (a) => metrics.alertsFired.inc({ rule: a.rule }),
    seenPairs: seenPairs(auditFile),
  });
  const confirmSecret = doc.confirm?.secret
    ? readSecretRef(doc.confirm.secret, env, 'confirm.secret')
    : randomBytes(32);
  const replay = redis ?? createMemoryReplayGuard();
  // One connection pool for the gateway's life, shared by the pipelines a spec reload replaces.
  const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 30_000, connectTimeout: 5_000 });
  const makePipeline = (cat: Catalog, tg: typeof targets) =>
    createPipeline({
      catalog: cat,
      targets: tg,
      control: controller,
      confirm: { secret: confirmSecret, ttlSeconds: doc.confirm?.ttlSeconds ?? 300, replay },
      scrubber,
      audit,
      logger,
      failReads: auditCfg?.failReads ?? 'closed',
      limit: {
        ...(redis && stateCfg
          ? {
              redis: { client: redis.client, prefix: stateCfg.prefix, readsWhenDown: stateCfg.readsWhenDown },
            }
          : {}),
        onLimited: (scope) => metrics.rateLimited.inc({ scope }),
      },
      onCall: (ctx, record) => {
        metrics.observeCall(ctx, record);
        series.observe(
          ctx.tool?.name ?? '(unknown)',
          performance.now() - ctx.startedAt,
          !ctx.error ? 'ok' : ERROR_CODES[ctx.error.code].audit === 'failed' ? 'error' : 'denied',
        );
        alerts?.observe(ctx);
      },
      send: {
        dispatcher,
        ...(doc.originBreaker !== undefined ? { originBreaker: doc.originBreaker } : {}),
        onBreaker: (name, s) => {
          metrics.breakerState.set({ breaker: name }, s === 'open' ? 1 : s === 'half-open' ? 0.5 : 0);
          alerts?.breaker(name, s);
          if (s === 'open') logger.warn({ breaker: name }, 'circuit breaker opened');
        },
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.maxResponseBytes !== undefined ? { maxResponseBytes: o.maxResponseBytes } : {}),
      },
      ...(o.maxPageSize !== undefined ? { maxPageSize: o.maxPageSize } : {}),
    });
  let pipeline = makePipeline(catalog, targets);
  // Dynamic mode's index, built on the first search (and again after a spec reload).
  let search: ToolSearch | undefined;
  /**
   * Reloads the spec. The new pipeline and the new catalogue are swapped in one synchronous step, so a
   * call sees either the old pair or the new one, never a mix. A spec that fails to load changes nothing.
   */
  const reloadSpec = async (actor: string): Promise<{ tools: number; pending: string[] }> => {
    const next = buildCatalog(await loadSpec(o.spec, o.load ?? {}));
    const nextTargets = resolveTargets(next.tools, {
      ...(o.baseUrl !== undefined ? { baseUrl: o.baseUrl } : {}),
      specSource: spec.source.location,
      docServers: next.servers,
    });
    const nextPipeline = makePipeline(next, nextTargets);
    pipeline = nextPipeline;
    controller.setCatalog(next, actor);
    search = undefined;
    const pending = [...controller.pending().keys()];
    logger.warn(
      { tools: next.tools.length, pending: pending.slice(0, 20) },
      `spec reloaded: ${next.tools.length} tools, ${pending.length} waiting for approval`,
    );
    return { tools: next.tools.length, pending };
  };

  const view = controller.view();
  const exposed = view.entries.filter((e) => e.exposed).length;
  const upstreams = [...new Set([...targets.values()].map((t) => t.origin + t.basePath))];
  logger.info(
    {
      spec: spec.source.location,
      policy: policy?.file ?? '(none: secure defaults)',
      environment: controller.environment(),
      tools: catalog.tools.length,
      exposed,
      hidden: catalog.tools.length - exposed,
      upstream: upstreams.slice(0, 5),
      audit: auditFile,
    },
    `serving ${exposed} of ${catalog.tools.length} tools (mode ${doc.mode})`,
  );
  // A tool the policy would serve but whose credential is missing: hidden, and said so now.
  const missing = new Map<string, string[]>();
  for (const [tool, why] of controller.credentials().missing)
    missing.set(why, [...(missing.get(why) ?? []), tool]);
  for (const [why, tools] of missing)
    logger.warn(
      { tools: tools.slice(0, 20), count: tools.length },
      `hidden for want of an upstream credential: ${why}`,
    );
  for (const w of spec.warnings.slice(0, 20)) logger.warn({ spec: true }, w);

  const stdioPrincipal: Principal = {
    id: doc.callers?.stdio?.principal ?? 'local',
    scopes: doc.callers?.stdio?.scopes ?? DEFAULT_SCOPES.read,
  };
  const servers = new Set<WeakRef<Server>>();
  const factory = createServerFactory({
    catalog,
    pipeline: { call: (input) => pipeline.call(input) },
    view: () => controller.view(),
    inBandElicitation: o.transport.kind === 'stdio',
    principalOf: (ctx: McpRequestContext) =>
      o.transport.kind === 'stdio'
        ? stdioPrincipal
        : ctx.authInfo
          ? { id: ctx.authInfo.clientId, scopes: ctx.authInfo.scopes }
          : { id: 'unauthenticated', scopes: [] },
    onServer: (s) => {
      if (o.transport.kind === 'stdio') servers.add(new WeakRef(s));
    },
    ...(o.dynamic
      ? { dynamic: new MetaTools(() => (search ??= new ToolSearch(controller.currentCatalog()))) }
      : {}),
  });
  // Connected (stdio) clients hear about changes; stateless HTTP clients re-list when they choose.
  controller.onChange(() => {
    for (const ref of servers) {
      const s = ref.deref();
      if (!s) servers.delete(ref);
      else void s.sendToolListChanged().catch(() => servers.delete(ref));
    }
  });
  if (policy && o.watchPolicy !== false) controller.watchFile();
  let specWatcher: FSWatcher | undefined;
  if (o.watchSpec) {
    if (/^https?:/i.test(o.spec))
      throw new WardenError(
        'USAGE',
        '--watch-spec needs a local spec file; reload a URL spec through the admin API',
      );
    const file = resolvePath(o.spec);
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    specWatcher = watch(dirname(file), { persistent: false }, (_e, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        running = running.then(() =>
          reloadSpec('spec-watch').then(
            () => undefined,
            (e) =>
              logger.warn(
                { code: toWardenError(e).code, err: toWardenError(e).message },
                'spec reload failed; the previous spec stays',
              ),
          ),
        );
      }, 300);
    });
  }

  let closeTransport: () => Promise<void>;
  let url: string | undefined;
  let callers: Callers | undefined;
  if (o.transport.kind === 'http') {
    const host = o.transport.host ?? '127.0.0.1';
    const http = await startHttp({
      factory,
      logger,
      port: o.transport.port,
      host,
      onAuthFailure: (code) => metrics.authFailures.inc({ code }),
      callers: (listening) => {
        callers = new Callers({
          callers: doc.callers,
          environment: controller.environment(),
          resource: doc.callers?.resource ?? listening,
          loopback: isLoopback(host),
          scopesInUse: () => [...new Set(controller.decisions().flatMap((d) => d.scopes))],
          warn: (m) => logger.warn(m),
        });
        return callers;
      },
      ...(o.transport.allowedHosts ? { allowedHosts: o.transport.allowedHosts } : {}),
      ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
    });
    url = http.url;
    closeTransport = http.close;
    logger.info({ url }, `MCP endpoint (Streamable HTTP, 2025-11-25 and 2026-07-28): ${url}`);
  } else {
    const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
    const handle = serveStdio(factory, {
      legacy: 'serve',
      onerror: (e) => logger.debug({ err: e.message }, 'stdio message rejected'),
    });
    closeTransport = () => handle.close();
    logger.info({ principal: stdioPrincipal.id }, 'MCP over stdio (2025-11-25 and 2026-07-28)');
  }

  let admin: AdminServer | undefined;
  if (o.admin) {
    if (!doc.admin?.token)
      throw new WardenError(
        'CONFIG_INVALID',
        'the admin API needs `admin.token` (a secret reference) in the policy',
      );
    const token = readSecretRef(doc.admin.token, env, 'admin.token').toString('utf8');
    scrubber.add([token]);
    admin = await startAdmin({
      controller,
      metrics,
      metricsPublic: doc.admin.metricsPublic ?? false,
      reloadSpec,
      token,
      port: o.admin.port,
      host: o.admin.host ?? doc.admin.host ?? '127.0.0.1',
      logger,
      onControl: recordControl,
      series,
      ...(alerts ? { alerts } : {}),
      auditFile,
    });
    logger.info({ url: admin.url }, `admin API: ${admin.url}`);
  }

  return {
    catalog,
    get pipeline() {
      return pipeline;
    },
    reloadSpec,
    flushAudit: async () => {
      await mirror?.flush();
    },
    controller,
    metrics,
    alerts: alerts!,
    logger,
    auditFile,
    ...(url ? { url } : {}),
    ...(admin ? { adminUrl: admin.url } : {}),
    async close() {
      await alerts?.flush();
      await admin?.close();
      specWatcher?.close();
      await closeTransport();
      callers?.close();
      controller.close();
      await pipeline.close();
      await state.close();
      await audit.close();
      logger.flush();
    },
  };
}

function callersConfigured(c: CallersDoc | undefined): boolean {
  return Boolean(c?.apiKeys?.length || c?.apiKeysFile || c?.jwt || c?.anonymous);
}

const DEFAULT_ALERTS = alertsSchema.parse({ errorRate: {}, deniedRate: {}, volume: {} });

/**
 * Principal × tool pairs the audit already holds, so first-use alerts survive a restart. Bounded
 * work at start-up: the last 16 MiB of each of the last three files, however large they are.
 */
function seenPairs(auditFile: string): string[] {
  const out = new Set<string>();
  const wanted = { kind: 'call', decision: 'allowed' } as const;
  for (const file of auditFiles(auditFile).slice(-3))
    for (const line of tailLines(file, 16 * 1024 * 1024)) {
      const r = parseRecord(line);
      if (r && matches(r, wanted) && typeof r.principal === 'string' && typeof r.tool === 'string')
        out.add(`${r.principal}\0${r.tool}`);
    }
  return [...out];
}

const TOOL_NAMES = new WeakMap<Catalog, ReadonlySet<string>>();
function toolNames(c: Catalog): ReadonlySet<string> {
  let s = TOOL_NAMES.get(c);
  if (!s) {
    s = new Set(c.tools.map((t) => t.name));
    TOOL_NAMES.set(c, s);
  }
  return s;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Reads an `env:`/`file:` reference once; a missing value is a start-up error naming the reference. */
export function readSecretRef(ref: string, env: NodeJS.ProcessEnv, what: string): Buffer {
  let value: string | undefined;
  if (ref.startsWith('env:')) value = env[ref.slice(4)];
  else
    try {
      value = readFileSync(ref.slice(5), 'utf8').replace(/\r?\n$/, '');
    } catch {
      value = undefined;
    }
  if (!value || value.length < 16)
    throw new WardenError('CONFIG_INVALID', `${what}: ${ref} is not set or shorter than 16 characters`);
  return Buffer.from(value, 'utf8');
}
