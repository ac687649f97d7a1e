import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { codeOf, type ShopGateway, startShopGateway, useFixture } from '../support/gateway.js';
import { LIST_TOOLS, rawPost } from '../support/http.js';
import { ADMIN_LINES, shopPolicy } from '../support/shop.js';
import { can, tmpfsAvailable } from '../support/tmpfs.js';
import { waitFor } from '../support/wait.js';

// Issue 18 item 3: /healthz and /readyz on the MCP port and the admin port, unauthenticated and
// revealing nothing but up or down; readiness follows an outage of each dependency and its recovery.
// Redis and PostgreSQL are the machine's shared servers, reached through a TCP proxy the test cuts
// (never the servers themselves); the audit's disk is a tiny tmpfs filled up (root only, else skipped).
const REDIS_PORT = Number(new URL(process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379').port);
const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
const RUN = randomBytes(4).toString('hex');
const TMPFS = tmpfsAvailable();
if (!TMPFS)
  console.warn('health.test.ts: the full-disk readiness test is skipped: it needs root and `mount -t tmpfs`');

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over node:http, which (unlike fetch) may send any Host header. */
function ask(
  base: string,
  path: string,
  o: { method?: string; host?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${new URL(base).origin}${path}`,
      { method: o.method ?? 'GET', headers: { ...o.headers, ...(o.host ? { host: o.host } : {}) } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Polls `/readyz` on both ports until both give `body` (the final state, however long it takes). */
async function readyzBecomes(fx: ShopGateway, body: object, timeout = 20_000): Promise<void> {
  const want = JSON.stringify(body);
  const status = 'failing' in body ? 503 : 200;
  for (const base of [fx.gw.url!, fx.gw.adminUrl!])
    await waitFor(
      async () => {
        const r = await ask(base, '/readyz');
        return r.status === status && r.body === want;
      },
      { what: `${base} /readyz to answer ${status} ${want}`, timeout },
    );
}

/**
 * A TCP proxy on 127.0.0.1 (port 0) in front of a shared server: the test cuts it (stops accepting,
 * drops every connection), restores it (listens again on the same port), or freezes it (connections
 * stay open, nothing is forwarded: the server hangs).
 */
async function tcpProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const held: Array<() => void> = [];
  const onConnection = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (d: Buffer) => (frozen ? held.push(() => to.write(d)) : to.write(d)));
      from.on('error', end);
      from.on('close', end);
    }
  };
  const start = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  let server: Server | undefined = await start(0);
  const port = (server.address() as AddressInfo).port;
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  return {
    port,
    cut,
    restore: async () => {
      server = await start(port);
    },
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const f of held.splice(0)) f();
    },
    close: cut,
  };
}

describe('/healthz and /readyz', () => {
  const fx = useFixture(() => startShopGateway({ policy: shopPolicy(ADMIN_LINES), admin: true }));

  it('answer on the MCP port whatever the Host, while /mcp with that Host is still refused', async () => {
    const base = fx().gw.url!;
    for (const host of [undefined, 'evil.example', '10.1.2.3:8080']) {
      const live = await ask(base, '/healthz', host ? { host } : {});
      expect([live.status, live.body]).toEqual([200, '{"status":"ok"}']);
      expect(live.headers['cache-control']).toBe('no-store');
      expect(live.headers['content-type']).toBe('application/json');
      const ready = await ask(base, '/readyz', host ? { host } : {});
      expect([ready.status, ready.body]).toEqual([200, '{"status":"ready"}']);
      expect(ready.headers['cache-control']).toBe('no-store');
      const head = await ask(base, '/readyz', { method: 'HEAD', ...(host ? { host } : {}) });
      expect([head.status, head.body]).toEqual([200, '']);
    }
    const mcp = await rawPost(base, '/mcp', LIST_TOOLS, { host: 'evil.example' });
    expect(mcp.status).toBe(403);
    expect(JSON.parse(mcp.body).error.data.code).toBe('HTTP_FORBIDDEN_HOST');
    // Only GET and HEAD are probes; a path beside them is still unknown.
    expect((await ask(base, '/healthz', { method: 'POST' })).status).toBe(404);
    expect((await ask(base, '/healthz/x')).status).toBe(404);
  });

  it('answer on the admin port without the token, which every other admin path still needs', async () => {
    const admin = fx().gw.adminUrl!;
    const live = await ask(admin, '/healthz');
    expect([live.status, live.body]).toEqual([200, '{"status":"ok"}']);
    // The admin port's security headers ride along like on every answer of that port.
    expect(live.headers['x-content-type-options']).toBe('nosniff');
    expect(live.headers['cache-control']).toBe('no-store');
    expect(await ask(admin, '/readyz')).toMatchObject({ status: 200, body: '{"status":"ready"}' });
    expect(await ask(admin, '/healthz', { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
    for (const path of ['/tools', '/metrics', '/mode', '/audit'])
      expect((await ask(admin, path)).status, path).toBe(401);
    expect((await ask(admin, '/healthz', { method: 'POST' })).status).toBe(401);
  });

  it('are not audited, not counted as authentication failures, and write nothing', async () => {
    const { gw, auditFile } = fx();
    const before = readFileSync(auditFile);
    // A probe that happens to carry a wrong credential is still just a probe.
    const wrong = { authorization: 'Bearer not-a-token' };
    for (let i = 0; i < 25; i++)
      for (const base of [gw.url!, gw.adminUrl!])
        for (const path of ['/healthz', '/readyz']) {
          const r = await ask(base, path, { host: 'probe.example', ...(i % 2 ? { headers: wrong } : {}) });
          expect(r.status).toBe(200);
        }
    expect(readFileSync(auditFile).equals(before)).toBe(true);
    const metrics = await gw.metrics.text();
    expect(metrics).not.toMatch(/^mcp_warden_auth_failures_total\{/m);
    expect(metrics).not.toMatch(/^mcp_warden_admin_auth_failures_total\{/m);
  });

  it('reveal no version, no tool name, no address', async () => {
    const { gw } = fx();
    const tools = gw.catalog.tools.map((t) => t.name);
    for (const base of [gw.url!, gw.adminUrl!])
      for (const path of ['/healthz', '/readyz']) {
        const r = await ask(base, path);
        const all = `${r.body} ${JSON.stringify(r.headers)}`;
        expect(all).not.toContain(VERSION);
        expect(all).not.toContain('mcp-warden');
        expect(all).not.toContain('127.0.0.1');
        for (const t of tools) expect(r.body).not.toContain(t);
      }
  });
});

describe('the admin port sends a browser to the dashboard', () => {
  const fx = useFixture(() => startShopGateway({ policy: shopPolicy(ADMIN_LINES), admin: true }));

  it('redirects / and /ui to /ui/ (the login page) instead of answering 401', async () => {
    const admin = fx().gw.adminUrl!;
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/ui'],
      ['HEAD', '/ui'],
      ['GET', '/ui?x=1'],
    ] as const) {
      const r = await ask(admin, path, { method });
      expect([r.status, r.headers.location], `${method} ${path}`).toEqual([302, '/ui/']);
    }
    const page = await ask(admin, '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // The redirect is not a way round the token.
    expect((await ask(admin, '/uix')).status).toBe(401);
    expect((await ask(admin, '/ui', { method: 'POST' })).status).toBe(401);
  });
});

describe('readiness through an outage of each dependency', () => {
  it('Redis (shared state): not ready while it is cut or hangs, ready again when it is back', async () => {
    const proxy = await tcpProxy(REDIS_PORT);
    const prefix = `test-health-${RUN}`;
    const fx = await startShopGateway({
      policy: shopPolicy([...ADMIN_LINES, 'state:', '  redis: env:REDIS_URL', `  prefix: ${prefix}`]),
      admin: true,
      env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` },
    });
    try {
      await readyzBecomes(fx, { status: 'ready' });
      await proxy.cut();
      await readyzBecomes(fx, { status: 'not ready', failing: ['state'] });
      // Liveness is not readiness: the process still answers.
      expect((await ask(fx.gw.url!, '/healthz')).status).toBe(200);
      await proxy.restore();
      await readyzBecomes(fx, { status: 'ready' });
      // A Redis that accepts but never answers: the probe times out, and that is "not ready".
      proxy.freeze();
      await readyzBecomes(fx, { status: 'not ready', failing: ['state'] });
      proxy.thaw();
      await readyzBecomes(fx, { status: 'ready' });
    } finally {
      await fx.close();
      await proxy.close();
      const redis = new Redis({ port: REDIS_PORT, lazyConnect: true });
      await redis.connect();
      await redis.del(`${prefix}:toggles`, `${prefix}:kill`, `${prefix}:pins`);
      redis.disconnect();
    }
  });

  it('PostgreSQL (audit mirror): not ready while it is cut, ready again when it is back', async () => {
    const proxy = await tcpProxy(Number(new URL(PG_URL).port || 5432));
    const via = new URL(PG_URL);
    via.port = String(proxy.port);
    const instance = `health-${RUN}`;
    const fx = await startShopGateway({
      policy: shopPolicy([...ADMIN_LINES, 'audit:', '  postgres: env:PG_URL', `  instance: ${instance}`]),
      admin: true,
      env: { PG_URL: via.href },
    });
    try {
      await readyzBecomes(fx, { status: 'ready' });
      await proxy.cut();
      await readyzBecomes(fx, { status: 'not ready', failing: ['audit-db'] });
      await proxy.restore();
      await readyzBecomes(fx, { status: 'ready' });
    } finally {
      await fx.close();
      await proxy.close();
      const db = new pg.Pool({ connectionString: PG_URL, max: 1 });
      await db.query('DELETE FROM mcp_warden_audit WHERE instance = $1', [instance]);
      await db.end();
    }
  });

  it.skipIf(!TMPFS)(
    'the audit disk (tmpfs): not ready while it is full, ready again once space returns, with no call needed',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-health-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
      let fx: ShopGateway | undefined;
      try {
        fx = await startShopGateway({
          policy: shopPolicy(ADMIN_LINES),
          admin: true,
          serve: { auditFile: join(dir, 'audit.jsonl') },
        });
        await readyzBecomes(fx, { status: 'ready' });
        const filler = fillDisk(dir);
        // Statfs sees the full disk before any call fails.
        await readyzBecomes(fx, { status: 'not ready', failing: ['audit'] });
        // Calls fail closed; once one has, "the last append failed" holds too.
        const client = await fx.connect({ name: 'health-full-disk' });
        await waitFor(
          async () =>
            codeOf(
              (await client.callTool({ name: 'searchProducts', arguments: { q: 'x' } })) as {
                content: Array<{ text?: string }>;
              },
            ) === 'AUDIT_UNAVAILABLE',
          { what: 'a call refused for want of audit space' },
        );
        unlinkSync(filler);
        // No call arrives: the probe itself sees the room and forgives the failed append.
        await readyzBecomes(fx, { status: 'ready' });
        const ok = await client.callTool({ name: 'searchProducts', arguments: { q: 'y' } });
        expect(codeOf(ok as { content: Array<{ text?: string }> })).toBe('OK');
      } finally {
        await fx?.close();
        if (!can('umount', [dir])) execFileSync('umount', ['-l', dir]);
        rmdirSync(dir);
      }
    },
  );
});

/** Fills the file system of `dir` to the last byte; returns the filler, whose removal frees it. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return filler;
}
