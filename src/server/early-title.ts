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
 * repair and the Swagger 2.0 conversion leave a string title as it is); JSON is parsed whole, as the
 * loader does; YAML only for its top-level `info:` block (infoBlock), and not when that block is
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
    const json = bytes[i] === 0x7b || bytes[i] === 0x5b;
    return titleOf(json ? JSON.parse(bytes.toString('utf8', from)) : infoBlock(bytes, from));
  } catch {
    return undefined;
  }
}

const ASCII_SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

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
