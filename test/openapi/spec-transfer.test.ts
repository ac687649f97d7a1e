import { serialize } from 'node:v8';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asciiJson,
  decodeStored,
  encodeStored,
  jsonExact,
  type PackedSpec,
  packCached,
  packSpec,
  unpackSpec,
} from '../../src/openapi/spec-transfer.js';

describe('asciiJson', () => {
  it('is ASCII, and parses back to the same value, whatever the characters (astral, U+007F, U+FFFF, lone surrogates)', () => {
    const fixed = ['\u007f', '\uffff', '\u00e9t\u00e9 \ud83d\ude80', 'lone \ud800 and \udfff', 'plain', ''];
    const check = (v: unknown) => {
      const bytes = asciiJson(v);
      expect(bytes.every((b) => b < 0x7f)).toBe(true);
      // As read back: the bytes as latin1 are JSON of the same value.
      expect(JSON.parse(bytes.toString('latin1'))).toEqual(v);
    };
    for (const s of fixed) check({ s, list: [s, { [s]: s }] });
    fc.assert(
      fc.property(
        // What JSON carries exactly (asciiJson is used only on such values: not -0).
        fc.jsonValue().filter((v) => jsonExact(v)),
        fc.string({ unit: 'binary' }),
        // Any UTF-16 code unit, lone surrogates included.
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        (v, s, t) => check({ v, s, t, [s]: t }),
      ),
      { numRuns: 300 },
    );
  });
});

/** What the main thread gets: the packed spec through a real port (transfer list included), unpacked. */
function handOver(spec: { doc: unknown; rootText: string } & Record<string, unknown>) {
  const { port1, port2 } = new MessageChannel();
  const { packed, transfer } = packSpec(spec);
  port1.postMessage(packed, transfer);
  const got = receiveMessageOnPort(port2)?.message as PackedSpec;
  port1.close();
  // The payload's first byte names its form (./spec-transfer.ts: 'J' JSON, 'V' V8's serialisation).
  return { kind: got.entry[0] === 0x4a ? 'json' : 'v8', spec: unpackSpec(got) as typeof spec };
}

const DOC = {
  openapi: '3.0.3',
  info: { title: 'Ünïcödé 🚀 and a lone \ud800 surrogate', version: '1' },
  paths: { '/a': { get: { responses: { '200': { description: 'ok' } } } } },
  components: {
    schemas: { N: { type: 'number', maximum: 1e308, minimum: -5e-324, enum: [0, 1.5, null, true] } },
  },
  '10': 'integer-like keys keep their place',
};

describe('packSpec / unpackSpec', () => {
  it('sends a plain document as JSON (its cache entry payload) and gives back the same document, fields and text (BOM kept)', () => {
    const spec = {
      doc: DOC,
      rootText: '\ufeffopenapi: 3.0.3\ninfo: { title: "Ünïcödé 🚀" }\n',
      source: { label: 'x.yaml' },
      warnings: ['w'],
      files: 1,
    };
    const { kind, spec: got } = handOver(spec);
    expect(kind).toBe('json');
    expect(got).toEqual(spec);
    expect(got.rootText).toBe(spec.rootText);
    expect(Object.keys(got.doc as object)).toEqual(Object.keys(DOC));
  });

  it.each([
    ['undefined', { a: undefined }],
    ['an undefined element', [1, undefined]],
    ['NaN', { a: Number.NaN }],
    ['Infinity (YAML .inf)', { a: Number.POSITIVE_INFINITY }],
    ['-0', { a: -0 }],
    // biome-ignore lint/suspicious/noSparseArray: a hole is the case under test.
    ['an array hole', [1, , 3]],
    ['a Date', { a: new Date(0) }],
    ['a Map', { a: new Map() }],
    ['a bigint', { a: 1n }],
  ])('falls back to V8 serialisation (a structured clone) for %s', (_, doc) => {
    expect(jsonExact(doc)).toBe(false);
    const { kind, spec } = handOver({ doc, rootText: '' });
    expect(kind).toBe('v8');
    expect(spec.doc).toStrictEqual(structuredClone(doc));
  });

  it('keeps shared and cyclic objects as a structured clone does (a YAML alias, an inlined ref)', () => {
    const shared = { type: 'string' };
    const doc: Record<string, unknown> = { a: shared, b: { c: shared } };
    const { kind, spec } = handOver({ doc, rootText: '' });
    expect(kind).toBe('v8');
    const got = spec.doc as { a: unknown; b: { c: unknown } };
    expect(got.a).toBe(got.b.c);

    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(jsonExact(cyclic)).toBe(false);
  });

  it('accepts what parsers make: nested plain objects, arrays, null-prototype objects, strings, numbers', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.k = [1, 'two', null, false, { deep: [[[]]] }];
    expect(jsonExact({ bare, n: 0, big: Number.MAX_SAFE_INTEGER })).toBe(true);
  });

  it("hands the worker its document's JSON form, which the cache entry reuses only for that very document", () => {
    const spec = {
      doc: structuredClone(DOC),
      rootText: '{}',
      source: { label: 'x.json' },
      files: 1,
      warnings: [],
    };
    const { encoded } = packSpec(spec);
    expect(encoded?.doc).toBe(spec.doc);
    const { source: _s, rootText: _t, ...stored } = spec;
    const bytes = (parts: Uint8Array[]) => Buffer.concat(parts).toString('hex');
    // Reused: the same bytes as made afresh.
    expect(bytes(encodeStored(stored, encoded))).toBe(bytes(encodeStored(stored)));
    // Another document (a copy changed since): its own texts, never the ones handed over.
    const changed = { ...stored, doc: { ...structuredClone(DOC), info: { title: 'changed', version: '2' } } };
    expect(bytes(encodeStored(changed, encoded))).toBe(bytes(encodeStored(changed)));
    expect(bytes(encodeStored(changed, encoded))).not.toBe(bytes(encodeStored(stored, encoded)));
    // Not JSON-exact: nothing to reuse, and V8's form.
    const shared = { type: 'string' };
    expect(packSpec({ doc: { a: shared, b: shared }, rootText: '' }).encoded).toBeUndefined();
  });

  it('moves a spec cache hit as its stored bytes; the main thread deserialises them once', () => {
    const stored = { doc: DOC, dialect: '3.0', files: 1, warnings: ['w'], deviations: [] };
    const encode = (v: Record<string, unknown>) => new Uint8Array(Buffer.concat(encodeStored(v)));
    for (const bytes of [
      encode(stored),
      encode({ ...stored, pad: 'x'.repeat(100_000) }),
      // Not JSON-exact: the v8 form.
      encode({ ...stored, nothing: undefined }),
    ]) {
      const { port1, port2 } = new MessageChannel();
      const { packed, transfer } = packCached({ bytes, source: { label: 'x.json' }, rootText: '\ufeff{}' });
      port1.postMessage(packed, transfer);
      const got = unpackSpec(receiveMessageOnPort(port2)?.message as PackedSpec) as Record<string, unknown>;
      port1.close();
      expect(got).toMatchObject({ ...stored, source: { label: 'x.json' } });
      expect(got.rootText).toBe('\ufeff{}');
    }
    // A damaged entry is refused (the caller then loads the spec itself), never handed on.
    const bad = packCached({ bytes: serialize({ doc: null }), source: {}, rootText: '' }).packed;
    expect(() => unpackSpec(bad)).toThrow(/unusable/);
    const badV8 = packCached({ bytes: encode({ doc: null }), source: {}, rootText: '' }).packed;
    expect(() => unpackSpec(badV8)).toThrow(/unusable/);
  });
});

describe('encodeStored / decodeStored (the spec cache entry payload)', () => {
  const encode = (v: Record<string, unknown>) => new Uint8Array(Buffer.concat(encodeStored(v)));
  // A computed `__proto__` is an own key (as JSON.parse makes it), not the prototype.
  const doc = { ...DOC, ['__proto__']: { own: 'a key, not a prototype' } };
  const stored = { originalVersion: '3.0.3', doc, dialect: '3.0', files: 1, warnings: ['w'] };

  it('gives back the same spec: fields and document keys in their order, the same values, text and all', () => {
    const got = decodeStored(encode(stored))!;
    expect(Object.keys(got)).toEqual(Object.keys(stored));
    expect(Object.keys(got.doc as object)).toEqual(Object.keys(doc));
    expect(JSON.stringify(got)).toBe(JSON.stringify(stored));
    expect(got).toEqual(stored);
    expect(Object.getPrototypeOf(got.doc)).toBe(Object.prototype);
  });

  it('reads each top-level value of the document on first use, once: later reads see the same object', () => {
    const got = decodeStored(encode(stored))!.doc as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(got, 'components')?.get).toBeTypeOf('function');
    const paths = got.paths;
    expect(got.paths).toBe(paths);
    expect(Object.getOwnPropertyDescriptor(got, 'paths')).toMatchObject({ value: paths, writable: true });
    // Not read yet: still the lazy getter; an assignment replaces it like any property.
    expect(Object.getOwnPropertyDescriptor(got, 'components')?.get).toBeTypeOf('function');
    got.components = { replaced: true };
    expect(got.components).toEqual({ replaced: true });
  });

  it('keeps what JSON cannot carry exactly in the v8 form (shared objects stay shared)', () => {
    const shared = { type: 'string' };
    const got = decodeStored(encode({ doc: { a: shared, b: shared } }))!.doc as Record<string, unknown>;
    expect(got.a).toBe(got.b);
    expect(decodeStored(encode({ doc: { n: -0 } }))!.doc).toEqual({ n: -0 });
  });

  it('refuses bytes that are not a stored spec: no throw, undefined', () => {
    const ok = encode(stored);
    expect(decodeStored(ok.subarray(0, ok.byteLength - 1))).toBeUndefined();
    expect(decodeStored(new Uint8Array([0x4a, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined();
    expect(decodeStored(new Uint8Array(0))).toBeUndefined();
    expect(decodeStored(Uint8Array.of(0x58, 1, 2))).toBeUndefined();
    const head = Buffer.from(ok);
    head[6] = 0x7b; // the metadata's JSON broken
    expect(decodeStored(new Uint8Array(head))).toBeUndefined();
  });
});
