import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { exampleOf } from '../../src/catalog/example.js';
import { relaxOverlappingOneOfs } from '../../src/catalog/one-of.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { loadSpec } from '../../src/openapi/load.js';
import { SHARED_SPECS } from '../support/helpers.js';

const compiler = createSchemaCompiler([]);

/** Schemas of the shapes real specs use: scalars with bounds and formats, objects, arrays, allOf, branches. */
function schemaArb(): fc.Arbitrary<JsonSchemaObject> {
  const { schema } = fc.letrec<{ schema: JsonSchemaObject; leaf: JsonSchemaObject }>((tie) => ({
    leaf: fc.oneof(
      fc
        .record(
          {
            type: fc.constant('string'),
            minLength: fc.integer({ min: 0, max: 12 }),
            maxLength: fc.integer({ min: 12, max: 40 }),
            format: fc.constantFrom(
              'date-time',
              'date',
              'email',
              'uri',
              'uuid',
              'ipv4',
              'hostname',
              'binary',
            ),
            pattern: fc.constantFrom('^[a-z]+$', '^[A-Z0-9_]+$', '\\d', '^[a-z0-9-]{1,63}$'),
          },
          { requiredKeys: ['type'] },
        )
        // A format and a pattern together are mostly unsatisfiable (no date-time is `^[a-z]+$`), and so
        // is a `maxLength` below the shortest string of the format: draw only satisfiable schemas, so
        // that every miss below is a builder's defect, not the dice.
        .map(({ format, pattern, ...rest }) => ({
          ...rest,
          ...(format === 'date-time' || format === 'uuid' || format === 'date'
            ? { minLength: Math.min(rest.minLength ?? 0, 10), maxLength: Math.max(rest.maxLength ?? 0, 36) }
            : {}),
          ...(format ? { format } : pattern ? { pattern } : {}),
        })),
      fc
        .record(
          {
            type: fc.constantFrom('integer', 'number'),
            minimum: fc.integer({ min: -50, max: 50 }),
            exclusiveMinimum: fc.integer({ min: -50, max: 50 }),
            multipleOf: fc.constantFrom(1, 2, 5, 10),
          },
          { requiredKeys: ['type'] },
        )
        .map((s) => ({ ...s, maximum: Math.max(s.minimum ?? 0, s.exclusiveMinimum ?? 0) + 30 })),
      fc.record({ type: fc.constant('boolean') }),
      fc.record({ type: fc.constant(['string', 'null'] as string[]) }),
      fc.record({
        enum: fc.uniqueArray(fc.oneof(fc.string(), fc.integer()), { minLength: 1, maxLength: 4 }),
      }),
      fc.record({ const: fc.oneof(fc.string(), fc.integer(), fc.boolean()) }),
    ),
    schema: fc.oneof(
      { depthSize: 'small' },
      tie('leaf'),
      fc
        .record({
          props: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'id', 'name', 'kind'), tie('schema'), {
            maxKeys: 4,
          }),
          req: fc.array(fc.nat(), { maxLength: 4 }),
          closed: fc.boolean(),
        })
        .map(({ props, req, closed }) => {
          const keys = Object.keys(props);
          const required = [...new Set(req.map((i) => keys[i % Math.max(keys.length, 1)]!))].filter(Boolean);
          return {
            type: 'object',
            properties: props,
            ...(required.length ? { required } : {}),
            ...(closed ? { additionalProperties: false } : {}),
          } as JsonSchemaObject;
        }),
      fc
        .record({ items: tie('schema'), minItems: fc.integer({ min: 0, max: 3 }) })
        .map((s) => ({ type: 'array', ...s }) as JsonSchemaObject),
      // allOf of open object parts, as `allOf: [$ref Base, { required }]` is written.
      fc.tuple(tie('schema'), fc.constantFrom('x', 'y')).map(
        ([inner, name]) =>
          ({
            allOf: [{ type: 'object', properties: { [name]: inner } }, { required: [name] }],
          }) as JsonSchemaObject,
      ),
      // Branches told apart by a pinned property (a discriminator), or plain anyOf.
      fc.array(tie('schema'), { minLength: 1, maxLength: 3 }).map(
        (bs) =>
          ({
            oneOf: bs.map((b, i) => ({
              type: 'object',
              required: ['kind', 'v'],
              properties: { kind: { const: `k${i}` }, v: b },
            })),
          }) as JsonSchemaObject,
      ),
      fc
        .array(tie('schema'), { minLength: 1, maxLength: 3 })
        .map((bs) => ({ anyOf: bs }) as JsonSchemaObject),
    ),
  }));
  return schema;
}

describe('minimal examples built from a schema', () => {
  it('property: the example validates against the schema it was built from (no checker needed)', () => {
    fc.assert(
      fc.property(schemaArb(), (schema) => {
        const built = exampleOf(schema);
        if (built === undefined) return true; // counted below: there must be few of these
        const check = compiler.compile(schema);
        return check(built.value) === true;
      }),
      { numRuns: 400 },
    );
  });

  it('property: every generated schema has an example (the arbitrary draws satisfiable schemas only)', () => {
    fc.assert(
      fc.property(schemaArb(), (schema) => exampleOf(schema) !== undefined),
      { numRuns: 400 },
    );
  });

  it('reaches tight bounds: negative ranges, exclusive bounds, formats stretched to a minLength', () => {
    const cases: JsonSchemaObject[] = [
      { type: 'number', minimum: -34, exclusiveMinimum: -37, maximum: -4 },
      { type: 'integer', exclusiveMinimum: -46, minimum: -47, maximum: -16, multipleOf: 5 },
      { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.5 },
      { type: 'string', format: 'email', minLength: 12, maxLength: 13 },
      { type: 'string', format: 'hostname', minLength: 70 },
      { type: 'string', format: 'ipv4', minLength: 12 },
      { type: 'string', format: 'uri', maxLength: 12 },
      { type: 'string', format: 'uri', minLength: 30 },
    ];
    for (const schema of cases) {
      const built = exampleOf(schema);
      expect(built, JSON.stringify(schema)).toBeDefined();
      expect(compiler.compile(schema)(built?.value), JSON.stringify(schema)).toBe(true);
    }
    // Unique items differ, whatever they are made of.
    for (const items of [
      { type: 'string' },
      { type: 'string', format: 'email' },
      { type: 'string', format: 'date' },
      { type: 'string', format: 'uuid' },
      { type: 'integer', minimum: 1, maximum: 9 },
      { enum: ['a', 'b', 'c'] },
      { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'date-time' } } },
    ] as JsonSchemaObject[]) {
      const schema: JsonSchemaObject = { type: 'array', uniqueItems: true, minItems: 3, items };
      const built = exampleOf(schema);
      expect(built, JSON.stringify(items)).toBeDefined();
      expect(compiler.compile(schema)(built?.value), JSON.stringify(built?.value)).toBe(true);
    }
    // A range with no value in it has no example, rather than a wrong one.
    expect(exampleOf({ type: 'integer', minimum: 3, maximum: 4, multipleOf: 5 })).toBeUndefined();
    expect(exampleOf({ type: 'string', format: 'date', minLength: 12 })).toBeUndefined();
  });

  it('takes required properties only, the first enum value, const, format strings and lowest bounds', () => {
    const schema: JsonSchemaObject = {
      type: 'object',
      required: ['kind', 'at', 'count', 'tags', 'mail'],
      properties: {
        kind: { type: 'string', enum: ['a', 'b'] },
        at: { type: 'string', format: 'date-time' },
        count: { type: 'integer', minimum: 3, multipleOf: 2 },
        tags: { type: 'array', minItems: 1, items: { type: 'string', minLength: 8 } },
        mail: { type: 'string', format: 'email' },
        optional: { type: 'string' },
      },
      additionalProperties: false,
    };
    expect(exampleOf(schema)?.value).toEqual({
      kind: 'a',
      at: '2024-01-01T00:00:00Z',
      count: 4,
      tags: ['stringaa'],
      mail: 'user@example.com',
    });
  });

  it('follows the preferred branch, and falls back to another when the checker refuses it', () => {
    const schema: JsonSchemaObject = {
      oneOf: [
        { type: 'object', required: ['a'], properties: { a: { type: 'string' } } },
        { type: 'object', required: ['b'], properties: { b: { type: 'integer' } } },
      ],
    };
    expect(exampleOf(schema, schema, { prefer: () => 1 })?.value).toEqual({ b: 0 });
    const check = compiler.compile(schema);
    expect(exampleOf(schema, schema, { check: (v) => check(v) && !('a' in (v as object)) })?.value).toEqual({
      b: 0,
    });
    expect(exampleOf(false)).toBeUndefined();
  });

  it('reads a string off a simple pattern, and checks it against the real one', () => {
    // DigitalOcean's batch file name (inference_create_batch_file).
    const pattern = '.+\\.[Jj][Ss][Oo][Nn][Ll]$';
    expect(exampleOf({ type: 'string', minLength: 7, pattern })?.value).toBe('a.JSONL');
    expect(exampleOf({ type: 'string', pattern: '^(ab|cd){2}-\\d{3}$' })?.value).toBe('abab-000');
    // Lookarounds are not run (nor enforced) on the linear engine: no example rather than a wrong one.
    expect(exampleOf({ type: 'string', pattern: '^(?=x)y$' })).toBeUndefined();
  });

  it('every tool input schema of the shared specs with oneOf/anyOf bodies has one (checked by Ajv)', async () => {
    const SPECS: Array<[string, string?]> = [
      ['digitalocean/specification/DigitalOcean-public.v2.yaml'],
      ['openai.yaml'],
      ['asana.yaml'],
      ['azure-storage-arm-2015-05-01-preview.json'],
      ['petstore-v3-swagger-api.yaml'],
      ['uspto-v3.yaml'],
    ];
    const missing: string[] = [];
    let tools = 0;
    for (const [file] of SPECS) {
      const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, file)));
      const specCompiler = createSchemaCompiler(catalog.formats);
      for (const t of catalog.tools) {
        tools++;
        const schema = relaxOverlappingOneOfs(t.inputSchema);
        const check = specCompiler.compile(schema);
        const built = exampleOf(schema, schema, { check: (v) => check(v) === true });
        if (!built) missing.push(`${file}: ${t.name}`);
      }
    }
    // None missing (GitHub, Stripe, Slack and Kubernetes too, measured once: they take a minute more).
    expect({ tools, missing }).toEqual({ tools, missing: [] });
  }, 240_000);
});
