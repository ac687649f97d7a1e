// Bundles the dashboard (ui/) into dist/ui with esbuild: one script, one stylesheet, one page, no CDN.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const out = new URL('../dist/ui/', import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: new URL('../ui/src/main.tsx', import.meta.url).pathname },
  outdir: out.pathname,
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(new URL('../ui/index.html', import.meta.url), new URL('index.html', out));
