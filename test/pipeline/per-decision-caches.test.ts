import type { ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import { createBuildRequest } from '../../src/pipeline/build-request.js';
import type { CallContext, UpstreamResponse } from '../../src/pipeline/context.js';
import { createLimit } from '../../src/pipeline/limit.js';
import { createResilience } from '../../src/pipeline/resilience.js';
import { createResolve } from '../../src/pipeline/resolve.js';
import { parseBaseUrl } from '../../src/upstream/base-url.js';
import { catalogOf, minimalSpec, startUpstream } from '../support/helpers.js';
import { contextFor, itemsCatalog, resolvedContext, toolNamed, viewOf } from '../support/pipeline.js';
import { waitFor } from '../support/wait.js';

/**
 * Stages compile per tool decision what used to be worked out on every call (issue 22): the resolved
 * decision, the rate limiters, the wrapped resilience policy, a placeholder-free path. A decision is
 * immutable, and a policy change (or a toggle) builds a new view with new decisions, so each cache
 * must follow the view, and state that must outlive a reload (budgets, breakers) must still do so.
 */
let catalog: Catalog;
beforeAll(async () => {
  catalog = await itemsCatalog();
});

const caller = { id: 'alice', scopes: ['tools:read'], via: 'api-key' as const };
const codeOr = async (p: Promise<unknown>, ok = 'OK'): Promise<string> => {
  try {
    await p;
    return ok;
  } catch (e) {
    if (isWardenError(e)) return e.code;
    throw e;
  }
};

describe('resolve: the decision of a view entry, made once', () => {
  it('gives every call of one view the same frozen decision, and the next view its own', () => {
    let view = viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    maxItems: 5\n');
    const resolve = createResolve({ view: () => view });
    const a = contextFor({ name: 'getPart' });
    const b = contextFor({ name: 'getPart' });
    resolve(a);
    resolve(b);
    expect(b.decision).toBe(a.decision);
    expect(Object.isFrozen(a.decision)).toBe(true);
    expect(a.decision).toMatchObject({ exposed: true, limits: { maxItems: 5 } });
    expect(a.decision!.policyVersion).toBe(view.policyVersion);
    // What the spread made before: the entry's fields, its limits and the view's version.
    const entry = view.get('getPart')!;
    expect({ ...a.decision! }).toEqual({
      ...entry,
      limits: entry.decision.limits,
      policyVersion: view.policyVersion,
    });

    // A policy change: a new view, whose decision is read at once by the next call.
    view = viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    maxItems: 2\n');
    const c = contextFor({ name: 'getPart' });
    resolve(c);
    expect(c.decision).not.toBe(a.decision);
    expect(c.decision!.limits.maxItems).toBe(2);
  });

  it('applies a toggle to the very next call (a new view, a new decision)', () => {
    let view = viewOf(catalog);
    const resolve = createResolve({ view: () => view });
    const before = contextFor({ name: 'getPart' });
    resolve(before);
    expect(before.decision!.exposed).toBe(true);
    view = viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    enabled: false\n');
    const after = contextFor({ name: 'getPart' });
    resolve(after);
    expect(after.decision!.exposed).toBe(false);
  });

  it('refuses a frozen decision being changed by a stage (a TypeError: the call fails closed)', () => {
    const view = viewOf(catalog);
    const resolve = createResolve({ view: () => view });
    const ctx = contextFor({ name: 'getPart' });
    resolve(ctx);
    expect(() => {
      (ctx.decision as { exposed: boolean }).exposed = false;
    }).toThrow(TypeError);
  });
});

describe('limit: the limiters of a decision, found once', () => {
  const rate = (calls: number) =>
    `version: 1\nrules:\n  - match: { name: getPart }\n    rateLimit: { perToolPrincipal: { calls: ${calls}, perSeconds: 600 } }\n`;

  it('keeps a budget across a reload to the same rates, and applies new rates at once', async () => {
    const limit = createLimit();
    const call = (view: ReturnType<typeof viewOf>) =>
      codeOr(Promise.resolve(limit(resolvedContext(view, { name: 'getPart', principal: caller }))));
    const first = viewOf(catalog, rate(2));
    expect([await call(first), await call(first), await call(first)]).toEqual(['OK', 'OK', 'RATE_LIMITED']);
    // Reloaded to the same text: new decision objects, the same budget (used up).
    const same = viewOf(catalog, rate(2));
    expect(same.get('getPart')!.decision).not.toBe(first.get('getPart')!.decision);
    expect(await call(same)).toBe('RATE_LIMITED');
    // A higher rate is another limiter: admitted at once.
    const higher = viewOf(catalog, rate(5));
    expect(await call(higher)).toBe('OK');
  });
});

describe('resilience: the wrapped policy of a decision, made once', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const held: ServerResponse[] = [];
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      if (req.url === '/hold') return void held.push(res);
      const status = Number(req.url?.slice(1)) || 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
    return () => up.close();
  });
  const attempt = (path: string) => async (): Promise<UpstreamResponse> => {
    const res = await fetch(`${up.origin}${path}`);
    const body = Buffer.from(await res.arrayBuffer());
    return {
      status: res.status,
      contentType: 'application/json',
      headers: {},
      body,
      truncated: false,
      ms: 1,
    };
  };
  const ctxOf = (view: ReturnType<typeof viewOf>): CallContext => {
    const ctx = resolvedContext(view, { name: 'getPart', principal: caller });
    ctx.outbound = { method: 'GET', origin: up.origin, pathAndQuery: '/', headers: {} };
    return ctx;
  };
  /** The upstream's status, or the code of the refusal. */
  const run = async (
    resilient: ReturnType<typeof createResilience>,
    view: ReturnType<typeof viewOf>,
    path: string,
  ): Promise<string> => {
    try {
      return String((await resilient(ctxOf(view), attempt(path))).status);
    } catch (e) {
      if (isWardenError(e)) return e.code;
      throw e;
    }
  };

  it('keeps an open breaker open across a reload to the same settings', async () => {
    const policy =
      'version: 1\nrules:\n  - match: { name: getPart }\n    breaker: { failures: 2, halfOpenAfterSeconds: 600 }\n';
    const resilient = createResilience({ originBreaker: false });
    const first = viewOf(catalog, policy);
    const seen = [await run(resilient, first, '/500'), await run(resilient, first, '/500')];
    expect(seen).toEqual(['500', '500']);
    expect(await run(resilient, first, '/200')).toBe('BREAKER_OPEN');
    // New decision objects, the same breaker.
    expect(await run(resilient, viewOf(catalog, policy), '/200')).toBe('BREAKER_OPEN');
    // No breaker in the new policy: calls go through at once.
    expect(
      await run(
        resilient,
        viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    breaker: false\n'),
        '/200',
      ),
    ).toBe('200');
  });

  it('applies a new concurrency limit at the next call after a reload', async () => {
    const resilient = createResilience({ originBreaker: false });
    const one = viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    concurrency: 1\n');
    const pending = run(resilient, one, '/hold');
    await waitFor(() => held.length === 1, { what: 'the first call held by the upstream' });
    expect(await run(resilient, one, '/200')).toBe('CONCURRENCY_LIMITED');
    const two = viewOf(catalog, 'version: 1\nrules:\n  - match: { name: getPart }\n    concurrency: 2\n');
    expect(await run(resilient, two, '/200')).toBe('200');
    held.shift()!.writeHead(200).end('{}');
    expect(await pending).toBe('200');
  });
});

describe('build: a path without placeholders, built once', () => {
  it('sends the same path every call, and refuses a dot segment in the spec text every call', async () => {
    const c = await catalogOf(
      minimalSpec({
        '/v1/things/list': {
          get: { operationId: 'listThings', responses: { '200': { description: 'ok' } } },
        },
        '/v1/a/%2e%2E/b': { get: { operationId: 'dotty', responses: { '200': { description: 'ok' } } } },
      }),
    );
    const target = parseBaseUrl('https://api.example.com/base', 'test');
    const build = createBuildRequest({ targets: new Map(c.tools.map((t) => [t, target])) });
    const view = viewOf(c);
    for (let i = 0; i < 2; i++) {
      const ctx = resolvedContext(view, { name: 'listThings' });
      ctx.args = {};
      build(ctx);
      expect(ctx.request).toMatchObject({ method: 'GET', path: '/base/v1/things/list', query: '' });
    }
    for (let i = 0; i < 2; i++) {
      const ctx = resolvedContext(
        viewOf(c, 'version: 1\nrules:\n  - match: { name: dotty }\n    enabled: true\n'),
        {
          name: 'dotty',
        },
      );
      ctx.tool = toolNamed(c, 'dotty');
      ctx.args = {};
      expect(() => build(ctx)).toThrow(/a path argument may not be '\.' or '\.\.'/);
    }
  });
});
