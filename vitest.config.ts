import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The spec cache stays off (a hit would hide the loader behaviour a test checks) and, where a
    // test turns it on, out of the real home (test/openapi/cache.test.ts chooses its own directory).
    env: {
      MCP_WARDEN_SPEC_CACHE: 'off',
      MCP_WARDEN_CACHE_DIR: join(tmpdir(), `mcp-warden-test-spec-cache-${process.pid}`),
      // The CLI's code cache (src/lib/code-cache.ts): shared by the run's CLI starts, out of the real home.
      MCP_WARDEN_CODE_CACHE_DIR: join(tmpdir(), `mcp-warden-test-code-cache-${process.pid}`),
    },
    // expect.poll waits for a final condition; on a loaded CI machine 1 s (the default) is too short.
    expect: { poll: { timeout: 10_000 } },
  },
});
