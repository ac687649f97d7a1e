import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HttpError, replyHttpError } from '../errors/index.js';
import { type AdminTokens, actorOf } from './operators.js';
import type { TokenGuard } from './token-guard.js';

/**
 * The dashboard's half of the admin port: the bundled single-page app, and browser sessions.
 *
 * A browser never holds the admin token. The login form posts it once; the answer is a random session
 * id in an HttpOnly, SameSite=Strict, Secure cookie (script cannot read it, other sites cannot send
 * it). Every state-changing request made with that cookie must also carry the session's CSRF token in
 * a header (which a cross-site form cannot set) and, when the browser sends one, a same-origin Origin.
 * Sessions live in this process: they end at restart, and each instance has its own.
 */

export const SESSION_COOKIE = 'mcp_warden_session';
export const CSRF_HEADER = 'x-csrf-token';

/** Strict: only this origin's script, style and fetches; no inline code; never framed. */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers on every admin-port answer, JSON and pages alike. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export interface Session {
  id: string;
  csrf: string;
  /** Who the token authenticated: `admin` (the shared token) or an operator id. Decides approvals. */
  operator: string;
  /** For the audit: the operator, or `admin:<name typed at login>`. */
  actor: string;
  created: number;
  seen: number;
}

export interface DashboardOptions {
  /** The shared admin token and the operators' tokens, each with its identity. */
  tokens: AdminTokens;
  /** The throttle on wrong tokens, shared with the API's bearer header. */
  guard: TokenGuard;
  /** Audit hook for logins, refusals and logouts. */
  onEvent: (action: 'admin.login' | 'admin.login-refused' | 'admin.logout', actor: string) => void;
  /** Idle and absolute session lifetimes. */
  idleSeconds?: number;
  maxSeconds?: number;
  /** Where the built app lives (default: dist/ui of this package). */
  assetsDir?: string;
  now?: () => number;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};
const MAX_SESSIONS = 1000;

/** dist/ui, from src/server (tests) and dist/server (the built CLI) alike. */
export function defaultAssetsDir(): string {
  return fileURLToPath(new URL('../../dist/ui/', import.meta.url));
}

export class Dashboard {
  private readonly sessions = new Map<string, Session>();
  private readonly assets = new Map<string, { body: Buffer; type: string }>();
  private readonly idleMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;

  constructor(private readonly o: DashboardOptions) {
    this.idleMs = (o.idleSeconds ?? 30 * 60) * 1000;
    this.maxMs = (o.maxSeconds ?? 8 * 3600) * 1000;
    this.now = o.now ?? Date.now;
    // Loaded once into memory, by name: a request can only ever name one of these files.
    const dir = o.assetsDir ?? defaultAssetsDir();
    if (existsSync(dir))
      for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
        const type = TYPES[extname(name)];
        if (type && name !== 'index.html')
          this.assets.set(name.split('\\').join('/'), { body: readFileSync(join(dir, name)), type });
        if (name === 'index.html') this.assets.set('', { body: readFileSync(join(dir, name)), type: type! });
      }
  }

  /** Serves `/`, `/ui`, `/ui/…` (the app) and the session endpoints; false for anything else. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    // A browser typing the port or `/ui` lands on the app (its login page), not on a 401 in JSON.
    if ((path === '/' || path === '/ui') && (req.method === 'GET' || req.method === 'HEAD')) {
      req.resume();
      res.writeHead(302, { ...SECURITY_HEADERS, location: '/ui/' });
      res.end();
      return true;
    }
    if (path === '/ui/login' && req.method === 'POST') {
      await this.login(req, res);
      return true;
    }
    if (path === '/ui/logout' && req.method === 'POST') {
      this.logout(req, res);
      return true;
    }
    if (path === '/ui/session' && req.method === 'GET') {
      const s = this.session(req);
      if (!s) refuse(res, { code: 'ADMIN_DENIED', message: 'Log in.' });
      else
        sendJson(res, {
          actor: s.actor,
          operator: s.operator,
          csrf: s.csrf,
          expiresAt: new Date(this.expiry(s)).toISOString(),
        });
      return true;
    }
    if (!path.startsWith('/ui/') || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const name = path.slice('/ui/'.length);
    // Anything that is not a bundled file is a route of the app (#-less deep links): serve the shell.
    const file = this.assets.get(name) ?? (name.includes('.') ? undefined : this.assets.get(''));
    if (!file) {
      if (this.assets.size === 0)
        refuse(res, { code: 'ADMIN_NOT_BUILT', message: 'The dashboard is not built: run `npm run build`.' });
      else refuse(res, { code: 'ADMIN_NOT_FOUND', message: 'no such file' });
      return true;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'content-length': String(file.body.length),
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }

  /** The session a request's cookie names, if it is live (and marks it used). */
  session(req: IncomingMessage): Session | undefined {
    const id = cookie(req.headers.cookie, SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const now = this.now();
    if (now > this.expiry(s)) {
      this.sessions.delete(id);
      return undefined;
    }
    s.seen = now;
    return s;
  }

  /**
   * Whether a cookie-authenticated request may change state: the CSRF header must match the session,
   * and an Origin, when present, must be this very host (a browser always sends one on POST).
   */
  mayChange(req: IncomingMessage, s: Session): boolean {
    const given = req.headers[CSRF_HEADER];
    return typeof given === 'string' && same(given, s.csrf) && sameOrigin(req);
  }

  private expiry(s: Session): number {
    return Math.min(s.seen + this.idleMs, s.created + this.maxMs);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const addr = req.socket.remoteAddress ?? 'unknown';
    // JSON only: a cross-site form cannot send it without a CORS preflight, which this port never grants.
    if (!sameOrigin(req) || !/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      req.resume();
      return refuse(res, { code: 'ADMIN_ORIGIN', message: 'Log in from the dashboard page.' });
    }
    // Five wrong tokens a minute per address, then 429: a token cannot be guessed through the form.
    const wait = await this.o.guard.attempt(addr);
    if (wait !== undefined) {
      req.resume();
      this.o.guard.refused('ADMIN_THROTTLED', addr, 'login');
      return refuseThrottled(res, wait);
    }
    const body = await readSmallJson(req);
    const token = typeof body?.token === 'string' ? body.token : '';
    const operator = token ? this.o.tokens.identify(token) : undefined;
    if (operator === undefined) {
      this.o.guard.refused('ADMIN_DENIED', addr, 'login');
      // The name typed is all there is to record; it proves nothing.
      this.o.onEvent('admin.login-refused', actorOf('admin', body?.name));
      return refuse(res, {
        code: 'ADMIN_DENIED',
        message: 'That is not the admin token or an operator token.',
      });
    }
    // An operator token names its holder; the name field only annotates the shared token.
    const actor = actorOf(operator, body?.name);
    await this.o.guard.accepted(addr);
    this.prune();
    const now = this.now();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      operator,
      actor,
      created: now,
      seen: now,
    };
    this.sessions.set(s.id, s);
    this.o.onEvent('admin.login', actor);
    sendJson(
      res,
      { actor, operator, csrf: s.csrf, expiresAt: new Date(this.expiry(s)).toISOString() },
      { 'set-cookie': setCookie(s.id, this.maxMs / 1000) },
    );
  }

  private logout(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const s = this.session(req);
    if (s && !this.mayChange(req, s)) {
      refuse(res, CSRF_REFUSAL);
      return;
    }
    if (s) {
      this.sessions.delete(s.id);
      this.o.onEvent('admin.logout', s.actor);
    }
    sendJson(res, { ok: true }, { 'set-cookie': setCookie('', 0) });
  }

  private prune(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (now > this.expiry(s)) this.sessions.delete(id);
    // Oldest first (insertion order): a flood of logins cannot grow memory without bound.
    while (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
  }
}

function setCookie(value: string, maxAgeSeconds: number): string {
  // Secure: browsers accept it on http://localhost and 127.0.0.1; elsewhere the admin port needs TLS.
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${Math.floor(maxAgeSeconds)}`;
}

export function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** An absent Origin is a non-browser client (curl, the CLI); a present one must name this host. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function same(a: string | Buffer, b: string | Buffer): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** Headers on every JSON answer of the admin port: its security headers, and never cached. */
const JSON_HEADERS: Readonly<Record<string, string>> = {
  ...SECURITY_HEADERS,
  'content-type': 'application/json',
  'cache-control': 'no-store',
};

/** A successful JSON answer (the API and the dashboard alike). */
export function sendJson(res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { ...JSON_HEADERS, ...headers });
  res.end(JSON.stringify(body));
}

/** A refusal: `{ error, message }` with the status the error table gives its code. */
export function refuse(res: ServerResponse, e: HttpError, headers: Record<string, string> = {}): void {
  replyHttpError(res, 'admin', e, { ...JSON_HEADERS, ...headers });
}

/** Too many wrong tokens from this address: every token is refused until `wait` seconds have passed. */
export function refuseThrottled(res: ServerResponse, wait: number): void {
  refuse(
    res,
    { code: 'ADMIN_THROTTLED', message: `Too many wrong tokens. Try again in ${wait} s.` },
    { 'retry-after': String(wait) },
  );
}

/** A cookie-authenticated change without the session's CSRF token (or from another origin). */
export const CSRF_REFUSAL: HttpError = { code: 'ADMIN_CSRF', message: 'Missing or wrong CSRF token.' };

async function readSmallJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even when too large, so the answer is not written into a half-read request.
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size <= 4096) chunks.push(c);
  }
  if (size > 4096) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
