import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Controller } from '../control/controller.js';
import { isWardenError, WardenError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { KillSwitch } from '../state/memory.js';

export interface AdminOptions {
  controller: Controller;
  metrics: Metrics;
  /** Serve `/metrics` without the admin token (for scrapers that cannot send one). */
  metricsPublic: boolean;
  reloadSpec: (actor: string) => Promise<{ tools: number; pending: string[] }>;
  token: string;
  port: number;
  host: string;
  logger: Logger;
}

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

const MODES: Record<string, KillSwitch> = { 'read-write': 'none', 'read-only': 'read-only', off: 'off' };

/**
 * The runtime control API, on its own port and behind its own token (never the MCP port, never an
 * MCP caller's credential). JSON in, JSON out; every change goes through the controller, which
 * audits it. The CLI's `tools`, `mode` and `policy` commands are clients of this API.
 */
export async function startAdmin(o: AdminOptions): Promise<AdminServer> {
  const want = createHash('sha256').update(o.token).digest();
  const c = o.controller;

  const server = createServer(async (req, res) => {
    try {
      if (o.metricsPublic && req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
        res.writeHead(200, { 'content-type': o.metrics.contentType });
        return res.end(await o.metrics.text());
      }
      const given = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '')?.[1];
      const ok = given !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), want);
      if (!ok) {
        req.resume();
        return send(
          res,
          401,
          { error: 'ADMIN_DENIED', message: 'Send Authorization: Bearer <admin token>.' },
          { 'www-authenticate': 'Bearer' },
        );
      }
      // Who did it, for the audit: the operator may name themselves; the token is what authorises.
      const named = req.headers['x-actor'];
      const actor = `admin${typeof named === 'string' && /^[\w.@-]{1,64}$/.test(named) ? `:${named}` : ''}`;
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const route = `${req.method} /${parts.map((p, i) => (i === 1 && (parts[0] === 'tools' || parts[0] === 'explain') ? ':name' : p)).join('/')}`;

      switch (route) {
        case 'GET /metrics':
          res.writeHead(200, { 'content-type': o.metrics.contentType });
          return res.end(await o.metrics.text());
        case 'GET /tools':
          return send(res, 200, { policyVersion: c.view().policyVersion, tools: toolRows(c) });
        case 'POST /tools/:name/approve': {
          const name = parts[1]!;
          const approved = c.approve(name === '*' ? 'all-pending' : [name], actor);
          return send(res, 200, { approved, pending: [...c.pending().keys()] });
        }
        case 'POST /spec/reload':
          return send(res, 200, await o.reloadSpec(actor));
        case 'POST /tools/:name/enable':
        case 'POST /tools/:name/disable':
        case 'POST /tools/:name/reset': {
          const name = parts[1]!;
          const action = parts[2];
          await c.setToggle(
            name,
            action === 'enable' ? 'enabled' : action === 'disable' ? 'disabled' : undefined,
            actor,
          );
          return send(
            res,
            200,
            toolRows(c).find((t) => t.name === name),
          );
        }
        case 'GET /explain/:name': {
          const row = toolRows(c, true).find((t) => t.name === parts[1]);
          return row ? send(res, 200, row) : send(res, 404, { error: 'NOT_FOUND', message: 'no such tool' });
        }
        case 'GET /mode':
          return send(res, 200, { mode: modeName(c), policyMode: c.policy().mode });
        case 'POST /mode': {
          const mode = (body as { mode?: unknown } | undefined)?.mode;
          if (typeof mode !== 'string' || !(mode in MODES))
            return send(res, 400, { error: 'USAGE', message: 'mode is one of read-write, read-only, off' });
          await c.setKill(MODES[mode]!, actor);
          return send(res, 200, { mode: modeName(c), policyMode: c.policy().mode });
        }
        case 'GET /policy/versions':
          return send(res, 200, { current: c.view().policyVersion, versions: c.history() });
        case 'GET /policy/diff': {
          const to = Number(url.searchParams.get('to') ?? c.view().policyVersion);
          const from = Number(url.searchParams.get('from') ?? to - 1);
          return send(res, 200, { from, to, diff: c.diff(from, to) });
        }
        case 'POST /policy/rollback': {
          const version = (body as { version?: unknown } | undefined)?.version;
          if (typeof version !== 'number')
            return send(res, 400, { error: 'USAGE', message: 'give { "version": n }' });
          const v = c.rollback(version, actor);
          return send(res, 200, { version: v.version, sha256: v.sha256, rolledBackTo: version });
        }
        default:
          return send(res, 404, { error: 'NOT_FOUND', message: 'no such admin endpoint' });
      }
    } catch (e) {
      if (isWardenError(e))
        return send(res, e.code === 'USAGE' ? 400 : 422, {
          error: e.code,
          message: e.message,
          details: e.details,
        });
      o.logger.error({ err: (e as Error)?.message }, 'admin request failed');
      if (!res.headersSent) send(res, 500, { error: 'INTERNAL', message: 'internal error' });
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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
    ...(explain ? { steps: e.decision.steps, limits: e.decision.limits } : {}),
  }));
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
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
