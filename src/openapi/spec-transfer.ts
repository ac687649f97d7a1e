/**
 * How the prefetch worker hands a loaded spec to the main thread. The main thread is the busy one at
 * start-up (it loads the gateway's modules, then builds the catalogue), so the receiving side is the
 * cost that counts. A structured clone of GitHub's document cost a fresh main thread 90–110 ms CPU
 * to deserialise, JSON.parse of the same document 42–56 ms; the root file's text (3.6 MB) added
 * another 40–70 ms as a cloned string, and nothing as UTF-8 bytes moved (transferred) and decoded.
 *
 * JSON is used only when it gives back exactly what structured clone would: no `undefined`, no
 * non-finite number or -0, no array hole, no shared or cyclic object (a YAML alias, a ref inlined
 * in two places), only plain objects and arrays. Anything else goes as a structured clone, as before.
 * This module imports only node:v8: both the worker and the main thread's prefetch load it.
 */

import { deserialize } from 'node:v8';

export type PackedSpec =
  | { clone: unknown }
  | { json: string; text: Uint8Array; rest: Record<string, unknown> }
  // A spec cache hit (./cache.ts), as stored: v8 form of every field but `source` and `rootText`.
  // With the catalogue snapshot kept beside it, if any (undecoded: ../catalog/snapshot.ts).
  | { entry: Uint8Array; text: Uint8Array; source: unknown; catalog?: Uint8Array };

/** A spec cache hit's bytes, moved as they are: the main thread deserialises them once (not the worker too). */
export function packCached(hit: {
  bytes: Uint8Array;
  source: unknown;
  rootText: string;
  catalog?: Uint8Array;
}): {
  packed: PackedSpec;
  transfer: ArrayBuffer[];
} {
  const text = new TextEncoder().encode(hit.rootText);
  // A small read may sit in Node's shared Buffer pool, which cannot be transferred: copied.
  const own = (b: Uint8Array) => (b.byteLength < 64 * 1024 ? new Uint8Array(b) : b);
  const bytes = own(hit.bytes);
  const catalog = hit.catalog && own(hit.catalog);
  return {
    packed: { entry: bytes, text, source: hit.source, ...(catalog ? { catalog } : {}) },
    transfer: [
      text.buffer as ArrayBuffer,
      bytes.buffer as ArrayBuffer,
      ...(catalog ? [catalog.buffer as ArrayBuffer] : []),
    ],
  };
}

/** Catalogue snapshots that came with a spec from the cache, by the spec they belong to. */
const catalogSnapshots = new WeakMap<object, Uint8Array>();

/** Keeps the catalogue snapshot of a spec from the cache with it (for ../server/served-api.ts). */
export function attachCatalogSnapshot(spec: object, snapshot: Uint8Array): void {
  catalogSnapshots.set(spec, snapshot);
}

/** The catalogue snapshot that came with this spec, once (it is let go of after). */
export function takeCatalogSnapshot(spec: object): Uint8Array | undefined {
  const s = catalogSnapshots.get(spec);
  catalogSnapshots.delete(spec);
  return s;
}

/** The message form of a loaded spec (`doc` and `rootText` fields), and what to transfer with it. */
export function packSpec(spec: { doc: unknown; rootText: string }): {
  packed: PackedSpec;
  transfer: ArrayBuffer[];
} {
  if (!jsonExact(spec.doc)) return { packed: { clone: spec }, transfer: [] };
  const { doc, rootText, ...rest } = spec;
  const text = new TextEncoder().encode(rootText);
  return { packed: { json: JSON.stringify(doc), text, rest }, transfer: [text.buffer as ArrayBuffer] };
}

/** The spec a `packSpec` message stands for. */
export function unpackSpec(p: PackedSpec): unknown {
  if ('clone' in p) return p.clone;
  let spec: Record<string, unknown>;
  if ('entry' in p) {
    const stored = deserialize(p.entry) as Record<string, unknown> | null;
    // A damaged entry: the caller loads the spec itself (and its own lookup drops the entry).
    if (
      stored === null ||
      typeof stored !== 'object' ||
      typeof stored.doc !== 'object' ||
      stored.doc === null
    )
      throw new Error('unusable spec cache entry');
    spec = { source: p.source, ...stored };
    if (p.catalog) attachCatalogSnapshot(spec, p.catalog);
  } else spec = { ...p.rest, doc: JSON.parse(p.json) };
  // Decoded on first read (30 ms for GitHub's 3.6 MB on a fresh main thread, which has nothing that
  // reads it at start-up); ignoreBOM keeps a leading BOM, as the loader read it.
  const bytes = p.text;
  Object.defineProperty(spec, 'rootText', {
    enumerable: true,
    configurable: true,
    get() {
      const rootText = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
      Object.defineProperty(spec, 'rootText', {
        value: rootText,
        enumerable: true,
        configurable: true,
        writable: true,
      });
      return rootText;
    },
  });
  return spec;
}

/** Whether JSON.parse(JSON.stringify(value)) is structurally identical to a structured clone of it. */
export function jsonExact(value: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(v) || Object.is(v, -0)) return false;
        continue;
      case 'object':
        break;
      default:
        // undefined, bigint, function, symbol
        return false;
    }
    if (v === null) continue;
    if (seen.has(v)) return false;
    seen.add(v);
    if (Array.isArray(v)) {
      // Elements only: the parsers and the loader never set other properties on an array.
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) return false;
        stack.push(v[i]);
      }
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    // Own enumerable string keys are what both JSON and structured clone carry; a symbol key or a
    // non-enumerable property is dropped by both.
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) stack.push(o[k]);
  }
  return true;
}
