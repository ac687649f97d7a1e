import type * as Undici from 'undici';

/**
 * undici, loaded at its first use rather than by every start (issue 22): it is about 0.7 MB of code
 * and some 60 ms of evaluation, and only an upstream call, an alert webhook or a token request needs
 * it, never the first `tools/list`. A failed load is not kept: the next use tries again, and the use
 * that failed fails (its caller's error path, never a silent success).
 */
let loading: Promise<typeof Undici> | undefined;

export function loadUndici(): Promise<typeof Undici> {
  loading ??= import('undici').then(named, (e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/**
 * undici is CommonJS: `import()` of it gives its named exports under Node, only `default` inside
 * the CLI bundle (as in observe/tracing.ts).
 */
function named<T extends object>(m: T): T {
  const keys = Object.keys(m);
  return keys.length === 1 && keys[0] === 'default' ? ((m as { default: T }).default ?? m) : m;
}
