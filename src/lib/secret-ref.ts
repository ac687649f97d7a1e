import { readFileSync } from 'node:fs';
import { WardenError } from '../errors/index.js';

/**
 * The one reader of secret references. The policy never holds a secret, only where to find it:
 * `env:NAME` (an environment variable) or `file:/path` (a mounted file, read whole; a trailing newline
 * is how files end, not part of the secret).
 */
export function isSecretRef(value: string): boolean {
  return value.startsWith('env:') || value.startsWith('file:');
}

/** The value a reference names, or `undefined` when it is unset, empty or unreadable. */
export function readSecretRef(ref: string, env: NodeJS.ProcessEnv): string | undefined {
  if (ref.startsWith('env:')) {
    const v = env[ref.slice(4)];
    return v === undefined || v === '' ? undefined : v;
  }
  if (!ref.startsWith('file:')) return undefined;
  try {
    const v = readFileSync(ref.slice(5), 'utf8').replace(/\r?\n$/, '');
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

/**
 * A key or token the gateway itself needs (signing, confirmation, admin, …): read once at start-up; a
 * missing or short value stops the start with an error that names the policy key and the reference.
 */
export function requireSecret(ref: string, env: NodeJS.ProcessEnv, what: string): Buffer {
  const value = readSecretRef(ref, env);
  if (!value || value.length < 16)
    throw new WardenError('CONFIG_INVALID', `${what}: ${ref} is not set or shorter than 16 characters`);
  return Buffer.from(value, 'utf8');
}

/** A connection URL given in the clear or as a reference (it may carry a password). */
export function urlOrRef(value: string, env: NodeJS.ProcessEnv, what: string): string {
  return isSecretRef(value) ? requireSecret(value, env, what).toString('utf8') : value;
}
