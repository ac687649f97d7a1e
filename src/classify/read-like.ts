import type { HttpMethod } from '../model/catalog.js';
import { words } from '../openapi/text.js';

/**
 * Read-like POSTs: RPC-style APIs (`POST /accounts/get`, `POST /users.list`, `searchUsers`) send
 * every call as a POST, so the method says "write" for operations that only read. This finding is a
 * hint for the operator, never a reclassification: the tool keeps its risk classes and stays hidden
 * under the secure defaults; `init` proposes a `treatAs: read` rule per finding, and exposing it is
 * the operator's decision, recorded in the policy (docs/policy.md).
 *
 * An operation is read-like when it is a POST, a read verb is in its action position (in the last
 * path segments or the operationId, not inside a compound noun) and no side-effect verb appears
 * anywhere in its path or operationId: `getOrCreateUser` is not read-like, `/payments/create` and `/messages/send` are not.
 * Words are the catalogue's tokens (camelCase, snake_case, kebab-case, dots and slashes split).
 */
export interface ReadLike {
  /** The read verb found. */
  verb: string;
  /** Why, shown to operators verbatim (scan, init, explain). */
  reason: string;
}

export interface ReadLikeFacts {
  method: HttpMethod;
  path: string;
  /** Words of the literal path segments, in order. */
  pathWords: readonly string[];
  /** Words of each literal (non-template) path segment, in order. */
  segmentWords: ReadonlyArray<readonly string[]>;
  opWords: readonly string[];
  operationId?: string;
}

/**
 * Verbs that only read. Left out on purpose: `export`, `download`, `dump` (bulk exports are a
 * restricted risk class of their own, and a POST export usually starts an export job, which is a
 * state change); `verify` (often sends a code); `calculate`/`compute` (may store their result);
 * `check` followed by `in`/`out` (a check-in is a state change).
 */
export const READ_VERBS: ReadonlySet<string> = new Set([
  'get',
  'list',
  'search',
  'query',
  'find',
  'fetch',
  'retrieve',
  'lookup',
  'read',
  'describe',
  'count',
  'show',
  'view',
  'browse',
  'check',
  'validate',
  'preview',
  'inspect',
  'exists',
  'info',
]);

/**
 * Verbs that change something. One of them anywhere in the path or operationId rules the operation
 * out, whatever read verb it also has (`getOrCreateUser`, `/lists/add`). Nouns that double as verbs
 * in API paths (`order`, `record`, `rate`, `message`) are not here: a plural noun never matches a
 * verb (`/transfers/list` is read-like, `/transfer/create` is not).
 */
export const SIDE_EFFECT_VERBS: ReadonlySet<string> = new Set(
  `create update delete remove send pay transfer cancel set add invite post put patch upload import
   write insert edit modify change replace move copy rename merge submit approve reject accept decline
   execute exec run start stop restart trigger enable disable activate deactivate archive unarchive
   restore publish unpublish schedule reschedule reserve purchase buy sell refund capture authorize
   withdraw deposit assign unassign register unregister subscribe unsubscribe join leave kick ban unban
   block unblock mute unmute pin unpin star unstar like unlike follow unfollow mark lock unlock reset
   rotate generate mint grant revoke sign login logout signin signout signup open close reopen
   resolve acknowledge ack confirm complete finish save sync refresh push apply attach detach link
   unlink connect disconnect share unshare notify dispatch enqueue process provision deploy install
   uninstall upgrade downgrade scale resize reboot shutdown migrate clone fork duplicate increment
   decrement upsert append prepend clear flush invalidate expire extend renew suspend resume pause
   unpause retry replay redeliver resend forward reply respond dial hangup invoke mutate commit rollback
   revert promote demote toggle vote purge destroy erase wipe terminate truncate drop evict kill void
   checkin checkout transcode train tune convert verify spend collect charge transmit emit broadcast
   end deny request redeem claim allocate deallocate release hold freeze unfreeze settle`
    .split(/\s+/)
    .filter(Boolean),
);

/** The read-like finding of an operation, or undefined. Only POSTs are considered. */
export function readLikeOf(f: ReadLikeFacts): ReadLike | undefined {
  if (f.method !== 'post') return undefined;
  // A generated operationId starts with the method (`PostAccountsGet`): that `post` is no verb.
  const op = f.opWords[0] === 'post' ? f.opWords.slice(1) : f.opWords;
  const sideEffect =
    f.pathWords.find((w) => SIDE_EFFECT_VERBS.has(w)) ?? op.find((w) => SIDE_EFFECT_VERBS.has(w));
  if (sideEffect !== undefined) return undefined;
  if (hasCheckInOut(f.pathWords) || hasCheckInOut(op)) return undefined;
  const inPath = verbInPath(f.segmentWords);
  if (inPath !== undefined)
    return {
      verb: inPath,
      reason: `read verb "${inPath}" in the path ${f.path}; no side-effect verb in the path or operationId`,
    };
  const inOp = verbInOperationId(op, f.operationId);
  if (inOp !== undefined)
    return {
      verb: inOp,
      reason: `read verb "${inOp}" in the operationId ${f.operationId ?? op.join('_')}; no side-effect verb in the path or operationId`,
    };
  return undefined;
}

/**
 * A verb in action position in the path: the first or last word of the last literal segment
 * (`/accounts/get`, `/users.list`, `/checkNameAvailability`, `/validate-name`), or a segment before
 * it that is the verb alone (`/search/users`). A verb inside a compound noun is not one
 * (`/value_list_items`, `/check-suites/{id}/rerequest`).
 */
function verbInPath(segments: ReadonlyArray<readonly string[]>): string | undefined {
  const last = segments[segments.length - 1];
  if (!last?.length) return undefined;
  const edge = [last[0]!, last[last.length - 1]!].find((w) => READ_VERBS.has(w));
  if (edge !== undefined) return edge;
  const before = segments[segments.length - 2];
  return before?.length === 1 && READ_VERBS.has(before[0]!) ? before[0] : undefined;
}

/**
 * A verb in action position in the operationId: its first word (`searchUsers`, `get_account`), the
 * first word after a namespace (`accounts_list_all`, `StorageAccounts_ListKeys`, `users.get`), or the
 * last word of a short one (`accountsGet`). Not a noun in a long name (`PostRadarValueListsValueList`).
 */
function verbInOperationId(op: readonly string[], operationId: string | undefined): string | undefined {
  if (op.length === 0) return undefined;
  if (READ_VERBS.has(op[0]!)) return op[0];
  if (operationId !== undefined) {
    const cut = operationId.search(/[_./]/);
    if (cut > 0) {
      const next = words(operationId.slice(cut + 1))[0];
      if (next !== undefined && READ_VERBS.has(next)) return next;
    }
  }
  const end = op[op.length - 1]!;
  return op.length <= 3 && READ_VERBS.has(end) ? end : undefined;
}

function hasCheckInOut(ws: readonly string[]): boolean {
  return ws.some((w, i) => w === 'check' && (ws[i + 1] === 'in' || ws[i + 1] === 'out'));
}
