import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { WardenError } from '../errors/index.js';
import { readSecretRef } from '../lib/secret-ref.js';
import type {
  Connection,
  ConnectionFilter,
  StoredConnection,
  TokenVault,
  UpstreamKey,
} from '../model/connection.js';

/**
 * The token vault's encryption, shared by the embedded file and PostgreSQL: AES-256-GCM, a random
 * 96-bit IV per record, the key id stored with each record. Only the tokens are sealed; the
 * connection's description (principal, upstream, scopes, times) stays readable so that listing and
 * `touch` need no key. The additional data is `principal NUL upstream`, so a sealed record moved to
 * another row (another user) fails to open instead of handing over a token.
 */

/** One vault key: its id (stored with each record) and the AES-256 key. */
export interface VaultKey {
  id: string;
  key: Buffer;
}

/** `[current, ...previous]`: records are sealed with the first, opened with whichever sealed them. */
export type Keyring = readonly [VaultKey, ...VaultKey[]];

/** A sealed token pair as stored. */
export interface SealedTokens {
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

const MIN_KEY_CHARS = 32;

/**
 * Builds the keyring from secret references (`env:`/`file:`), current first. Any value of at least
 * 32 characters works: the AES key is derived from it with HKDF-SHA256, and its id is a hash of the
 * derived key, so the id reveals nothing and the same secret always gets the same id.
 */
export function keyringFromRefs(refs: readonly string[], env: NodeJS.ProcessEnv): Keyring {
  if (refs.length === 0) throw new WardenError('CONFIG_INVALID', 'the token vault needs at least one key');
  const keys = refs.map((ref, i) => {
    const value = readSecretRef(ref, env);
    if (value === undefined || value.length < MIN_KEY_CHARS)
      throw new WardenError(
        'CONFIG_INVALID',
        `vault key ${i + 1} (${ref}) is not set or shorter than ${MIN_KEY_CHARS} characters`,
      );
    return vaultKey(value);
  });
  return keys as unknown as Keyring;
}

/** A key from its secret value (≥ 32 characters). */
export function vaultKey(secret: string): VaultKey {
  const key = Buffer.from(hkdfSync('sha256', secret, 'mcp-warden vault', 'aes-256-gcm', 32));
  const id = createHash('sha256').update('mcp-warden vault key id\0').update(key).digest('hex').slice(0, 16);
  return { id, key };
}

const aad = (principal: string, upstream: string) => Buffer.from(`${principal}\0${upstream}`, 'utf8');

export function seal(
  ring: Keyring,
  principal: string,
  upstream: string,
  tokens: { accessToken: string; refreshToken?: string },
): SealedTokens {
  const { id, key } = ring[0];
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(principal, upstream));
  const data = Buffer.concat([cipher.update(JSON.stringify(tokens), 'utf8'), cipher.final()]);
  return {
    kid: id,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

/**
 * Opens a sealed record. A record under a key no longer in the ring, or one that fails
 * authentication (tampered, or moved to another row), is an error that names neither token.
 */
export function open(
  ring: Keyring,
  principal: string,
  upstream: string,
  sealed: SealedTokens,
): { accessToken: string; refreshToken?: string } {
  const k = ring.find((x) => x.id === sealed.kid);
  if (!k)
    throw new WardenError(
      'CONFIG_INVALID',
      `a vault record is sealed with key ${sealed.kid}, which is not in the keyring (keep old keys listed until \`rotate\` ran)`,
    );
  try {
    const decipher = createDecipheriv('aes-256-gcm', k.key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(aad(principal, upstream));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    const text = Buffer.concat([
      decipher.update(Buffer.from(sealed.data, 'base64')),
      decipher.final(),
    ]).toString('utf8');
    const v = JSON.parse(text) as { accessToken: string; refreshToken?: string };
    return v.refreshToken !== undefined
      ? { accessToken: v.accessToken, refreshToken: v.refreshToken }
      : { accessToken: v.accessToken };
  } catch {
    throw new WardenError(
      'CONFIG_INVALID',
      'a vault record failed to decrypt (tampered, or not for this row)',
    );
  }
}

/** The description of a stored connection, without its tokens. */
export function describe(c: StoredConnection | (Connection & { sealed?: unknown })): Connection {
  const out: Connection = {
    principal: c.principal,
    upstream: c.upstream,
    issuer: c.issuer,
    scopes: [...c.scopes],
    createdAt: c.createdAt,
  };
  if (c.expiresAt !== undefined) out.expiresAt = c.expiresAt;
  if (c.lastUsedAt !== undefined) out.lastUsedAt = c.lastUsedAt;
  // Absent on records written before clients were kept: read as "no client approved yet".
  if (Array.isArray(c.clients)) out.clients = [...c.clients];
  return out;
}

export function matches(c: Connection, f: ConnectionFilter | undefined): boolean {
  return (
    (f?.principal === undefined || c.principal === f.principal) &&
    (f?.upstream === undefined || c.upstream === f.upstream)
  );
}

/**
 * In-process refresh locks: one promise chain per key. Enough for the embedded vault (one
 * instance); shared vaults add a cross-instance lock around it.
 */
export function localLocks() {
  const chains = new Map<string, Promise<unknown>>();
  return async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = chains.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => {});
    chains.set(key, tail);
    try {
      return await run;
    } finally {
      if (chains.get(key) === tail) chains.delete(key);
    }
  };
}

interface FileRecord extends Connection {
  sealed: SealedTokens;
}

interface VaultFile {
  version: 1;
  records: FileRecord[];
}

export interface FileVaultOptions {
  /** The vault file (default placement: `vault.json` in the spec's state folder, src/lib/state-dir.ts). */
  file: string;
  keyring: Keyring;
  /** Told every token value read or stored, so logs and results scrub it (redactor.addSecrets). */
  onSecret?: (values: string[]) => void;
}

/**
 * The embedded vault: one JSON file (mode 0600) of sealed records, read once when opened and
 * rewritten whole on each change (a temporary file renamed over it, so a crash leaves the old or the
 * new file, never half of one). Records sealed with an older key are re-sealed with the current key
 * when the file is opened, so rotation is: put the new key first, keep the old one listed, start
 * once; then the old key may go.
 */
export class FileVault implements TokenVault {
  private readonly records = new Map<string, FileRecord>();
  private readonly lock = localLocks();

  private constructor(private readonly o: FileVaultOptions) {}

  static open(o: FileVaultOptions): FileVault {
    const v = new FileVault(o);
    v.load();
    return v;
  }

  private static id(principal: string, upstream: string): string {
    return `${principal}\0${upstream}`;
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.o.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new WardenError('CONFIG_INVALID', `the token vault ${this.o.file} cannot be read`);
    }
    let parsed: VaultFile;
    try {
      parsed = JSON.parse(text) as VaultFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.records)) throw new Error('shape');
    } catch {
      throw new WardenError('CONFIG_INVALID', `the token vault ${this.o.file} is not a vault file`);
    }
    let stale = false;
    const current = this.o.keyring[0].id;
    for (const r of parsed.records) {
      const tokens = open(this.o.keyring, r.principal, r.upstream, r.sealed);
      this.announce(tokens);
      if (r.sealed.kid !== current) {
        r.sealed = seal(this.o.keyring, r.principal, r.upstream, tokens);
        stale = true;
      }
      this.records.set(FileVault.id(r.principal, r.upstream), r);
    }
    if (stale) this.save();
  }

  private announce(t: { accessToken: string; refreshToken?: string }): void {
    this.o.onSecret?.(t.refreshToken !== undefined ? [t.accessToken, t.refreshToken] : [t.accessToken]);
  }

  private save(): void {
    const body: VaultFile = { version: 1, records: [...this.records.values()] };
    mkdirSync(dirname(this.o.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.o.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(body, null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.o.file);
  }

  /** The key ids records are sealed with (for the rotation check and the docs' "may I drop the old key"). */
  keyIds(): string[] {
    return [...new Set([...this.records.values()].map((r) => r.sealed.kid))];
  }

  async get(principal: string, upstream: UpstreamKey): Promise<StoredConnection | undefined> {
    const r = this.records.get(FileVault.id(principal, upstream));
    if (!r) return undefined;
    return { ...describe(r), ...open(this.o.keyring, principal, upstream, r.sealed) };
  }

  async put(c: StoredConnection): Promise<void> {
    this.announce(c);
    const tokens =
      c.refreshToken !== undefined
        ? { accessToken: c.accessToken, refreshToken: c.refreshToken }
        : { accessToken: c.accessToken };
    this.records.set(FileVault.id(c.principal, c.upstream), {
      ...describe(c),
      sealed: seal(this.o.keyring, c.principal, c.upstream, tokens),
    });
    this.save();
  }

  async delete(principal: string, upstream: UpstreamKey): Promise<boolean> {
    const gone = this.records.delete(FileVault.id(principal, upstream));
    if (gone) this.save();
    return gone;
  }

  async list(filter?: ConnectionFilter): Promise<Connection[]> {
    return [...this.records.values()].filter((r) => matches(r, filter)).map(describe);
  }

  async touch(principal: string, upstream: UpstreamKey, at: number): Promise<void> {
    const r = this.records.get(FileVault.id(principal, upstream));
    if (!r) return;
    r.lastUsedAt = at;
    this.save();
  }

  withRefreshLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.lock(key, fn);
  }

  async close(): Promise<void> {}
}
