import type { IncomingMessage } from 'node:http';
import {
  type BindingCookie,
  bindingCookieName,
  type CallbackOutcome,
  CONNECT_PATH,
  type ConnectView,
  callbackPage,
  type UserOAuth,
} from '../upstream/user-oauth.js';

/**
 * Per-user OAuth's pages for the person's browser, served before authentication (the browser carries
 * no MCP credential):
 * - GET /oauth/connect?flow=… — the gateway's own consent page: whose flow this is (the principal,
 *   the MCP client, the upstream and scopes, when the link expires), a warning, Approve and Cancel.
 * - POST /oauth/connect — the answer: same-origin only, with the flow's CSRF token; an approval sets
 *   the binding cookie and sends the browser on to the authorization server (303).
 * - GET /oauth/callback — the return from the authorization server: stores only in the browser that
 *   approved (src/upstream/user-oauth.ts checks the cookie against the state).
 * Every answer is no-store with no referrer; the HTML page may not be framed, load anything, or post
 * anywhere but here and the authorization server.
 */

/** One answer, written as is by the HTTP transport (src/server/http.ts, the `callback` step). */
export interface OAuthPage {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
}

export type OAuthPages = (req: IncomingMessage) => Promise<OAuthPage>;

/** The flow service the pages drive. */
export type ConnectFlows = Pick<UserOAuth, 'connectView' | 'consent' | 'callback'>;

const CALLBACK_PATH = '/oauth/callback';
/** A form of two short fields: anything larger is not from the page. */
const MAX_FORM_BYTES = 4096;

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

export function oauthPages(flows: ConnectFlows, o: { now?: () => number } = {}): OAuthPages {
  const now = o.now ?? Date.now;
  return async (req) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'gateway'}`);
    if (url.pathname === CALLBACK_PATH) {
      if (req.method !== 'GET') return text(405, 'Method not allowed.', { allow: 'GET' });
      // The URL as received (Host header and path): the flow checks it against its redirect URI.
      let outcome: CallbackOutcome;
      try {
        outcome = await flows.callback(url, req.headers.cookie);
      } catch {
        // The flow was taken, then the authorization server's metadata or the vault failed: a page,
        // not the transport's JSON-RPC error, and the binding (spent with the flow) goes.
        return text(
          503,
          'The connection could not be completed: the gateway could not reach the authorization server or its token vault. Ask the agent again for a new link.',
          { 'set-cookie': CLEAR_BINDING },
        );
      }
      const page = callbackPage(outcome);
      // The binding goes once it has served a flow; a visit that brought no flow (a cross-site link
      // to this URL) leaves it, so it cannot break a connection in progress.
      if (!outcome.ok && outcome.noFlow) return text(page.status, page.body);
      return text(page.status, page.body, { 'set-cookie': CLEAR_BINDING });
    }
    if (url.pathname !== CONNECT_PATH) return text(404, 'Not found.');
    if (req.method === 'GET') {
      let view: ConnectView | undefined;
      try {
        view = await flows.connectView(url.searchParams.get('flow') ?? '');
      } catch {
        // Redis or the authorization server's metadata out of reach: fail closed, say so.
        return text(
          503,
          'The gateway cannot reach its shared state or the authorization server; retry in a moment.',
        );
      }
      if (!view)
        return text(400, 'This link is unknown, already used or expired. Ask the agent again for a new one.');
      return html(200, connectPage(view, url.searchParams.get('flow')!, now()), view);
    }
    if (req.method !== 'POST') return text(405, 'Method not allowed.', { allow: 'GET, POST' });
    const form = await readForm(req);
    if (!form) return text(413, 'The form is larger than the connect page ever sends.');
    const origin = header(req, 'origin');
    const fetchSite = header(req, 'sec-fetch-site');
    const action = form.get('action');
    let outcome: Awaited<ReturnType<ConnectFlows['consent']>>;
    try {
      outcome = await flows.consent({
        flow: form.get('flow') ?? '',
        csrf: form.get('csrf') ?? '',
        approve: action === 'approve',
        ...(origin !== undefined ? { origin } : {}),
        ...(fetchSite !== undefined ? { fetchSite } : {}),
      });
    } catch {
      // Shared state or the authorization server's metadata out of reach: fail closed, say so.
      return text(
        503,
        'The gateway cannot reach its shared state or the authorization server; retry in a moment.',
      );
    }
    if (!outcome.ok) return text(outcome.status, outcome.reason);
    if (!outcome.approved) return text(200, 'Cancelled: nothing was connected. You can close this page.');
    return {
      status: 303,
      headers: { ...BASE_HEADERS, location: outcome.location, 'set-cookie': setCookie(outcome.cookie) },
      body: '',
    };
  };
}

/** Expires the binding cookie under both names (the page cannot know which one a browser holds). */
const CLEAR_BINDING = [
  `${bindingCookieName('https://x/')}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax`,
  `${bindingCookieName('http://x/')}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax`,
];

function setCookie(c: BindingCookie): string {
  // Lax: sent on the top-level GET the authorization server redirects to, never on a cross-site POST.
  return `${c.name}=${c.value}; Max-Age=${c.maxAgeSeconds}; Path=/; HttpOnly; SameSite=Lax${c.secure ? '; Secure' : ''}`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function text(status: number, body: string, extra: Record<string, string | string[]> = {}): OAuthPage {
  return {
    status,
    headers: { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', ...extra },
    body: body.endsWith('\n') ? body : `${body}\n`,
  };
}

function html(status: number, body: string, view: ConnectView): OAuthPage {
  return {
    status,
    headers: {
      ...BASE_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      // Nothing loads, nothing frames it; the form posts here, and the approval's redirect goes on to
      // the authorization server only (browsers check form-action on redirects too).
      'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${view.authorizationOrigin}; frame-ancestors 'none'; base-uri 'none'`,
      'x-frame-options': 'DENY',
      // Not no-referrer: under it browsers send `Origin: null` with the form, and the approval needs
      // the real origin. same-origin still sends nothing (not the link) to the authorization server.
      'referrer-policy': 'same-origin',
    },
    body,
  };
}

/** The url-encoded form, or undefined when it is larger than the page ever sends. */
function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(new URLSearchParams(Buffer.concat(chunks, size).toString('utf8')));
    });
    req.on('error', reject);
  });
}

/** Everything interpolated is escaped: principal ids and client names are chosen by callers. */
function esc(v: string): string {
  return v.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function remaining(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  return min <= 1 ? 'in about a minute' : `in about ${min} minutes`;
}

/** The consent page: plain HTML, no script; every value escaped. */
export function connectPage(v: ConnectView, flow: string, now: number): string {
  const upstream =
    v.api !== undefined ? `${v.api} (security scheme ${v.scheme})` : `security scheme ${v.scheme}`;
  const client = v.client === '' ? 'a client without a name (a local stdio client)' : v.client;
  const scopes = v.scopes.length ? v.scopes.map((s) => `<code>${esc(s)}</code>`).join(' ') : 'none';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Connect your account — mcp-warden</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.warn{border-left:4px solid #b45309;background:#fef3c7;padding:.6rem 1rem}
button{font:inherit;padding:.5rem 1.2rem;margin-right:.6rem;cursor:pointer}
button[value=approve]{background:#1d4ed8;color:#fff;border:0;border-radius:4px}
</style></head>
<body>
<h1>Connect your account</h1>
<p>An agent asked mcp-warden to act upstream <strong>as you</strong>. Approving sends you to
<strong>${esc(v.authorizationOrigin)}</strong> to sign in; the tokens it grants are kept by the gateway for the principal below.</p>
<dl>
<dt>Upstream</dt><dd>${esc(upstream)}</dd>
<dt>Scopes</dt><dd>${scopes}</dd>
<dt>Gateway principal</dt><dd><code>${esc(v.principal)}</code></dd>
<dt>MCP client</dt><dd>${esc(client)}</dd>
<dt>Link expires</dt><dd>${esc(new Date(v.expiresAt).toISOString())} (${remaining(v.expiresAt - now)})</dd>
</dl>
<p class="warn"><strong>If you did not ask your agent for this, close this page.</strong> Approving connects your
upstream account to the principal shown above: whoever holds that principal then acts as you.</p>
<form method="post" action="${esc(CONNECT_PATH)}">
<input type="hidden" name="flow" value="${esc(flow)}">
<input type="hidden" name="csrf" value="${esc(v.csrf)}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
</body></html>
`;
}
