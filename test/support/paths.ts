import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The built CLI: end-to-end tests spawn it (run `npm run build` first). */
export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
/** The demo shop's OpenAPI document (its upstream is `startShop` in ./shop.ts). */
export const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;
/** Real-world specs shared by the workspace (GitHub, Stripe, Kubernetes…). */
export const SHARED_SPECS = new URL('../../../shared/specs/', import.meta.url).pathname;
/** Every spec of SHARED_SPECS, relative to it, with the `$ref` root a multi-file one needs. */
export const CORPUS: ReadonlyArray<readonly [file: string, refRoot?: string]> = [
  ['github-rest.json'],
  ['stripe.yaml'],
  ['kubernetes-swagger2.json'],
  ['digitalocean/specification/DigitalOcean-public.v2.yaml'],
  ['openai.yaml'],
  ['slack-web.json'],
  ['asana.yaml'],
  ['azure-storage-arm-2015-05-01-preview.json'],
  ['petstore-v3-swagger-api.yaml'],
  ['petstore-v3.yaml'],
  ['petstore-expanded-v3.yaml'],
  ['uspto-v3.yaml'],
  ['callback-example-v3.yaml'],
  ['link-example-v3.yaml'],
  ['petstore-swagger2.json'],
  ['petstore-separate-swagger2/spec/swagger.yaml', 'petstore-separate-swagger2'],
  ['webhook-example-v3.1.json'],
];

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
