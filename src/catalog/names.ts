import { createHash } from 'node:crypto';
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
    if (seen.has(k)) throw new Error(`tool name collision that hashing could not separate: ${n}`);
    seen.add(k);
  }
  return names;
}
