import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { connectHttp, startShopGateway, useFixture } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ADMIN_LINES, ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { eventually, expectAudited, readAudit } from '../support/wait.js';

const startDashboardGateway = () => startShopGateway({ policy: shopPolicy(ADMIN_LINES), admin: true });

/** A browser-like request: the admin origin, JSON, and whatever cookie and CSRF token are given. */
async function req(
  gw: Gateway,
  method: string,
  path: string,
  o: { cookie?: string; csrf?: string; origin?: string | null; body?: unknown; contentType?: string } = {},
) {
  const admin = new URL(gw.adminUrl!);
  const headers: Record<string, string> = {};
  if (o.origin !== null) headers.origin = o.origin ?? admin.origin;
  if (o.cookie) headers.cookie = o.cookie;
  if (o.csrf) headers['x-csrf-token'] = o.csrf;
  if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
  const res = await fetch(new URL(path, admin), {
    method,
    headers,
    redirect: 'manual',
    ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

async function login(gw: Gateway, name = 'alice') {
  const r = await req(gw, 'POST', '/ui/login', { body: { token: ADMIN_TOKEN, name } });
  expect(r.status).toBe(200);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  return { cookie, csrf: r.json.csrf as string, setCookie: r.headers.get('set-cookie')! };
}

describe('the dashboard on the admin port', () => {
  const env = useFixture(startDashboardGateway);

  it('serves the bundled app under a strict Content-Security-Policy, with no third-party origin', async () => {
    const root = await req(env().gw, 'GET', '/');
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui/');
    const page = await req(env().gw, 'GET', '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    // Everything the page loads comes from this origin: no CDN at run time.
    expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    const js = await req(env().gw, 'GET', '/ui/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.text).not.toContain(ADMIN_TOKEN);
    // A deep link is the app's shell; a file the bundle does not have is not found, whatever the encoding.
    expect((await req(env().gw, 'GET', '/ui/audit')).text).toBe(page.text);
    for (const p of ['/ui/../package.json', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json']) {
      const r = await req(env().gw, 'GET', p);
      expect([401, 404]).toContain(r.status);
      expect(r.text).not.toContain('mcp-warden');
    }
  });

  it('logs in with the admin token into an HttpOnly, SameSite=Strict session cookie that is not the token', async () => {
    const { cookie, csrf, setCookie } = await login(env().gw);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Secure/);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toContain(ADMIN_TOKEN);
    expect(csrf).toMatch(/^[\w-]{40,}$/);
    const session = await req(env().gw, 'GET', '/ui/session', { cookie });
    expect(session.json).toMatchObject({ actor: 'admin:alice', csrf });
    const tools = await req(env().gw, 'GET', '/tools', { cookie });
    expect(tools.status).toBe(200);
    await expectAudited(env().auditFile, { kind: 'control', action: 'admin.login', actor: 'admin:alice' });
  });

  it('refuses a wrong token, a form post and a cross-site origin at the login', async () => {
    const wrong = await req(env().gw, 'POST', '/ui/login', { body: { token: 'guess', name: 'mallory' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const form = await req(env().gw, 'POST', '/ui/login', {
      body: `token=${ADMIN_TOKEN}`,
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(403);
    const evil = await req(env().gw, 'POST', '/ui/login', {
      body: { token: ADMIN_TOKEN },
      origin: 'http://evil.example',
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('set-cookie')).toBeNull();
    await expectAudited(env().auditFile, {
      kind: 'control',
      action: 'admin.login-refused',
      actor: 'admin:mallory',
    });
  });

  it('changes nothing for a cookie without the CSRF token, with a wrong one, or from another origin', async () => {
    const { cookie, csrf } = await login(env().gw);
    const attempts = [
      { cookie },
      { cookie, csrf: 'x'.repeat(43) },
      { cookie, csrf, origin: 'http://evil.example' },
      { cookie, csrf, origin: 'null' },
    ];
    for (const a of attempts) {
      const r = await req(env().gw, 'POST', '/tools/searchProducts/disable', { ...a, body: {} });
      expect(r.status).toBe(403);
      expect(r.json.error).toBe('ADMIN_CSRF');
      const mode = await req(env().gw, 'POST', '/mode', { ...a, body: { mode: 'off' } });
      expect(mode.status).toBe(403);
    }
    const tools = (await req(env().gw, 'GET', '/tools', { cookie })).json.tools as Array<
      Record<string, unknown>
    >;
    expect(tools.find((t) => t.name === 'searchProducts')).toMatchObject({ exposed: true, toggle: 'policy' });
    expect((await req(env().gw, 'GET', '/mode', { cookie })).json.mode).toBe('read-write');
    // With the token and this origin, the same request goes through and is audited under the session's name.
    const ok = await req(env().gw, 'POST', '/tools/searchProducts/disable', { cookie, csrf, body: {} });
    expect(ok.status).toBe(200);
    await expectAudited(env().auditFile, {
      action: 'tool.toggle',
      actor: 'admin:alice',
      target: 'searchProducts',
    });
    await req(env().gw, 'POST', '/tools/searchProducts/reset', { cookie, csrf, body: {} });
  });

  it('ends the session at logout (which itself needs the CSRF token)', async () => {
    const { cookie, csrf } = await login(env().gw);
    expect((await req(env().gw, 'POST', '/ui/logout', { cookie, body: {} })).status).toBe(403);
    expect((await req(env().gw, 'GET', '/tools', { cookie })).status).toBe(200);
    const out = await req(env().gw, 'POST', '/ui/logout', { cookie, csrf, body: {} });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await req(env().gw, 'GET', '/tools', { cookie })).status).toBe(401);
    expect((await req(env().gw, 'GET', '/ui/session', { cookie })).status).toBe(401);
  });

  it('pages the audit by tool, decision and time, and tails what was appended since a seq', async () => {
    const { cookie } = await login(env().gw);
    const client = await connectHttp(env().gw.url!, { name: 'dash-test' });
    await client.callTool({ name: 'searchProducts', arguments: { q: 'mug' } });
    await client.callTool({ name: 'searchProducts', arguments: { q: 7 } }); // invalid: denied
    // The API reads the audit file, which is written just after each answer: wait for both records.
    const { before, all } = await eventually(
      async () => {
        const before = await req(env().gw, 'GET', '/audit?tool=searchProducts', { cookie });
        const all = before.json.records as Array<Record<string, unknown>>;
        expect(all.length).toBeGreaterThanOrEqual(2);
        return { before, all };
      },
      { what: 'both searchProducts calls in GET /audit' },
    );
    expect(all.every((r) => r.tool === 'searchProducts')).toBe(true);
    expect(all.some((r) => r.kind === 'checkpoint')).toBe(false);
    const denied = (await req(env().gw, 'GET', '/audit?tool=searchProducts&decision=denied', { cookie })).json
      .records as Array<Record<string, unknown>>;
    expect(denied.length).toBeGreaterThanOrEqual(1);
    expect(denied.every((r) => r.decision === 'denied')).toBe(true);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect(
      (await req(env().gw, 'GET', `/audit?since=${encodeURIComponent(future)}`, { cookie })).json.records,
    ).toEqual([]);
    // Newest first; the tail returns only what came after.
    const last = before.json.lastSeq as number;
    await client.callTool({ name: 'searchProducts', arguments: { q: 'tea' } });
    const tail = await eventually(
      async () => {
        const tail = (await req(env().gw, 'GET', `/audit?after=${last}&tool=searchProducts`, { cookie }))
          .json;
        expect((tail.records as unknown[]).length).toBe(1);
        return tail;
      },
      { what: 'the new call in the tail of GET /audit' },
    );
    expect(tail.lastSeq).toBeGreaterThan(last);
    for (const bad of ['decision=maybe', 'since=yesterday', 'limit=0', 'limit=5000', 'after=-1'])
      expect((await req(env().gw, 'GET', `/audit?${bad}`, { cookie })).status).toBe(400);
    // Broken percent-encoding in a path is the caller's mistake: 400 with a reason, never a 500.
    const broken = await req(env().gw, 'GET', '/explain/%E0%A4%A', { cookie });
    expect(broken.status).toBe(400);
    expect(broken.json.error).toBe('USAGE');
    await client.close();
  });

  it('charts calls per tool and lists fired alerts, which an operator can acknowledge (audited)', async () => {
    const { cookie, csrf } = await login(env().gw, 'bob');
    const series = (await req(env().gw, 'GET', '/series?minutes=15', { cookie })).json as {
      summary: Record<string, { calls: number; denied: number; p50: number | null }>;
      all: unknown[];
    };
    expect(series.all.length).toBe(90);
    expect(series.summary.searchProducts!.calls).toBeGreaterThanOrEqual(3);
    expect(series.summary.searchProducts!.denied).toBeGreaterThanOrEqual(1);
    expect(series.summary.searchProducts!.p50).toBeGreaterThan(0);
    // First use of a tool by a principal is an alert by default.
    const alerts = (await req(env().gw, 'GET', '/alerts', { cookie })).json.alerts as Array<
      Record<string, unknown>
    >;
    const first = alerts.find((a) => a.rule === 'firstUse');
    expect(first).toBeDefined();
    expect((await req(env().gw, 'POST', `/alerts/${first!.id}/ack`, { cookie, body: {} })).status).toBe(403);
    const ack = await req(env().gw, 'POST', `/alerts/${first!.id}/ack`, { cookie, csrf, body: {} });
    expect(ack.json.acknowledged).toMatchObject({ by: 'admin:bob' });
    expect((await req(env().gw, 'POST', '/alerts/99999/ack', { cookie, csrf, body: {} })).status).toBe(404);
    await expectAudited(env().auditFile, { kind: 'control', action: 'alert.ack', actor: 'admin:bob' });
  });
});

describe('dashboard login throttling', () => {
  const env = useFixture(startDashboardGateway);

  it('locks an address out after five wrong tokens, even for the right one', async () => {
    for (let i = 0; i < 5; i++)
      expect((await req(env().gw, 'POST', '/ui/login', { body: { token: `guess-${i}` } })).status).toBe(401);
    const locked = await req(env().gw, 'POST', '/ui/login', { body: { token: ADMIN_TOKEN } });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(locked.headers.get('set-cookie')).toBeNull();
  });
});

/**
 * A request to the admin port from another loopback address (127.0.0.2…): another source, as the
 * throttle sees it. `token` goes in the bearer header; `login` posts it to the dashboard's login instead.
 */
function fromAddress(
  gw: Gateway,
  source: string,
  o: { token?: string; path?: string; login?: boolean; cookie?: string },
): Promise<{
  status: number;
  retryAfter: string | undefined;
  cookie: string | undefined;
  body: Record<string, unknown>;
}> {
  const admin = new URL(gw.adminUrl!);
  const body = o.login ? JSON.stringify({ token: o.token }) : undefined;
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: admin.hostname,
        port: admin.port,
        localAddress: source,
        method: o.login ? 'POST' : 'GET',
        path: o.login ? '/ui/login' : (o.path ?? '/tools'),
        headers: {
          ...(o.login ? { 'content-type': 'application/json' } : {}),
          ...(!o.login && o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}),
          ...(o.cookie ? { cookie: o.cookie } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            cookie: res.headers['set-cookie']?.[0]?.split(';')[0],
            body: JSON.parse(text || '{}'),
          }),
        );
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

describe('wrong admin tokens on the API (bearer header)', () => {
  it('are counted, throttled per address (the right token included), alerted on and audited in bulk', async () => {
    const fx = await startDashboardGateway();
    let closed = false;
    try {
      const { gw } = fx;
      const statuses: number[] = [];
      for (let i = 0; i < 50; i++) {
        const r = await fromAddress(gw, '127.0.0.2', { token: `guess-${i}-zq` });
        statuses.push(r.status);
        if (r.status === 429) {
          expect(r.body.error).toBe('ADMIN_THROTTLED');
          expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
          expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
        } else expect(r.body.error).toBe('ADMIN_DENIED');
      }
      expect(statuses).toEqual([...Array(5).fill(401), ...Array(45).fill(429)]);
      // The right token from the throttled address is refused too: guessing cannot go on by luck.
      expect((await fromAddress(gw, '127.0.0.2', { token: ADMIN_TOKEN })).status).toBe(429);
      // Another address is not affected.
      const admin = adminApi(gw.adminUrl!, ADMIN_TOKEN);
      expect((await admin('GET', '/tools')).status).toBe(200);
      const metrics = await (
        await fetch(new URL('/metrics', gw.adminUrl!), {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })
      ).text();
      expect(metrics).toContain('mcp_warden_admin_auth_failures_total{code="ADMIN_DENIED"} 5');
      expect(metrics).toContain('mcp_warden_admin_auth_failures_total{code="ADMIN_THROTTLED"} 46');
      expect(metrics).toContain('mcp_warden_alerts_fired_total{rule="adminAuthFailures"} 1');
      const alerts = (await admin('GET', '/alerts')).body.alerts as Array<Record<string, unknown>>;
      expect(alerts.filter((a) => a.rule === 'adminAuthFailures')).toEqual([
        expect.objectContaining({ subject: 'admin', threshold: 20 }),
      ]);
      // The first refusal from an address is in the audit at once…
      await expectAudited(fx.auditFile, {
        kind: 'control',
        action: 'admin.token-refused',
        target: '127.0.0.2',
        detail: '1 wrong and 0 throttled admin token(s) from 127.0.0.2',
      });
      // …and the rest as one record when the minute ends or, here, at shutdown.
      await fx.close();
      closed = true;
      const refusals = readAudit(fx.auditFile).filter((r) => r.action === 'admin.token-refused');
      expect(refusals.map((r) => r.detail)).toEqual([
        '1 wrong and 0 throttled admin token(s) from 127.0.0.2',
        '4 wrong and 46 throttled admin token(s) from 127.0.0.2',
      ]);
      expect(JSON.stringify(readAudit(fx.auditFile))).not.toContain('-zq');
    } finally {
      if (!closed) await fx.close();
    }
  });

  it('let no more than five wrong tokens through when they are sent all at once, through either door', async () => {
    const fx = await startDashboardGateway();
    try {
      for (const [source, login] of [
        ['127.0.0.5', false],
        ['127.0.0.6', true],
      ] as const) {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) => fromAddress(fx.gw, source, { token: `guess-${i}`, login })),
        );
        const statuses = answers.map((r) => r.status).sort();
        expect(statuses, source).toEqual([...Array(5).fill(401), ...Array(15).fill(429)]);
      }
    } finally {
      await fx.close();
    }
  });

  it('share one throttle with the dashboard login: five wrong tokens through either door lock both', async () => {
    const fx = await startDashboardGateway();
    try {
      const { gw } = fx;
      const session = (await fromAddress(gw, '127.0.0.3', { token: ADMIN_TOKEN, login: true })).cookie;
      expect(session).toMatch(/^mcp_warden_session=/);
      for (let i = 0; i < 3; i++)
        expect((await fromAddress(gw, '127.0.0.3', { token: `guess-${i}`, login: true })).status).toBe(401);
      for (let i = 0; i < 2; i++)
        expect((await fromAddress(gw, '127.0.0.3', { token: `guess-${i}` })).status).toBe(401);
      expect((await fromAddress(gw, '127.0.0.3', { token: ADMIN_TOKEN })).status).toBe(429);
      expect((await fromAddress(gw, '127.0.0.3', { token: ADMIN_TOKEN, login: true })).status).toBe(429);
      // A session opened before is not a token guess: it keeps working from the throttled address.
      expect((await fromAddress(gw, '127.0.0.3', { cookie: session! })).status).toBe(200);
      expect((await fromAddress(gw, '127.0.0.4', { token: ADMIN_TOKEN })).status).toBe(200);
    } finally {
      await fx.close();
    }
  });
});
