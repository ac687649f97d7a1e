import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The built CLI: end-to-end tests spawn it (run `npm run build` first). */
export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
/** The demo shop's OpenAPI document (its upstream is `startShop` in ./shop.ts). */
export const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;
/** Real-world specs shared by the workspace (GitHub, Stripe, Kubernetes…). */
export const SHARED_SPECS = new URL('../../../shared/specs/', import.meta.url).pathname;

/** Writes files (path → content; objects as JSON) into a fresh temp directory and returns it. */
export function tempTree(files: Record<string, string | object>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-test-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

/** A path named `name` in a fresh temp directory (the file itself is not created). */
export function tempPath(name = 'audit.jsonl'): string {
  return join(tempTree({}), name);
}
