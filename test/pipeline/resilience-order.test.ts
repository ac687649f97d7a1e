// The nesting order of the resilience layers (bulkhead ⊃ retry ⊃ origin breaker ⊃ tool breaker), which
// src/pipeline/resilience.ts writes by hand: each try counts against the breakers, and a retrying call
// holds its concurrency slot through its back-off.
import { afterEach, beforeAll, expect, it, vi } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import type { UpstreamResponse } from '../../src/pipeline/context.js';
import { createResilience } from '../../src/pipeline/resilience.js';
import { itemsCatalog, resolvedContext, viewOf } from '../support/pipeline.js';

let catalog: Catalog;
afterEach(() => {
  vi.restoreAllMocks();
});
beforeAll(async () => {
  catalog = await itemsCatalog();
});

const res = (status: number): UpstreamResponse => ({
  status,
  contentType: 'application/json',
  headers: {},
  body: Buffer.from('{}'),
  truncated: false,
  ms: 1,
});

it('breakers sit inside the retry: each try of one call counts against the tool breaker', async () => {
  const view = viewOf(
    catalog,
    'version: 1\nrules:\n  - match: { name: getPart }\n    retries: { attempts: 2, baseMs: 1 }\n    breaker: { failures: 3, halfOpenAfterSeconds: 60 }\n',
  );
  const changes: string[] = [];
  const resilient = createResilience({
    originBreaker: false,
    onBreaker: (n, s) => void changes.push(`${n} ${s}`),
  });
  const ctx = () => {
    const c = resolvedContext(view, { name: 'getPart' });
    c.outbound = { method: 'GET', origin: 'https://u.example', pathAndQuery: '/', headers: {} };
    return c;
  };
  let tries = 0;
  expect(
    (
      await resilient(ctx(), async () => {
        tries++;
        return res(503);
      })
    ).status,
  ).toBe(503);
  expect(tries).toBe(3);
  expect(changes).toEqual(['tool:getPart open']);
});

it('the bulkhead sits outside the retry: a call holds one slot through its back-off', async () => {
  const view = viewOf(
    catalog,
    'version: 1\nrules:\n  - match: { name: getPart }\n    concurrency: 1\n    retries: { attempts: 1, baseMs: 1000 }\n    breaker: false\n',
  );
  const resilient = createResilience({ originBreaker: false });
  const ctx = () => {
    const c = resolvedContext(view, { name: 'getPart' });
    c.outbound = { method: 'GET', origin: 'https://u.example', pathAndQuery: '/', headers: {} };
    return c;
  };
  // Decorrelated jitter can make a first back-off of almost 0: fixed, so the call is surely in it below.
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
  let n = 0;
  let tried!: () => void;
  const firstTry = new Promise<void>((r) => {
    tried = r;
  });
  const first = resilient(ctx(), async () => {
    if (n++ > 0) return res(200);
    tried();
    return res(503);
  });
  await firstTry;
  // The first try's failure reaches the retry in microtasks; its back-off (~0.9 s with this jitter) is a
  // timer due long after this one, and timers fire in the order they are due.
  await new Promise((r) => setTimeout(r, 20));
  const second = await resilient(ctx(), async () => res(200)).then(
    () => 'ran',
    (e) => (isWardenError(e) ? e.code : 'other'),
  );
  expect(second).toBe('CONCURRENCY_LIMITED');
  expect((await first).status).toBe(200);
});
