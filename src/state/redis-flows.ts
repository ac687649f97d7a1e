import type { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';
import type { SharedFlows } from '../model/connection.js';

/**
 * Per-user OAuth's pending flows in the shared Redis, under `<prefix>:oauthflow:<digest of the
 * state>`, expiring with the link. GETDEL consumes a flow atomically, so of two callbacks with the
 * same state (on one instance or two) exactly one finds it. Redis unreachable: fail closed (no link
 * is minted, no callback completes).
 */
export function createRedisFlows(o: { client: Redis; prefix: string }): SharedFlows {
  const k = (handle: string) => `${o.prefix}:oauthflow:${handle}`;
  const unavailable = () =>
    new WardenError('STATE_UNAVAILABLE', 'The shared state (Redis) is unreachable; retry later.');
  return {
    async put(handle, flow, ttlMs) {
      try {
        await o.client.set(k(handle), flow, 'PX', Math.max(1, Math.ceil(ttlMs)));
      } catch {
        throw unavailable();
      }
    },
    async take(handle) {
      try {
        return (await o.client.getdel(k(handle))) ?? undefined;
      } catch {
        throw unavailable();
      }
    },
    async peek(handle) {
      try {
        return (await o.client.get(k(handle))) ?? undefined;
      } catch {
        throw unavailable();
      }
    },
  };
}
