import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the demo upstream is plain JavaScript
import { startShop } from '../../examples/shop/server.mjs';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { linesOfInstance, queryPg } from '../../src/audit/postgres.js';
import { verifyLines } from '../../src/audit/verify.js';
import { startGateway } from '../../src/server/serve.js';
import { tempTree } from '../support/helpers.js';

const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const SHOP_SPEC = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;

describe('PostgreSQL audit mirror (real local PostgreSQL)', () => {
  const run = randomBytes(4).toString('hex');
  afterAll(async () => {
    const pool = new pg.Pool({ connectionString: PG_URL });
    await pool.query('DELETE FROM mcp_warden_audit WHERE instance LIKE $1', [`test-${run}-%`]);
    await pool.end();
  });

  it('mirrors every record of several instances, chained per instance, queryable in one place', async () => {
    const shop = await startShop();
    const files: Record<string, string> = {};
    for (const name of ['a', 'b']) {
      const instance = `test-${run}-${name}`;
      const dir = tempTree({
        'warden.yaml': `version: 1\naudit:\n  postgres: env:PG_URL\n  instance: ${instance}\n  checkpointEvery: 5\n`,
      });
      files[instance] = join(dir, 'audit.jsonl');
      const gw = await startGateway({
        spec: SHOP_SPEC,
        baseUrl: shop.url,
        policy: join(dir, 'warden.yaml'),
        auditFile: files[instance],
        transport: { kind: 'http', port: 0 },
        logLevel: 'error',
        env: { MCP_WARDEN_CRED_SHOPKEY: shop.key, PG_URL },
      });
      const client = new Client(
        { name: `pg-${name}`, version: '1' },
        { versionNegotiation: { mode: 'legacy' } },
      );
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url!)));
      for (let i = 0; i < 12; i++)
        await client.callTool({ name: 'searchProducts', arguments: { q: `${name}-${i}` } });
      await client.close();
      await gw.close();
    }
    await shop.close();

    for (const [instance, file] of Object.entries(files)) {
      const lines = await linesOfInstance(PG_URL, instance);
      // The same lines as the instance's own file, in order, and the chain holds in the database.
      expect(lines).toEqual(readFileSync(file, 'utf8').trimEnd().split('\n'));
      expect(verifyLines([{ file: instance, lines }])).toMatchObject({ ok: true, records: 13 });
    }
    const calls = await queryPg(PG_URL, { kind: 'call', tool: 'searchProducts' });
    const mine = calls.filter((r) => String(r.instance).startsWith(`test-${run}-`));
    expect(mine).toHaveLength(24);
    expect(new Set(mine.map((r) => r.instance))).toEqual(new Set([`test-${run}-a`, `test-${run}-b`]));

    const cli = spawnSync(
      process.execPath,
      [BIN, 'audit', 'verify', '--db-env', 'PG_URL', '--instance', `test-${run}-a`],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', PG_URL } },
    );
    expect(cli.stdout).toContain('ok: 13 records');
    expect(cli.status).toBe(0);
  }, 60_000);

  it('fails calls closed when the mirror falls too far behind, instead of growing memory', () => {
    const file = join(tempTree({}), 'audit.jsonl');
    let accepting = true;
    const sink = openJsonlAudit(file, { mirror: { accepting: () => accepting, push: () => {} } });
    sink.write({ kind: 'control', time: new Date().toISOString(), actor: 't', action: 'mode' });
    accepting = false;
    expect(() =>
      sink.write({ kind: 'control', time: new Date().toISOString(), actor: 't', action: 'mode' }),
    ).toThrow(expect.objectContaining({ code: 'AUDIT_UNAVAILABLE' }));
  });
});
