import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';

/** What one read put in its caller's taint: the call, when, and what it received in clear. */
export interface TaintMark {
  /** The read call's id (its audit record's). */
  callId: string;
  tool: string;
  /** When it was read, ms since the epoch. */
  at: number;
  /** `pii`, `secret`, `financial` (received in clear) and `untrusted` (flagged by the screen). */
  classes: string[];
}

/**
 * What each caller has read lately, for the taint guard. Keyed by the caller's taint key (principal,
 * and session where there is one: `taintKey`); a mark lives for the window it was written with.
 */
export interface TaintStore {
  /** Adds a mark, kept `ttlMs` from now. Throws STATE_UNAVAILABLE when it cannot be kept (fail closed). */
  mark(key: string, mark: TaintMark, ttlMs: number): Promise<void>;
  /** The marks still live for the key, newest first. Throws STATE_UNAVAILABLE when it cannot tell. */
  marks(key: string): Promise<TaintMark[]>;
  close(): Promise<void>;
}

/** Marks kept per key (the newest): enough to name the latest reads, bounded whatever a caller reads. */
export const MARKS_PER_KEY = 32;

/**
 * The caller's key: the principal (namespaced, `key:…`, `jwt:…#…`) and the MCP session when the
 * guard is per session and the client has one; hashed, so no caller-chosen byte reaches a Redis key.
 */
export function taintKey(principal: string, session: string | undefined): string {
  return createHash('sha256')
    .update(`${principal}\u0000${session ?? ''}`)
    .digest('base64url');
}

/**
 * The embedded store: this process only. At `maxKeys` live callers it refuses to record more
 * (STATE_UNAVAILABLE, so the read is withheld) rather than forget a live taint.
 */
export function createMemoryTaint(o: { maxKeys?: number; now?: () => number } = {}): TaintStore {
  const now = o.now ?? Date.now;
  const maxKeys = o.maxKeys ?? 100_000;
  const byKey = new Map<string, Array<TaintMark & { until: number }>>();
  const live = (key: string): Array<TaintMark & { until: number }> => {
    const list = byKey.get(key);
    if (!list) return [];
    const t = now();
    const kept = list.filter((m) => m.until > t);
    if (kept.length === 0) byKey.delete(key);
    else if (kept.length !== list.length) byKey.set(key, kept);
    return kept;
  };
  return {
    async mark(key, mark, ttlMs) {
      if (!byKey.has(key) && byKey.size >= maxKeys) {
        for (const k of [...byKey.keys()]) live(k);
        if (byKey.size >= maxKeys)
          throw new WardenError(
            'STATE_UNAVAILABLE',
            'The taint guard cannot record another caller right now (its store is full); the result is withheld.',
          );
      }
      const list = [...live(key), { ...mark, until: now() + ttlMs }];
      list.sort((a, b) => a.until - b.until);
      byKey.set(key, list.slice(-MARKS_PER_KEY));
    },
    async marks(key) {
      return live(key)
        .map(({ until: _u, ...m }) => m)
        .sort((a, b) => b.at - a.at);
    },
    async close() {
      byKey.clear();
    },
  };
}

/**
 * Add a mark (score: its expiry), drop the expired ones and all but the newest MARKS_PER_KEY, and
 * keep the key as long as its longest-lived mark. One script: atomic across instances.
 */
const MARK_SCRIPT = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[5]) then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - tonumber(ARGV[5]) - 1) end
local t = redis.call('PTTL', KEYS[1])
if t < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`;

/**
 * The shared store: one sorted set per caller key (`<prefix>:taint:<key>`), members the marks (JSON),
 * scores their expiry, the key's TTL the longest window. Every instance sees every read at once.
 */
export function createRedisTaint(o: { client: Redis; prefix: string; now?: () => number }): TaintStore {
  const now = o.now ?? Date.now;
  const k = (key: string) => `${o.prefix}:taint:${key}`;
  const guard = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch {
      throw new WardenError(
        'STATE_UNAVAILABLE',
        'The shared state (Redis) cannot be reached, so the taint guard cannot tell what this caller has read; try again shortly.',
      );
    }
  };
  return {
    mark: (key, mark, ttlMs) =>
      guard(async () => {
        const t = now();
        await o.client.eval(
          MARK_SCRIPT,
          1,
          k(key),
          t + ttlMs,
          JSON.stringify(mark),
          t,
          Math.max(1, Math.ceil(ttlMs)),
          MARKS_PER_KEY,
        );
      }),
    marks: (key) =>
      guard(async () => {
        const raw = await o.client.zrangebyscore(k(key), `(${now()}`, '+inf');
        const out: TaintMark[] = [];
        for (const r of raw) {
          const m = readMark(r);
          if (m) out.push(m);
        }
        return out.sort((a, b) => b.at - a.at);
      }),
    // The client is the shared state's: it closes it.
    async close() {},
  };
}

function readMark(raw: string): TaintMark | undefined {
  try {
    const m = JSON.parse(raw) as Partial<TaintMark>;
    if (
      typeof m.callId === 'string' &&
      typeof m.tool === 'string' &&
      typeof m.at === 'number' &&
      Array.isArray(m.classes) &&
      m.classes.every((c) => typeof c === 'string')
    )
      return { callId: m.callId, tool: m.tool, at: m.at, classes: m.classes };
  } catch {}
  // Not a mark the gateway wrote: still a taint (fail closed), of unknown origin.
  return { callId: 'unknown', tool: 'unknown', at: 0, classes: ['unknown'] };
}
