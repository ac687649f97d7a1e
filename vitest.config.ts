import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // expect.poll waits for a final condition; on a loaded CI machine 1 s (the default) is too short.
    expect: { poll: { timeout: 10_000 } },
  },
});
