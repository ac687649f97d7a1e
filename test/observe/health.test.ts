import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dependency, Health, isProbePath, type ReadinessCheck } from '../../src/observe/health.js';
import { type Listening, listen } from '../support/http.js';

/** A check the test steers: its answer, and how often it was asked. */
function steered(name: Dependency, answer: () => boolean | Promise<boolean> = () => true) {
  const c = { name, calls: 0, answer, probe: () => {} } as ReadinessCheck & {
    calls: number;
    answer: () => boolean | Promise<boolean>;
  };
  c.probe = () => {
    c.calls++;
    return c.answer();
  };
  return c;
}

describe('the readiness model', () => {
  it('is ready with no checks, and names the failing checks in their order', async () => {
    expect(await new Health().failing()).toEqual([]);
    const h = new Health([
      steered('spec'),
      steered('audit', () => false),
      steered('state', () => {
        throw new Error('ECONNREFUSED 10.0.0.7:6379');
      }),
      steered('audit-db', () => Promise.reject(new Error('boom'))),
    ]);
    expect(await h.failing()).toEqual(['audit', 'state', 'audit-db']);
  });

  it('reuses an answer for cacheMs, then asks again', async () => {
    let t = 0;
    const state = steered('state');
    const h = new Health([state], { cacheMs: 1000, now: () => t });
    for (let i = 0; i < 50; i++) await h.failing();
    expect(state.calls).toBe(1);
    t = 999;
    await h.failing();
    expect(state.calls).toBe(1);
    state.answer = () => false;
    t = 1000;
    expect(await h.failing()).toEqual(['state']);
    expect(state.calls).toBe(2);
  });

  it('asks a dependency once however many probes arrive while it answers', async () => {
    let release!: (ok: boolean) => void;
    const state = steered('state', () => new Promise<boolean>((r) => (release = r)));
    const h = new Health([state], { timeoutMs: 60_000 });
    const storm = Array.from({ length: 100 }, () => h.failing());
    release(true);
    expect(await Promise.all(storm)).toEqual(Array(100).fill([]));
    expect(state.calls).toBe(1);
  });

  it('fails closed when a check does not answer in time', async () => {
    const hung = steered('audit-db', () => new Promise<boolean>(() => {}));
    const h = new Health([steered('spec'), hung], { timeoutMs: 20 });
    expect(await h.failing()).toEqual(['audit-db']);
  });

  it('counts only `true` as ready (a truthy non-boolean is a bug, not a yes)', async () => {
    const odd = steered('spec', () => 'yes' as unknown as boolean);
    expect(await new Health([odd]).failing()).toEqual(['spec']);
  });

  it('tells of each change of the failing set once', async () => {
    let t = 0;
    const audit = steered('audit');
    const seen: Array<readonly Dependency[]> = [];
    const h = new Health([audit], { cacheMs: 10, now: () => t, onChange: (f) => seen.push(f) });
    await h.failing();
    audit.answer = () => false;
    for (const at of [10, 20, 30]) {
      t = at;
      await h.failing();
    }
    audit.answer = () => true;
    t = 40;
    await h.failing();
    expect(seen).toEqual([['audit'], []]);
  });

  it('knows its two paths', () => {
    expect(['/healthz', '/readyz', '/healthz/', '/ready', '/'].map(isProbePath)).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

describe('the probe answers', () => {
  let ready = true;
  const h = new Health([steered('state', () => ready)], { cacheMs: 0 });
  let server: Listening;
  beforeAll(async () => {
    server = await listen(async (req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      if (!(await h.answer(req, res, path, { 'x-port': 'test' }))) res.writeHead(418).end('not a probe');
    });
  });
  afterAll(() => server.close());

  const ask = (method: string, path: string) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request(`${server.url}${path}`, { method }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers liveness and readiness as JSON that is never cached, with the port headers', async () => {
    const live = await ask('GET', '/healthz');
    expect([live.status, live.body]).toEqual([200, '{"status":"ok"}']);
    expect(live.headers).toMatchObject({
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-port': 'test',
    });
    expect(await ask('GET', '/readyz?verbose=1')).toMatchObject({ status: 200, body: '{"status":"ready"}' });
    ready = false;
    const down = await ask('GET', '/readyz');
    expect([down.status, JSON.parse(down.body)]).toEqual([503, { status: 'not ready', failing: ['state'] }]);
    expect(down.headers['cache-control']).toBe('no-store');
    ready = true;
  });

  it('answers HEAD with the status and no body', async () => {
    ready = false;
    const head = await ask('HEAD', '/readyz');
    expect([head.status, head.body]).toEqual([503, '']);
    ready = true;
    expect(await ask('HEAD', '/healthz')).toMatchObject({ status: 200, body: '' });
  });

  it('leaves any other method or path to the port', async () => {
    expect((await ask('POST', '/healthz')).status).toBe(418);
    expect((await ask('GET', '/health')).status).toBe(418);
  });
});
