import { createHash, timingSafeEqual } from 'node:crypto';

import { SHARED_ADMIN } from '../model/approval.js';

export { SHARED_ADMIN };

/**
 * Who an admin token belongs to: the shared `admin.token` is `admin`, each `admin.operators` entry
 * its own id. The identity comes from the token alone, so an approval records a person the gateway
 * authenticated, never a name a request claims (the `x-actor` header, the login form's name field).
 */
export class AdminTokens {
  private readonly entries: ReadonlyArray<{ id: string; hash: Buffer }>;

  /** `tokens`: the shared token first, then the operators'; values must be distinct (port.ts checks). */
  constructor(tokens: ReadonlyArray<{ id: string; token: string }>) {
    this.entries = tokens.map((t) => ({ id: t.id, hash: digest(t.token) }));
  }

  /**
   * The identity a presented token authenticates, or undefined. Every entry is compared, in constant
   * time, whatever matched first: the time taken says nothing about which token (or how much of it) fits.
   */
  identify(token: string): string | undefined {
    const given = digest(token);
    let found: string | undefined;
    for (const e of this.entries) if (timingSafeEqual(given, e.hash) && found === undefined) found = e.id;
    return found;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * The actor recorded for a request: an operator is its id; the shared token is `admin`, with the
 * name the person typed appended (`admin:alice`) as an unverified hint for the audit, never used as
 * an identity for decisions.
 */
export function actorOf(identity: string, claimed: unknown): string {
  if (identity !== SHARED_ADMIN) return identity;
  return typeof claimed === 'string' && /^[\w.@-]{1,64}$/.test(claimed)
    ? `${SHARED_ADMIN}:${claimed}`
    : SHARED_ADMIN;
}
