/**
 * The exports of a CommonJS package loaded with `import()`: Node gives its named exports, the CLI
 * bundle only `default` (esbuild's split chunks of a CommonJS module export `default` alone). Same
 * rule as lib/undici.ts and observe/tracing.ts.
 */
export function cjsExports<T extends object>(m: T): T {
  const keys = Object.keys(m);
  return keys.length === 1 && keys[0] === 'default' ? ((m as { default: T }).default ?? m) : m;
}
