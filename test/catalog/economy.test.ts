import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { economizeOutput } from '../../src/catalog/economy.js';
import { outputSchemaParts } from '../../src/catalog/tool.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import { loadSpec } from '../../src/openapi/load.js';
import { maskerFor, maskRules, SchemaMasker } from '../../src/protect/mask.js';
import { SHARED_SPECS } from '../support/helpers.js';

/** The tightest schema a value satisfies (types, every key required, consts), parts moved to $defs. */
function schemaOf(v: unknown, defs: Record<string, unknown>, viaRef: () => boolean): Record<string, unknown> {
  let s: Record<string, unknown>;
  if (v === null) s = { type: 'null' };
  else if (Array.isArray(v))
    s = {
      type: 'array',
      items: { anyOf: v.length ? v.map((x) => schemaOf(x, defs, viaRef)) : [{}] },
      minItems: v.length,
    };
  else if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    s = {
      type: 'object',
      properties: Object.fromEntries(entries.map(([k, x]) => [k, schemaOf(x, defs, viaRef)])),
      required: entries.map(([k]) => k),
      additionalProperties: false,
      description: 'an object '.repeat(30),
    };
  } else if (typeof v === 'string') s = { type: 'string', const: v, minLength: v.length };
  else if (typeof v === 'number') s = { type: 'number', const: v };
  else s = { type: 'boolean', enum: [v] };
  if (!viaRef()) return s;
  const key = `D${Object.keys(defs).length}`;
  defs[key] = s;
  return { $ref: `#/$defs/${key}` };
}

describe('schema economy for published output schemas', () => {
  const compiler = createSchemaCompiler([]);

  it('only ever loosens: whatever the full schema accepts, the economical one accepts (property)', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 5 }),
        fc.integer({ min: 0, max: 60 }),
        fc.boolean(),
        (value, budget, refs) => {
          // Ajv handles a `__proto__` property its own way (the gateway refuses such arguments anyway).
          fc.pre(!JSON.stringify(value).includes('"__proto__"'));
          const defs: Record<string, unknown> = {};
          let n = 0;
          const root = schemaOf(value, defs, () => refs && n++ % 2 === 0);
          const full = { ...root, $defs: defs } as JsonSchemaObject;
          expect(compiler.compile(full)(value)).toBe(true);
          const lean = economizeOutput(full, { budget });
          expect(lean.$defs).toBeUndefined();
          expect(compiler.compile(lean)(value)).toBe(true);
        },
      ),
      { numRuns: Number(process.env.FC_RUNS ?? 800) },
    );
  });

  it('gives the same outline with definitions looked up on request as with `$defs` (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), fc.integer({ min: 0, max: 60 }), (value, budget) => {
        const defs: Record<string, unknown> = {};
        let n = 0;
        const root = schemaOf(value, defs, () => n++ % 2 === 0);
        const lookup = (k: string) => (Object.hasOwn(defs, k) ? defs[k] : undefined);
        const eager = economizeOutput({ ...root, $defs: defs } as JsonSchemaObject, { budget });
        const lazy = economizeOutput(root as JsonSchemaObject, { budget, defs: lookup });
        expect(JSON.stringify(lazy)).toBe(JSON.stringify(eager));
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 400) },
    );
  });

  it('publishes the same outline of every real masked output schema from the lazy masker outline and from the catalogue parts (GitHub, Stripe)', async () => {
    const ruleSets = [
      maskRules(undefined, undefined),
      maskRules({ pii: 'drop', financial: 'allow', secret: 'mask' }, { id: 'pii', email: 'none' }),
    ];
    for (const file of ['github-rest.json', 'stripe.yaml']) {
      const cat = buildCatalog(await loadSpec(join(SHARED_SPECS, file)));
      for (const rules of ruleSets) {
        for (const t of cat.tools) {
          if (!t.outputSchema) continue;
          const m = maskerFor(t.outputSchema, rules);
          const { schema, def } = m.publishedOutline();
          expect(schema.$defs).toBeUndefined();
          const eager = JSON.stringify(economizeOutput(m.published()));
          expect(JSON.stringify(economizeOutput(schema, { defs: def }))).toBe(eager);
          // From the catalogue's parts (no `$defs` closure built), as tools/list publishes it.
          const parts = outputSchemaParts(t)!;
          const fromParts = new SchemaMasker(parts.schema, rules, parts.defs).publishedOutline();
          expect(fromParts.schema.$defs).toBeUndefined();
          expect(JSON.stringify(economizeOutput(fromParts.schema, { defs: fromParts.def }))).toBe(eager);
        }
      }
    }
  }, 120_000);

  it('keeps a property named __proto__ as a property (found by the property test in CI)', () => {
    const full = {
      type: 'object',
      properties: JSON.parse('{"__proto__":{"type":"boolean"},"a":{"type":"string"}}'),
      required: ['__proto__'],
    } as JsonSchemaObject;
    const lean = economizeOutput(full);
    const props = lean.properties as Record<string, unknown>;
    expect(Object.keys(props)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(props)).toBe(Object.prototype);
    expect(compiler.compile(lean)(JSON.parse('{"__proto__":false}'))).toBe(true);
  });

  it('keeps the outline breadth-first, with short descriptions near the top only', () => {
    const schema: JsonSchemaObject = {
      type: 'object',
      description: 'x'.repeat(300),
      properties: {
        id: { type: 'string', description: 'The id.', pattern: '^a' },
        owner: { $ref: '#/$defs/User' },
      },
      required: ['id'],
      $defs: {
        User: {
          type: 'object',
          description: 'A user.',
          properties: {
            login: { type: 'string', description: 'deep prose' },
            friend: { $ref: '#/$defs/User' },
          },
        },
      },
    };
    const lean = economizeOutput(schema, { budget: 4 });
    expect(lean).toEqual({
      type: 'object',
      description: `${'x'.repeat(119)}…`,
      required: ['id'],
      properties: {
        id: { type: 'string', description: 'The id.' },
        owner: {
          type: 'object',
          description: 'A user.',
          properties: { login: { type: 'string' }, friend: { type: 'object' } },
        },
      },
    });
  });

  it('shrinks real output schemas (GitHub, Stripe) to a few hundred tokens each (2,500 at most), all compilable', async () => {
    for (const [file, most] of [
      ['github-rest.json', 2500],
      ['stripe.yaml', 2500],
    ] as const) {
      const cat = buildCatalog(await loadSpec(join(SHARED_SPECS, file)));
      const specCompiler = createSchemaCompiler(cat.formats);
      let fullTotal = 0;
      let leanTotal = 0;
      let largest = 0;
      for (const t of cat.tools) {
        if (!t.outputSchema) continue;
        const lean = economizeOutput(t.outputSchema);
        const size = JSON.stringify(lean).length;
        specCompiler.compile(lean);
        fullTotal += JSON.stringify(t.outputSchema).length;
        leanTotal += size;
        largest = Math.max(largest, size);
      }
      // Characters, not tokens: about four characters per token for JSON schemas.
      expect(largest / 4).toBeLessThan(most);
      expect(leanTotal * 2.5).toBeLessThan(fullTotal);
    }
  }, 60_000);
});
