import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredConnection } from '../../src/model/connection.js';
import { PgVault } from '../../src/state/pg-vault.js';
import { FileVault, keyringFromRefs, vaultKey } from '../../src/state/vault.js';
import { tempTree } from '../support/helpers.js';

const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';
const OLD = vaultKey('old-key-old-key-old-key-old-key-0001');
const NEW = vaultKey('new-key-new-key-new-key-new-key-0002');

const conn = (principal: string, token = `at-${randomUUID()}`): StoredConnection => ({
  principal,
  upstream: '/petsAuth',
  issuer: 'https://as.example.test',
  scopes: ['pets:read'],
  createdAt: 1_700_000_000_000,
  expiresAt: 1_700_000_360_000,
  accessToken: token,
  refreshToken: `rt-${randomUUID()}`,
});

describe('the embedded vault', () => {
  const dir = tempTree({});
  const file = join(dir, 'vault.json');

  it('stores tokens sealed (no token at rest), and reads them back after a restart', async () => {
    const seen: string[] = [];
    const v = FileVault.open({ file, keyring: [OLD], onSecret: (s) => seen.push(...s) });
    const c = conn('jwt:i#alice');
    await v.put(c);
    await v.touch('jwt:i#alice', '/petsAuth', 1_700_000_100_000);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(c.accessToken);
    expect(text).not.toContain(c.refreshToken);
    expect(seen).toEqual(expect.arrayContaining([c.accessToken, c.refreshToken]));
    const again = FileVault.open({ file, keyring: [OLD] });
    expect(await again.get('jwt:i#alice', '/petsAuth')).toEqual({ ...c, lastUsedAt: 1_700_000_100_000 });
    expect(await again.list()).toEqual([
      {
        principal: 'jwt:i#alice',
        upstream: '/petsAuth',
        issuer: c.issuer,
        scopes: ['pets:read'],
        createdAt: c.createdAt,
        expiresAt: c.expiresAt,
        lastUsedAt: 1_700_000_100_000,
      },
    ]);
  });

  it('rotates: opened with [new, old] it re-seals every record with the new key; then the old key may go', async () => {
    const before = FileVault.open({ file, keyring: [OLD] });
    expect(before.keyIds()).toEqual([OLD.id]);
    const rotated = FileVault.open({ file, keyring: [NEW, OLD] });
    expect(rotated.keyIds()).toEqual([NEW.id]);
    const only = FileVault.open({ file, keyring: [NEW] });
    expect((await only.get('jwt:i#alice', '/petsAuth'))?.principal).toBe('jwt:i#alice');
    // Without the key that sealed it, the vault refuses to open (and names no token).
    expect(() => FileVault.open({ file, keyring: [OLD] })).toThrow(/not in the keyring/);
  });

  it("refuses a record moved to another user's row, and a tampered one", async () => {
    const text = readFileSync(file, 'utf8');
    const moved = text.replace('jwt:i#alice', 'jwt:i#mallory');
    writeFileSync(file, moved);
    expect(() => FileVault.open({ file, keyring: [NEW] })).toThrow(/failed to decrypt/);
    writeFileSync(file, '{"version":1,"records":"x"}');
    expect(() => FileVault.open({ file, keyring: [NEW] })).toThrow(/not a vault file/);
  });

  it('keeps the approved clients, and reads a record written before clients were kept', async () => {
    const f = join(tempTree({}), 'vault.json');
    const v = FileVault.open({ file: f, keyring: [OLD] });
    const c = { ...conn('jwt:i#cy'), clients: ['', 'claude-code'] };
    await v.put(c);
    expect(await FileVault.open({ file: f, keyring: [OLD] }).get(c.principal, c.upstream)).toEqual(c);
    // A vault file from before per-client consent: its records have no `clients`.
    const body = JSON.parse(readFileSync(f, 'utf8')) as { records: Array<Record<string, unknown>> };
    for (const r of body.records) delete r.clients;
    writeFileSync(f, JSON.stringify(body));
    const legacy = FileVault.open({ file: f, keyring: [OLD] });
    const { clients: _c, ...without } = c;
    expect(await legacy.get(c.principal, c.upstream)).toEqual(without);
    expect((await legacy.list())[0]).not.toHaveProperty('clients');
  });

  it('reads keys from env:/file: references and refuses short or missing ones', () => {
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, 'new-key-new-key-new-key-new-key-0002\n');
    const ring = keyringFromRefs([`file:${keyFile}`, 'env:OLD_KEY'], {
      OLD_KEY: 'old-key-old-key-old-key-old-key-0001',
    });
    expect(ring.map((k) => k.id)).toEqual([NEW.id, OLD.id]);
    expect(() => keyringFromRefs(['env:SHORT'], { SHORT: 'short' })).toThrow(/vault key 1 \(env:SHORT\)/);
    expect(() => keyringFromRefs(['env:UNSET'], {})).toThrow(/not set/);
  });
});

describe('the PostgreSQL vault', () => {
  const run = randomUUID();
  const vaults: PgVault[] = [];
  const openPg = async (keyring = [NEW, OLD] as const) => {
    const v = await PgVault.open({ url: PG_URL, keyring: [...keyring] as never });
    vaults.push(v);
    return v;
  };
  afterAll(async () => {
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query('DELETE FROM mcp_warden_connections WHERE principal LIKE $1', [`%${run}%`]);
    await db.end();
    await Promise.all(vaults.map((v) => v.close()));
  });

  it('stores sealed rows, lists, touches, deletes', async () => {
    const v = await openPg();
    const c = conn(`jwt:i#alice-${run}`);
    await v.put(c);
    expect(await v.get(c.principal, c.upstream)).toEqual(c);
    await v.touch(c.principal, c.upstream, 1_700_000_200_000);
    expect(await v.list({ principal: c.principal })).toEqual([
      expect.objectContaining({ principal: c.principal, lastUsedAt: 1_700_000_200_000 }),
    ]);
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const raw = JSON.stringify(
      (await db.query('SELECT * FROM mcp_warden_connections WHERE principal = $1', [c.principal])).rows,
    );
    await db.end();
    expect(raw).not.toContain(c.accessToken);
    expect(raw).not.toContain(c.refreshToken);
    expect(await v.delete(c.principal, c.upstream)).toBe(true);
    expect(await v.get(c.principal, c.upstream)).toBeUndefined();
  });

  it('keeps the approved clients; a row written before they were kept (NULL) reads without them', async () => {
    const v = await openPg();
    const c = { ...conn(`jwt:i#cy-${run}`), clients: ['', 'claude-code'] };
    await v.put(c);
    expect(await v.get(c.principal, c.upstream)).toEqual(c);
    expect((await v.list({ principal: c.principal }))[0]!.clients).toEqual(['', 'claude-code']);
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query('UPDATE mcp_warden_connections SET clients = NULL WHERE principal = $1', [c.principal]);
    await db.end();
    const { clients: _c, ...without } = c;
    expect(await v.get(c.principal, c.upstream)).toEqual(without);
    expect((await v.list({ principal: c.principal }))[0]).not.toHaveProperty('clients');
  });

  it('re-seals rows under an old key (on read, and all at once with rotate)', async () => {
    const old = await openPg([OLD] as never);
    const a = conn(`jwt:i#a-${run}`);
    const b = conn(`jwt:i#b-${run}`);
    await old.put(a);
    await old.put(b);
    const v = await openPg();
    expect(await v.get(a.principal, a.upstream)).toEqual(a);
    expect(await v.rotate()).toBeGreaterThanOrEqual(1);
    const fresh = await openPg([NEW] as never);
    expect(await fresh.get(b.principal, b.upstream)).toEqual(b);
  });

  it('with three instances finding the same token expired, one refreshes', async () => {
    const instances = [await openPg(), await openPg(), await openPg()];
    const c = conn(`jwt:i#carol-${run}`, 'stale');
    await instances[0]!.put(c);
    let refreshes = 0;
    // Each instance does what user-oauth does: under the lock, re-read; refresh only if still stale.
    const results = await Promise.all(
      instances.flatMap((v) =>
        [1, 2].map(() =>
          v.withRefreshLock(`${c.principal}\0${c.upstream}`, async () => {
            const now = (await v.get(c.principal, c.upstream))!;
            if (now.accessToken !== 'stale') return now.accessToken;
            refreshes++;
            const next = { ...now, accessToken: `fresh-${run}` };
            await v.put(next);
            return next.accessToken;
          }),
        ),
      ),
    );
    expect(refreshes).toBe(1);
    expect(new Set(results)).toEqual(new Set([`fresh-${run}`]));
  });
});
