import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';

/**
 * The head anchor: the latest chain position the writer has made durable (`seq`, and `head`, the
 * SHA-256 of the line at that seq), and the seq the oldest file kept starts at (`first`), in a file
 * beside the audit (`<audit>.head`), replaced atomically (write, then rename) and HMAC-signed with
 * the audit key. Records cut off the end (or whole files off the start) no longer match it, and a
 * matching anchor cannot be made without the key.
 */
export interface Anchor {
  seq: number;
  head: string;
  first?: number;
  time: string;
  sig?: string;
}

export const anchorPath = (auditPath: string): string => `${auditPath}.head`;

export function sha256(text: string | Uint8Array): string {
  // One-shot (no Hash object per call): it runs for every audit line. Bytes hash as their text does
  // (a line as written is its text in UTF-8).
  return hash('sha256', text, 'hex');
}

/** The checkpoint signature of files written before format 2 (kept to verify them). */
export function sign(key: Buffer, head: string, upto: number): string {
  return createHmac('sha256', key).update(`${head}:${upto}`).digest('hex');
}

/**
 * Format 2 checkpoints sign their reason too, so that an `interval` checkpoint cannot be passed off
 * as the `start` of a file or a clean `close`.
 */
export function signCheckpoint(key: Buffer, reason: string, head: string, upto: number): string {
  return createHmac('sha256', key)
    .update(`mcp-warden checkpoint 2\n${reason}\n${head}\n${upto}`)
    .digest('hex');
}

function signAnchor(key: Buffer, a: Pick<Anchor, 'seq' | 'head' | 'first'>): string {
  return createHmac('sha256', key)
    .update(`mcp-warden anchor 1\n${a.seq}\n${a.head}\n${a.first ?? ''}`)
    .digest('hex');
}

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** Replaces the anchor atomically; throws when it cannot (the old one, a true lower bound, stays). */
export function writeAnchor(auditPath: string, a: Omit<Anchor, 'sig'>, key?: Buffer): void {
  const path = anchorPath(auditPath);
  const tmp = `${path}.tmp`;
  const body: Anchor = key ? { ...a, sig: signAnchor(key, a) } : a;
  try {
    writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* not there */
    }
    throw e;
  }
}

/**
 * `writeAnchor` off the event loop, through its own temporary file. `stillWanted` is asked before
 * the rename: false (a newer anchor was written meanwhile) leaves the anchor as it is. Resolves true
 * once the anchor is replaced, false when it was not wanted any more; rejects when it cannot be.
 */
export async function writeAnchorAsync(
  auditPath: string,
  a: Omit<Anchor, 'sig'>,
  key: Buffer | undefined,
  stillWanted: () => boolean,
): Promise<boolean> {
  const path = anchorPath(auditPath);
  const tmp = `${path}.tmp-async`;
  const body: Anchor = key ? { ...a, sig: signAnchor(key, a) } : a;
  try {
    await writeFile(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
    if (!stillWanted()) {
      await unlink(tmp);
      return false;
    }
    await rename(tmp, path);
    return true;
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

export type AnchorRead = { anchor: Anchor } | { missing: true } | { invalid: string };

export function readAnchor(auditPath: string): AnchorRead {
  let text: string;
  try {
    text = readFileSync(anchorPath(auditPath), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { invalid: `cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const a = JSON.parse(text) as Partial<Anchor>;
    if (typeof a.seq === 'number' && typeof a.head === 'string' && typeof a.time === 'string')
      return { anchor: a as Anchor };
  } catch {
    /* below */
  }
  return { invalid: 'is not a head anchor' };
}

/** Why the anchor's signature does not hold, or undefined when it does (or there is no key). */
export function anchorSignatureProblem(a: Anchor, key: Buffer | undefined): string | undefined {
  if (!key) return undefined;
  if (typeof a.sig !== 'string') return 'the head anchor is not signed, but a key was given';
  return sameHex(a.sig, signAnchor(key, a))
    ? undefined
    : 'the head anchor signature does not verify (forged, or another key)';
}
