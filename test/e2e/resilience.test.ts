import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { callPipeline, codeOf, startTestGateway, type TestGateway } from '../support/gateway.js';
import { minimalSpec } from '../support/helpers.js';
import { freePort, listen } from '../support/http.js';
import { tempTree } from '../support/paths.js';
import { eventually, waitFor } from '../support/wait.js';

/** An upstream whose behaviour the test switches: ok, 503, or hanging. */
async function flakyUpstream() {
  const state = { mode: 'ok' as 'ok' | '503' | 'hang', hits: [] as string[] };
  const server = await listen((req, res) => {
    state.hits.push(`${req.method} ${req.url}`);
    if (state.mode === 'hang') return; // never answers
    if (state.mode === '503') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  return { state, ...server };
}

const anyJson = { '200': { description: 'ok', content: { 'application/json': {} } } };
const SPEC = minimalSpec(
  {
    '/thing': {
      get: { operationId: 'getThing', responses: anyJson },
      post: { operationId: 'makeThing', responses: anyJson },
    },
    '/slow': { get: { operationId: 'slowThing', responses: { '200': { description: 'ok' } } } },
  },
  { info: { title: 'Flaky', version: '1' } },
);

const call = (gw: Gateway, name: string) =>
  callPipeline(gw, name, {}, 'tester', ['tools:read', 'tools:write']);
const code = codeOf;

describe('resilience against a failing upstream', () => {
  let up: Awaited<ReturnType<typeof flakyUpstream>>;
  let fx: TestGateway;
  let gw: Gateway;

  beforeAll(async () => {
    up = await flakyUpstream();
    fx = await startTestGateway({
      spec: SPEC,
      baseUrl: up.url,
      env: {},
      policy: [
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
    gw = fx.gw;
  });
  afterAll(async () => {
    await fx?.close();
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
    // Half-open one second after opening: until then a call is refused at once, without a probe.
    await eventually(async () => expect(code(await call(gw, 'getThing'))).toBe('OK'), {
      what: 'the half-open probe to get through',
      interval: 100,
    });
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
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const p = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
  await waitFor(accepts, { what: `redis-server to accept connections on port ${port}`, interval: 50 });
  return p;
}

describe('degraded mode: Redis restarted mid-run', () => {
  it('fails writes closed and serves reads on local limits while Redis is down, and recovers by itself (approvals included, though Redis comes back empty)', async () => {
    const up = await flakyUpstream();
    const redisDir = tempTree({});
    const port = await freePort();
    let redis = await startRedis(port, redisDir);
    const fx = await startTestGateway({
      spec: SPEC,
      baseUrl: up.url,
      policy:
        'version: 1\nmode: read-write\nstate: { redis: env:REDIS_URL }\nrules:\n  - match: { name: makeThing }\n    enabled: true\n',
      logLevel: 'fatal',
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    const { gw } = fx;
    const degraded = (flag: 0 | 1) =>
      waitFor(async () => (await gw.metrics.text()).includes(`mcp_warden_state_degraded ${flag}`), {
        what: `mcp_warden_state_degraded ${flag}`,
      });
    try {
      expect(code(await call(gw, 'makeThing'))).toBe('OK');
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      // The gateway notices the lost connection on its own: wait for it to say so, not for a guess.
      await degraded(1);
      const before = up.state.hits.length;
      expect(code(await call(gw, 'makeThing'))).toBe('STATE_UNAVAILABLE');
      expect(up.state.hits.length).toBe(before);
      expect(code(await call(gw, 'getThing'))).toBe('OK');
      expect(await gw.metrics.text()).toContain('mcp_warden_state_degraded 1');

      redis = await startRedis(port, redisDir);
      await eventually(async () => expect(code(await call(gw, 'makeThing'))).toBe('OK'), {
        what: 'writes to succeed again once Redis is back',
        interval: 200,
      });
      await degraded(0);
      expect(await gw.metrics.text()).toContain('mcp_warden_state_degraded 0');
    } finally {
      await fx.close();
      redis.kill('SIGKILL');
      await up.close();
    }
  }, 30_000);
});
