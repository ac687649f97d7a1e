import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { tempTree } from '../support/helpers.js';

/** An upstream whose behaviour the test switches: ok, 503, or hanging. */
async function flakyUpstream() {
  const state = { mode: 'ok' as 'ok' | '503' | 'hang', hits: [] as string[] };
  const server: Server = createServer((req, res) => {
    state.hits.push(`${req.method} ${req.url}`);
    if (state.mode === 'hang') return; // never answers
    if (state.mode === '503') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const SPEC = {
  openapi: '3.0.3',
  info: { title: 'Flaky', version: '1' },
  paths: {
    '/thing': {
      get: {
        operationId: 'getThing',
        responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
      },
      post: {
        operationId: 'makeThing',
        responses: { '200': { description: 'ok', content: { 'application/json': {} } } },
      },
    },
    '/slow': { get: { operationId: 'slowThing', responses: { '200': { description: 'ok' } } } },
  },
};

const call = (gw: Gateway, name: string) =>
  gw.pipeline.call({ name, arguments: {}, principal: 'tester', scopes: ['tools:read', 'tools:write'] });
const code = (r: { content: Array<{ text: string }> }) =>
  /^\[([A-Z_]+)\]/.exec(r.content[0]?.text ?? '')?.[1] ?? 'OK';

describe('resilience against a failing upstream', () => {
  let up: Awaited<ReturnType<typeof flakyUpstream>>;
  let gw: Gateway;

  beforeAll(async () => {
    up = await flakyUpstream();
    const dir = tempTree({
      'spec.json': SPEC,
      'warden.yaml': [
        'version: 1',
        'mode: read-write',
        'originBreaker: { failures: 50, halfOpenAfterSeconds: 1 }',
        'rules:',
        '  - match: { name: makeThing }',
        '    enabled: true',
        '  - match: { name: getThing }',
        '    breaker: { failures: 4, halfOpenAfterSeconds: 1 }',
        '    retries: { attempts: 1, baseMs: 10 }',
        '  - match: { name: slowThing }',
        '    timeoutMs: 300',
        '    breaker: false',
      ].join('\n'),
    });
    gw = await startGateway({
      spec: join(dir, 'spec.json'),
      baseUrl: up.url,
      policy: join(dir, 'warden.yaml'),
      auditFile: join(dir, 'audit.jsonl'),
      transport: { kind: 'http', port: 0 },
      logLevel: 'error',
      env: {},
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('retries an idempotent read once on 503, and never a write', async () => {
    up.state.mode = '503';
    up.state.hits.length = 0;
    expect(code(await call(gw, 'getThing'))).toBe('UPSTREAM_STATUS');
    expect(up.state.hits).toEqual(['GET /thing', 'GET /thing']);
    up.state.hits.length = 0;
    expect(code(await call(gw, 'makeThing'))).toBe('UPSTREAM_STATUS');
    expect(up.state.hits).toEqual(['POST /thing']);
  });

  it('opens the breaker after the configured failures, then answers fast without calling the upstream', async () => {
    up.state.mode = '503';
    for (let i = 0; i < 3; i++) await call(gw, 'getThing');
    const before = up.state.hits.length;
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await call(gw, 'getThing');
      times.push(performance.now() - t0);
      expect(code(r)).toBe('BREAKER_OPEN');
    }
    expect(up.state.hits.length).toBe(before);
    times.sort((a, b) => a - b);
    expect(times[10]).toBeLessThan(5);
    const metrics = await gw.metrics.text();
    expect(metrics).toContain('mcp_warden_breaker_open{breaker="tool:getThing"} 1');
  });

  it('lets a probe through when half-open and closes again once the upstream recovers', async () => {
    up.state.mode = 'ok';
    await new Promise((r) => setTimeout(r, 1100));
    expect(code(await call(gw, 'getThing'))).toBe('OK');
    expect(code(await call(gw, 'getThing'))).toBe('OK');
  });

  it('cuts a hanging upstream at the timeout', async () => {
    up.state.mode = 'hang';
    const t0 = performance.now();
    const r = await call(gw, 'slowThing');
    const ms = performance.now() - t0;
    expect(code(r)).toBe('UPSTREAM_TIMEOUT');
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(3000);
    up.state.mode = 'ok';
  });
});

/** A Redis of the test's own, so that it can be stopped and restarted. */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const p = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return p;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not start');
}

describe('degraded mode: Redis restarted mid-run', () => {
  it('fails writes closed and serves reads on local limits while Redis is down, and recovers by itself (approvals included, though Redis comes back empty)', async () => {
    const up = await flakyUpstream();
    const dir = tempTree({ 'spec.json': SPEC });
    const port = await freePort();
    let redis = await startRedis(port, dir);
    writeFileSync(
      join(dir, 'warden.yaml'),
      'version: 1\nmode: read-write\nstate: { redis: env:REDIS_URL }\nrules:\n  - match: { name: makeThing }\n    enabled: true\n',
    );
    const gw = await startGateway({
      spec: join(dir, 'spec.json'),
      baseUrl: up.url,
      policy: join(dir, 'warden.yaml'),
      auditFile: join(dir, 'audit.jsonl'),
      transport: { kind: 'http', port: 0 },
      logLevel: 'fatal',
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    try {
      expect(code(await call(gw, 'makeThing'))).toBe('OK');
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      await new Promise((r) => setTimeout(r, 300));
      const before = up.state.hits.length;
      expect(code(await call(gw, 'makeThing'))).toBe('STATE_UNAVAILABLE');
      expect(up.state.hits.length).toBe(before);
      expect(code(await call(gw, 'getThing'))).toBe('OK');
      expect(await gw.metrics.text()).toContain('mcp_warden_state_degraded 1');

      redis = await startRedis(port, dir);
      const t0 = Date.now();
      let last = '';
      while (Date.now() - t0 < 10_000) {
        last = code(await call(gw, 'makeThing'));
        if (last === 'OK') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(last).toBe('OK');
      expect(await gw.metrics.text()).toContain('mcp_warden_state_degraded 0');
    } finally {
      await gw.close();
      redis.kill('SIGKILL');
      await up.close();
    }
  }, 30_000);
});
