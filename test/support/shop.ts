import { readFileSync, writeFileSync } from 'node:fs';
// @ts-expect-error: the demo upstream is plain JavaScript
import { startShop as startDemoShop } from '../../examples/shop/server.mjs';

export { SHOP_SPEC } from './paths.js';

/** The demo shop (examples/shop), a real upstream recording every request that reached it. */
export interface Shop {
  url: string;
  /** The key the shop expects in X-Shop-Key: the gateway's upstream credential. */
  key: string;
  requests: Array<{ method: string; url: string; headers: Record<string, string> }>;
  close(): Promise<void>;
}

export function startShop(): Promise<Shop> {
  return startDemoShop();
}

/** The gateway's environment for the shop: its credential, and whatever else is given. */
export const shopEnv = (shop: Shop, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  MCP_WARDEN_CRED_SHOPKEY: shop.key,
  ...extra,
});

/** The admin token the policies below read from `env:ADMIN_TOKEN`. */
export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

/**
 * A policy for the shop, one YAML line per entry: `mode: read-write`, then `extra` (callers, admin…),
 * then `rules:` enabling createOrder (hidden by default as a write) followed by `rules`.
 */
export function shopPolicy(extra: string[] = [], rules: string[] = []): string {
  return [
    'version: 1',
    'mode: read-write',
    ...extra,
    'rules:',
    '  - match: { name: createOrder }',
    '    enabled: true',
    ...rules,
    '',
  ].join('\n');
}

/** The policy lines that turn the admin port on with ADMIN_TOKEN. */
export const ADMIN_LINES = ['admin:', '  token: env:ADMIN_TOKEN'];

/**
 * A "rug pull" on a copy of the shop's spec: searchProducts keeps its name but gets a new summary
 * (`summary`), which a reload must hold back until approved. Returns the text before the change.
 */
export function rugPull(specFile: string, summary: string): string {
  const original = readFileSync(specFile, 'utf8');
  writeFileSync(specFile, original.replace('summary: Search the product catalogue', `summary: ${summary}`));
  return original;
}
