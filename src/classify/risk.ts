import { memoByText } from '../lib/text-memo.js';
import {
  type DataField,
  type HttpMethod,
  type PageSizeInfo,
  RISK_CLASSES,
  type RiskClass,
  type RiskFinding,
} from '../model/catalog.js';
import { cachedWords, type FieldSearch, SECRET_RULES } from './data-classes.js';
import { type ReadLike, readLikeOf } from './read-like.js';

/** What the risk rules look at, extracted once per operation by the catalogue. */
export interface OperationFacts {
  method: HttpMethod;
  path: string;
  operationId?: string;
  tags: string[];
  /** Words of the literal (non-template) path segments, e.g. `/admin/ssh-keys/{id}` → admin, ssh, keys. */
  pathWords: string[];
  /** Words of the last literal path segment. */
  lastSegmentWords: string[];
  opWords: string[];
  /** Agent-visible arguments: parameters and top-level body properties. */
  args: Array<{ name: string; description: string }>;
  responseContentTypes: string[];
  /** Every OAuth scope any security alternative asks for. */
  scopes: string[];
  /** Data fields classified in the success response. */
  dataFields: DataField[];
  pageSize?: PageSizeInfo;
  hasPagination: boolean;
  /** A GET that returns a collection. */
  isList: boolean;
}

export interface RiskRule {
  id: string;
  class: RiskClass | 'unbounded';
  /** What the rule looks for, for docs and reviewers. */
  description: string;
  /** The human-readable reason when the rule fires, else undefined. */
  test(f: OperationFacts): string | undefined;
}

const SAFE_METHODS = new Set<HttpMethod>(['get', 'head', 'options']);
const set = (...w: string[]) => new Set(w);

const DESTRUCTIVE_VERBS = set(
  'delete',
  'remove',
  'purge',
  'destroy',
  'revoke',
  'cancel',
  'erase',
  'wipe',
  'terminate',
  'truncate',
  'drop',
  'evict',
  'kill',
  'uninstall',
  'void',
);
const ADMIN_WORDS = set(
  'admin',
  'admins',
  'administrator',
  'administration',
  'internal',
  'superuser',
  'sudo',
  'sysadmin',
);
const CREDENTIAL_NOUNS = set(
  'token',
  'tokens',
  'secret',
  'secrets',
  'password',
  'passwords',
  'credential',
  'credentials',
  'apikey',
  'apikeys',
  'passphrase',
  'passkey',
  'passkeys',
  'keys',
  'key',
  'otp',
  'mfa',
  'totp',
);
/** `key(s)` in an operationId only counts with one of these in front of it (`getByKey` is not a credential). */
const KEY_QUALIFIERS = set(
  'api',
  'ssh',
  'gpg',
  'pgp',
  'deploy',
  'access',
  'secret',
  'private',
  'public',
  'signing',
  'encryption',
  'ephemeral',
  'service',
  'client',
  'webhook',
  'master',
);
const EXPORT_WORDS = set(
  'export',
  'exports',
  'dump',
  'dumps',
  'backup',
  'backups',
  'download',
  'downloads',
  'tarball',
  'zipball',
  'bulk',
);
const EXPORT_TYPES = [
  /^text\/csv\b/,
  /^text\/tab-separated-values\b/,
  /^application\/octet-stream\b/,
  /^application\/(zip|gzip|x-gzip|x-tar|x-zip-compressed|x-7z-compressed|x-bzip2|vnd\.rar)\b/,
  /^application\/(x-ndjson|jsonl|x-jsonlines)\b/,
  /^application\/vnd\.ms-excel\b/,
  /^application\/vnd\.openxmlformats-officedocument\.spreadsheetml/,
  /^application\/sql\b/,
];
const RAW_QUERY_ARGS = set(
  'sql',
  'eval',
  'exec',
  'script',
  'scripts',
  'expression',
  'expr',
  'command',
  'commands',
  'cmd',
  'statement',
  'statements',
  'graphql',
  'gql',
  'jql',
  'soql',
  'sosl',
  'cql',
  'promql',
  'logql',
  'kql',
  'xpath',
  'jmespath',
  'shell',
  'code_snippet',
  'raw_query',
  'query_string',
);
/** A plain `query` argument is a search box unless its description says it is a language. */
const QUERY_LANGUAGE =
  /\b(sql|query language|syntax|dsl|lucene|expression|jql|soql|graphql|promql|statement)\b/i;
const RAW_QUERY_PATH = set(
  'sql',
  'graphql',
  'eval',
  'exec',
  'execute',
  'script',
  'scripts',
  'query',
  'queries',
  'command',
  'commands',
  'shell',
  'console',
);
const LIST_WORDS = set('list', 'search', 'find', 'query', 'all', 'browse', 'enumerate');

const hit = (words: readonly string[], vocab: Set<string>) => words.find((w) => vocab.has(w));

// The rules below read the same tags, scopes, content types and argument names on most operations
// of a spec: each text is judged once (bounded memos, pure functions of the text).
/** A tag or scope with an administrative component (`admin:org`, `Admin tools`). */
const namesAdmin = memoByText(
  (t) => t.split(/[^a-z0-9]+/i).some((w) => ADMIN_WORDS.has(w.toLowerCase())),
  20_000,
);
const isExportType = memoByText((ct) => EXPORT_TYPES.some((re) => re.test(ct)), 20_000);
/** An argument name lower-cased, runs of other characters as `_`. */
const argKey = memoByText((name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '_'), 20_000);
const isRawQueryArg = memoByText(
  (n) => RAW_QUERY_ARGS.has(n) || n.split('_').some((w) => w === 'sql' || w === 'eval'),
  20_000,
);

/** The words of a path's literal (non-template) segments: all, the last segment's, and per segment. */
export interface PathWords {
  pathWords: string[];
  lastSegmentWords: string[];
  segmentWords: string[][];
}
/** Once per path: a spec's methods share their path, and the risk and read-like rules all read it. */
export const pathWordsOf: (path: string) => PathWords = memoByText((path) => {
  const literal = path.split('/').filter((s) => s && !/^\{.*\}$/.test(s));
  const segmentWords = literal.map((s) => cachedWords(s));
  return {
    pathWords: segmentWords.flat(),
    lastSegmentWords: cachedWords(literal[literal.length - 1] ?? ''),
    segmentWords,
  };
}, 20_000);

/**
 * The classification table: every risk a tool can carry, one data-driven rule per line of
 * reasoning. Rules only ever add classes; the secure default then hides any tool with a class other
 * than `read`. A rule's reason is shown to operators verbatim.
 */
export const RISK_RULES: readonly RiskRule[] = [
  {
    id: 'method-safe',
    class: 'read',
    description: 'GET, HEAD and OPTIONS are safe methods (RFC 9110): they do not change state.',
    test: (f) => (SAFE_METHODS.has(f.method) ? `${f.method.toUpperCase()} is a safe HTTP method` : undefined),
  },
  {
    id: 'method-unsafe',
    class: 'write',
    description: 'POST, PUT, PATCH, DELETE (and anything not safe) can change state.',
    test: (f) => (SAFE_METHODS.has(f.method) ? undefined : `${f.method.toUpperCase()} can change state`),
  },
  {
    id: 'method-delete',
    class: 'destructive',
    description: 'DELETE removes a resource.',
    test: (f) => (f.method === 'delete' ? 'DELETE removes a resource' : undefined),
  },
  {
    id: 'destructive-verb',
    class: 'destructive',
    description: `A destructive verb in the operationId or path (${[...DESTRUCTIVE_VERBS].join(', ')}).`,
    test: (f) => {
      const w = hit(f.opWords, DESTRUCTIVE_VERBS);
      if (w) return `operationId says "${w}"`;
      const p = hit(f.pathWords, DESTRUCTIVE_VERBS);
      return p ? `path says "${p}"` : undefined;
    },
  },
  {
    id: 'admin-path',
    class: 'admin',
    description: `An administrative path segment (${[...ADMIN_WORDS].join(', ')}).`,
    test: (f) => {
      const w = hit(f.pathWords, ADMIN_WORDS);
      return w ? `path segment "${w}" is administrative` : undefined;
    },
  },
  {
    id: 'admin-operation',
    class: 'admin',
    description: 'An administrative word in the operationId.',
    test: (f) => {
      const w = hit(f.opWords, ADMIN_WORDS);
      return w ? `operationId says "${w}"` : undefined;
    },
  },
  {
    id: 'admin-tag',
    class: 'admin',
    description: 'A tag naming administration.',
    test: (f) => {
      const t = f.tags.find(namesAdmin);
      return t ? `tagged "${t}"` : undefined;
    },
  },
  {
    id: 'admin-scope',
    class: 'admin',
    description: 'An OAuth scope with an admin component (admin:org, admin.users:write…).',
    test: (f) => {
      const s = f.scopes.find(namesAdmin);
      return s ? `requires OAuth scope "${s}"` : undefined;
    },
  },
  {
    id: 'credential-path',
    class: 'credential',
    description: 'A path segment naming keys, tokens, secrets, passwords or credentials.',
    test: (f) => {
      const w = hit(f.pathWords, CREDENTIAL_NOUNS);
      return w ? `path segment "${w}" manages credentials` : undefined;
    },
  },
  {
    id: 'credential-operation',
    class: 'credential',
    description:
      'An operationId naming tokens, secrets, passwords, credentials or qualified keys (api key, ssh key…).',
    test: (f) => {
      const ws = f.opWords;
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]!;
        if (w === 'key' || w === 'keys') {
          if (i > 0 && KEY_QUALIFIERS.has(ws[i - 1]!)) return `operationId says "${ws[i - 1]} ${w}"`;
        } else if (CREDENTIAL_NOUNS.has(w)) return `operationId says "${w}"`;
      }
      return undefined;
    },
  },
  {
    id: 'credential-response',
    class: 'credential',
    description:
      'The success response has a secret field at its top level, or at the top of each listed item (password, token, secret, private key…).',
    test: (f) => {
      const s = f.dataFields.find((d) => isTopSecret(d.path, d));
      return s ? `returns secret field ${s.path}` : undefined;
    },
  },
  {
    id: 'export-words',
    class: 'bulk-export',
    description: `An export word in the path or operationId (${[...EXPORT_WORDS].join(', ')}).`,
    test: (f) => {
      const w = hit(f.pathWords, EXPORT_WORDS) ?? hit(f.opWords, EXPORT_WORDS);
      return w ? `"${w}" is a bulk export` : undefined;
    },
  },
  {
    id: 'export-content-type',
    class: 'bulk-export',
    description:
      'A success response in a file/export format (CSV, octet-stream, archives, NDJSON, spreadsheets).',
    test: (f) => {
      const t = f.responseContentTypes.find(isExportType);
      return t ? `responds with ${t}` : undefined;
    },
  },
  {
    id: 'raw-query-argument',
    class: 'raw-query',
    description:
      'An argument that carries a query language, code or a command (sql, eval, script, command…).',
    test: (f) => {
      for (const a of f.args) {
        const n = argKey(a.name);
        if (isRawQueryArg(n)) {
          return `argument "${a.name}" carries code or a query`;
        }
        if ((n === 'query' || n === 'q' || n === 'filter') && QUERY_LANGUAGE.test(a.description)) {
          return `argument "${a.name}" takes a query language`;
        }
      }
      return undefined;
    },
  },
  {
    id: 'raw-query-path',
    class: 'raw-query',
    description: 'The path ends in a query/execution endpoint (/sql, /graphql, /exec, /query…).',
    test: (f) => {
      const w = hit(f.lastSegmentWords, RAW_QUERY_PATH);
      return w ? `endpoint "${w}" executes a query or code` : undefined;
    },
  },
  {
    id: 'unbounded-page-size',
    class: 'unbounded',
    description: 'A list whose page-size parameter has no maximum.',
    test: (f) =>
      f.isList && f.pageSize && f.pageSize.maximum === undefined
        ? `page-size parameter "${f.pageSize.arg}" has no maximum`
        : undefined,
  },
  {
    id: 'unbounded-no-pagination',
    class: 'unbounded',
    description: 'A list with no pagination parameters at all.',
    test: (f) =>
      f.isList && !f.pageSize && !f.hasPagination ? 'lists a collection without pagination' : undefined,
  },
];

/** Property names APIs use to wrap the items of a list response (`{ "data": [...] }`). */
export const COLLECTION_KEYS = new Set([
  'data',
  'items',
  'results',
  'entries',
  'records',
  'value',
  'values',
  'list',
  'elements',
  'objects',
  'nodes',
  'edges',
  'hits',
  'rows',
]);
/**
 * Depth of a field inside the resource the operation returns: `$.token` and `$[*].token` and
 * `$.data[*].token` are 1; a token nested in a related object (`$[*].head.repo.token`) is deeper
 * — the masking stage handles those, they do not make the operation a credential endpoint.
 */
function ownDepth(path: string): number {
  const n = segmentCount(path);
  return n > 1 && COLLECTION_KEYS.has(firstSegment) ? n - 1 : n;
}

/** The first segment the last `segmentCount` met ('' when none). */
let firstSegment = '';

/**
 * How many segments a data-field path has: split at `.` and `[*]` after a leading `$`, empty ones
 * left out. Counted in place (the data-class searches ask it at every step, and splitting allocated
 * an array of strings each time); the first segment is left in `firstSegment`.
 */
function segmentCount(path: string): number {
  let count = 0;
  firstSegment = '';
  let start = path.charCodeAt(0) === 0x24 /* $ */ ? 1 : 0;
  let i = start;
  while (i <= path.length) {
    const sep =
      i === path.length ? 1 : path.charCodeAt(i) === 0x2e /* . */ ? 1 : path.startsWith('[*]', i) ? 3 : 0;
    if (sep === 0) {
      i++;
      continue;
    }
    if (i > start) {
      if (count === 0) firstSegment = path.slice(start, i);
      count++;
    }
    i += sep;
    start = i;
  }
  return count;
}

/** What `credential-response` looks for: a secret field of the resource itself (depth ≤ 1). */
export function isTopSecret(path: string, field: Pick<DataField, 'class'>): boolean {
  return field.class === 'secret' && ownDepth(path) <= 1;
}

/**
 * Where a top-level secret field can be, for `ResponseClassifier.mayFind`. A path's segments are
 * its parts' segments, except that the last of one part and the first of the next join into one
 * when nothing separates them (`$.a` + `["b"]`), and a joined segment holds a `[` (no collection
 * key does). So a path never has fewer segments than its parts, and `ownDepth` never falls as a path
 * of two segments grows: a prefix of own depth 2 holds no top-level field. Below the response's own
 * level (a prefix of one segment or more) a relative path of 2 segments makes own depth 2; at that
 * level (`$`, `$[*]`), one of 3 does.
 */
export const TOP_SECRETS: FieldSearch = {
  want: (path, hit) => isTopSecret(path, hit),
  within: (prefix) => ownDepth(prefix) <= 1,
  level: (prefix) => (segmentCount(prefix) === 0 ? 2 : 1),
  keep: (rel, level) => segmentCount(rel) <= level,
  rules: SECRET_RULES,
};

export interface RiskResult {
  classes: RiskClass[];
  unbounded: boolean;
  findings: RiskFinding[];
  /** A POST that reads (RPC style): a hint for the operator, the classes are unchanged (read-like.ts). */
  readLike?: ReadLike;
}

export function classifyRisk(f: OperationFacts, rules: readonly RiskRule[] = RISK_RULES): RiskResult {
  const findings: RiskFinding[] = [];
  for (const rule of rules) {
    const reason = rule.test(f);
    if (reason !== undefined) findings.push({ class: rule.class, rule: rule.id, reason });
  }
  const present = new Set(findings.map((x) => x.class));
  // A destructive verb on a safe method (`GET /deleteUser`) is still a state change.
  if (present.has('destructive') && !present.has('write')) {
    findings.push({
      class: 'write',
      rule: 'destructive-implies-write',
      reason: 'a destructive operation changes state',
    });
    present.add('write');
    present.delete('read');
    const i = findings.findIndex((x) => x.class === 'read');
    if (i >= 0) findings.splice(i, 1);
  }
  // Only a POST can be read-like (readLikeOf answers undefined for any other method at once).
  const readLike =
    f.method === 'post'
      ? readLikeOf({
          method: f.method,
          path: f.path,
          pathWords: f.pathWords,
          segmentWords: pathWordsOf(f.path).segmentWords,
          opWords: f.opWords,
          ...(f.operationId !== undefined ? { operationId: f.operationId } : {}),
        })
      : undefined;
  return {
    classes: RISK_CLASSES.filter((c) => present.has(c)),
    unbounded: present.has('unbounded'),
    findings,
    ...(readLike ? { readLike } : {}),
  };
}

export { LIST_WORDS };
