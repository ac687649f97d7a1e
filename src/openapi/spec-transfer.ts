/**
 * How the prefetch worker hands a loaded spec to the main thread. The main thread is the busy one at
 * start-up (it loads the gateway's modules, then builds the catalogue), so the receiving side is the
 * cost that counts. A structured clone of GitHub's document cost a fresh main thread 90–110 ms CPU
 * to deserialise, JSON.parse of the same document 42–56 ms; the root file's text (3.6 MB) added
 * another 40–70 ms as a cloned string, and nothing as UTF-8 bytes moved (transferred) and decoded.
 *
 * A spec the worker loaded goes as its spec cache entry's payload would (`encodeStored`): the
 * document as JSON, one text per top-level key, escaped to ASCII and moved as bytes, parsed by the
 * main thread key by key on first read. The worker writes the same texts to the cache afterwards
 * (`packSpec` returns them) instead of making them a second time; a cloned JSON string of the whole
 * document took 70–85 ms between the threads, bytes ~10. JSON is used only when it gives back exactly
 * what structured clone would: no `undefined`, no non-finite number or -0, no array hole, no shared
 * or cyclic object (a YAML alias, a ref inlined in two places), only plain objects and arrays.
 * Anything else goes in V8's serialisation, as a structured clone would.
 * This module imports only node:v8: both the worker and the main thread's prefetch load it.
 */

import { rmSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { WardenError } from '../errors/error.js';

/**
 * A spec as a cache entry's payload (`encodeStored`: every field but `source` and `rootText`), and
 * the root file's text as UTF-8. From a hit (./cache.ts), with the catalogue snapshot kept beside
 * it, if any (undecoded: ../catalog/snapshot.ts), and `file`, the entry's, removed if a part of it
 * turns out not to parse; or from a load (`packSpec`).
 */
export type PackedSpec = {
  entry: Uint8Array;
  text: Uint8Array;
  source: unknown;
  catalog?: Uint8Array;
  file?: string;
};

/** A spec cache hit's bytes, moved as they are: the main thread deserialises them once (not the worker too). */
export function packCached(hit: {
  bytes: Uint8Array;
  source: unknown;
  rootText: string;
  catalog?: Uint8Array;
  entryFile?: string;
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
    packed: {
      entry: bytes,
      text,
      source: hit.source,
      ...(catalog ? { catalog } : {}),
      ...(hit.entryFile !== undefined ? { file: hit.entryFile } : {}),
    },
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

/**
 * The message form of a loaded spec, what to transfer with it, and its document's encoding, for the
 * cache entry the worker stores next (./cache.ts `store`): the same texts, not made twice.
 */
export function packSpec(spec: { doc: unknown; rootText: string; source?: unknown }): {
  packed: PackedSpec;
  transfer: ArrayBuffer[];
  encoded: EncodedDoc | undefined;
} {
  const { source, rootText, ...stored } = spec;
  const encoded = encodeDoc(stored.doc);
  const parts = storedParts(stored, encoded);
  // One buffer of its own (a small Buffer may sit in the shared pool, which cannot be moved); the
  // parts stay with the worker for the store.
  const entry = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    entry.set(p, at);
    at += p.byteLength;
  }
  const text = new TextEncoder().encode(rootText);
  return {
    packed: { entry, text, source },
    transfer: [entry.buffer as ArrayBuffer, text.buffer as ArrayBuffer],
    encoded,
  };
}

/** The spec a `packSpec` message stands for. */
export function unpackSpec(p: PackedSpec): unknown {
  const file = p.file;
  const stored = decodeStored(p.entry, () => {
    if (file === undefined) return;
    try {
      rmSync(file, { force: true });
    } catch {
      // Gone already, or the disk refuses: the next start reads it, fails the same way, tries again.
    }
  });
  // A damaged entry: the caller loads the spec itself (and its own lookup drops the entry).
  if (!stored) throw new Error('unusable spec cache entry');
  const spec: Record<string, unknown> = { source: p.source, ...stored };
  if (p.catalog) attachCatalogSnapshot(spec, p.catalog);
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

/**
 * A spec cache entry's payload (./cache.ts): every field of the loaded spec but `source` and
 * `rootText`. When JSON carries it exactly (`jsonExact`), the document is kept as JSON, one text per
 * top-level key, and read back lazily, key by key (`decodeStored`): a warm start that restores its
 * catalogue reads `paths` and nothing else (GitHub: 30 ms of JSON.parse where v8.deserialize of the
 * whole document took ~100 ms on a fresh main thread). Anything else keeps the v8 form.
 */
const JSON_FORM = 0x4a; // 'J'
const V8_FORM = 0x56; // 'V'

/** A document in the JSON form: its top-level keys and one ASCII JSON text per key. */
export interface EncodedDoc {
  readonly doc: object;
  readonly keys: readonly string[];
  readonly parts: readonly Uint8Array[];
}

/** The JSON form of a document, or undefined when JSON would not carry it exactly (`jsonExact`). */
export function encodeDoc(doc: unknown): EncodedDoc | undefined {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !jsonExact(doc)) return undefined;
  const keys = Object.keys(doc);
  const parts = keys.map((k) => asciiJson((doc as Record<string, unknown>)[k]));
  return { doc, keys, parts };
}

/**
 * The parts of a stored spec's payload (written one after the other). `encoded`: its document's
 * JSON form made before (`packSpec`), used only when it is of this very document object.
 */
export function encodeStored(value: Record<string, unknown>, encoded?: EncodedDoc): Uint8Array[] {
  return storedParts(value, encoded && encoded.doc === value.doc ? encoded : encodeDoc(value.doc));
}

function storedParts(value: Record<string, unknown>, json: EncodedDoc | undefined): Uint8Array[] {
  const { doc: _, ...rest } = value;
  if (!json || !jsonExact(rest)) return [Uint8Array.of(V8_FORM), serialize(value)];
  const { keys, parts } = json;
  const meta = asciiJson({
    rest: { ...value, doc: null },
    doc: keys.map((k, i) => [k, parts[i]!.byteLength]),
  });
  const head = Buffer.alloc(5);
  head[0] = JSON_FORM;
  head.writeUInt32LE(meta.byteLength, 1);
  return [head, meta, ...parts];
}

/**
 * JSON with every character past ASCII escaped, as latin1 bytes: read back as latin1 (a copy), it
 * parses as a one-byte string, the fastest JSON.parse has; the strings parsed are the same. Written
 * straight into the buffer, the escapes between the plain runs, instead of `replace` with a function
 * and then `Buffer.from` (a copy): Stripe's document encoded in 75–97 ms against 102–118 (issue 22:
 * the worker's hand-over, on a cold start's way; the regex scan itself is most of what is left).
 */
export function asciiJson(v: unknown): Buffer {
  const json = JSON.stringify(v);
  const re = /[\u007f-\uffff]/g;
  const at: number[] = [];
  for (let m = re.exec(json); m !== null; m = re.exec(json)) at.push(m.index);
  if (at.length === 0) return Buffer.from(json, 'latin1');
  // Each escaped character takes six bytes (\uXXXX) instead of one.
  const out = Buffer.allocUnsafe(json.length + 5 * at.length);
  let pos = 0;
  let last = 0;
  for (const i of at) {
    pos += out.write(json.slice(last, i), pos, 'latin1');
    pos += out.write(`\\u${json.charCodeAt(i).toString(16).padStart(4, '0')}`, pos, 'latin1');
    last = i + 1;
  }
  pos += out.write(json.slice(last), pos, 'latin1');
  return out.subarray(0, pos);
}

const latin1 = (b: Uint8Array, from: number, to: number) =>
  Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('latin1');

/**
 * The stored spec `encodeStored` wrote, or undefined when the bytes are not one. In the JSON form
 * the document's top-level values are parsed on first read (then kept: every later read sees the
 * same objects), and the bytes are let go of once all are; the payload passed its checksum.
 */
export function decodeStored(
  payload: Uint8Array,
  onDamaged: () => void = () => {},
): Record<string, unknown> | undefined {
  try {
    if (payload[0] === V8_FORM) {
      const stored = deserialize(payload.subarray(1)) as Record<string, unknown> | null;
      return stored !== null &&
        typeof stored === 'object' &&
        typeof stored.doc === 'object' &&
        stored.doc !== null
        ? stored
        : undefined;
    }
    if (payload[0] !== JSON_FORM || payload.byteLength < 5) return undefined;
    const metaBytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).readUInt32LE(1);
    if (5 + metaBytes > payload.byteLength) return undefined;
    const meta = JSON.parse(latin1(payload, 5, 5 + metaBytes)) as { rest?: unknown; doc?: unknown };
    const { rest, doc: parts } = meta;
    if (rest === null || typeof rest !== 'object' || Array.isArray(rest) || !Array.isArray(parts))
      return undefined;
    let end = 5 + metaBytes;
    for (const p of parts) {
      if (!Array.isArray(p) || typeof p[0] !== 'string' || !Number.isSafeInteger(p[1]) || p[1] < 0)
        return undefined;
      end += p[1] as number;
    }
    if (end !== payload.byteLength) return undefined;
    const stored = rest as Record<string, unknown>;
    stored.doc = lazyDoc(payload, parts as Array<[string, number]>, 5 + metaBytes, onDamaged);
    return stored;
  } catch {
    return undefined;
  }
}

const damaged = new WeakSet<Error>();

function damagedCopy(key: string): WardenError {
  const e = new WardenError(
    'SPEC_PARSE',
    `The spec cache's copy of this spec is damaged (its "${key.slice(0, 80)}" part does not parse) and was ` +
      'removed: run again to load the spec from its file, or pass --no-spec-cache.',
  );
  damaged.add(e);
  return e;
}

/**
 * A read of a cached document's part that did not parse (`decodeStored`): loading the spec again,
 * without reading the cache (`specCache: 'refresh'`), gets a sound copy and replaces the entry.
 */
export function isDamagedCopy(e: unknown): boolean {
  return e instanceof Error && damaged.has(e);
}

function lazyDoc(
  bytes: Uint8Array,
  parts: Array<[string, number]>,
  start: number,
  onDamaged: () => void,
): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  let src: Uint8Array | undefined = bytes;
  let left = parts.length;
  let off = start;
  for (const [key, len] of parts) {
    const from = off;
    off += len;
    const settle = (value: unknown) => {
      Object.defineProperty(doc, key, { value, writable: true, enumerable: true, configurable: true });
      if (--left === 0) src = undefined;
    };
    Object.defineProperty(doc, key, {
      enumerable: true,
      configurable: true,
      get() {
        let value: unknown;
        try {
          value = JSON.parse(latin1(src!, from, from + len));
        } catch {
          // Passed its checksum, yet does not parse (a writer's bug, an edit that kept the CRC): the
          // entry goes, and the start that read it loads the spec again (`isDamagedCopy`).
          onDamaged();
          throw damagedCopy(key);
        }
        settle(value);
        return value;
      },
      set: settle,
    });
  }
  return doc;
}
