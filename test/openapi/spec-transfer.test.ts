import { serialize } from 'node:v8';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  jsonExact,
  type PackedSpec,
  packCached,
  packSpec,
  unpackSpec,
} from '../../src/openapi/spec-transfer.js';

/** What the main thread gets: the packed spec through a real port (transfer list included), unpacked. */
function handOver(spec: { doc: unknown; rootText: string } & Record<string, unknown>) {
  const { port1, port2 } = new MessageChannel();
  const { packed, transfer } = packSpec(spec);
  port1.postMessage(packed, transfer);
  const got = receiveMessageOnPort(port2)?.message as PackedSpec;
  port1.close();
  return { kind: 'json' in got ? 'json' : 'clone', spec: unpackSpec(got) as typeof spec };
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
  it('sends a plain document as JSON and gives back the same document, fields and text (BOM kept)', () => {
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
  ])('falls back to a structured clone for %s', (_, doc) => {
    expect(jsonExact(doc)).toBe(false);
    const { kind, spec } = handOver({ doc, rootText: '' });
    expect(kind).toBe('clone');
    expect(spec.doc).toStrictEqual(structuredClone(doc));
  });

  it('keeps shared and cyclic objects as a structured clone does (a YAML alias, an inlined ref)', () => {
    const shared = { type: 'string' };
    const doc: Record<string, unknown> = { a: shared, b: { c: shared } };
    const { kind, spec } = handOver({ doc, rootText: '' });
    expect(kind).toBe('clone');
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

  it('moves a spec cache hit as its stored bytes; the main thread deserialises them once', () => {
    const stored = { doc: DOC, dialect: '3.0', files: 1, warnings: ['w'], deviations: [] };
    for (const bytes of [serialize(stored), serialize({ ...stored, pad: 'x'.repeat(100_000) })]) {
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
  });
});
