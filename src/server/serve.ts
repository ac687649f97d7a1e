import { randomBytes } from 'node:crypto';
import { dirname, resolve as resolvePath } from 'node:path';
import type { McpServerFactory, Server } from '@modelcontextprotocol/server';
import type { Dispatcher } from 'undici';
import type { AdminServer } from '../admin/api.js';
import { auditLockHolder } from '../audit/lock.js';
import { allowedPairs } from '../audit/read.js';
import { Approvals } from '../control/approvals.js';
import { type ControlEvent, Controller } from '../control/controller.js';
import { Pins } from '../control/pins.js';
import type { MetaTools } from '../discover/meta-tools.js';
import { WardenError } from '../errors/index.js';
import { saveCodeCache } from '../lib/code-cache.js';
import { requireSecret } from '../lib/secret-ref.js';
import { defaultAuditFile, numberedAuditFile } from '../lib/state-dir.js';
import type { Catalog } from '../model/catalog.js';
import type { Principal } from '../model/principal.js';
import type { Alerts } from '../observe/alerts.js';
import { Health } from '../observe/health.js';
import { createLogger, type Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { Observers } from '../observe/observers.js';
import { startTracing, type Tracing } from '../observe/tracing.js';
import type { LoadOptions } from '../openapi/load.js';
import { SNAPSHOT_SETTLE_MS, settleSnapshots, startSnapshots } from '../openapi/prefetch.js';
import type { Pipeline } from '../pipeline/index.js';
import { DEFAULT_POLICY } from '../policy/evaluate.js';
import { type LoadedPolicy, readPolicyFile } from '../policy/load.js';
import {
  type CallersDoc,
  DEFAULT_SCOPES,
  type Environment,
  effectiveAlerts,
  type PolicyDoc,
} from '../policy/schema.js';
import { createRedactor, type Redactor } from '../protect/redactor.js';
import type { Restriction } from '../state/budgets.js';
import { type AuditSinks, openAuditSinks } from './audit-sinks.js';
import { principalIds } from './callers.js';
import { earlyTitle } from './early-title.js';
import { ListChanges, type StreamLimits } from './list-changes.js';
import { createServerFactory } from './mcp.js';
import {
  type ApiStatus,
  type LoadedApi,
  loadApis,
  membersOf,
  type ReloadResult,
  ServedApi,
} from './served-api.js';
import { type OpenedState, openState } from './shared-state.js';
import { reportStartup } from './startup-report.js';
import {
  type EarlyStdio,
  isLoopback,
  openEarlyStdio,
  type RunningTransport,
  startTransport,
  type TransportOptions,
} from './transport.js';
import type { OpenedUserCredentials, openUserCredentials } from './user-credentials.js';

export interface ServeOptions {
  /** One spec (the one-API case); without it, `apis` or the policy's `apis:` give an API set. */
  spec?: string;
  baseUrl?: string;
  /** An API set without a policy section: `--api name=spec[,base-url]`, one per API. */
  apis?: Array<{ name: string; spec: string; baseUrl?: string }>;
  policy?: string;
  environment?: Environment;
  /** The JSON Lines audit (relative: against the cwd); default `<state dir>/<spec folder>/audit.jsonl`. */
  auditFile?: string;
  /** Root of the per-spec state folders instead of $XDG_STATE_HOME/mcp-warden (docs/files.md). */
  stateDir?: string;
  transport: TransportOptions;
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
  /** Bounds on HTTP notification streams (default `STREAM_DEFAULTS` in list-changes.ts). */
  streams?: Partial<StreamLimits>;
  load?: LoadOptions;
  env?: NodeJS.ProcessEnv;
  /**
   * Over stdio: read from right after the policy, answering `initialize`, `server/discover` and
   * `ping` while the spec loads (openEarlyStdio); every other request waits for the gateway.
   */
  earlyStdio?: {
    /** Stdio is being read: a start-up failure from now on is answered through `fail`. */
    opened(early: EarlyStdio): void;
  };
}

export interface Gateway {
  catalog: Catalog;
  readonly pipeline: Pipeline;
  /** Resolves when every audit record so far is in the database mirror (when there is one). */
  flushAudit(): Promise<void>;
  /** Reloads the spec now (in an API set: the API named, or each one); new and changed tools wait for approval. */
  reloadSpec(actor: string, api?: string): Promise<ReloadResult>;
  /** The APIs of an API set and whether each is served (empty for a single spec). */
  apis(): ApiStatus[];
  controller: Controller;
  /** Out-of-band approvals: parked calls, operators' decisions (the admin API uses the same). */
  approvals: Approvals;
  /** Who listens for tool-list changes (stdio servers, HTTP notification streams). */
  changes: ListChanges;
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

/**
 * Everything `mcp-warden serve` does, in order: read the policy, load the spec into a catalogue,
 * open the audit and the state, build the controller and the pipeline, then listen. Each part is
 * built elsewhere; this function only wires them. Anything wrong is reported before the first client
 * can connect.
 */
export async function startGateway(o: ServeOptions): Promise<Gateway> {
  const env = o.env ?? process.env;
  const policy = o.policy !== undefined ? readPolicyFile(o.policy) : undefined;
  const doc = policy?.doc ?? DEFAULT_POLICY;
  requireCallersBeyondLoopback(o.transport, doc.callers);
  const members = membersOf(o, doc, policy?.file);
  const redactor = createRedactor();
  const logger = createLogger({ ...(o.logLevel ? { level: o.logLevel } : {}), redactor });
  // Checked before stdio is read, as the policy is: a state directory that cannot be written is a
  // configuration error the client's initialize is answered with, not one found after the load. Which
  // numbered file is free (a lock) is decided only after the load, next to taking the lock. Never the
  // working directory by default: stdio clients start servers in `/` or anywhere.
  const auditDefault =
    o.auditFile === undefined
      ? // An API set's folder is named after its policy file (else its first spec).
        defaultAuditFile(o.spec ?? policy?.file ?? members[0]!.source.spec, {
          env,
          ...(o.stateDir !== undefined ? { stateDir: o.stateDir } : {}),
        })
      : undefined;
  const metaTools = o.dynamic ? (await import('../discover/meta-tools.js')).MetaTools : undefined;
  const live = new Live();
  // The title the served catalogue will have: known now (early-title.ts) or once it is built.
  let title: string | null | undefined;
  const titleNow = () => {
    if (title === undefined) title = earlyTitle(members) ?? null;
    return title;
  };
  const stdioFactory = lazyFactory(() =>
    mcpFactory({ ...{ o, doc, metaTools, live, logger }, title: titleNow() ?? first.catalog.title }),
  );
  const early =
    o.earlyStdio && o.transport.kind === 'stdio'
      ? await openEarlyStdio({
          factory: stdioFactory,
          // Answered early only with the ready server's very answers (the title is in them).
          canAnswer: () => titleNow() !== null,
          logger,
          ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
        })
      : undefined;
  if (early) o.earlyStdio?.opened(early);
  // Work that holds the event loop (loading modules, starting workers) waits for the answers written
  // so far to have left: over stdio the tail of a big list would wait in the pipe behind it. The
  // transport says when (the early one from the start; the other is up before any request is
  // answered); over HTTP, the next turn of the event loop.
  let written: RunningTransport['afterWritten'] = early?.afterWritten;
  const afterWritten = (f: () => void) => (written ? written(f) : setImmediate(f));
  // The guard stages load at the first call, or soon after serving starts (see lazyStages).
  const stages = lazyStages(logger, undefined, afterWritten);
  // While the prefetch worker parses a big YAML spec, converts a Swagger 2.0 one or bundles its
  // files (the cache does not hold it), this thread has nothing to do for hundreds of ms: the
  // stages' modules load then (LazyStages.preload). Not otherwise: they would delay the list.
  const set = await loadApis(members, logger, stages.preload).catch(async (e: unknown) => {
    // What a preload made (undici's Agent) is closed with the failed start.
    await stages.close();
    throw e;
  });
  const first = { catalog: set.catalog };
  if (title === undefined || title === null) title = set.catalog.title;
  else if (title !== set.catalog.title)
    // early-title.ts would be wrong: a bug to report, not a reason to stop serving.
    logger.warn(
      { early: title, catalog: set.catalog.title },
      'the title answered early is not the catalogue’s',
    );
  // Built once; when off, nothing of OpenTelemetry is loaded and the pipeline runs its plain loop.
  const tracing = await startTracing({
    config: doc.telemetry?.traces,
    env,
    logger,
    addSecrets: (values) => redactor.addSecrets(values),
  });
  const auditFile = auditDefault === undefined ? resolvePath(o.auditFile!) : unlockedDefault(auditDefault);
  let catalogNow = (): Catalog => first.catalog;
  const rt = await openRuntime({ o, doc, env, logger, auditFile, catalog: () => catalogNow() });
  const { controller, recordControl } = await openController({ o, policy, env, first, rt, redactor, logger });
  const approvals = openApprovals(doc, rt, controller);
  const users = await openUsersIfHeld({
    ...{ doc, env, auditFile, logger },
    tools: controller.currentCatalog().tools,
    credentials: controller.credentials(),
    ...(o.auditDb !== undefined ? { auditDb: o.auditDb } : {}),
    stdio: o.transport.kind === 'stdio',
    ...(rt.state.flows ? { shared: rt.state.flows } : {}),
    ...(rt.state.redis ? { redis: rt.state.redis } : {}),
    set,
    onSecret: (values, until) => redactor.addSecrets(values, until),
  });
  const serving = { now: false };
  catalogNow = () => controller.currentCatalog();
  const makePipeline = pipelineFactory({
    ...{ o, doc, env, controller, redactor, rt, stages, logger, tracing },
    approvals,
    users,
  });
  const served = new ServedApi({ set, controller, makePipeline, logger });
  const health = healthOf(rt, serving, served, logger);
  // Every change of what is served (here, or by another instance through the shared state) reaches
  // the clients listening, each told only when its own list changed.
  const changes = new ListChanges({
    view: () => controller.view(),
    ...(o.streams ? { limits: o.streams } : {}),
    warn: (m) => logger.warn(m),
  });
  controller.onChange(() => changes.changed());
  reportStartup({ api: served.summary(), controller, policyFile: policy?.file, auditFile, logger });
  if (policy && o.watchPolicy !== false) controller.watchFile();
  const specWatcher = o.watchSpec ? served.watch() : undefined;
  // The admin port binds before the transport: over stdio, a failure once the transport is up would
  // reach a client that has already been answered (the CLI answers its first request with the reason).
  // Parts only some configurations use are imported by those only (issue 22: start-up): the admin
  // port and its dashboard, the OAuth pages, dynamic mode's meta-tools.
  const admin = o.admin
    ? await (await import('../admin/port.js')).startAdminPort({
        health,
        port: o.admin.port,
        ...(o.admin.host !== undefined ? { host: o.admin.host } : {}),
        ...{ doc, env, controller, observers: rt.observers, auditFile, logger },
        reloadSpec: (actor, api) => served.reload(actor, api),
        apis: () => served.status(),
        onControl: recordControl,
        addSecrets: (values) => redactor.addSecrets(values),
        redact: (s) => redactor.text(s),
        approvals,
        budgets: rt.state.budgets,
        ...(users ? { connections: users.oauth } : {}),
      })
    : undefined;
  live.set({
    controller,
    served,
    tracing,
    changes,
    users,
    onFirstView: () => {
      stages.warmAfterList();
      // The catalogue snapshots for the next start (src/openapi/prefetch.ts), once the list is out.
      afterWritten(startSnapshots);
    },
  });
  // Held stdio requests are served from here, in the order they came.
  const transport = early
    ? early.ready()
    : await startTransport({
        health,
        transport: o.transport,
        factory:
          o.transport.kind === 'stdio'
            ? stdioFactory
            : mcpFactory({ ...{ o, doc, metaTools, live, logger }, title: first.catalog.title }),
        ...{ doc, controller, observers: rt.observers, logger, changes },
        ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
        ...(users ? { oauthCallback: (await import('./oauth-pages.js')).oauthPages(users.oauth) } : {}),
      }).catch(async (e: unknown) => {
        await admin?.close();
        await users?.close();
        throw e;
      });
  written = transport.afterWritten;
  serving.now = true;
  stages.warmSoon();
  return gatewayOf({
    tracing,
    serving,
    first,
    served,
    controller,
    rt,
    stages,
    logger,
    auditFile,
    transport,
    admin,
    specWatcher,
    approvals,
    changes,
    users,
  });
}

/**
 * Per-user OAuth (its vault, flows and completions), imported only when a served tool holds a
 * `userOAuth` credential (issue 22: start-up): openUserCredentials opens nothing without one.
 */
async function openUsersIfHeld(
  p: Parameters<typeof openUserCredentials>[0],
): Promise<OpenedUserCredentials | undefined> {
  const held = p.tools.some((t) =>
    p.credentials.forTool(t)?.creds.some(({ cred }) => cred.kind === 'userOAuth'),
  );
  return held ? (await import('./user-credentials.js')).openUserCredentials(p) : undefined;
}

/** Approvals, in the state store (shared through Redis when it is), audited in the gateway's audit. */
function openApprovals(doc: PolicyDoc, rt: Runtime, controller: Controller): Approvals {
  return new Approvals({
    store: rt.state.approvals,
    audit: (record) => rt.audit.sink.write(record),
    operators: new Map(
      (doc.admin?.operators ?? []).map((op) => [op.id, { principals: op.principals ?? [] }]),
    ),
    pendingSeconds: doc.approvals?.pendingSeconds ?? 3600,
    runSeconds: doc.approvals?.runSeconds ?? 900,
    policyVersion: () => controller.view().policyVersion,
  });
}

/** The controller (what is served right now), and how control changes are counted and audited. */
async function openController(p: {
  o: ServeOptions;
  policy: LoadedPolicy | undefined;
  env: NodeJS.ProcessEnv;
  first: { catalog: Catalog };
  rt: Runtime;
  redactor: Redactor;
  logger: Logger;
}): Promise<{ controller: Controller; recordControl: (e: ControlEvent) => void }> {
  const { o, rt, logger } = p;
  const recordControl = (e: ControlEvent): void => {
    rt.observers.control(e.action);
    rt.audit.sink.write({ kind: 'control', time: new Date().toISOString(), ...e });
  };
  const controller = new Controller({
    catalog: p.first.catalog,
    pins: await openPins(o.pinsFile, rt.state, p.first.catalog, logger),
    ...(p.policy ? { policy: p.policy } : {}),
    ...(o.environment ? { environment: o.environment } : {}),
    env: p.env,
    state: rt.state.store,
    ...(o.toolsets?.length ? { toolsets: o.toolsets } : {}),
    onSecret: (values) => p.redactor.addSecrets(values),
    onControl: recordControl,
    warn: (msg, data) => logger.warn(data ?? {}, msg),
  });
  return { controller, recordControl };
}

/** The running gateway, and how it stops: the reverse of start-up, the audit last. */
function gatewayOf(p: {
  first: { catalog: Catalog };
  served: ServedApi;
  controller: Controller;
  rt: Runtime;
  stages: LazyStages;
  logger: Logger;
  auditFile: string;
  transport: RunningTransport;
  admin: AdminServer | undefined;
  specWatcher: { close(): void } | undefined;
  serving: { now: boolean };
  tracing: Tracing;
  approvals: Approvals;
  changes: ListChanges;
  users: OpenedUserCredentials | undefined;
}): Gateway {
  const { served, controller, logger, transport, admin } = p;
  const { observers, audit, state } = p.rt;
  return {
    catalog: p.first.catalog,
    get pipeline() {
      return served.pipeline;
    },
    reloadSpec: (actor, api) => served.reload(actor, api),
    apis: () => served.status(),
    flushAudit: audit.flush,
    controller,
    approvals: p.approvals,
    changes: p.changes,
    metrics: observers.metrics,
    alerts: observers.alerts,
    logger,
    auditFile: p.auditFile,
    ...(transport.url ? { url: transport.url } : {}),
    ...(admin ? { adminUrl: admin.url } : {}),
    async close() {
      p.serving.now = false;
      await observers.alerts.flush();
      await admin?.close();
      p.specWatcher?.close();
      await transport.close();
      controller.close();
      await served.pipeline.close();
      // Closing the pipeline told the observers of its last calls: their alerts are delivered too.
      await observers.alerts.flush();
      await p.approvals.close();
      await p.users?.close();
      // The last calls' spans are exported (within a bounded wait) before the process goes.
      await p.tracing.shutdown();
      await p.stages.close();
      await state.store.close();
      await audit.sink.close();
      // A snapshot under way is what makes the next start quick: a bounded wait for it.
      await settleSnapshots(SNAPSHOT_SETTLE_MS);
      logger.flush();
    },
  };
}

/**
 * Readiness: the catalogue is served (from the end of start-up until close begins), then each
 * dependency's own check. A change is logged once, when a probe sees it.
 */
function healthOf(rt: Runtime, serving: { now: boolean }, served: ServedApi, logger: Logger): Health {
  // In an API set, each API: one that is out fails readiness when it is required, and is only named
  // (`degraded`) when it is not — the other APIs are served.
  const apis = served.status().map((a) => ({
    name: `api:${a.name}` as const,
    optional: !a.required,
    probe: () => served.status().find((x) => x.name === a.name)?.state === 'serving',
  }));
  return new Health(
    [{ name: 'spec', probe: () => serving.now }, ...apis, ...rt.audit.readiness, ...rt.state.readiness],
    {
      onChange: (failing, degraded) => {
        if (failing.length) logger.warn({ failing, degraded }, `not ready: ${failing.join(', ')}`);
        else if (degraded.length) logger.warn({ degraded }, `ready without: ${degraded.join(', ')}`);
        else logger.info('ready again');
      },
    },
  );
}

/** What every call and every control change reports into. */
interface Runtime {
  observers: Observers;
  audit: AuditSinks;
  state: OpenedState;
}

/** Observation first (so the audit and the state can report into it), then the audit, then the state. */
async function openRuntime(p: {
  o: ServeOptions;
  doc: PolicyDoc;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  auditFile: string;
  catalog: () => Catalog;
}): Promise<Runtime> {
  const { o, env, logger } = p;
  const observers = new Observers({
    logger,
    alerts: effectiveAlerts(p.doc.alerts),
    toolNames: () => toolNames(p.catalog()),
    seenPairs: allowedPairs(p.auditFile),
  });
  const audit = await openAuditSinks({
    file: p.auditFile,
    config: p.doc.audit,
    ...(o.auditDb !== undefined ? { databaseUrl: o.auditDb } : {}),
    env,
    logger,
    onWrite: (s) => observers.auditWrite(s),
    onFailure: () => observers.auditFailed(),
  });
  const state = await openState({
    ...(o.stateUrl !== undefined ? { url: o.stateUrl } : {}),
    config: p.doc.state,
    env,
    onDegraded: (d) => observers.stateDegraded(d),
  });
  return { observers, audit, state };
}

/** What the MCP servers use of the gateway, once it is ready (a stdio server may be built before). */
interface LiveParts {
  controller: Controller;
  served: ServedApi;
  tracing: Tracing;
  changes: ListChanges;
  users: OpenedUserCredentials | undefined;
  /** Told once, at the first look at the served tools (the first tools/list, as a rule). */
  onFirstView: () => void;
}

/**
 * The gateway's parts for servers built before it is ready: their handlers run only once it is
 * (the transport holds every other request until then), and what a server needs at its building
 * (list-change notifications) waits for `set`.
 */
class Live {
  private parts: LiveParts | undefined;
  private waiting: Array<(p: LiveParts) => void> = [];

  set(parts: LiveParts): void {
    this.parts = parts;
    const run = this.waiting;
    this.waiting = [];
    for (const f of run) f(parts);
  }

  get(): LiveParts {
    if (!this.parts) throw new WardenError('INTERNAL', 'the gateway is not ready');
    return this.parts;
  }

  when(f: (p: LiveParts) => void): void {
    if (this.parts) f(this.parts);
    else this.waiting.push(f);
  }
}

/** A server factory built at its first use (stdio: the title may only be known then). */
function lazyFactory(make: () => McpServerFactory): McpServerFactory {
  let made: McpServerFactory | undefined;
  return (ctx) => {
    made ??= make();
    return made(ctx);
  };
}

/** The MCP server factory: who the caller is on this transport, and dynamic mode's meta-tools. */
function mcpFactory(p: {
  o: ServeOptions;
  /** Dynamic mode's meta-tools (their module is loaded only then). */
  metaTools: typeof MetaTools | undefined;
  doc: PolicyDoc;
  live: Live;
  /** The served catalogue's title (server info, instructions). */
  title: string;
  logger: Logger;
}): McpServerFactory {
  const { o, doc, live } = p;
  const stdio = o.transport.kind === 'stdio';
  const stdioPrincipal: Principal = {
    id: principalIds.stdio(doc.callers?.stdio?.principal ?? 'local'),
    scopes: doc.callers?.stdio?.scopes ?? DEFAULT_SCOPES.read,
    via: 'stdio',
  };
  if (stdio) p.logger.info({ principal: stdioPrincipal.id }, 'MCP over stdio (2025-11-25 and 2026-07-28)');
  let viewed = false;
  return createServerFactory({
    catalog: { title: p.title },
    pipeline: { call: (input) => live.get().served.pipeline.call(input) },
    view: () => {
      const l = live.get();
      if (!viewed) {
        viewed = true;
        l.onFirstView();
      }
      return l.controller.view();
    },
    inBandElicitation: stdio,
    ...(stdio ? { stdioPrincipal } : {}),
    ...(stdio
      ? { onServer: (server: Server) => live.when((l) => l.changes.stdio(stdioPrincipal)(server)) }
      : {}),
    ...(o.dynamic && p.metaTools ? { dynamic: new p.metaTools(() => live.get().served.search()) } : {}),
    listOutputSchemas: () => live.get().controller.policy().toolsList?.outputSchemas === true,
    // Read per call: a server built before the gateway was ready learns them then.
    get tracing() {
      return live.get().tracing.tracer !== undefined;
    },
    get completions() {
      return live.get().users?.completions;
    },
  });
}

/** Builds the guard pipeline for one catalogue; a spec reload builds a new one with the same parts. */
function pipelineFactory(p: {
  o: ServeOptions;
  doc: PolicyDoc;
  env: NodeJS.ProcessEnv;
  controller: Controller;
  redactor: Redactor;
  rt: Runtime;
  stages: LazyStages;
  logger: Logger;
  tracing: Tracing;
  approvals: Approvals;
  users: OpenedUserCredentials | undefined;
}): (api: LoadedApi) => Pipeline {
  const { o, doc } = p;
  const { observers, state } = p.rt;
  const confirmSecret = doc.confirm?.secret
    ? requireSecret(doc.confirm.secret, p.env, 'confirm.secret')
    : randomBytes(32);
  // One limit stage for every pipeline (an API set has one per API, a reload makes a new one): a
  // caller's budget spans the APIs and survives reloads. Made with the stages (its module with them).
  let limit: ReturnType<StageModules['createLimit']> | undefined;
  // One budget store for every pipeline too: a caller's budgets span the APIs of a set.
  const budgets = { store: state.budgets, onRestricted: (r: Restriction) => observers.restricted(r) };
  const buildFailed = (e: unknown, refused: boolean) => {
    const err = e instanceof Error ? e.message : String(e);
    if (refused) p.logger.error({ err }, 'the guard pipeline could not be built: call refused');
    // Built ahead of any call: nobody was refused, the first call builds it again.
    else
      p.logger.warn(
        { err },
        'the guard pipeline could not be built ahead of a call: the next call builds it',
      );
  };
  return (api) => {
    const build = async () => {
      const { createPipeline, createLimit, agent } = await p.stages.load();
      limit ??= createLimit({
        ...(state.limits ? { redis: state.limits } : {}),
        onLimited: (scope) => observers.limited(scope),
      });
      return createPipeline({
        catalog: api.catalog,
        targets: api.targets,
        control: p.controller,
        confirm: {
          secret: confirmSecret,
          ttlSeconds: doc.confirm?.ttlSeconds ?? 300,
          replay: state.replay,
          approvals: p.approvals,
          policyDigest: () => p.controller.policyDigest(),
        },
        redactor: p.redactor,
        audit: p.rt.audit.sink,
        logger: p.logger,
        failReads: doc.audit?.failReads ?? 'closed',
        limit,
        budgets,
        onCall: (ctx, record) => observers.call(ctx, record),
        send: {
          dispatcher: agent,
          ...(doc.originBreaker !== undefined ? { originBreaker: doc.originBreaker } : {}),
          onBreaker: (name, s) => observers.breaker(name, s),
          ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
          ...(o.maxResponseBytes !== undefined ? { maxResponseBytes: o.maxResponseBytes } : {}),
        },
        ...(o.maxPageSize !== undefined ? { maxPageSize: o.maxPageSize } : {}),
        ...(p.tracing.tracer ? { tracer: p.tracing.tracer } : {}),
        ...(p.users ? { userCredentials: p.users.oauth } : {}),
        // One taint store for every pipeline: a read on one API of a set taints writes on all of them.
        taint: state.taint,
      });
    };
    const pipeline = lazyPipeline(build, buildFailed, p.stages.during);
    // Built once the stages are warm, so that the first call does not build it (~10 ms).
    p.stages.whenWarm(() => pipeline.warm());
    return pipeline;
  };
}

/**
 * The guard stages' modules and what only they use — undici, Ajv, cockatiel, the rate limiter: over 1 MB of code and
 * a fifth of a small spec's start (issue 22) — are loaded once, at the first call or when the gateway
 * warms them, whichever comes first: once the first `tools/list` answer has left, or WARM_AFTER_MS
 * after serving starts. The first `tools/list` does not wait for them, and a first call
 * rarely does: warming also builds the pipelines (`whenWarm`), so a call that comes after it neither
 * loads nor builds anything. One connection pool for the gateway's life, shared by the pipelines a
 * spec reload replaces, is made with them.
 */
export interface LazyStages {
  load(): Promise<StageModules>;
  /**
   * Warms them in the background after WARM_AFTER_MS, once the answers written by then have left (a
   * failure is logged; the first call tries again).
   */
  warmSoon(): void;
  /** Warms them once the first tools/list, being answered now, has left (`afterWritten`). */
  warmAfterList(): void;
  /**
   * Loads the modules now, while this thread has nothing else to do before the first list (a worker
   * parses the spec); the warming or call that comes next takes them. Only the modules: building the
   * pipelines and the code warm-up wait for the list as ever (run now, they delayed a cold Stripe
   * list by 30–80 ms in two variants, bench/first-call.mjs --cold). A first call sent with the list
   * then waits for those alone. A preload that fails is dropped: the next load loads again.
   */
  preload(): void;
  /**
   * Runs `f` once the stages are loaded — by warming or by a call — (at once if they are). After a
   * failed load, asking again starts a new one: a reload's pipelines are not left unwarmed for good.
   */
  whenWarm(f: () => void): void;
  /**
   * Runs a tool call. The code warm-up waits while one is in flight: its slices only help the calls
   * still to come, and each would hold this one up by its few ms (a call sent the moment the list
   * arrives waits for the stages already), for a second at most: under steady load the slices then
   * run between calls. Before the first list and once the warm-up is over, `run` is called as is.
   */
  during<T>(run: () => Promise<T>): Promise<T>;
  /** Closes the connection pool, when one was made. */
  close(): Promise<void>;
}

interface StageModules {
  createPipeline: typeof import('../pipeline/index.js').createPipeline;
  createLimit: typeof import('../pipeline/limit.js').createLimit;
  agent: Dispatcher;
  /**
   * What a first call pays once whatever the tool (server/warm-code.ts), run once the first list is
   * answered and the stages are loaded, one slice per task: a call arriving meanwhile waits for one
   * slice at most. A failed slice is logged at debug and changes nothing (the call does that work).
   */
  warmUp?: ReadonlyArray<() => void>;
}

// Long enough for a client's initialize and first tools/list to be answered first, short next to the
// time a model takes before its first call.
const WARM_AFTER_MS = 250;
// How long the code warm-up waits for a moment with no call in flight (LazyStages.during). Under
// steady load there is none; its slices then run between calls as they come, and the warm-up ends,
// rather than every call being counted for good.
const MAX_PARK_MS = 1000;

const loadStageModules = async (): Promise<StageModules> => {
  const [{ createPipeline }, { createLimit }, { createHttpAgent }, { WARM_SLICES }] = await Promise.all([
    import('../pipeline/index.js'),
    import('../pipeline/limit.js'),
    import('../lib/http-agent.js'),
    import('./warm-code.js'),
  ]);
  return { createPipeline, createLimit, agent: createHttpAgent(), warmUp: WARM_SLICES };
};

/** `loadModules` is for tests (a load that fails); the gateway uses the real imports. */
export function lazyStages(
  logger: Logger,
  loadModules: () => Promise<StageModules> = loadStageModules,
  /** Runs its argument once the answers written so far have left (see startGateway). */
  afterWritten: (f: () => void) => void = (f) => setImmediate(f),
  maxParkMs = MAX_PARK_MS,
): LazyStages {
  let loading: Promise<StageModules> | undefined;
  let preloaded: Promise<StageModules> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let warming = false;
  let failed = false;
  let warm = false;
  let closed = false;
  let listed = false;
  let listAsked = false;
  let codeWarmed = false;
  let waiting: Array<() => void> = [];
  // Tool calls in flight (`during`); the warm-up's next slice waits for none to be (`parked`), for
  // `maxParkMs` at most (then `overdue`).
  let inFlight = 0;
  let parked: (() => void) | undefined;
  let parkTimer: NodeJS.Timeout | undefined;
  let overdue = false;
  let codeDone = false;
  const resume = () => {
    const next = parked;
    parked = undefined;
    if (next) setImmediate(next);
  };
  // The code warm-up (StageModules.warmUp): once, after the first list is answered and the modules
  // are loaded (whichever comes last), one slice per macrotask so that I/O — a call — runs between.
  const warmCode = (m: StageModules) => {
    if (codeWarmed || !listed || closed) return;
    codeWarmed = true;
    // Last, parked like the rest while calls are in flight: the code a start and a first call run
    // is compiled now, what V8's code cache keeps for the next start (src/lib/code-cache.ts; once,
    // and only when this start had none).
    const slices = [...(m.warmUp ?? []), saveCodeCache];
    const next = (i: number) => {
      if (i >= slices.length || closed) {
        codeDone = true;
        clearTimeout(parkTimer);
        return;
      }
      if (inFlight > 0 && !overdue) {
        parked = () => next(i);
        parkTimer ??= setTimeout(() => {
          overdue = true;
          resume();
        }, maxParkMs);
        parkTimer.unref();
        return;
      }
      try {
        slices[i]?.();
      } catch (e) {
        logger.debug({ err: String(e), slice: i }, 'a warm-up step failed: the first call does that work');
      }
      setImmediate(next, i + 1);
    };
    setImmediate(next, 0);
  };
  const callEnded = () => {
    if (--inFlight === 0) resume();
  };
  const loaded = () => {
    // Whoever loaded them (warming or a call), the pipelines waiting are built now.
    warm = true;
    failed = false;
    const run = waiting;
    waiting = [];
    for (const f of run) f();
  };
  const load: LazyStages['load'] = () => {
    if (loading) return loading;
    // What preload began, else a load of its own.
    const modules = preloaded ?? loadModules();
    preloaded = undefined;
    loading = modules.then(
      (m) => {
        if (!closed) loaded();
        // Only schedules; whatever it meets, the stages loaded (a call must not fail for a warm-up).
        try {
          warmCode(m);
        } catch {
          // The first call does that work.
        }
        return m;
      },
      (e: unknown) => {
        // Not kept: the next call (or warming asked again) loads again; a call that failed is refused (lazyPipeline).
        loading = undefined;
        throw e;
      },
    );
    return loading;
  };
  const startWarming = () => {
    clearTimeout(timer);
    if (warming || warm || closed) return;
    warming = true;
    load().then(
      () => {
        warming = false;
      },
      (e: unknown) => {
        warming = false;
        failed = true;
        logger.warn(
          { err: String(e) },
          'the guard stages could not be loaded ahead of a call: the next call loads them',
        );
      },
    );
  };
  return {
    load,
    warmSoon() {
      timer = setTimeout(() => afterWritten(startWarming), WARM_AFTER_MS);
      timer.unref();
    },
    preload() {
      if (loading || preloaded || closed) return;
      const p = loadModules();
      preloaded = p;
      // A failure nobody waited for is dropped: the next load loads again.
      p.catch(() => {
        if (preloaded === p) preloaded = undefined;
      });
    },
    warmAfterList() {
      // A call from now on may meet the warm-up: `during` counts it.
      listAsked = true;
      // Not before the answer has left: the list handler is running now, and its answer is written
      // after it (a big one, over stdio, in pieces as the client reads them).
      afterWritten(() => {
        if (!listed) {
          listed = true;
          // Loaded already (by warmSoon or a call): the code warm-up starts now.
          if (warm) loading?.then(warmCode).catch(() => undefined);
        }
        startWarming();
      });
    },
    whenWarm(f) {
      if (warm) {
        f();
        return;
      }
      waiting.push(f);
      // A new pipeline (a reload) after a failed warming: try again rather than leave it cold.
      if (failed) startWarming();
    },
    during(run) {
      // No warm-up to hold back: none before the first list, none once it is over.
      if (codeDone || closed || !listAsked) return run();
      inFlight++;
      let running: ReturnType<typeof run>;
      try {
        running = run();
      } catch (e) {
        running = Promise.reject(e);
      }
      // Promise.resolve: whatever `run` returns, the call is counted out when it settles.
      return Promise.resolve(running).finally(callEnded);
    },
    async close() {
      closed = true;
      waiting = [];
      clearTimeout(timer);
      clearTimeout(parkTimer);
      const modules = await (loading ?? preloaded)?.catch(() => undefined);
      await modules?.agent.close();
    },
  };
}

/**
 * A pipeline built at its first call, or before it by `warm()` (see LazyStages). Until then there is
 * nothing to close; a call that cannot have it (its modules failed to load) rejects — refused, never
 * answered unguarded — and the next call builds again. Once built, a call costs one test more.
 */
export function lazyPipeline(
  build: () => Promise<Pipeline>,
  /**
   * Told of each failed build (a refused call has no audit record: the audit stage is inside).
   * `refused`: a call was waiting for this build and is refused; false when only warm() asked for it.
   */
  onBuildError: (e: unknown, refused: boolean) => void = () => {},
  /** Each call runs inside it (LazyStages.during: the code warm-up waits while a call is in flight). */
  during: <T>(run: () => Promise<T>) => Promise<T> = (run) => run(),
): Pipeline & { warm(): void } {
  let real: Pipeline | undefined;
  let building: Promise<Pipeline> | undefined;
  let waitingCalls = 0;
  let closed = false;
  const get = (forCall: boolean): Promise<Pipeline> => {
    // A call that reaches a pipeline a reload has closed is refused, not served by a new one nobody closes.
    if (closed) return Promise.reject(new WardenError('INTERNAL', 'the pipeline was closed'));
    if (forCall) waitingCalls++;
    building ??= build().then(
      (p) => {
        real = p;
        waitingCalls = 0;
        return p;
      },
      (e: unknown) => {
        building = undefined;
        const refused = waitingCalls > 0;
        waitingCalls = 0;
        onBuildError(e, refused);
        throw e;
      },
    );
    return building;
  };
  return {
    call: (input) => during(() => (real ? real.call(input) : get(true).then((p) => p.call(input)))),
    get stages(): readonly string[] {
      if (!real) throw new WardenError('INTERNAL', 'the pipeline is built at its first call: no stages yet');
      return real.stages;
    },
    // Built ahead of the first call; a failure is reported (onBuildError) and the first call builds again.
    warm() {
      if (!closed && !building) get(false).catch(() => undefined);
    },
    async close() {
      closed = true;
      const built = await building?.catch(() => undefined);
      await built?.close();
    },
  };
}

/**
 * Tool-definition pins. With shared state, approvals are shared too: approving on one instance
 * approves on all, and the first instance to start pins what it serves (trust on first use, fleet-wide).
 */
async function openPins(
  file: string | undefined,
  state: OpenedState,
  catalog: Catalog,
  logger: Logger,
): Promise<Pins> {
  if (state.redis && file !== undefined)
    logger.warn('--pins is not used with shared state: tool approvals are kept in Redis');
  const pins = new Pins(file !== undefined ? resolvePath(file) : undefined, state.redis?.pins);
  if (state.redis && pins.empty) await pins.approve(catalog.tools);
  return pins;
}

function requireCallersBeyondLoopback(t: ServeOptions['transport'], c: CallersDoc | undefined): void {
  if (t.kind !== 'http' || isLoopback(t.host ?? '127.0.0.1')) return;
  if (c?.apiKeys?.length || c?.apiKeysFile || c?.jwt || c?.anonymous) return;
  throw new WardenError(
    'CONFIG_INVALID',
    'serving HTTP beyond loopback needs callers: API keys, JWT or an explicit `callers.anonymous` with a reason',
  );
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

/**
 * Two MCP clients configured with the same spec each start a gateway: the second writes its own
 * chain beside the first (`audit-2.jsonl`, …) instead of failing. An explicit --audit-file is never
 * moved: a second writer on it is refused (audit/lock.ts).
 */
function unlockedDefault(file: string): string {
  for (let n = 1; n <= MAX_DEFAULT_AUDITS; n++) {
    const candidate = numberedAuditFile(file, n);
    if (!auditLockHolder(candidate)) return candidate;
  }
  throw new WardenError(
    'CONFIG_INVALID',
    `${MAX_DEFAULT_AUDITS} gateways already write audits for this spec in ${dirname(file)}: choose the file with --audit-file <path>`,
  );
}
const MAX_DEFAULT_AUDITS = 16;
