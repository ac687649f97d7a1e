import type { ArgBinding } from '../model/catalog.js';
import type { DefsLookup, JsonSchema } from '../model/json-schema.js';
import { cleanDescription, cleanLine, words } from '../openapi/text.js';
import type { Operation } from './context.js';
import { topProperties } from './doc.js';

/**
 * A tool's description, as a model reads it in `tools/list`: the summary, then the description,
 * cut at a sentence (else a word) boundary so the whole text — any `[deprecated] ` prefix and the
 * closing `…` included — fits the budget. An operation the spec says nothing about gets one
 * readable line from its method, path and arguments ("List the members of a channel (GET
 * /channels/{channel}/members; filter by limit, cursor)") instead of the bare method and path.
 */
export interface DescribedTool {
  summary: string;
  description: string;
  deprecated: boolean;
}

/** What the generated line reads of the arguments. */
export interface DescribedArgs {
  bindings: readonly ArgBinding[];
  properties: Record<string, JsonSchema>;
  lookup: DefsLookup;
}

const DEPRECATED = '[deprecated] ';
/** Arguments named at most in a generated line. */
const MAX_NAMED_ARGS = 4;

export function describeOperation(o: Operation, args: DescribedArgs, max: number): DescribedTool {
  const { op } = o;
  const summary = typeof op.summary === 'string' ? cleanLine(op.summary, 200) : '';
  const longText = typeof op.description === 'string' ? op.description : '';
  const deprecated = op.deprecated === true;
  const prefix = deprecated ? DEPRECATED : '';
  const budget = Math.max(max - prefix.length, 16);
  // Cleaned without a cap first (the cap would cut mid-word), then cut here at a boundary.
  let text = cleanDescription([summary, longText].filter(Boolean).join('\n\n'), Number.MAX_SAFE_INTEGER);
  if (!text) text = generatedLine(o, args);
  return { summary, description: `${prefix}${cutAtBoundary(text, budget)}`, deprecated };
}

/**
 * `text` in at most `max` characters (code points never split): whole when it fits; else up to the
 * last sentence end in the second half of the budget, else the last word boundary, then `…`.
 */
export function cutAtBoundary(text: string, max: number): string {
  // A text of at most `max` UTF-16 units has at most `max` code points: no array of them needed.
  if (text.length <= max) return text;
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  const room = chars.slice(0, max - 1).join('');
  const floor = Math.floor(room.length / 2);
  let cut = -1;
  // A sentence ends at . ! ? (or a line break) followed by white space.
  for (const m of room.matchAll(/[.!?:;](?=\s)|\n/g)) if (m.index >= floor) cut = m.index + 1;
  if (cut > 0) return `${room.slice(0, cut).trimEnd()}…`;
  const space = room.search(/\s\S*$/);
  const head = space >= floor ? room.slice(0, space) : room;
  return `${head.trimEnd()}…`;
}

const VERBS = new Set([
  'list',
  'get',
  'create',
  'update',
  'delete',
  'remove',
  'add',
  'set',
  'search',
  'find',
  'send',
  'post',
  'cancel',
  'replace',
  'patch',
  'put',
  'retrieve',
  'fetch',
  'upload',
  'download',
  'start',
  'stop',
  'restart',
  'archive',
  'unarchive',
  'invite',
  'join',
  'leave',
  'open',
  'close',
  'rename',
  'revoke',
  'check',
  'test',
  'mark',
  'move',
  'copy',
  'enable',
  'disable',
  'approve',
  'reject',
  'merge',
  'publish',
  'reset',
  'verify',
  'lookup',
  'info',
  'history',
]);

/** Verbs that, as the last path segment, name the action itself (not a resource). */
const ACTIONS = new Set(
  [...VERBS].filter((v) => !['list', 'get', 'post', 'put', 'patch', 'info', 'history', 'lookup'].includes(v)),
);

/** One line from method, path and arguments, e.g. "List the members of a channel (GET /channels/{channel}/members; filter by limit, cursor)". */
export function generatedLine(o: Operation, args: DescribedArgs): string {
  const where = `${o.method.toUpperCase()} ${cleanLine(o.path, 200)}`;
  const action = actionOf(o);
  const tail = argumentsPart(o, args);
  return `${action} (${where}${tail ? `; ${tail}` : ''})`;
}

function actionOf(o: Operation): string {
  const segments = o.path.split('/').filter(Boolean);
  const isParam = (s: string) => /^\{.*\}$/.test(s);
  const literal = segments.filter((s) => !isParam(s) && !/^v\d+(\.\d+)*$/i.test(s));
  const last = segments[segments.length - 1];
  const onItem = last !== undefined && isParam(last);
  const resourceSeg = literal[literal.length - 1];
  // RPC style (`/chat.postMessage`, `/conversations.members`): the call's own words say it.
  if (resourceSeg?.includes('.') && !onItem) {
    const [space, ...rest] = resourceSeg.split('.');
    const call = words(rest.join(' '));
    if (call.length > 0) {
      const said = sentence(VERBS.has(call[0]!) ? call : [verbFor(o.method, false), ...call]);
      return `${said} (${words(space ?? '').join(' ')})`;
    }
  }
  const opId = typeof o.op.operationId === 'string' ? words(o.op.operationId) : [];
  if (opId.length > 1 && VERBS.has(opId[0]!)) return sentence(opId);
  if (resourceSeg === undefined) return sentence([verbFor(o.method, false), 'the', 'API', 'root']);
  const noun = words(resourceSeg).join(' ');
  // The owner: the literal segment before the parameter that precedes the resource.
  const at = segments.lastIndexOf(resourceSeg);
  const before = segments.slice(0, at);
  let owner = '';
  if (before.length >= 2 && isParam(before[before.length - 1]!)) {
    const parent = before[before.length - 2]!;
    if (!isParam(parent)) owner = ` of ${article(singular(words(parent).join(' ')))}`;
  }
  // An action segment (`/search`, `/channels/{channel}/archive`) is the verb, its owner the object.
  const segWords = words(resourceSeg);
  if (!onItem && ACTIONS.has(segWords[0] ?? '')) {
    const parent = owner ? owner.slice(' of '.length) : '';
    return sentence(parent ? [...segWords, parent] : segWords);
  }
  const verb = verbFor(o.method, onItem);
  const target = onItem
    ? `${article(singular(noun))}`
    : o.method === 'post'
      ? article(singular(noun))
      : `the ${noun}`;
  return `${capital(verb)} ${target}${owner}`;
}

function verbFor(method: string, onItem: boolean): string {
  switch (method) {
    case 'get':
      return onItem ? 'get' : 'list';
    case 'post':
      return onItem ? 'update' : 'create';
    case 'put':
      return onItem ? 'replace' : 'set';
    case 'patch':
      return 'update';
    case 'delete':
      return 'delete';
    case 'head':
      return 'check';
    default:
      return method;
  }
}

/** "filter by limit, cursor" (query arguments), "with name, email" (body fields), required first. */
function argumentsPart(o: Operation, args: DescribedArgs): string {
  const query = args.bindings
    .filter((b) => b.in === 'query')
    .sort((a, b) => Number(b.required) - Number(a.required))
    .map((b) => b.arg);
  const body = args.bindings.find((b) => b.in === 'body');
  let fields: string[] = [];
  if (body) {
    const schema = args.properties[body.arg];
    if (schema !== undefined) {
      const props = topProperties(schema, args.lookup);
      const required = new Set(
        typeof schema === 'object' && Array.isArray(schema.required) ? (schema.required as string[]) : [],
      );
      fields = Object.keys(props).sort((a, b) => Number(required.has(b)) - Number(required.has(a)));
    }
  }
  const parts: string[] = [];
  if (query.length > 0) parts.push(`${o.method === 'get' ? 'filter by' : 'options'} ${named(query)}`);
  if (fields.length > 0) parts.push(`with ${named(fields)}`);
  return parts.join('; ');
}

function named(list: string[]): string {
  const shown = list.slice(0, MAX_NAMED_ARGS).join(', ');
  return list.length > MAX_NAMED_ARGS ? `${shown}…` : shown;
}

function sentence(ws: string[]): string {
  return capital(ws.join(' '));
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function article(noun: string): string {
  return /^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}

/** English plural to singular for API nouns (members → member, policies → policy, statuses → status). */
export function singular(noun: string): string {
  const parts = noun.split(' ');
  const w = parts.pop() ?? '';
  let s = w;
  if (/ies$/i.test(w) && w.length > 4) s = `${w.slice(0, -3)}y`;
  else if (/(ss|us|is)$/i.test(w)) s = w;
  else if (/(sses|shes|ches|xes|zes|uses)$/i.test(w)) s = w.slice(0, -2);
  else if (/s$/i.test(w) && w.length > 3) s = w.slice(0, -1);
  return [...parts, s].join(' ');
}
