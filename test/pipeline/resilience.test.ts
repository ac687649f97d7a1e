import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isWardenError, WardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import type { UpstreamResponse } from '../../src/pipeline/context.js';
import { createResilience, type ResilienceOptions } from '../../src/pipeline/resilience.js';
import { createSend } from '../../src/pipeline/send.js';
import { startUpstream } from '../support/helpers.js';
import { itemsCatalog, resolvedContext, viewOf } from '../support/pipeline.js';
import { eventually, waitFor } from '../support/wait.js';

/**
 * src/pipeline/resilience.ts on its own, against a real upstream on 127.0.0.1:0: `/<status>` answers
 * that status, `/hold` answers only when the test releases it. Half-open waits are skipped with a
 * fake clock (Date only: sockets and the retry back-off keep real timers).
 */
let catalog: Catalog;
let up: Awaited<ReturnType<typeof startUpstream>>;
const held: ServerResponse[] = [];
beforeAll(async () => {
  catalog = await itemsCatalog();
  up = await startUpstream((req, res) => {
    if (req.url === '/hold') return void held.push(res);
    const status = Number(req.url.slice(1)) || 200;
    res.writeHead(status, { 'content-type': 'application/json' }).end(`{"status":${status}}`);
  });
});
afterAll(() => up.close());
afterEach(() => {
  vi.useRealTimers();
});

const hits = (path: string) => up.requests.filter((r) => r.url === path).length;

/** One real try, as the send stage makes it (an unreachable upstream is UPSTREAM_UNAVAILABLE). */
const tryUpstream = (path: string) => async (): Promise<UpstreamResponse> => {
  const t0 = performance.now();
  const res = await fetch(`${up.origin}${path}`).catch((e) => {
    throw new WardenError('UPSTREAM_UNAVAILABLE', 'The upstream API could not be reached.', { cause: e });
  });
  const body = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  return { status: res.status, contentType: 'application/json', headers: {}, body, truncated: false, ms };
};

/** Resilience under `policy` (YAML); `run` resolves to the upstream's status or the refusal's code. */
function setup(policy: string, o: ResilienceOptions = { originBreaker: false }) {
  const view = viewOf(catalog, policy);
  const changes: string[] = [];
  const resilient = createResilience({
    ...o,
    onBreaker: (name, state) => void changes.push(`${name} ${state}`),
  });
  const run = (name: string, path: string): Promise<number | string> => {
    const ctx = resolvedContext(view, { name });
    ctx.outbound = { method: 'GET', origin: up.origin, pathAndQuery: path, headers: {} };
    return resilient(ctx, tryUpstream(path)).then(
      (r) => r.status,
      (e) => (isWardenError(e) ? e.code : Promise.reject(e)),
    );
  };
  return { run, changes };
}

const WRITES = 'version: 1\nmode: read-write\nrules:\n  - match: { name: createItem }\n    enabled: true\n';

describe('resilience: retries', () => {
  it('retries a transient answer (503) of a read up to the attempts, and returns the last answer', async () => {
    const { run } = setup(
      'version: 1\nrules:\n  - match: { name: getPart }\n    retries: { attempts: 2, baseMs: 1 }\n    breaker: false\n',
    );
    expect(await run('getPart', '/503')).toBe(503);
    expect(hits('/503')).toBe(3);
  });

  it('never retries a 500 (not transient), a 4xx, or a write', async () => {
    const { run } = setup(
      `${WRITES}  - match: { name: getPart }\n    retries: { attempts: 3, baseMs: 1 }\n    breaker: false\n`,
    );
    expect(await run('getPart', '/500')).toBe(500);
    expect(hits('/500')).toBe(1);
    expect(await run('getPart', '/404')).toBe(404);
    expect(hits('/404')).toBe(1);
    // The policy gives writes no retries (evaluate.ts): a POST may have done its work before failing.
    expect(await run('createItem', '/502')).toBe(502);
    expect(hits('/502')).toBe(1);
  });
});

describe('resilience: circuit breakers', () => {
  const BREAKER =
    'version: 1\nrules:\n  - match: { name: getPart }\n    breaker: { failures: 3, halfOpenAfterSeconds: 1 }\n    retries: false\n';

  it('opens after the configured consecutive failures, then refuses at once with BREAKER_OPEN', async () => {
    const { run, changes } = setup(BREAKER);
    for (let i = 0; i < 3; i++) expect(await run('getPart', '/500')).toBe(500);
    expect(changes).toEqual(['tool:getPart open']);
    const before = up.requests.length;
    expect(await run('getPart', '/200')).toBe('BREAKER_OPEN');
    expect(up.requests.length).toBe(before);
  });

  it('counts only consecutive failures: an answer in between (a 4xx included) starts the count again', async () => {
    const { run, changes } = setup(BREAKER);
    for (const path of ['/500', '/500', '/404', '/500', '/500', '/200', '/500', '/500'])
      await run('getPart', path);
    expect(changes).toEqual([]);
    expect(await run('getPart', '/200')).toBe(200);
  });

  it('lets one probe through once half-open: a success closes it, a failure opens it again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { run, changes } = setup(BREAKER);
    for (let i = 0; i < 3; i++) await run('getPart', '/503');
    expect(await run('getPart', '/200')).toBe('BREAKER_OPEN');
    vi.setSystemTime(Date.now() + 1_000);
    expect(await run('getPart', '/500')).toBe(500);
    expect(await run('getPart', '/200')).toBe('BREAKER_OPEN');
    vi.setSystemTime(Date.now() + 1_000);
    expect(await run('getPart', '/200')).toBe(200);
    expect(await run('getPart', '/200')).toBe(200);
    expect(changes).toEqual([
      'tool:getPart open',
      'tool:getPart half-open',
      'tool:getPart open',
      'tool:getPart half-open',
      'tool:getPart closed',
    ]);
  });

  it('shares the origin breaker between the tools of one upstream', async () => {
    const { run, changes } = setup(
      `${WRITES}  - match: { name: getPart }\n    breaker: false\n    retries: false\n`,
      { originBreaker: { failures: 2, halfOpenAfterSeconds: 30 } },
    );
    expect([await run('getPart', '/502'), await run('getPart', '/502')]).toEqual([502, 502]);
    expect(changes).toEqual([`origin:${up.origin} open`]);
    const before = up.requests.length;
    expect(await run('createItem', '/200')).toBe('BREAKER_OPEN');
    expect(up.requests.length).toBe(before);
  });
});

describe('resilience: concurrency', () => {
  it('refuses a call over the tool’s concurrency at once with CONCURRENCY_LIMITED', async () => {
    const { run } = setup('version: 1\nrules:\n  - match: { name: getPart }\n    concurrency: 2\n');
    const first = [run('getPart', '/hold'), run('getPart', '/hold')];
    await waitFor(() => held.length === 2, { what: 'two calls held by the upstream' });
    expect(await run('getPart', '/hold')).toBe('CONCURRENCY_LIMITED');
    expect(hits('/hold')).toBe(2);
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    expect(await Promise.all(first)).toEqual([200, 200]);
    // The slots are free again.
    expect(await run('getPart', '/200')).toBe(200);
  });
});

describe('resilience: timeouts (cut by the send stage)', () => {
  it('counts a timed-out try against the breaker and never retries it', async () => {
    const changes: string[] = [];
    const send = createSend({
      timeoutMs: 100,
      originBreaker: false,
      onBreaker: (name, state) => void changes.push(`${name} ${state}`),
    });
    const view = viewOf(
      catalog,
      'version: 1\nrules:\n  - match: { name: getPart }\n    retries: { attempts: 3, baseMs: 1 }\n    breaker: { failures: 2, halfOpenAfterSeconds: 60 }\n',
    );
    const codeOfSend = async () => {
      const ctx = resolvedContext(view, { name: 'getPart' });
      ctx.outbound = { method: 'GET', origin: up.origin, pathAndQuery: '/hold', headers: {} };
      return send(ctx).then(
        () => 'OK',
        (e) => (isWardenError(e) ? e.code : Promise.reject(e)),
      );
    };
    const before = hits('/hold');
    try {
      expect(await codeOfSend()).toBe('UPSTREAM_TIMEOUT');
      expect(await codeOfSend()).toBe('UPSTREAM_TIMEOUT');
      // One try per call: a timeout is not retried (it would double the wait). The upstream may log
      // the second request a moment after the gateway gave up on it.
      await eventually(() => expect(hits('/hold') - before).toBe(2), { what: 'two requests upstream' });
      expect(changes).toEqual(['tool:getPart open']);
      expect(await codeOfSend()).toBe('BREAKER_OPEN');
      expect(hits('/hold') - before).toBe(2);
    } finally {
      for (const res of held.splice(0)) res.destroy();
      await send.close();
    }
  });
});
