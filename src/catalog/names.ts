import { createHash } from 'node:crypto';
import { WardenError } from '../errors/index.js';
import { stripUnsafeText } from '../openapi/text.js';

/** What MCP clients and LLM tool APIs accept. */
export const TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX = 64;

export function shortHash(input: string): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 8);
}

/**
 * Makes an operationId safe: unsafe text removed, accents folded (`café` → `cafe`), any other
 * character outside `[A-Za-z0-9_.-]` as `_`. A name over 64 characters keeps its head and gets a hash
 * of the whole original, so it stays unique and the same on every run.
 */
export function sanitizeName(raw: string): string | undefined {
  const folded = stripUnsafeText(raw)
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '');
  const safe = folded
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/_{2,}/g, '_')
    .replace(/^[_.-]+|[_.-]+$/g, '');
  if (!safe) return undefined;
  return safe.length <= MAX ? safe : `${safe.slice(0, MAX - 9).replace(/[_.-]+$/, '')}_${shortHash(raw)}`;
}

/** `GET /pets/{petId}/photos` → `get_pets_by_petId_photos`. */
export function fallbackName(method: string, path: string): string {
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((seg) => seg.replace(/\{([^}]*)\}/g, 'by_$1'));
  return sanitizeName([method.toLowerCase(), ...parts].join('_')) ?? method.toLowerCase();
}

export interface NameInput {
  operationId?: string;
  method: string;
  path: string;
}

/**
 * Assigns every operation a unique, valid and stable name. A name depends only on its own
 * operation, except on a collision (names compared case-insensitively, since some clients fold
 * case): then an operation whose operationId is already exactly the name keeps it, and the others
 * get a suffix hashed from their own method and path — never from their position in the spec, so
 * adding or moving other operations renames nothing.
 */
export function assignNames(ops: readonly NameInput[]): string[] {
  const candidates = ops.map(
    (op) => (op.operationId && sanitizeName(op.operationId)) || fallbackName(op.method, op.path),
  );
  const groups = new Map<string, number[]>();
  candidates.forEach((c, i) => {
    const k = c.toLowerCase();
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  const names = [...candidates];
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const owner = members.find((i) => ops[i]!.operationId === candidates[i]);
    for (const i of members) {
      if (i === owner) continue;
      const c = candidates[i]!;
      names[i] =
        `${c.slice(0, MAX - 9).replace(/[_.-]+$/, '')}_${shortHash(`${ops[i]!.method.toUpperCase()} ${ops[i]!.path}`)}`;
    }
  }
  const seen = new Set<string>();
  for (const n of names) {
    const k = n.toLowerCase();
    // Two different method+path pairs hashing to the same 32 bits after the same prefix: refuse
    // rather than serve an ambiguous tool.
    if (seen.has(k))
      throw new WardenError(
        'SPEC_INVALID',
        `two operations end up with the tool name ${n} even after hashing: give one of them another operationId`,
      );
    seen.add(k);
  }
  return names;
}

/** One API of a set, for naming: its name, its prefix (`""`: none) and its tools' own names. */
export interface SetNameInput {
  api: string;
  prefix: string;
  tools: ReadonlyArray<{ name: string; method: string; path: string }>;
}

/**
 * `crm` + `getCustomer` → `crm_getCustomer`. Over 64 characters, the head is kept and a hash of the
 * whole prefixed name added (as `sanitizeName` does), so the name depends only on the prefix and the
 * operation and is the same on every start.
 */
export function prefixName(prefix: string, name: string): string {
  if (prefix === '') return name;
  const full = `${prefix}_${name}`;
  return full.length <= MAX ? full : `${full.slice(0, MAX - 9).replace(/[_.-]+$/, '')}_${shortHash(full)}`;
}

/**
 * The names of every tool of an API set, per API in the order given. Each is `prefixName`'s; two
 * that still collide (compared case-insensitively: an empty prefix, or `a` + `b_c` against `a_b` +
 * `c`) are resolved by API name: the first in alphabetical order keeps the name, the others get a
 * suffix hashed from their API, method and path — never from their position, so the order of `apis:`
 * renames nothing.
 */
export function assignSetNames(apis: readonly SetNameInput[]): string[][] {
  const names = apis.map((a) => a.tools.map((t) => prefixName(a.prefix, t.name)));
  const groups = new Map<string, Array<[number, number]>>();
  names.forEach((list, a) => {
    list.forEach((n, t) => {
      const k = n.toLowerCase();
      const g = groups.get(k);
      if (g) g.push([a, t]);
      else groups.set(k, [[a, t]]);
    });
  });
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const sorted = [...members].sort(([a1], [a2]) => (apis[a1]!.api < apis[a2]!.api ? -1 : 1));
    for (const [a, t] of sorted.slice(1)) {
      const api = apis[a]!;
      const tool = api.tools[t]!;
      const n = names[a]![t]!;
      names[a]![t] =
        `${n.slice(0, MAX - 9).replace(/[_.-]+$/, '')}_${shortHash(`${api.api} ${tool.method.toUpperCase()} ${tool.path}`)}`;
    }
  }
  const seen = new Set<string>();
  for (const n of names.flat()) {
    const k = n.toLowerCase();
    if (seen.has(k))
      throw new WardenError(
        'SPEC_INVALID',
        `two APIs' operations end up with the tool name ${n} even after hashing: give one of them another operationId or prefix`,
      );
    seen.add(k);
  }
  return names;
}
