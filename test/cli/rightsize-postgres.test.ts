import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRightsize } from '../../src/cli/rightsize.js';
import type { WardenError } from '../../src/errors/index.js';
import { startShopGateway } from '../support/gateway.js';
import { SHOP_SPEC } from '../support/paths.js';
import { changesOf, EXPECTED, io, KEYS, ok, POLICY, recordTraffic } from '../support/rightsize.js';
import { startShop } from '../support/shop.js';

const ADMIN_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

// `audit rightsize` reads every instance of the mirror by default: each test gets a database of its
// own, so that other tests' instances (and their deliberately broken chains) are not read.
const DB = `mcp_warden_rs_${randomBytes(4).toString('hex')}`;
const PG_URL = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  return u.toString();
})();

async function admin(sql: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: ADMIN_URL, max: 1 });
  try {
    await pool.query(sql);
  } finally {
    await pool.end();
  }
}

describe('audit rightsize on the PostgreSQL mirror (real local PostgreSQL)', () => {
  beforeAll(() => admin(`CREATE DATABASE ${DB}`));
  afterAll(() => admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));

  it("reads every instance by default (not only the policy's audit.instance), warns when --instance leaves others out, and refuses a broken mirrored chain", async () => {
    const shop = await startShop();
    const env = process.env.PG_URL;
    try {
      // Instance gw-a records the shared traffic; gw-b, another replica, serves the idle key one read.
      const fx = await recordTraffic(shop, `${POLICY}audit:\n  postgres: env:PG_URL\n  instance: gw-a\n`, {
        PG_URL,
      });
      const b = await startShopGateway({
        shop,
        policy: `${POLICY}audit:\n  postgres: env:PG_URL\n  instance: gw-b\n`,
        env: { SPARE_SHOP_KEY: 'spare', PG_URL },
      });
      const idle = await b.connect({ token: KEYS.idle.key });
      ok(await idle.callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } }));
      await b.close();
      process.env.PG_URL = PG_URL;

      // No file named: the policy says the audit is in PostgreSQL; its audit.instance (gw-a) does not
      // narrow it: the idle key's read through gw-b counts, and its scope is kept.
      const all = io();
      await runRightsize(undefined, { policy: fx.policyFile, spec: SHOP_SPEC, since: '1d' }, all);
      expect(all.out).toContain('of PostgreSQL (2 instance(s): gw-a, gw-b), verified');
      expect(changesOf(all.out)).toEqual(EXPECTED.filter((c) => !c.includes('key:idle')));
      expect(all.out).not.toContain('WARNING');

      // Narrowed on request (--instance): the same changes as from gw-a's file, and a loud warning.
      const named = io();
      await runRightsize(
        undefined,
        {
          policy: fx.policyFile,
          spec: SHOP_SPEC,
          since: '1d',
          dbEnv: 'PG_URL',
          instance: 'gw-a',
          write: join(fx.dir, 't.yaml'),
        },
        named,
      );
      expect(named.out).toContain('of PostgreSQL (1 instance(s): gw-a), verified');
      expect(changesOf(named.out)).toEqual(EXPECTED);
      const warning =
        'PostgreSQL holds 1 other instance(s) (gw-b) that --instance gw-a leaves out: grants used only through them are proposed for removal; drop --instance to read every instance';
      expect(named.out).toContain(`# WARNING: ${warning}\n`);
      expect(named.err).toContain(`WARNING: ${warning}\n`);

      // An instance the mirror does not hold: said too.
      const none = io();
      await runRightsize(
        undefined,
        { policy: fx.policyFile, spec: SHOP_SPEC, dbEnv: 'PG_URL', instance: 'gw-c' },
        none,
      );
      expect(none.out).toContain('# WARNING: PostgreSQL holds no record of the instance gw-c (--instance)');
      expect(none.out).toContain('# no change proposed');

      // A mirrored record rewritten in the database: the chain breaks there, and nothing is proposed.
      const pool = new pg.Pool({ connectionString: PG_URL });
      try {
        const { rowCount } = await pool.query(
          `UPDATE mcp_warden_audit SET line = replace(line, '"decision":"denied"', '"decision":"allowed"')
           WHERE instance = 'gw-a' AND code = 'APPROVAL_PENDING' AND kind = 'call'`,
        );
        expect(rowCount).toBe(1);
      } finally {
        await pool.end();
      }
      const broken = io();
      const err = await runRightsize(undefined, { policy: fx.policyFile, spec: SHOP_SPEC }, broken).catch(
        (e: unknown) => e,
      );
      expect((err as WardenError).code).toBe('AUDIT_BROKEN');
      expect((err as WardenError).message).toContain('db:gw-a');
      expect(broken.out).toBe('');
    } finally {
      if (env === undefined) delete process.env.PG_URL;
      else process.env.PG_URL = env;
      await shop.close();
    }
  }, 120_000);
});
