import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { PgVault } from '../../src/state/pg-vault.js';
import { vaultKey } from '../../src/state/vault.js';

const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

/**
 * The PostgreSQL vault's refresh lock under load in one instance (its basic behaviour, and across
 * instances, is in vault.test.ts and test/e2e/user-oauth-fleet.test.ts).
 */
describe('the PostgreSQL vault refresh lock', () => {
  const run = randomBytes(4).toString('hex');
  const vaults: PgVault[] = [];
  afterAll(async () => {
    for (const v of vaults) await v.close();
  });

  it('many users refreshing at once on one instance all finish (lock holders do not starve their own queries)', async () => {
    const v = await PgVault.open({ url: PG_URL, keyring: [vaultKey('k'.repeat(40))] });
    vaults.push(v);
    // More refreshes at once than either pool has connections; each re-reads under its lock, as user-oauth does.
    const users = Array.from({ length: 12 }, (_, i) => `jwt:i#crowd-${i}-${run}`);
    const done = await Promise.all(
      users.map((u) =>
        v.withRefreshLock(`${u}\0/petsAuth`, async () => {
          await v.get(u, '/petsAuth');
          return u;
        }),
      ),
    );
    expect(done).toEqual(users);
  }, 20_000);

  it('a refresh that throws releases its lock for the next one', async () => {
    const [a, b] = await Promise.all(
      [1, 2].map(() => PgVault.open({ url: PG_URL, keyring: [vaultKey('k'.repeat(40))] })),
    );
    vaults.push(a!, b!);
    const key = `jwt:i#thrower-${run}\0/petsAuth`;
    await expect(
      a!.withRefreshLock(key, async () => {
        throw new Error('the authorization server answered nonsense');
      }),
    ).rejects.toThrow('nonsense');
    expect(await b!.withRefreshLock(key, async () => 'next')).toBe('next');
  });
});
