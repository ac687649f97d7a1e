import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { WardenError } from '../errors/index.js';

export interface ShapeLimits {
  maxDepth: number;
  maxNodes: number;
}

/**
 * JSON is parsed with JSON.parse (fast, no recursion limit issues); everything else as YAML with the
 * core schema, so `version: 2023-08-16` stays a string and no custom tags run.
 */
export function parseText(text: string, file: string, limits: ShapeLimits): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const first = body.match(/^\s*(.)/s)?.[1];
  let doc: unknown;
  if (first === '{' || first === '[') {
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
 * bounded time instead of exploding later; an alias cycle exceeds `maxDepth`.
 */
export function checkShape(doc: unknown, file: string, limits: ShapeLimits): void {
  const stack: Array<[unknown, number]> = [[doc, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (++nodes > limits.maxNodes) {
      throw new WardenError(
        'SPEC_TOO_LARGE',
        `the spec has more than ${limits.maxNodes.toLocaleString('en')} nodes (counting YAML aliases at each use)`,
        { location: { file } },
      );
    }
    if (depth > limits.maxDepth) {
      throw new WardenError('SPEC_TOO_DEEP', `the spec nests deeper than ${limits.maxDepth} levels`, {
        location: { file },
      });
    }
    if (node !== null && typeof node === 'object') {
      const values = Array.isArray(node) ? node : Object.values(node);
      for (const v of values) if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
      nodes += values.length;
    }
  }
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

/**
 * Returns a function that finds the line of a JSON pointer in the original text. Only used on error
 * and report paths: it parses once more with a position-keeping parser, slower than the load path.
 */
export function createLineLocator(
  text: string,
): (pointer: string) => { line: number; column: number } | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, {
    lineCounter: lc,
    uniqueKeys: false,
  });
  return (pointer) => {
    let node: unknown = doc.contents;
    let range = (node as { range?: [number, number] } | null)?.range;
    for (const token of pointerTokens(pointer)) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === token);
        if (!pair) break;
        range = (pair.key as { range?: [number, number] }).range ?? range;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(token)];
        if (item === undefined) break;
        range = (item as { range?: [number, number] }).range ?? range;
        node = item;
      } else break;
    }
    if (!range) return undefined;
    const p = lc.linePos(range[0]);
    return { line: p.line, column: p.col };
  };
}

export function pointerTokens(pointer: string): string[] {
  // A `#…` fragment is URI-encoded on top of the pointer escaping; a bare pointer is not.
  const fragment = pointer.startsWith('#');
  const p = fragment ? pointer.slice(1) : pointer;
  if (p === '') return [];
  return p
    .slice(1)
    .split('/')
    .map((t) => (fragment ? decodeURIComponentSafe(t) : t).replace(/~1/g, '/').replace(/~0/g, '~'));
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
