import MemoryClass from 'rate-limiter-flexible/lib/RateLimiterMemory.js';
import RedisClass from 'rate-limiter-flexible/lib/RateLimiterRedis.js';
import ResClass from 'rate-limiter-flexible/lib/RateLimiterRes.js';

/**
 * The three parts of rate-limiter-flexible the gateway uses — its in-memory and Redis limiters and
 * the answer a refusal rejects with — taken from the package's own files rather than its index
 * (issue 22: the guard stages load them at a first call). The index requires every store it
 * supports (Mongo, MySQL, PostgreSQL, DynamoDB, Prisma, Drizzle, SQLite, Etcd, Valkey, cluster…):
 * ~100 KB of bundled code parsed and evaluated for two of them. They are the very classes the index
 * exports (the same files), so `instanceof RateLimiterRes` holds for what either one rejects with;
 * test/lib/rate-limiters.test.ts checks that, and fails if the package moves them.
 */
export const RateLimiterMemory = MemoryClass;
export type RateLimiterMemory = InstanceType<typeof MemoryClass>;
export const RateLimiterRedis = RedisClass;
export type RateLimiterRedis = InstanceType<typeof RedisClass>;
export const RateLimiterRes = ResClass;
export type RateLimiterRes = InstanceType<typeof ResClass>;
