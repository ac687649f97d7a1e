import type { Redis } from 'ioredis';
import { WardenError } from '../errors/index.js';
import type {
  Admission,
  ApprovalDecision,
  ApprovalRequest,
  ApprovalStatus,
  ApprovalStore,
  DecideResult,
} from '../model/approval.js';

export interface RedisApprovalsOptions {
  /** The shared state's connection (state/redis.ts). */
  client: Redis;
  prefix: string;
  /** How long a finished request stays readable (dashboard, CLI), in seconds; default 7 days. */
  retainSeconds?: number;
}

/**
 * Layout, under the prefix:
 * - `apr:<id>` hash: `body` (the request's fixed part, JSON), `status`, `exp` (ms), `key`;
 *   `apr:<id>:dec` the decisions (JSON, in order), `apr:<id>:ok` the operators who approved;
 * - `aprkey:<binding key>` → the id of the binding's current request;
 * - `apr:all` (by request time) for listing, `apr:live` (by expiry) for the sweeper.
 * Every transition is one Lua script, so it is atomic across instances: one caller runs an approved
 * request, one decision lands, one caller moves a request to `expired` (and audits it).
 */
const FINISH = `
local function finish(p, h, id, retain)
  redis.call('ZREM', p .. ':apr:live', id)
  redis.call('PEXPIRE', h, retain)
  redis.call('PEXPIRE', h .. ':dec', retain)
  redis.call('PEXPIRE', h .. ':ok', retain)
  local ptr = p .. ':aprkey:' .. redis.call('HGET', h, 'key')
  if redis.call('GET', ptr) == id then redis.call('PEXPIRE', ptr, retain) end
end
`;

const ADMIT = `${FINISH}
local p, key, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cid, body, cexp, creq, retain = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local ptr = p .. ':aprkey:' .. key
local id = redis.call('GET', ptr)
local expired, expiredNow = '', '0'
if id then
  local h = p .. ':apr:' .. id
  local st = redis.call('HGET', h, 'status')
  if st then
    local live = st == 'pending' or st == 'approved'
    if live and tonumber(redis.call('HGET', h, 'exp')) > now then
      if st == 'pending' then return {'pending', id} end
      redis.call('HSET', h, 'status', 'executed')
      finish(p, h, id, retain)
      redis.call('DEL', ptr)
      return {'run', id}
    end
    if st == 'denied' then
      redis.call('DEL', ptr)
      return {'denied', id}
    end
    if live then
      redis.call('HSET', h, 'status', 'expired')
      finish(p, h, id, retain)
      expiredNow = '1'
    end
    if live or st == 'expired' then expired = id end
  end
end
local nh = p .. ':apr:' .. cid
redis.call('HSET', nh, 'body', body, 'status', 'pending', 'exp', cexp, 'key', key)
redis.call('SET', ptr, cid)
redis.call('ZADD', p .. ':apr:all', creq, cid)
redis.call('ZREMRANGEBYRANK', p .. ':apr:all', 0, -100001)
redis.call('ZADD', p .. ':apr:live', cexp, cid)
return {'created', cid, expired, expiredNow}
`;

const DECIDE = `${FINISH}
local p, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local op, verdict, dec, needed, runUntil, retain = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local h = p .. ':apr:' .. id
local st = redis.call('HGET', h, 'status')
if not st then return {'not-found'} end
if st ~= 'pending' then return {'not-pending', '0'} end
if tonumber(redis.call('HGET', h, 'exp')) <= now then
  redis.call('HSET', h, 'status', 'expired')
  finish(p, h, id, retain)
  return {'not-pending', '1'}
end
if verdict == 'approve' and redis.call('SISMEMBER', h .. ':ok', op) == 1 then return {'same-operator'} end
redis.call('RPUSH', h .. ':dec', dec)
if verdict == 'deny' then
  redis.call('HSET', h, 'status', 'denied')
  finish(p, h, id, retain)
  return {'ok'}
end
redis.call('SADD', h .. ':ok', op)
if redis.call('SCARD', h .. ':ok') >= needed then
  redis.call('HSET', h, 'status', 'approved', 'exp', runUntil)
  redis.call('ZADD', p .. ':apr:live', runUntil, id)
end
return {'ok'}
`;

const EXPIRE = `${FINISH}
local p, now, retain = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', p .. ':apr:live', '-inf', now, 'LIMIT', 0, 500)
local moved = {}
for _, id in ipairs(ids) do
  local h = p .. ':apr:' .. id
  local st = redis.call('HGET', h, 'status')
  if (st == 'pending' or st == 'approved') and tonumber(redis.call('HGET', h, 'exp')) <= now then
    redis.call('HSET', h, 'status', 'expired')
    finish(p, h, id, retain)
    table.insert(moved, id)
  else
    redis.call('ZREM', p .. ':apr:live', id)
  end
end
return moved
`;

type Scripted = Redis & {
  wardenApprovalAdmit(...args: Array<string | number>): Promise<string[]>;
  wardenApprovalDecide(...args: Array<string | number>): Promise<string[]>;
  wardenApprovalExpire(...args: Array<string | number>): Promise<string[]>;
};

/** The fixed part of a request, stored once as JSON. */
type Body = Omit<ApprovalRequest, 'status' | 'expiresAt' | 'decisions'>;

/**
 * Approvals shared by every instance through Redis (the shared state's connection). While Redis is
 * unreachable nothing can be parked, decided or run: STATE_UNAVAILABLE (fail closed).
 */
export function createRedisApprovals(o: RedisApprovalsOptions): ApprovalStore {
  const client = o.client as Scripted;
  // Lua scripts, sent once and then run by SHA (ioredis falls back to EVAL when Redis lost them).
  if (typeof client.wardenApprovalAdmit !== 'function') {
    client.defineCommand('wardenApprovalAdmit', { numberOfKeys: 0, lua: ADMIT });
    client.defineCommand('wardenApprovalDecide', { numberOfKeys: 0, lua: DECIDE });
    client.defineCommand('wardenApprovalExpire', { numberOfKeys: 0, lua: EXPIRE });
  }
  const p = o.prefix;
  const retainMs = (o.retainSeconds ?? 7 * 86_400) * 1000;
  const h = (id: string) => `${p}:apr:${id}`;

  const guard = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof WardenError) throw e;
      throw new WardenError(
        'STATE_UNAVAILABLE',
        'The shared state (Redis) cannot be reached, so approvals cannot be read or changed; try again shortly.',
      );
    }
  };

  const read = async (id: string): Promise<ApprovalRequest | undefined> => {
    const [[, fields], [, decisions]] = (await client
      .multi()
      .hgetall(h(id))
      .lrange(`${h(id)}:dec`, 0, -1)
      .exec()) as [[unknown, Record<string, string>], [unknown, string[]]];
    return fields.body ? requestOf(fields, decisions) : undefined;
  };
  const must = async (id: string): Promise<ApprovalRequest> => {
    const r = await read(id);
    // Written in the same script a moment ago; gone only if someone deleted keys by hand.
    if (!r) throw new WardenError('STATE_UNAVAILABLE', `The approval ${id} vanished from the shared state.`);
    return r;
  };

  return {
    admit: (key, candidate, now) =>
      guard(async (): Promise<Admission> => {
        const { status: _s, expiresAt, decisions: _d, ...body } = candidate;
        const [outcome, id, expired, expiredNow] = await client.wardenApprovalAdmit(
          p,
          key,
          now,
          candidate.id,
          JSON.stringify({ ...body, key } satisfies Body),
          Date.parse(expiresAt),
          Date.parse(candidate.requestedAt),
          retainMs,
        );
        if (outcome === 'run' || outcome === 'pending' || outcome === 'denied')
          return { outcome, request: await must(id!) };
        const previous = expired ? await read(expired) : undefined;
        return {
          outcome: 'created',
          request: await must(id!),
          ...(previous ? { expired: previous, expiredNow: expiredNow === '1' } : {}),
        };
      }),
    get: (id) => guard(() => read(id)),
    list: (filter = {}) =>
      guard(async () => {
        const limit = filter.limit ?? 100;
        const out: ApprovalRequest[] = [];
        const page = 200;
        // Newest first; a status filter may need a few pages (bounded: the newest 10 000 looked at).
        for (let start = 0; out.length < limit && start < 10_000; start += page) {
          const ids = await client.zrevrange(`${p}:apr:all`, start, start + page - 1);
          if (ids.length === 0) break;
          const found = await Promise.all(ids.map((id) => read(id)));
          const gone = ids.filter((_, i) => !found[i]);
          if (gone.length) await client.zrem(`${p}:apr:all`, ...gone);
          for (const r of found) {
            if (out.length >= limit) break;
            if (r && (!filter.status || r.status === filter.status)) out.push(r);
          }
        }
        return out;
      }),
    decide: (id, decision: ApprovalDecision, rules) =>
      guard(async (): Promise<DecideResult> => {
        const [outcome, flag] = await client.wardenApprovalDecide(
          p,
          id,
          rules.now,
          decision.operator,
          decision.verdict,
          JSON.stringify(decision),
          rules.needed,
          rules.runUntil,
          retainMs,
        );
        if (outcome === 'not-found') return { ok: false, why: 'not-found' };
        const request = await must(id);
        if (outcome === 'ok') return { ok: true, request };
        if (outcome === 'same-operator') return { ok: false, why: 'same-operator', request };
        return { ok: false, why: 'not-pending', request, ...(flag === '1' ? { expiredNow: true } : {}) };
      }),
    expire: (now) =>
      guard(async () => {
        const ids = await client.wardenApprovalExpire(p, now, retainMs);
        const moved = await Promise.all(ids.map((id) => read(id)));
        return moved.filter((r): r is ApprovalRequest => r !== undefined);
      }),
    // The connection is the shared state's: it closes it.
    async close() {},
  };
}

function requestOf(fields: Record<string, string>, decisions: string[]): ApprovalRequest {
  const body = JSON.parse(fields.body!) as Body;
  return {
    ...body,
    status: fields.status as ApprovalStatus,
    expiresAt: new Date(Number(fields.exp)).toISOString(),
    decisions: decisions.map((d) => JSON.parse(d) as ApprovalDecision),
  };
}
