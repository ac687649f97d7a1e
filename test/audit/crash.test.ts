import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAuditVerify } from '../../src/cli/audit.js';
import { tempTree } from '../support/paths.js';
import { SHOP_SPEC, shopEnv, startShop } from '../support/shop.js';
import { onJsonLines, sendJson, serveArgs, spawnCli } from '../support/stdio.js';

describe('audit durability', () => {
  it('loses no acknowledged call when the gateway is killed with SIGKILL under load', async () => {
    const shop = await startShop();
    const dir = tempTree({
      'warden.yaml':
        // Limits far above the burst: this test is about the audit, not about rate limiting.
        'version: 1\nmode: read-write\nrateLimit: { perToolPrincipal: { calls: 100000, perSeconds: 60 }, perPrincipal: { calls: 100000, perSeconds: 60 } }\ndefaults: { concurrency: 1000 }\ncallers:\n  stdio: { scopes: [tools:read, tools:write] }\nrules:\n  - match: { name: createOrder }\n    enabled: true\n    rateLimit: { perToolPrincipal: { calls: 100000, perSeconds: 60 } }\n',
    });
    const audit = join(dir, 'audit.jsonl');
    const child = spawnCli(
      serveArgs({ spec: SHOP_SPEC, baseUrl: shop.url, policy: join(dir, 'warden.yaml'), auditFile: audit }),
      shopEnv(shop),
      'ignore',
    );
    const acked = new Set<string>();
    const markerOf = new Map<number, string>();
    let killed = false;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const initialized = new Promise<void>((resolve) => {
      onJsonLines(child.stdout, (m) => {
        const msg = m as { id?: number; result?: { isError?: boolean } };
        if (msg.id === 0) resolve();
        const marker = msg.id !== undefined ? markerOf.get(msg.id) : undefined;
        if (marker && msg.result && !msg.result.isError) acked.add(marker);
        if (!killed && acked.size >= 150) {
          killed = true;
          child.kill('SIGKILL');
        }
      });
    });
    const send = (m: object) => sendJson(child, m);
    send({
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'crash', version: '1' },
      },
    });
    await initialized;
    send({ method: 'notifications/initialized' });
    for (let n = 1; n <= 600; n++) {
      const marker = `mark-${n}`;
      markerOf.set(n, marker);
      send(
        n % 3 === 0
          ? {
              id: n,
              method: 'tools/call',
              params: {
                name: 'createOrder',
                arguments: { body: { customerId: 'c_1001', items: [{ sku: marker, quantity: 1 }] } },
              },
            }
          : { id: n, method: 'tools/call', params: { name: 'searchProducts', arguments: { q: marker } } },
      );
    }
    await done;
    await shop.close();
    expect(killed).toBe(true);

    const recorded = new Set<string>();
    for (const line of readFileSync(audit, 'utf8').split('\n')) {
      const r = (() => {
        try {
          return JSON.parse(line) as {
            kind?: string;
            args?: { q?: string; body?: { items?: Array<{ sku?: string }> } };
          };
        } catch {
          return undefined;
        }
      })();
      if (r?.kind !== 'call') continue;
      const m = r.args?.q ?? r.args?.body?.items?.[0]?.sku;
      if (m) recorded.add(m);
    }
    const lost = [...acked].filter((m) => !recorded.has(m));
    expect(acked.size).toBeGreaterThanOrEqual(150);
    // Killed mid-load: calls were still in flight.
    expect(acked.size).toBeLessThan(600);
    expect(lost).toEqual([]);
    // Killed without closing: the chain holds, the head anchor (which lags by at most a sync
    // interval) is reached, and the file says it was not closed.
    let out = '';
    const io = { stdout: (s: string) => (out += s), stderr: (s: string) => (out += s) };
    expect(await runAuditVerify(audit, {}, io)).toBe(0);
    expect(out).toContain('not closed (the writer may still be running');
    expect(out).toContain('the files reach their head anchor');
  }, 60_000);
});
