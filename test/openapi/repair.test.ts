import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import { WardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { MAX_WHERE } from '../../src/openapi/repair.js';
import { minimalSpec, tempTree } from '../support/helpers.js';

/** Loads an inline spec through the real loader; its catalogue, deviations and warnings. */
async function load(spec: Record<string, unknown>) {
  const dir = tempTree({ 'spec.json': spec });
  const loaded = await loadSpec(join(dir, 'spec.json'));
  const catalog = buildCatalog(loaded);
  const kinds = Object.fromEntries(loaded.deviations.map((d) => [d.kind, d]));
  return { loaded, catalog, kinds, tool: catalog.tools[0]! };
}

async function refusal(spec: Record<string, unknown>): Promise<WardenError> {
  const dir = tempTree({ 'spec.json': spec });
  const e = await loadSpec(join(dir, 'spec.json')).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(WardenError);
  return e as WardenError;
}

const ok = { '200': { description: 'ok' } };
const json = (schema: object) => ({
  '200': { description: 'ok', content: { 'application/json': { schema } } },
});
const query = (schema: object, name = 'q') => ({
  parameters: [{ name, in: 'query', schema }],
  responses: ok,
});
/** Validates `value` against the tool's input schema with the gateway's own compiler. */
function accepts(tool: { inputSchema: object }, value: unknown, formats: string[] = []): boolean {
  return createSchemaCompiler(formats).compile(tool.inputSchema as never)(value) as boolean;
}

describe('harmless spec deviations are repaired or ignored, one warning per kind', () => {
  it('lower-case response ranges (4xx) read as 4XX, in 3.0 and 3.1', async () => {
    for (const openapi of ['3.0.3', '3.1.0']) {
      const { loaded, kinds } = await load(
        minimalSpec(
          { '/a': { get: { responses: { ...json({ type: 'object' }), '4xx': { description: 'client' } } } } },
          { openapi },
        ),
      );
      expect(kinds['status-range-case']).toMatchObject({
        action: 'repaired',
        count: 1,
        where: ['/paths/~1a/get/responses/4xx'],
      });
      const responses = (loaded.doc.paths!['/a'] as { get: { responses: object } }).get.responses;
      expect(Object.keys(responses).sort()).toEqual(['200', '4XX']);
    }
  });

  it('a boolean `required` inside a schema is dropped; the property stays optional', async () => {
    const { kinds, tool } = await load(
      minimalSpec({
        '/a': {
          post: {
            requestBody: {
              content: {
                'application/json': {
                  schema: { type: 'object', properties: { name: { type: 'string', required: true } } },
                },
              },
            },
            responses: ok,
          },
        },
      }),
    );
    expect(kinds['schema-required-boolean']?.where[0]).toMatch(/properties\/name\/required$/);
    expect(accepts(tool, { body: { name: 'x' } })).toBe(true);
  });

  it('a path parameter not marked required is required', async () => {
    const { kinds, tool } = await load(
      minimalSpec({
        '/a/{id}': {
          get: { parameters: [{ name: 'id', in: 'path', schema: { type: 'string' } }], responses: ok },
        },
      }),
    );
    expect(kinds['path-param-not-required']).toMatchObject({ where: ['/paths/~1a~1{id}/get/parameters/0'] });
    expect(tool.inputSchema.required).toContain('id');
  });

  it('3.0 with 3.1 forms: type lists, examples, const and numeric exclusive bounds', async () => {
    const { kinds, tool } = await load(
      minimalSpec({
        '/a': {
          get: {
            parameters: [
              { name: 'n', in: 'query', schema: { type: ['integer', 'null'], exclusiveMinimum: 0 } },
              { name: 'v', in: 'query', schema: { type: 'string', const: 'v1', examples: ['v1'] } },
              { name: 'u', in: 'query', schema: { type: ['integer', 'string'] } },
            ],
            responses: ok,
          },
        },
      }),
    );
    for (const k of ['schema-type-array', 'schema-examples', 'schema-const', 'schema-exclusive-bound'])
      expect(kinds[k], k).toBeDefined();
    expect(kinds['schema-type-array']!.count).toBe(2);
    expect(accepts(tool, { n: 1, v: 'v1', u: 'x' })).toBe(true);
    expect(accepts(tool, { n: null })).toBe(true);
    // The exclusive bound and the const still hold after the rewrite.
    expect(accepts(tool, { n: 0 })).toBe(false);
    expect(accepts(tool, { v: 'v2' })).toBe(false);
    expect(accepts(tool, { u: true })).toBe(false);
  });

  it('3.1 with 3.0 forms: boolean exclusive bounds rewritten, nullable honoured and reported', async () => {
    const { kinds, tool } = await load(
      minimalSpec(
        {
          '/a': {
            get: query({ type: 'integer', minimum: 0, exclusiveMinimum: true, nullable: true }),
          },
        },
        { openapi: '3.1.0' },
      ),
    );
    expect(kinds['schema-exclusive-bound']?.action).toBe('repaired');
    expect(kinds['schema-nullable-3.1']).toMatchObject({ action: 'ignored', count: 1 });
    expect(accepts(tool, { q: 1 })).toBe(true);
    expect(accepts(tool, { q: null })).toBe(true);
    expect(accepts(tool, { q: 0 })).toBe(false);
  });

  it("parameter enums of another type are converted to the parameter's type", async () => {
    const { kinds, tool } = await load(
      minimalSpec({
        '/a': {
          get: {
            parameters: [
              { name: 's', in: 'query', schema: { type: 'string', enum: [1, 2, true] } },
              { name: 'n', in: 'query', schema: { type: 'integer', enum: ['10', '20'] } },
            ],
            responses: ok,
          },
        },
      }),
    );
    expect(kinds['param-enum-type']?.count).toBe(2);
    expect(accepts(tool, { s: '1', n: 10 })).toBe(true);
    expect(accepts(tool, { s: 'true' })).toBe(true);
    expect(accepts(tool, { s: '3' })).toBe(false);
  });

  it('both `example` and `examples`, missing info.version and a nameless license load', async () => {
    const spec = minimalSpec({
      '/a': {
        get: {
          responses: {
            '200': {
              description: 'ok',
              content: { 'application/json': { schema: { type: 'object' }, example: {}, examples: {} } },
            },
          },
        },
      },
    });
    spec.info = { title: 'T', license: { url: 'https://example.com/l' } };
    const { kinds, catalog } = await load(spec);
    expect(kinds['example-and-examples']).toBeDefined();
    expect(kinds['info-incomplete']).toMatchObject({ count: 2, where: ['/info/version', '/info/license'] });
    expect(catalog.tools).toHaveLength(1);
  });

  it('siblings of a 3.0 $ref are reported as ignored', async () => {
    const { kinds } = await load(
      minimalSpec(
        { '/a': { get: query({ $ref: '#/components/schemas/S', maxLength: 3 }) } },
        { components: { schemas: { S: { type: 'string' } } } },
      ),
    );
    expect(kinds['ref-siblings-ignored']).toMatchObject({
      action: 'ignored',
      where: ['/paths/~1a/get/parameters/0/schema'],
    });
  });

  it('Swagger 2.0: boolean required, empty required, missing version and optional path parameters', async () => {
    const { kinds, catalog } = await load({
      swagger: '2.0',
      info: { title: 'T' },
      paths: {
        '/a/{id}': {
          get: {
            parameters: [{ name: 'id', in: 'path', type: 'string' }],
            responses: {
              '200': {
                description: 'ok',
                schema: {
                  type: 'object',
                  required: [],
                  properties: { x: { type: 'string', required: false } },
                },
              },
            },
          },
        },
      },
    });
    expect(Object.keys(kinds).sort()).toEqual([
      'info-incomplete',
      'path-param-not-required',
      'schema-required-boolean',
      'schema-required-empty',
    ]);
    expect(catalog.tools[0]!.inputSchema.required).toContain('id');
  });

  it('one warning per kind, its place list capped', async () => {
    const paths: Record<string, unknown> = {};
    for (let i = 0; i < MAX_WHERE + 5; i++)
      paths[`/p${i}`] = { get: { responses: { ...ok, '5xx': { description: 'server' } } } };
    const { loaded, kinds } = await load(minimalSpec(paths));
    expect(kinds['status-range-case']!.count).toBe(MAX_WHERE + 5);
    expect(kinds['status-range-case']!.where).toHaveLength(MAX_WHERE);
    const lines = loaded.warnings.filter((w) => w.includes('status-range-case'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/15×.*\/paths\/~1p0\/get\/responses\/5xx.*…and 5 more/);
  });
});

describe('what would make a tool ambiguous or unsafe is still refused', () => {
  it('a parameter $ref that resolves to nothing', async () => {
    const e = await refusal(
      minimalSpec({
        '/a': { get: { parameters: [{ $ref: '#/components/parameters/Nope' }], responses: ok } },
      }),
    );
    expect(e.code).toBe('SPEC_INVALID');
    expect(e.message).toMatch(/parameter \$ref "#\/components\/parameters\/Nope" cannot be resolved/);
    expect(e.location?.pointer).toBe('/paths/~1a/get/parameters/0');
  });

  it('path templates whose placeholders do not match the parameters, and duplicate operationIds', async () => {
    expect((await refusal(minimalSpec({ '/a/{id}': { get: { responses: ok } } }))).message).toMatch(
      /\{id\} of GET \/a\/\{id\} has no path parameter/,
    );
    expect(
      (
        await refusal(
          minimalSpec({
            '/a': {
              get: { parameters: [{ name: 'id', in: 'path', required: true, schema: {} }], responses: ok },
            },
          }),
        )
      ).message,
    ).toMatch(/path parameter "id" does not appear in \/a/);
    expect(
      (
        await refusal(
          minimalSpec({
            '/a': { get: { operationId: 'x', responses: ok } },
            '/b': { get: { operationId: 'x', responses: ok } },
          }),
        )
      ).message,
    ).toMatch(/duplicate operationId "x"/);
  });

  it('a deviation outside the known kinds is still refused (unknown keyword on an operation)', async () => {
    const e = await refusal(minimalSpec({ '/a': { get: { responses: ok, summry: 'typo' } } }));
    expect(e.code).toBe('SPEC_INVALID');
    expect(e.message).toMatch(/summry/);
  });
});
