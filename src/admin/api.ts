import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AuditFilter, auditFiles, matches, parseRecord, readRecords, tailLines } from '../audit/read.js';
import type { Approvals } from '../control/approvals.js';
import type { ControlEvent, Controller } from '../control/controller.js';
import { isWardenError, WardenError } from '../errors/index.js';
import { listen } from '../lib/listen.js';
import type { ApprovalStatus } from '../model/approval.js';
import type { Connection, UserCredentials } from '../model/connection.js';
import type { KillSwitch } from '../model/state.js';
import type { Alerts } from '../observe/alerts.js';
import { Health } from '../observe/health.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { CallSeries } from '../observe/series.js';
import type { BudgetStore } from '../state/budgets.js';
import {
  CSRF_REFUSAL,
  Dashboard,
  refuse,
  refuseThrottled,
  SECURITY_HEADERS,
  sendJson as send,
} from './dashboard.js';
import { AdminTokens, actorOf, SHARED_ADMIN } from './operators.js';
import { type Refusal, TokenGuard } from './token-guard.js';

/** One API of an API set as operators see it (the server's `ApiStatus`). */
export interface AdminApiStatus {
  name: string;
  state: 'serving' | 'out';
  required: boolean;
  tools: number;
  /** Why it is out: a one-line error. */
  error?: string;
}

export interface AdminOptions {
  controller: Controller;
  metrics: Metrics;
  /** Serve `/metrics` without the admin token (for scrapers that cannot send one). */
  metricsPublic: boolean;
  /** In an API set, `api` names the one to reload (none: each of them). */
  reloadSpec: (actor: string, api?: string) => Promise<{ tools: number; pending: string[] }>;
  /** In an API set, each API and whether it is served (`GET /tools` answers them as `apis`). */
  apis?: () => ReadonlyArray<AdminApiStatus>;
  token: string;
  /** Named operators (`admin.operators`), each authenticated by its own token. */
  operators?: ReadonlyArray<{ id: string; token: string }>;
  /** Out-of-band approvals: the `/approvals` routes (absent: those routes answer 404). */
  approvals?: ApprovalDesk;
  /** Per-user OAuth connections: the `/connections` routes (absent: those routes answer 404). */
  connections?: ConnectionDesk;
  /** Blast-radius budgets: the `/restricted` routes (absent: those routes answer 404). */
  budgets?: BudgetDesk;
  /** Redacts free text an operator types (a decision's reason) before it is stored, audited or shown. */
  redact?: (s: string) => string;
  port: number;
  host: string;
  logger: Logger;
  /** For the dashboard's Audit, Metrics and Alerts pages. */
  auditFile?: string;
  series?: CallSeries;
  alerts?: Alerts;
  /** Audits admin actions that are not controller changes (logins, alert acknowledgements). */
  onControl: (e: ControlEvent) => void;
  /** Each refused admin token (metrics and alerts: `Observers.adminAuthFailure`). */
  onAuthFailure: (code: Refusal, source: string) => void;
  /** Where the built dashboard lives (default dist/ui). */
  assetsDir?: string;
  /** Answers `/healthz` and `/readyz` (default: live, and ready with nothing to check). */
  health?: Health;
}

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

const MODES: Record<string, KillSwitch> = { 'read-write': 'none', 'read-only': 'read-only', off: 'off' };

/** What the admin routes use of the per-user OAuth service (src/upstream/user-oauth.ts). */
export type ConnectionDesk = Pick<UserCredentials, 'list' | 'revoke'>;

/** What the `/restricted` routes use of the budget store (src/state/budgets.ts). */
export type BudgetDesk = Pick<BudgetStore, 'list' | 'lift'>;

/** What the approvals routes use of the approvals service (src/control/approvals.ts). */
export type ApprovalDesk = Pick<Approvals, 'list' | 'get' | 'decide'>;

/** One authorised admin request, as the routes see it. */
interface AdminRequest {
  res: ServerResponse;
  url: URL;
  /** Path segments, percent-decoded. */
  parts: string[];
  /** The JSON body of a POST (undefined when empty or not JSON). */
  body: unknown;
  /** Who is acting, for the audit. */
  actor: string;
  /** Who the token authenticated (`admin` or an operator id): the identity approvals are decided by. */
  operator: string;
}
type Route = (r: AdminRequest) => unknown;

/** Segments after these are names (`/tools/:name/…`), so a route is found by its shape. */
const NAMED = new Set([
  'tools',
  'explain',
  'alerts',
  'policy-version',
  'approvals',
  'connections',
  'restricted',
]);

/**
 * The runtime control API and the dashboard, on their own port and behind their own token (never the
 * MCP port, never an MCP caller's credential). JSON in, JSON out; every change goes through the
 * controller, which audits it. The CLI's `tools`, `mode` and `policy` commands are clients of this
 * API, and so is the dashboard (with a session cookie and a CSRF token in place of the token).
 */
export async function startAdmin(o: AdminOptions): Promise<AdminServer> {
  const tokens = new AdminTokens([{ id: SHARED_ADMIN, token: o.token }, ...(o.operators ?? [])]);
  const guard = new TokenGuard({
    onRefused: o.onAuthFailure,
    onTally: (source, n) =>
      o.onControl({
        actor: 'unauthenticated',
        action: 'admin.token-refused',
        target: source,
        detail: `${n.wrong} wrong and ${n.throttled} throttled admin token(s) from ${source}`,
      }),
  });
  const dashboard = new Dashboard({
    tokens,
    guard,
    onEvent: (action, actor) => o.onControl({ action, actor }),
    ...(o.assetsDir ? { assetsDir: o.assetsDir } : {}),
  });
  const routes = adminRoutes(o);
  const health = o.health ?? new Health();
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      // Before the token: load balancers and kubelets hold none, and the answer says only up or down.
      if (await health.answer(req, res, url.pathname, SECURITY_HEADERS)) return;
      if (o.metricsPublic && req.method === 'GET' && url.pathname === '/metrics')
        return await sendMetrics(o, res);
      if (await dashboard.handle(req, res, url.pathname)) return;
      const who = await authorise(req, res, tokens, dashboard, guard);
      if (who === undefined) return;
      const parts = url.pathname.split('/').filter(Boolean).map(decodeSegment);
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const shape = parts.map((p, i) => (i === 1 && NAMED.has(parts[0]!) ? ':name' : p)).join('/');
      const key = `${req.method} /${shape}`;
      const route = Object.hasOwn(routes, key) ? routes[key] : undefined;
      if (!route) return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no such admin endpoint' });
      await route({ res, url, parts, body, ...who });
    } catch (e) {
      // A wrong request is 400 and a change that cannot be applied 422: the table says which.
      if (isWardenError(e)) return refuse(res, e);
      o.logger.error({ err: (e as Error)?.message }, 'admin request failed');
      if (!res.headersSent) refuse(res, { code: 'INTERNAL', message: 'internal error' });
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const listening = await listen(server, o.port, o.host, { port: '--admin-port', host: '--admin-host' });
  return {
    url: listening.origin,
    close: async () => {
      await listening.close();
      guard.close();
    },
  };
}

/**
 * The bearer token, or a dashboard session (then a change also needs the session's CSRF header): who
 * is acting, or undefined once the request has been refused. A request that sends a token is judged
 * by it alone: from an address throttled for wrong tokens it is refused (429), right or not.
 */
async function authorise(
  req: IncomingMessage,
  res: ServerResponse,
  tokens: AdminTokens,
  dashboard: Dashboard,
  guard: TokenGuard,
): Promise<{ actor: string; operator: string } | undefined> {
  const header = req.headers.authorization;
  const session = header === undefined ? dashboard.session(req) : undefined;
  let operator = session?.operator;
  if (header !== undefined) {
    const source = req.socket.remoteAddress ?? 'unknown';
    const wait = await guard.attempt(source);
    if (wait !== undefined) {
      req.resume();
      guard.refused('ADMIN_THROTTLED', source, 'bearer');
      refuseThrottled(res, wait);
      return undefined;
    }
    const given = /^Bearer ([\x21-\x7e]+)$/.exec(header)?.[1];
    operator = given === undefined ? undefined : tokens.identify(given);
    if (operator === undefined) {
      guard.refused('ADMIN_DENIED', source, 'bearer');
      return deny(req, res);
    }
    await guard.accepted(source);
  } else if (!session) return deny(req, res);
  // A cookie rides along on any request the browser makes; only our own page can add this header.
  if (session && req.method !== 'GET' && req.method !== 'HEAD' && !dashboard.mayChange(req, session)) {
    req.resume();
    refuse(res, CSRF_REFUSAL);
    return undefined;
  }
  // The token says who it is; only the shared one may add a name (`x-actor`), for the audit alone.
  if (session) return { actor: session.actor, operator: session.operator };
  return { actor: actorOf(operator!, req.headers['x-actor']), operator: operator! };
}

function deny(req: IncomingMessage, res: ServerResponse): undefined {
  req.resume();
  refuse(
    res,
    { code: 'ADMIN_DENIED', message: 'Send Authorization: Bearer <admin token>.' },
    { 'www-authenticate': 'Bearer' },
  );
  return undefined;
}

async function sendMetrics(o: AdminOptions, res: ServerResponse): Promise<void> {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': o.metrics.contentType });
  res.end(await o.metrics.text());
}

/** Every admin endpoint, by method and path shape. */
function adminRoutes(o: AdminOptions): Record<string, Route> {
  const c = o.controller;
  const mode = () => ({ mode: modeName(c), policyMode: c.policy().mode });
  const toggle =
    (value: 'enabled' | 'disabled' | undefined): Route =>
    async ({ res, parts, actor }) => {
      await c.setToggle(parts[1]!, value, actor);
      send(
        res,
        toolRows(c).find((t) => t.name === parts[1]),
      );
    };
  return {
    'GET /metrics': ({ res }) => sendMetrics(o, res),
    'GET /tools': ({ res }) => {
      // An API set also names its APIs, so one that is out (its spec failed to load) shows too.
      const apis = o.apis?.() ?? [];
      send(res, {
        policyVersion: c.view().policyVersion,
        tools: toolRows(c),
        ...(apis.length ? { apis } : {}),
      });
    },
    'POST /tools/:name/approve': async ({ res, parts, actor }) => {
      const approved = await c.approve(parts[1] === '*' ? 'all-pending' : [parts[1]!], actor);
      send(res, { approved, pending: [...c.pending().keys()] });
    },
    'POST /tools/:name/enable': toggle('enabled'),
    'POST /tools/:name/disable': toggle('disabled'),
    'POST /tools/:name/reset': toggle(undefined),
    'POST /spec/reload': async ({ res, body, url, actor }) => {
      // `{"api": "crm"}` or `?api=crm`: in an API set, reload that API only.
      const api = (body as { api?: unknown } | undefined)?.api ?? url.searchParams.get('api') ?? undefined;
      if (api !== undefined && typeof api !== 'string')
        return refuse(res, { code: 'USAGE', message: 'api is the name of an API of the set' });
      send(res, await o.reloadSpec(actor, api));
    },
    'GET /explain/:name': ({ res, parts }) => {
      const row = toolRows(c, true).find((t) => t.name === parts[1]);
      return row ? send(res, row) : refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no such tool' });
    },
    'GET /mode': ({ res }) => send(res, mode()),
    'POST /mode': async ({ res, body, actor }) => {
      const m = (body as { mode?: unknown } | undefined)?.mode;
      if (typeof m !== 'string' || !Object.hasOwn(MODES, m))
        return refuse(res, { code: 'USAGE', message: 'mode is one of read-write, read-only, off' });
      await c.setKill(MODES[m]!, actor);
      send(res, mode());
    },
    'GET /policy/versions': ({ res }) =>
      send(res, { current: c.view().policyVersion, versions: c.history() }),
    'GET /policy/diff': ({ res, url }) => {
      const to = Number(url.searchParams.get('to') ?? c.view().policyVersion);
      const from = Number(url.searchParams.get('from') ?? to - 1);
      send(res, { from, to, diff: c.diff(from, to) });
    },
    'POST /policy/rollback': ({ res, body, actor }) => {
      const version = (body as { version?: unknown } | undefined)?.version;
      if (typeof version !== 'number')
        return refuse(res, { code: 'USAGE', message: 'give { "version": n }' });
      const v = c.rollback(version, actor);
      send(res, { version: v.version, sha256: v.sha256, rolledBackTo: version });
    },
    'GET /policy-version/:name': ({ res, parts }) => send(res, c.version(Number(parts[1]))),
    'GET /audit': async ({ res, url }) => {
      if (!o.auditFile) return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no audit file' });
      send(res, await auditPage(o.auditFile, url.searchParams));
    },
    'GET /series': ({ res, url }) => {
      const minutes = Number(url.searchParams.get('minutes') ?? 15);
      if (!o.series) return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no series' });
      send(res, o.series.snapshot(Number.isFinite(minutes) ? minutes : 15));
    },
    ...approvalRoutes(o.approvals, o.redact ?? ((s) => s)),
    ...connectionRoutes(o.connections, o.onControl),
    ...restrictedRoutes(o.budgets, o.onControl, o.redact ?? ((s) => s)),
    'GET /alerts': ({ res }) => send(res, { alerts: o.alerts?.list() ?? [] }),
    'POST /alerts/:name/ack': ({ res, parts, actor }) => {
      const a = o.alerts?.acknowledge(Number(parts[1]), actor);
      if (!a) return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no such alert' });
      o.onControl({ actor, action: 'alert.ack', target: `${a.rule}:${a.subject}`, detail: `alert ${a.id}` });
      send(res, a);
    },
  };
}

const STATUSES = new Set<ApprovalStatus>(['pending', 'approved', 'denied', 'expired', 'executed']);

/**
 * Out-of-band approvals: list, read, approve, deny. The decider is the identity the token or session
 * authenticated (never a claimed name); the service refuses the requester and, under a two-person
 * rule, the same operator twice. A decision needs a reason, for the audit and the other operators.
 */
function approvalRoutes(
  desk: ApprovalDesk | undefined,
  redact: (s: string) => string,
): Record<string, Route> {
  const off = (res: ServerResponse) =>
    refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'approvals are not served by this gateway' });
  const decide =
    (verdict: 'approve' | 'deny'): Route =>
    async ({ res, parts, body, operator }) => {
      if (!desk) return off(res);
      const reason = (body as { reason?: unknown } | undefined)?.reason;
      const text = typeof reason === 'string' ? reason.trim() : '';
      if (text.length < 3 || text.length > 500)
        throw new WardenError('USAGE', `give { "reason": "…" }: why you ${verdict} it, 3 to 500 characters`);
      // A pasted token or card number must not live on in the store, the audit and every page.
      send(res, await desk.decide(parts[1]!, { operator, verdict, reason: redact(text) }));
    };
  return {
    'GET /approvals': async ({ res, url }) => {
      if (!desk) return off(res);
      const status = url.searchParams.get('status') ?? undefined;
      if (status !== undefined && !STATUSES.has(status as ApprovalStatus))
        throw new WardenError('USAGE', `status is one of ${[...STATUSES].join(', ')}`);
      const limit = Number(url.searchParams.get('limit') ?? 200);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new WardenError('USAGE', 'limit is a whole number from 1 to 1000');
      const filter = { limit, ...(status ? { status: status as ApprovalStatus } : {}) };
      send(res, { approvals: await desk.list(filter) });
    },
    'GET /approvals/:name': async ({ res, parts }) => {
      if (!desk) return off(res);
      const r = await desk.get(parts[1]!);
      if (!r)
        throw new WardenError(
          'APPROVAL_NOT_FOUND',
          `No approval request ${JSON.stringify(parts[1]!.slice(0, 80))}.`,
        );
      send(res, r);
    },
    'POST /approvals/:name/approve': decide('approve'),
    'POST /approvals/:name/deny': decide('deny'),
  };
}

/**
 * A connection's id in the admin API: its (principal, upstream) key, reversibly encoded, so a
 * principal's `#`, `:` and `/` never need escaping in a path. Not a secret: it names, it does not grant.
 */
export function connectionId(c: Pick<Connection, 'principal' | 'upstream'>): string {
  return Buffer.from(JSON.stringify([c.principal, c.upstream])).toString('base64url');
}

function parseConnectionId(id: string): { principal: string; upstream: string } {
  try {
    const v = JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string' && x.length > 0))
      return { principal: v[0] as string, upstream: v[1] as string };
  } catch {
    /* below */
  }
  throw new WardenError('USAGE', 'not a connection id (take it from GET /connections or `connections list`)');
}

/**
 * People's connected upstream accounts (per-user OAuth): who, which upstream, which scopes, last
 * used; never a token. Revoking deletes the stored tokens, so that person's next call asks them to
 * connect again; it is audited with the operator who did it.
 */
function connectionRoutes(
  desk: ConnectionDesk | undefined,
  onControl: (e: ControlEvent) => void,
): Record<string, Route> {
  const off = (res: ServerResponse) =>
    refuse(res, {
      code: 'ADMIN_NOT_FOUND',
      message: 'per-user OAuth connections are not served by this gateway',
    });
  return {
    'GET /connections': async ({ res, url }) => {
      if (!desk) return off(res);
      const principal = url.searchParams.get('principal') ?? undefined;
      const upstream = url.searchParams.get('upstream') ?? undefined;
      const list = await desk.list({
        ...(principal ? { principal } : {}),
        ...(upstream ? { upstream } : {}),
      });
      send(res, {
        connections: list.map((c) => ({
          id: connectionId(c),
          principal: c.principal,
          upstream: c.upstream,
          issuer: c.issuer,
          scopes: c.scopes,
          createdAt: new Date(c.createdAt).toISOString(),
          ...(c.lastUsedAt !== undefined ? { lastUsedAt: new Date(c.lastUsedAt).toISOString() } : {}),
          ...(c.expiresAt !== undefined ? { expiresAt: new Date(c.expiresAt).toISOString() } : {}),
          // The MCP clients the person approved (`''`: a caller without a client name).
          ...(c.clients !== undefined ? { clients: c.clients } : {}),
        })),
      });
    },
    'DELETE /connections/:name': async ({ res, parts, actor }) => {
      if (!desk) return off(res);
      const { principal, upstream } = parseConnectionId(parts[1]!);
      const revoked = await desk.revoke(principal, upstream);
      if (revoked === 0)
        return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no such connection (already revoked?)' });
      onControl({ actor, action: 'connection.revoke', target: `${principal} ${upstream}` });
      send(res, { revoked, principal, upstream });
    },
  };
}

/**
 * Callers a budget switched to read-only (docs/budgets.md): who, which budget, its numbers, since
 * when. Lifting one (an operator, audited as `budget.lift` with who did it and an optional reason)
 * lets its writes through again and empties the window of the budget it hit, on every instance.
 */
function restrictedRoutes(
  desk: BudgetDesk | undefined,
  onControl: (e: ControlEvent) => void,
  redact: (s: string) => string,
): Record<string, Route> {
  const off = (res: ServerResponse) =>
    refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'budgets are not served by this gateway' });
  return {
    'GET /restricted': async ({ res }) => {
      if (!desk) return off(res);
      const list = await desk.list();
      send(res, { restricted: list.map((r) => ({ ...r, since: new Date(r.since).toISOString() })) });
    },
    'POST /restricted/:name/lift': async ({ res, parts, body, actor }) => {
      if (!desk) return off(res);
      const reason = (body as { reason?: unknown } | undefined)?.reason;
      if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500))
        throw new WardenError('USAGE', 'reason is text of at most 500 characters');
      const r = await desk.lift(parts[1]!);
      if (!r) return refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'this caller is not restricted' });
      onControl({
        actor,
        action: 'budget.lift',
        target: r.principal,
        detail: `read-only since ${new Date(r.since).toISOString()} (budget ${r.budget}: ${r.used} of ${r.limit} ${r.unit} per ${r.perSeconds} s)${typeof reason === 'string' && reason.trim() ? `; ${redact(reason.trim())}` : ''}`,
      });
      send(res, { lifted: { ...r, since: new Date(r.since).toISOString() } });
    },
  };
}

/** A path segment, decoded; bad percent-encoding is the caller's mistake (400), not a crash (500). */
function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new WardenError('USAGE', 'the request path is not valid percent-encoding');
  }
}

function modeName(c: Controller): string {
  const kill = c.runtime().kill;
  return kill === 'none' ? c.policy().mode : kill;
}

/** One row per tool: what an operator needs to see, and (with `explain`) why. */
export function toolRows(c: Controller, explain = false) {
  const runtime = c.runtime();
  return c.view().entries.map((e) => ({
    name: e.decision.tool.name,
    // In an API set, the API the tool belongs to (the dashboard groups by it).
    ...(e.decision.tool.api !== undefined ? { api: e.decision.tool.api } : {}),
    method: e.decision.tool.source.method.toUpperCase(),
    path: e.decision.tool.source.path,
    kind: e.decision.kind,
    risk: e.decision.tool.risk.classes,
    exposed: e.exposed,
    hiddenBecause: e.blockers.map((b) => b.reason),
    scopes: e.decision.scopes,
    confirm: e.decision.confirm,
    toggle: runtime.toggles.get(e.decision.tool.name) ?? 'policy',
    approved: !c.pending().has(e.decision.tool.name),
    ...(c.pending().has(e.decision.tool.name) ? { change: c.changeOf(e.decision.tool.name) ?? null } : {}),
    dataClasses: [...new Set(e.decision.tool.dataClasses.map((d) => d.class))],
    ...(explain ? { steps: e.decision.steps, limits: e.decision.limits } : {}),
  }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 64 * 1024) throw new WardenError('USAGE', 'the request body is larger than 64 KiB');
    chunks.push(c);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

const DECISIONS = new Set(['allowed', 'denied']);

/**
 * A page of audit records, newest first. With `after` (a seq), only records appended since, read from
 * the file's last MiB: the live tail polls this and never rescans the file. Without it, a streamed
 * scan of every segment keeping the last `limit` matches. Checkpoints are left out unless asked for.
 */
export async function auditPage(
  file: string,
  q: URLSearchParams,
): Promise<{ records: Record<string, unknown>[]; lastSeq: number }> {
  const f: AuditFilter = {};
  for (const k of ['tool', 'principal', 'kind', 'approval'] as const) {
    const v = q.get(k);
    if (v) f[k] = v;
  }
  const decision = q.get('decision');
  if (decision) {
    if (!DECISIONS.has(decision)) throw new WardenError('USAGE', 'decision is allowed or denied');
    f.decision = decision as 'allowed' | 'denied';
  }
  for (const k of ['since', 'until'] as const) {
    const v = q.get(k);
    if (!v) continue;
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new WardenError('USAGE', `${k} is not a date: ${v.slice(0, 40)}`);
    f[k] = t;
  }
  const limit = Number(q.get('limit') ?? 200);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new WardenError('USAGE', 'limit is a whole number from 1 to 1000');
  const keep = (r: Record<string, unknown>) => f.kind !== undefined || r.kind !== 'checkpoint';
  const out: Record<string, unknown>[] = [];
  let lastSeq = 0;
  const after = q.get('after');
  if (after !== null) {
    const from = Number(after);
    if (!Number.isInteger(from) || from < 0) throw new WardenError('USAGE', 'after is a record seq');
    for (const line of tailLines(file, 1024 * 1024)) {
      const r = parseRecord(line);
      if (!r || typeof r.seq !== 'number') continue;
      lastSeq = Math.max(lastSeq, r.seq);
      if (r.seq > from && keep(r) && matches(r, f)) out.push(r);
    }
    return { records: out.slice(-limit).reverse(), lastSeq: Math.max(lastSeq, from) };
  }
  for await (const r of readRecords(auditFiles(file))) {
    if (typeof r.seq === 'number') lastSeq = Math.max(lastSeq, r.seq);
    if (!keep(r) || !matches(r, f)) continue;
    out.push(r);
    if (out.length > limit) out.shift();
  }
  return { records: out.reverse(), lastSeq };
}
