import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openJsonlAudit, sha256 } from '../../src/audit/jsonl.js';
import { linesOfInstance, queryPg } from '../../src/audit/postgres.js';
import { verifyLines } from '../../src/audit/verify.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import { startShopGateway } from '../support/gateway.js';
import { tempPath } from '../support/paths.js';
import { startShop } from '../support/shop.js';
import { runCli } from '../support/stdio.js';

const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

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
      const fx = await startShopGateway({
        shop,
        policy: `version: 1\naudit:\n  postgres: env:PG_URL\n  instance: ${instance}\n  checkpointEvery: 5\n`,
        env: { PG_URL },
      });
      files[instance] = fx.auditFile;
      const client = await fx.connect({ name: `pg-${name}` });
      for (let i = 0; i < 12; i++)
        await client.callTool({ name: 'searchProducts', arguments: { q: `${name}-${i}` } });
      await fx.close();
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

    const cli = runCli(['audit', 'verify', '--db-env', 'PG_URL', '--instance', `test-${run}-a`], { PG_URL });
    expect(cli.stdout).toContain('ok: 13 records');
    expect(cli.code).toBe(0);
  }, 60_000);

  it('finds records cut off the file that the database mirror holds (the mirror anchors the head)', async () => {
    const instance = `test-${run}-cut`;
    const fx = await startShopGateway({
      policy: `version: 1\naudit:\n  postgres: env:PG_URL\n  instance: ${instance}\n`,
      env: { PG_URL },
    });
    const client = await fx.connect({ name: 'pg-cut' });
    for (let i = 0; i < 6; i++)
      await client.callTool({ name: 'searchProducts', arguments: { q: `cut-${i}` } });
    await fx.close();
    const file = fx.auditFile;
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    const kept = all.slice(0, -3);
    writeFileSync(file, `${kept.join('\n')}\n`);
    // Without a signing key, whoever cuts the file can rewrite the head file to match the cut...
    const last = kept.at(-1)!;
    const head = { seq: JSON.parse(last).seq, head: sha256(last), time: new Date().toISOString() };
    writeFileSync(`${file}.head`, JSON.stringify(head));
    process.env.PG_URL = PG_URL;
    let out = '';
    const io = { stdout: (s: string) => (out += s), stderr: (s: string) => (out += s) };
    expect(await runAuditVerify(file, {}, io)).toBe(0);
    // ...but not the database: verifying the file against the mirror finds the cut.
    out = '';
    expect(await runAuditVerify(file, { dbEnv: 'PG_URL', instance }, io)).toBe(1);
    expect(out).toContain(
      `the database mirror (instance ${instance}) says records up to seq ${all.length} were written, but the files end at seq ${kept.length}: records ${kept.length + 1}–${all.length} were cut off the end`,
    );
  }, 60_000);

  it('fails calls closed when the mirror falls too far behind, instead of growing memory', () => {
    const file = tempPath();
    let accepting = true;
    const sink = openJsonlAudit(file, { mirror: { accepting: () => accepting, push: () => {} } });
    sink.write({ kind: 'control', time: new Date().toISOString(), actor: 't', action: 'mode' });
    accepting = false;
    expect(() =>
      sink.write({ kind: 'control', time: new Date().toISOString(), actor: 't', action: 'mode' }),
    ).toThrow(expect.objectContaining({ code: 'AUDIT_UNAVAILABLE' }));
  });
});
