import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import type { AuthMethod } from '../../src/model/principal.js';
import { createLimit } from '../../src/pipeline/limit.js';
import {
  codeOf,
  itemsCatalog,
  memoryAudit,
  pipelineFor,
  resolvedContext,
  viewOf,
} from '../support/pipeline.js';

/** The limit stage on its own, in memory (one process); Redis-shared limits are in test/e2e/scale. */
let catalog: Catalog;
beforeAll(async () => {
  catalog = await itemsCatalog();
});
// Fake clock (Date only): the buckets refill by the clock, and "retry after" is then exact.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

const caller = (id: string) => ({ id, scopes: ['tools:read', 'tools:write'], via: 'api-key' as AuthMethod });

/** A limit stage under `policy`, and a way to call it as `who` for a tool; resolves to OK or the code. */
function limited(policy: string) {
  const view = viewOf(catalog, policy);
  const scopes: string[] = [];
  const limit = createLimit({ onLimited: (scope) => void scopes.push(scope) });
  const errors: WardenError[] = [];
  const run = async (who: string, name = 'getPart'): Promise<string> => {
    try {
      await limit(resolvedContext(view, { name, principal: caller(who) }));
      return 'OK';
    } catch (e) {
      if (!isWardenError(e)) throw e;
      errors.push(e);
      return e.code;
    }
  };
  return { run, scopes, errors };
}

const times = async (n: number, f: () => Promise<string>) => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
};

describe('limit stage: rates', () => {
  it('admits N calls per caller and tool, refuses the next with RATE_LIMITED and when to retry', async () => {
    const { run, scopes, errors } = limited(
      'version: 1\nrules:\n  - match: { name: getPart }\n    rateLimit: { perToolPrincipal: { calls: 3, perSeconds: 60 } }\n',
    );
    expect(await times(4, () => run('alice'))).toEqual(['OK', 'OK', 'OK', 'RATE_LIMITED']);
    expect(errors[0]!.message).toBe(
      'Rate limit reached for getPart (3 calls per 60 s for this caller and tool). Retry after 60 s.',
    );
    expect(errors[0]!.details).toEqual(['retry-after: 60']);
    expect(scopes).toEqual(['tool-principal']);
    // Another caller has a bucket of its own.
    expect(await run('bob')).toBe('OK');
  });

  it('shares a per-tool limit between all callers', async () => {
    const { run, scopes } = limited(
      'version: 1\nrules:\n  - match: { name: getPart }\n    rateLimit: { perTool: { calls: 2, perSeconds: 10 } }\n',
    );
    expect([await run('alice'), await run('bob'), await run('carol')]).toEqual(['OK', 'OK', 'RATE_LIMITED']);
    expect(scopes).toEqual(['tool']);
  });

  it('counts a per-caller limit across the tools it covers', async () => {
    const { run, scopes, errors } = limited(
      [
        'version: 1',
        'mode: read-write',
        'rateLimit: { perPrincipal: { calls: 2, perSeconds: 60 } }',
        'rules:',
        '  - match: { name: createItem }',
        '    enabled: true',
        '  - match: { name: postForm }',
        '    enabled: true',
      ].join('\n'),
    );
    expect(await run('alice', 'createItem')).toBe('OK');
    expect(await run('alice', 'postForm')).toBe('OK');
    expect(await run('alice', 'createItem')).toBe('RATE_LIMITED');
    expect(errors[0]!.message).toContain('(2 calls per 60 s for this caller)');
    expect(scopes).toEqual(['principal']);
    expect(await run('bob', 'postForm')).toBe('OK');
  });

  it('admits calls again once the window has passed', async () => {
    const { run } = limited(
      'version: 1\nrules:\n  - match: { name: getPart }\n    rateLimit: { perToolPrincipal: { calls: 1, perSeconds: 5 } }\n',
    );
    expect([await run('alice'), await run('alice')]).toEqual(['OK', 'RATE_LIMITED']);
    vi.advanceTimersByTime(4_000);
    expect(await run('alice')).toBe('RATE_LIMITED');
    vi.advanceTimersByTime(1_001);
    expect(await run('alice')).toBe('OK');
  });

  it('applies the secure defaults when the policy sets no limit (120 reads per minute per caller and tool)', async () => {
    const { run } = limited('version: 1');
    const results = await times(121, () => run('alice'));
    expect(results.slice(0, 120).every((r) => r === 'OK')).toBe(true);
    expect(results[120]).toBe('RATE_LIMITED');
  });
});

describe('limit stage in the pipeline', () => {
  it('refuses a caller over its limit before its arguments are validated, and audits the refusal', async () => {
    const audit = memoryAudit();
    const pipeline = pipelineFor(catalog, {
      policy:
        'version: 1\nrules:\n  - match: { name: getPart }\n    rateLimit: { perToolPrincipal: { calls: 1, perSeconds: 60 } }\n',
      audit,
    });
    // Invalid arguments (no id, part is not an integer): the first call is refused by validation…
    const bad = { part: 'not-a-number' };
    const call = () => pipeline.call({ name: 'getPart', arguments: bad, principal: caller('mallory') });
    expect(codeOf(await call())).toBe('INVALID_ARGUMENT');
    // …the second never gets there: the limit stage refuses it first, whatever its arguments.
    expect(codeOf(await call())).toBe('RATE_LIMITED');
    const calls = audit.records.filter((r) => r.kind === 'call');
    expect(calls.map((r) => 'code' in r && r.code)).toEqual(['INVALID_ARGUMENT', 'RATE_LIMITED']);
    expect(calls.every((r) => r.kind === 'call' && r.decision === 'denied' && !r.upstream)).toBe(true);
    await pipeline.close();
  });
});
