import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
// The error class alone: the errors barrel pulls in the MCP SDK (its code table maps to protocol
// codes), a megabyte of code the spec-loading worker thread would load for nothing.
import { WardenError } from '../errors/error.js';

export interface ShapeLimits {
  maxDepth: number;
  maxNodes: number;
}

/**
 * JSON is parsed with JSON.parse (fast, no recursion limit issues); everything else as YAML with the
 * core schema, so `version: 2023-08-16` stays a string and no custom tags run.
 */
/** Whether `parseText` reads `text` as JSON (else as YAML). */
export function isJsonText(text: string): boolean {
  const first = text.match(/^\uFEFF?\s*(.)/s)?.[1];
  return first === '{' || first === '[';
}

export function parseText(text: string, file: string, limits: ShapeLimits): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let doc: unknown;
  if (isJsonText(body)) {
    try {
      doc = JSON.parse(body);
    } catch (e) {
      const msg = (e as Error).message;
      const pos = Number(msg.match(/position (\d+)/)?.[1] ?? Number.NaN);
      const where = Number.isNaN(pos) ? {} : lineColAt(body, pos);
      throw new WardenError(
        'SPEC_PARSE',
        `invalid JSON: ${msg.replace(/ in JSON at position \d+.*$/s, '')}`,
        {
          location: { file, ...where },
        },
      );
    }
  } else {
    try {
      doc = loadYaml(body, { schema: CORE_SCHEMA, filename: file, maxDepth: limits.maxDepth });
    } catch (e) {
      const err = e as { reason?: string; mark?: { line: number; column: number }; message: string };
      if (err instanceof RangeError) {
        throw new WardenError('SPEC_TOO_DEEP', `the spec nests deeper than ${limits.maxDepth} levels`, {
          location: { file },
        });
      }
      const deep = /maxDepth/.test(err.message);
      throw new WardenError(
        deep ? 'SPEC_TOO_DEEP' : 'SPEC_PARSE',
        deep
          ? `the spec nests deeper than ${limits.maxDepth} levels`
          : `invalid YAML: ${err.reason ?? 'syntax error'}`,
        { location: { file, ...(err.mark ? { line: err.mark.line + 1, column: err.mark.column + 1 } : {}) } },
      );
    }
  }
  checkShape(doc, file, limits);
  return doc;
}

/**
 * Walks the parsed tree once, without recursion, counting every node it reaches. Shared subtrees
 * (YAML aliases) are counted each time they are reached, so an alias bomb exceeds `maxNodes` in
 * bounded time instead of exploding later; an alias cycle exceeds `maxDepth`. `before` is what the
 * spec's other files already counted (one budget for a multi-file spec); returns the new total.
 */
export function checkShape(
  doc: unknown,
  /** The file named by an error; a function when naming it costs (thousands of $ref'd files). */
  fileName: string | (() => string),
  limits: ShapeLimits,
  before = 0,
): number {
  const file = () => (typeof fileName === 'string' ? fileName : fileName());
  // Two parallel stacks and Object.keys, not [node, depth] pairs and Object.values: a spec of a
  // million nodes is walked without allocating per node (issue 22).
  const stack: unknown[] = [doc];
  const depths: number[] = [0];
  let nodes = before;
  while (stack.length > 0) {
    const node = stack.pop();
    const depth = depths.pop()!;
    if (++nodes > limits.maxNodes) {
      throw new WardenError(
        'SPEC_TOO_LARGE',
        `the spec${before > 0 ? ' with the files it $refs' : ''} has more than ${limits.maxNodes.toLocaleString('en')} nodes (counting YAML aliases at each use)`,
        { location: { file: file() } },
      );
    }
    if (depth > limits.maxDepth) {
      throw new WardenError('SPEC_TOO_DEEP', `the spec nests deeper than ${limits.maxDepth} levels`, {
        location: { file: file() },
      });
    }
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (v !== null && typeof v === 'object') {
          stack.push(v);
          depths.push(depth + 1);
        }
      }
      nodes += node.length;
    } else {
      const obj = node as Record<string, unknown>;
      const keys = Object.keys(obj);
      for (let i = 0; i < keys.length; i++) {
        const v = obj[keys[i]!];
        if (v !== null && typeof v === 'object') {
          stack.push(v);
          depths.push(depth + 1);
        }
      }
      nodes += keys.length;
    }
  }
  return nodes;
}

export function lineColAt(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: pos - last };
}

export function pointerTokens(pointer: string): string[] {
  // A `#…` fragment is URI-encoded on top of the pointer escaping; a bare pointer is not.
  const fragment = pointer.startsWith('#');
  const p = fragment ? pointer.slice(1) : pointer;
  if (p === '') return [];
  const tokens = p.slice(1).split('/');
  // Most tokens (`components`, `schemas`, `Pet`) have nothing to decode: left as they are, without
  // three string passes each (ref lookups run for every $ref of a big spec).
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if ((fragment && t.includes('%')) || t.includes('~'))
      tokens[i] = (fragment ? decodeURIComponentSafe(t) : t).replace(/~1/g, '/').replace(/~0/g, '~');
  }
  return tokens;
}

export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function toPointer(tokens: readonly string[]): string {
  return tokens.map((t) => `/${escapePointerToken(t)}`).join('');
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Looks up a local JSON pointer in a parsed document; undefined when it leads nowhere. */
export function getByPointer(doc: unknown, pointer: string): unknown {
  let node: unknown = doc;
  for (const t of pointerTokens(pointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    if (!Object.hasOwn(node, t)) return undefined;
    node = (node as Record<string, unknown>)[t];
  }
  return node;
}
