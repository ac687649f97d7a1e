import { readFileSync, statSync } from 'node:fs';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import { describeSource } from '../openapi/read.js';
import { cleanLine } from '../openapi/text.js';
import type { ApiMember } from './served-api.js';

// Past this, reading the spec twice on the main thread is not "cheap": the title waits for the load.
const MAX_EARLY_BYTES = 16 * 1024 * 1024;

/**
 * The title the catalogue will have (catalog/build.ts, served-api.ts `merged`), known before the spec
 * is loaded, or undefined whenever that is not certain — then the caller waits for the catalogue.
 * An API set is titled by its names. One local spec: `info.title` when it is a string (the loader's
 * repair and the Swagger 2.0 conversion leave a string title as it is); JSON: its `info` value alone
 * when that is certain (jsonInfoOnly), else parsed whole, as the loader does; YAML only for its top-level `info:` block (infoBlock), and not when that block is
 * in flow style, uses an alias, or the key is written twice.
 */
export function earlyTitle(members: readonly ApiMember[]): string | undefined {
  if (members.length === 0) return undefined;
  if (members.length > 1 || members[0]!.name !== undefined) {
    if (members.some((m) => m.name === undefined)) return undefined;
    return members.map((m) => m.name).join(' + ');
  }
  try {
    const src = describeSource(members[0]!.source.spec);
    if (src.kind !== 'file') return undefined;
    const st = statSync(src.location);
    if (!st.isFile() || st.size > MAX_EARLY_BYTES) return undefined;
    return titleOfSpec(readFileSync(src.location));
  } catch {
    return undefined;
  }
}

/** `info.title` of a spec's bytes (see earlyTitle), cleaned as the catalogue cleans it; undefined when unsure. */
export function titleOfSpec(bytes: Buffer): string | undefined {
  // As parse.ts decides: a BOM dropped, JSON when the first character opens an object or array.
  const from = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let i = from;
  while (i < bytes.length && ASCII_SPACE.has(bytes[i]!)) i++;
  // Other white space (parse.ts reads `\s` as Unicode does): not decided here.
  if (i >= bytes.length || bytes[i]! >= 0x80) return undefined;
  try {
    if (bytes[i] === 0x7b) {
      const info = jsonInfoOnly(bytes, i);
      if (info !== undefined) return titleOf({ info });
    }
    const json = bytes[i] === 0x7b || bytes[i] === 0x5b;
    return titleOf(json ? JSON.parse(bytes.toString('utf8', from)) : infoBlock(bytes, from));
  } catch {
    return undefined;
  }
}

const ASCII_SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

// The info value of a JSON spec is looked for this far from its start (it is small).
const MAX_INFO_BYTES = 64 * 1024;
const MAX_INFO_TRIES = 64;
// `\uXXXX` spellings of the letters of `info`: a key written with them is "info" to JSON.parse.
const INFO_ESCAPES = ['\\u0069', '\\u006e', '\\u006E', '\\u0066', '\\u006f', '\\u006F'];

/**
 * The top-level `info` value of a JSON document opening with `{` at `open`, parsed alone, or
 * undefined when that is not certain (then the caller parses the whole document, as before: GitHub's
 * 4 MB cost ~0.1–0.3 s of CPU and GC on the main thread before the early answer). JSON.parse does all
 * the reading; only slices are decoded. Sound for every document the loader serves, which is valid
 * JSON as a whole (parse.ts refuses anything else):
 * - `"info"` is written once in the whole text, with no `\u` escape of its letters anywhere, so the
 *   key cannot be repeated (JSON.parse keeps the last of duplicates);
 * - it follows `{` or `,`, and a `:` follows it: an unescaped quote opens a string in valid JSON, so
 *   this is a key;
 * - the value is the first slice from its `{` to a `}` that parses: a valid object ends where a
 *   parser of the whole document ends it, so no shorter slice parses;
 * - the key is at the top level: the shorter side proves it. Before: the text up to the key, its
 *   trailing comma replaced by `}`, parses as an object (whole top-level members precede). After:
 *   the rest is `}` alone, or `{` + the rest past its comma parses as an object (a nested object's
 *   rest would close more than one level and leave text over).
 */
function jsonInfoOnly(bytes: Buffer, open: number): unknown {
  const key = bytes.indexOf('"info"', open);
  if (key < 0 || bytes.indexOf('"info"', key + 1) >= 0) return undefined;
  if (INFO_ESCAPES.some((e) => bytes.indexOf(e, open) >= 0)) return undefined;
  let back = key - 1;
  while (back > open && ASCII_SPACE.has(bytes[back]!)) back--;
  if (bytes[back] !== 0x7b && bytes[back] !== 0x2c) return undefined;
  let at = key + 6;
  while (ASCII_SPACE.has(bytes[at]!)) at++;
  if (bytes[at] !== 0x3a) return undefined;
  at++;
  while (ASCII_SPACE.has(bytes[at]!)) at++;
  // Not an object: the whole parse decides (titleOf gives unknown for it anyway).
  if (bytes[at] !== 0x7b) return undefined;
  let end = at;
  let info: unknown;
  for (let tries = 0; info === undefined; tries++) {
    end = bytes.indexOf(0x7d, end + 1);
    if (tries >= MAX_INFO_TRIES || end < 0 || end - at > MAX_INFO_BYTES) return undefined;
    try {
      info = JSON.parse(bytes.toString('utf8', at, end + 1));
    } catch {
      // Not the end of the value yet.
    }
  }
  return topLevel(bytes, open, back, end + 1) ? info : undefined;
}

/** Whether the member between `before` (its `{` or `,`) and `after` is one of the top-level object's (see jsonInfoOnly). */
function topLevel(bytes: Buffer, open: number, before: number, after: number): boolean {
  try {
    if (before === open) return true;
    if (before - open <= bytes.length - after)
      return isPlainObject(JSON.parse(`${bytes.toString('utf8', open, before)}}`));
    const rest = bytes.toString('utf8', after).trim();
    if (rest === '}') return true;
    return rest.startsWith(',') && isPlainObject(JSON.parse(`{${rest.slice(1)}`));
  } catch {
    return false;
  }
}

function titleOf(doc: unknown): string | undefined {
  if (!isPlainObject(doc)) return undefined;
  const info = doc.info;
  // A `$ref` in place of the info object is bundled or inlined by the loader: not known here.
  if (!isPlainObject(info) || '$ref' in info) return undefined;
  return typeof info.title === 'string' ? cleanLine(info.title, 200) : undefined;
}

/**
 * `{ info: … }` from a YAML document's top-level `info:` block alone, read from the bytes (a large
 * spec is not decoded whole); throws when unsure. Sound because js-yaml (the loader's parser)
 * refuses a line at column 0 inside a quoted scalar, a flow collection or a block scalar ("deficient
 * indentation"): in any document it loads, such a line is top-level structure. A document it does
 * not load is never served, whatever was answered early.
 */
function infoBlock(bytes: Buffer, from: number): unknown {
  // The argument below holds for a block mapping at the top: a document whose top level is a flow
  // collection (`{…}`, also after `---` or a tag) may hold column-0 lines inside a quoted scalar.
  if (!blockMappingAtTop(bytes, from)) throw new Error('not a block mapping at the top');
  // Every line opening an `info` key, in any spelling a duplicate check must see.
  const starts = ['info', '"info"', "'info'"].flatMap((key) => keyLines(bytes, from, key));
  // None, or two (a duplicate key: the loader refuses the document).
  if (starts.length !== 1) throw new Error('no single info block');
  const at = starts[0]!;
  let end = lineEnd(bytes, at);
  // `info:` alone on its line (a block mapping follows), not `info: {…}` or `info: &anchor`.
  if (!/^info:[ \t]*(?:#.*)?\r?$/.test(bytes.toString('utf8', at, end)))
    throw new Error('not a block mapping');
  // The block: indented lines, blank lines and comments, up to the next line at column 0.
  while (end < bytes.length && BLOCK_LINE.has(bytes[end + 1]!)) end = lineEnd(bytes, end + 1);
  const parsed = loadYaml(bytes.toString('utf8', at, end), { schema: CORE_SCHEMA, maxDepth: 64 });
  if (!isPlainObject(parsed) || Object.keys(parsed).length !== 1) throw new Error('not one info block');
  return parsed;
}

/**
 * Whether the document's first line of content (past blank lines, comments, `%` directives and a
 * bare `---`) opens a plain or quoted key at column 0: the top level is then a block mapping.
 */
function blockMappingAtTop(bytes: Buffer, from: number): boolean {
  for (let at = from; at < bytes.length; ) {
    const end = lineEnd(bytes, at);
    const line = bytes.toString('utf8', at, end).replace(/\r$/, '');
    if (!/^(?:[ \t]*(?:#.*)?|%.*|---[ \t]*(?:#.*)?)$/.test(line))
      return /^(?:[A-Za-z_$/][^:#{}[\],&*!|>'"%@`]*|"[^"\\]*"|'[^']*'):(?:[ \t]|$)/.test(line);
    at = end + 1;
  }
  return false;
}

// What a line inside a top-level block starts with: indentation, a comment, or nothing.
const BLOCK_LINE = new Set([0x20, 0x09, 0x23, 0x0a, 0x0d]);

/** Offsets of the lines that start with `key` then `:` (blanks between allowed). */
function keyLines(bytes: Buffer, from: number, key: string): number[] {
  const found: number[] = [];
  const opensKey = (at: number) => {
    let j = at + key.length;
    while (bytes[j] === 0x20 || bytes[j] === 0x09) j++;
    return bytes[j] === 0x3a;
  };
  if (bytes.toString('utf8', from, from + key.length) === key && opensKey(from)) found.push(from);
  const needle = Buffer.from(`\n${key}`);
  for (let i = bytes.indexOf(needle, from); i !== -1; i = bytes.indexOf(needle, i + 1))
    if (opensKey(i + 1)) found.push(i + 1);
  return found;
}

function lineEnd(bytes: Buffer, at: number): number {
  const nl = bytes.indexOf(0x0a, at);
  return nl === -1 ? bytes.length : nl;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
