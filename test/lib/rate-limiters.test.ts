import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as flexible from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from '../../src/lib/rate-limiters.js';

// The gateway takes rate-limiter-flexible's limiters from their own files, not its index, which
// requires every store the package supports (issue 22: the guard stages load them at a first call).
// They must stay the classes the package exports, so that a refusal is still told by
// `instanceof RateLimiterRes` (pipeline/limit.ts, admin/token-guard.ts).

const ROOT = new URL('../../', import.meta.url).pathname;

describe("rate-limiter-flexible's parts", () => {
  it('are the very classes the package exports (a moved file fails here)', () => {
    expect(RateLimiterMemory).toBe(flexible.RateLimiterMemory);
    expect(RateLimiterRedis).toBe(flexible.RateLimiterRedis);
    expect(RateLimiterRes).toBe(flexible.RateLimiterRes);
  });

  it('refuse past the limit with a RateLimiterRes, in a process that never loads the index', () => {
    // The built module (tsc output) in a fresh process: no other store's module is required.
    const script = `
      const { RateLimiterMemory, RateLimiterRes } = await import(${JSON.stringify(join(ROOT, 'dist/lib/rate-limiters.js'))});
      const limiter = new RateLimiterMemory({ points: 1, duration: 60 });
      await limiter.consume('k');
      const refused = await limiter.consume('k').then(() => undefined, (e) => e);
      const { createRequire } = await import('node:module');
      const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
      const index = require.resolve('rate-limiter-flexible');
      const mongo = require.resolve('rate-limiter-flexible/lib/RateLimiterMongo.js');
      console.log(JSON.stringify({
        refused: refused instanceof RateLimiterRes,
        retryMs: refused.msBeforeNext > 0,
        indexLoaded: index in require.cache,
        mongoLoaded: mongo in require.cache,
      }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({
      refused: true,
      retryMs: true,
      indexLoaded: false,
      mongoLoaded: false,
    });
  });
});
