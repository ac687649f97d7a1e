// The demo shop as the upstream of a bench, and a policy that lifts the rate limits (the defaults,
// 120 calls a minute per caller and tool, would stop a benchmark). Shared by the stdio and pipeline
// benches.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SHOP_KEY = 'bench-shop-key-0123456789';
const root = new URL('../..', import.meta.url).pathname;

/** Writes `policy.yaml` in `dir` with the rate limits lifted (per `perSeconds`); returns its path. */
export function liftedPolicy(dir, perSeconds = 60) {
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    `version: 1\nrateLimit: { perToolPrincipal: { calls: 1000000, perSeconds: ${perSeconds} }, perPrincipal: { calls: 1000000, perSeconds: ${perSeconds} } }\ndefaults: { concurrency: 1000 }\n`,
  );
  return file;
}

/**
 * Starts examples/shop on a random port in [portBase, portBase + 500) and waits until it listens;
 * resolves to the child (killed when this process exits) and the API's base URL.
 */
export async function startShopUpstream(portBase) {
  const port = portBase + Math.floor(Math.random() * 500);
  const shop = spawn(process.execPath, [`${root}examples/shop/server.mjs`, String(port)], {
    env: { ...process.env, SHOP_KEY },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  process.on('exit', () => shop.kill());
  await new Promise((resolve, reject) => {
    let err = '';
    shop.stderr.on('data', (d) => {
      err += d;
      if (/shop API at/.test(err)) resolve();
    });
    shop.on('exit', (c) => reject(new Error(`shop exited ${c}: ${err}`)));
  });
  return { child: shop, url: `http://127.0.0.1:${port}/v1` };
}
