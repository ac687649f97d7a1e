import { CORE_SCHEMA, DEFAULT_SCHEMA, type LoadOptions, load as loadYaml, type Schema } from 'js-yaml';
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
      // Empty, or only comments: js-yaml 4 reads that as nothing (or null), not as an error.
      if (!hasDocument(body))
        throw Object.assign(new Error('empty'), { reason: 'the file holds no document' });
      doc = loadYaml(body, yamlOptions(CORE_SCHEMA, limits.maxDepth, file));
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
 * js-yaml's load options for a spec. js-yaml 4 reads a line at column 0 inside a quoted scalar or a
 * flow collection with only a warning ("deficient indentation"), where js-yaml 5 (and the YAML spec)
 * refuse the document: so does the gateway (server/early-title.ts relies on it). Its other warnings
 * (an unknown directive, an unsupported YAML version) stay warnings, as in 5.
 */
export function yamlOptions(schema: Schema, maxDepth: number, filename?: string): LoadOptions {
  return {
    schema,
    maxDepth,
    ...(filename !== undefined ? { filename } : {}),
    onWarning: strictIndentation,
  };
}

function strictIndentation(e: Error): void {
  if (/deficient indentation/.test(e.message)) throw e;
}

/**
 * A file that a spec `$ref`s, parsed as json-schema-ref-parser's own YAML parser does (the core
 * schema; for a file the core schema refuses, js-yaml's default one, with timestamps, binary and
 * merge keys; an empty file is nothing), with the gateway's js-yaml and depth limit. That parser is
 * js-yaml 5's, the ref parser's dependency; 4 parses a cold file ~1.7× faster (issue 22: thousands of
 * files in DigitalOcean's spec). Too deep is SPEC_TOO_DEEP, as for the root file; any other failure
 * is the default schema's error, for the caller to report as the ref parser would.
 */
export function parseRefYaml(text: string, file: () => string, limits: ShapeLimits): unknown {
  if (!hasDocument(text)) return undefined;
  try {
    return loadYaml(text, yamlOptions(CORE_SCHEMA, limits.maxDepth));
  } catch (first) {
    tooDeep(first, file, limits);
    try {
      return loadYaml(text, yamlOptions(DEFAULT_SCHEMA, limits.maxDepth));
    } catch (e) {
      tooDeep(e, file, limits);
      throw e;
    }
  }
}

/** Whether a YAML text has a line that is not blank or a comment (a bare `---` counts: a null document). */
function hasDocument(text: string): boolean {
  return /^[ \t]*[^\s#]/m.test(text);
}

function tooDeep(e: unknown, file: () => string, limits: ShapeLimits): void {
  if (e instanceof RangeError || /maxDepth/.test((e as Error).message))
    throw new WardenError('SPEC_TOO_DEEP', `the spec nests deeper than ${limits.maxDepth} levels`, {
      location: { file: file() },
    });
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
