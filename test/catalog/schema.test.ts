import { describe, expect, it } from 'vitest';
import { SchemaConverter } from '../../src/catalog/schema.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';

function doc(schemas: Record<string, unknown>) {
  return { openapi: '3.0.3', components: { schemas } };
}

function validator(conv: SchemaConverter, schema: unknown, mode: 'input' | 'output' = 'input') {
  const c = conv.convert(schema, mode, '#/test');
  const root = typeof c.schema === 'object' ? { ...c.schema, $defs: conv.closure(c.deps, mode) } : c.schema;
  return {
    schema: root as Record<string, unknown>,
    validate: createSchemaCompiler([...conv.formats]).compile(root as never),
  };
}

describe('OpenAPI schema → JSON Schema 2020-12', () => {
  it('turns 3.0 nullable into a type union, an enum with null, or anyOf for a $ref', () => {
    const conv = new SchemaConverter(doc({ Pet: { type: 'object' } }), '3.0');
    expect(conv.convert({ type: 'string', nullable: true }, 'input', '#').schema).toEqual({
      type: ['string', 'null'],
    });
    expect(conv.convert({ type: 'string', enum: ['a'], nullable: true }, 'input', '#').schema).toEqual({
      type: ['string', 'null'],
      enum: ['a', null],
    });
    expect(conv.convert({ $ref: '#/components/schemas/Pet', nullable: true }, 'input', '#').schema).toEqual({
      anyOf: [{ $ref: '#/$defs/Pet' }, { type: 'null' }],
    });
    const { validate } = validator(conv, { type: 'integer', nullable: true });
    expect(validate(null)).toBe(true);
    expect(validate('1')).toBe(false);
  });

  it('turns 3.0 boolean exclusive bounds into numeric ones', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    const { schema, validate } = validator(conv, {
      type: 'number',
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 10,
    });
    expect(schema).toMatchObject({ exclusiveMinimum: 0, maximum: 10 });
    expect(schema.minimum).toBeUndefined();
    expect(validate(0)).toBe(false);
    expect(validate(10)).toBe(true);
  });

  it('keeps 3.1 type arrays and $ref siblings', () => {
    const conv = new SchemaConverter(doc({ Name: { type: 'string' } }), '3.1');
    expect(conv.convert({ type: ['string', 'null'] }, 'input', '#').schema).toEqual({
      type: ['string', 'null'],
    });
    expect(
      conv.convert({ $ref: '#/components/schemas/Name', description: 'who' }, 'input', '#').schema,
    ).toEqual({
      $ref: '#/$defs/Name',
      description: 'who',
    });
  });

  it('drops OpenAPI-only and vendor keywords so strict Ajv compiles the result', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    const { schema } = validator(conv, {
      type: 'object',
      discriminator: { propertyName: 'kind' },
      xml: { name: 'x' },
      example: { kind: 'a' },
      externalDocs: { url: 'https://x' },
      'x-internal': true,
      properties: { kind: { type: 'string', 'x-enum-names': ['A'] } },
    });
    // OpenAPI's discriminator stays in inputs as an annotation Ajv knows (it explains branch errors).
    expect(Object.keys(schema).sort()).toEqual(['$defs', 'properties', 'type', 'x-discriminator']);
    expect(schema['x-discriminator']).toEqual({ propertyName: 'kind' });
  });

  it('leaves readOnly properties out of inputs and writeOnly ones out of outputs', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    const s = {
      type: 'object',
      required: ['id', 'password', 'name'],
      properties: {
        id: { type: 'string', readOnly: true },
        password: { type: 'string', writeOnly: true },
        name: { type: 'string' },
      },
    };
    const input = conv.convert(s, 'input', '#').schema as Record<string, unknown>;
    expect(Object.keys(input.properties as object)).toEqual(['password', 'name']);
    expect(input.required).toEqual(['password', 'name']);
    const output = conv.convert(s, 'output', '#').schema as Record<string, unknown>;
    expect(Object.keys(output.properties as object)).toEqual(['id', 'name']);
  });

  it('handles circular schemas through shared $defs, converted once', () => {
    const d = doc({
      Node: {
        type: 'object',
        properties: { children: { type: 'array', items: { $ref: '#/components/schemas/Node' } } },
      },
    });
    const conv = new SchemaConverter(d, '3.0');
    const a = conv.closure(conv.convert({ $ref: '#/components/schemas/Node' }, 'output', '#').deps, 'output');
    const b = conv.closure(conv.convert({ $ref: '#/components/schemas/Node' }, 'output', '#').deps, 'output');
    expect(Object.keys(a)).toEqual(['Node']);
    expect(a.Node).toBe(b.Node);
    const { validate } = validator(conv, { $ref: '#/components/schemas/Node' }, 'output');
    expect(validate({ children: [{ children: [] }] })).toBe(true);
    expect(validate({ children: [{ children: 'no' }] })).toBe(false);
  });

  it('refuses a $ref to nothing, naming where it was', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    expect(() => conv.convert({ $ref: '#/components/schemas/Missing' }, 'input', '#/paths/~1a/get')).toThrow(
      expect.objectContaining({ code: 'SPEC_REF_UNRESOLVED' }),
    );
  });

  it('judges a $ref the same each time it is met, in either mode (loops, good refs, refs to nothing)', () => {
    const d = doc({
      Loop: { $ref: '#/components/schemas/Loop2' },
      Loop2: { $ref: '#/components/schemas/Loop' },
      Good: { type: 'string' },
    });
    const conv = new SchemaConverter(d, '3.0');
    for (const mode of ['input', 'output', 'input'] as const) {
      const loop = conv.convert({ $ref: '#/components/schemas/Loop' }, mode, `#/${mode}`);
      expect(loop.schema).toEqual({});
      expect(conv.warnings[conv.warnings.length - 1]).toBe(
        `#/${mode}: $ref #/components/schemas/Loop only ever refers back to itself; treated as "any value"`,
      );
      const good = conv.convert({ $ref: '#/components/schemas/Good' }, mode, '#');
      expect(good.schema).toEqual({ $ref: '#/$defs/Good' });
      expect([...good.deps]).toEqual(['#/components/schemas/Good']);
      expect(() => conv.convert({ $ref: '#/components/schemas/Missing' }, mode, '#/m')).toThrow(
        expect.objectContaining({ code: 'SPEC_REF_UNRESOLVED' }),
      );
    }
    expect(conv.warnings.filter((w) => /only ever refers back/.test(w))).toHaveLength(3);
  });

  it('drops an invalid regex pattern with a warning instead of failing the whole spec', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    const s = conv.convert({ type: 'string', pattern: '([a-z' }, 'input', '#/x').schema;
    expect(s).toEqual({ type: 'string' });
    expect(conv.warnings[0]).toMatch(/not a valid regular expression/);
  });

  it('sanitises and caps schema descriptions', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    const s = conv.convert(
      { type: 'string', description: `a\u200b\u001b[31mb${'x'.repeat(1000)}` },
      'input',
      '#',
    ).schema as {
      description: string;
    };
    expect(s.description.startsWith('ab')).toBe(true);
    expect(s.description.length).toBeLessThanOrEqual(401);
  });

  it('gives each keyword its own treatment, in each mode, and names the place of a warning', () => {
    const conv = new SchemaConverter(doc({}), '3.1');
    const raw = {
      type: 'object',
      title: 7,
      description: ['not text'],
      enum: 'not a list',
      required: ['a', 3],
      properties: {
        a: { type: 'array', items: [{ type: 'string' }], additionalItems: { type: 'integer' } },
        b: { type: 'array', items: { type: 'string' }, additionalItems: { type: 'integer' } },
        c: { type: 'string', pattern: '(?=x)', 'x-data-class': 'secret' },
        d: { type: 'string', 'x-data-class': 'bogus' },
      },
      dependentSchemas: { a: { required: ['b'] } },
      patternProperties: { '^x-': { type: 'string' }, '(?<=y)': { type: 'string' } },
      anyOf: 'not a list',
      oneOf: [],
      allOf: [{ minProperties: 1 }],
      discriminator: { propertyName: 'kind' },
      exclusiveMinimum: true,
      minimum: 2,
      exclusiveMaximum: 9,
      example: { a: 1 },
      'x-vendor': true,
    };
    expect(conv.convert(raw, 'input', '#/x').schema).toEqual({
      type: 'object',
      required: ['a'],
      properties: {
        a: { type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'integer' } },
        b: { type: 'array', items: { type: 'string' } },
        c: { type: 'string' },
        d: { type: 'string' },
      },
      dependentSchemas: { a: { required: ['b'] } },
      patternProperties: { '^x-': { type: 'string' } },
      allOf: [{ minProperties: 1 }],
      'x-discriminator': { propertyName: 'kind' },
      exclusiveMinimum: 2,
      exclusiveMaximum: 9,
    });
    const out = conv.convert(raw, 'output', '#/y').schema as { properties: Record<string, unknown> };
    expect(out).not.toHaveProperty('x-discriminator');
    expect(out.properties.c).toEqual({ type: 'string', 'x-data-class': 'secret' });
    expect(out.properties.d).toEqual({ type: 'string' });
    expect(conv.warnings).toEqual([
      expect.stringMatching(/^#\/x\/properties\/c\/pattern: pattern "\(\?=x\)" uses a feature/),
      expect.stringMatching(/^#\/y\/properties\/c\/pattern: pattern/),
    ]);
  });

  it('converts Swagger-style file types and tuple items', () => {
    const conv = new SchemaConverter(doc({}), '3.0');
    expect(conv.convert({ type: 'file' }, 'input', '#').schema).toEqual({ type: 'string', format: 'binary' });
    expect(
      conv.convert({ type: 'array', items: [{ type: 'string' }, { type: 'integer' }] }, 'input', '#').schema,
    ).toEqual({
      type: 'array',
      prefixItems: [{ type: 'string' }, { type: 'integer' }],
    });
  });
});
