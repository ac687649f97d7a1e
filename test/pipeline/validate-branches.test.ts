import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { findOneOfOverlaps } from '../../src/catalog/one-of.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import { runScan } from '../../src/cli/scan.js';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import { toolErrorResult } from '../../src/errors/surfaces.js';
import type { Catalog } from '../../src/model/catalog.js';
import { loadSpec } from '../../src/openapi/load.js';
import { createValidate } from '../../src/pipeline/validate.js';
import { catalogOf, jsonOk, minimalSpec, SHARED_SPECS, tempTree } from '../support/helpers.js';
import { contextFor, toolNamed } from '../support/pipeline.js';

/** A body per kind of `oneOf`: pinned by an `enum` property, by OpenAPI's discriminator, and two open objects. */
const BRANCHES_SPEC = minimalSpec(
  {
    '/pets': {
      post: {
        operationId: 'createPet',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Pet' } } },
        },
        responses: jsonOk(),
      },
    },
    '/notes': {
      post: {
        operationId: 'createNote',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                oneOf: [
                  {
                    title: 'Text note',
                    type: 'object',
                    required: ['text'],
                    properties: { text: { type: 'string' } },
                  },
                  {
                    title: 'Link note',
                    type: 'object',
                    required: ['url'],
                    properties: { url: { type: 'string', format: 'uri' } },
                  },
                  {
                    title: 'Pinned note',
                    type: 'object',
                    required: ['text'],
                    properties: { text: { type: 'string' }, pinned: { type: 'boolean' } },
                  },
                ],
              },
            },
          },
        },
        responses: jsonOk(),
      },
    },
  },
  {
    components: {
      schemas: {
        Pet: {
          oneOf: [{ $ref: '#/components/schemas/Cat' }, { $ref: '#/components/schemas/Dog' }],
          discriminator: { propertyName: 'kind', mapping: { cat: '#/components/schemas/Cat' } },
        },
        Cat: {
          type: 'object',
          required: ['kind', 'name', 'lives'],
          properties: {
            kind: { type: 'string', enum: ['cat'] },
            name: { type: 'string', minLength: 2 },
            lives: { type: 'integer', minimum: 1, maximum: 9 },
          },
          additionalProperties: false,
        },
        Dog: {
          type: 'object',
          required: ['kind', 'name', 'bark'],
          properties: {
            kind: { type: 'string', enum: ['dog'] },
            name: { type: 'string', minLength: 2 },
            bark: { type: 'string', enum: ['loud', 'soft'] },
          },
          additionalProperties: false,
        },
      },
    },
  },
);

let doCatalog: Promise<Catalog> | undefined;
/** The DigitalOcean spec, loaded once for the tests that use it. */
function digitalOcean(): Promise<Catalog> {
  doCatalog ??= loadSpec(join(SHARED_SPECS, 'digitalocean/specification/DigitalOcean-public.v2.yaml')).then(
    (spec) => buildCatalog(spec),
  );
  return doCatalog;
}

function attempt(catalog: Catalog, name: string, args: unknown): WardenError | Record<string, unknown> {
  const validate = createValidate({ catalog });
  const ctx = contextFor({ name, arguments: args });
  ctx.tool = toolNamed(catalog, name);
  try {
    validate(ctx);
    return ctx.args!;
  } catch (e) {
    if (isWardenError(e)) return e;
    throw e;
  }
}

function details(x: WardenError | Record<string, unknown>): string[] {
  expect(isWardenError(x), JSON.stringify(x)).toBe(true);
  expect((x as WardenError).code).toBe('INVALID_ARGUMENT');
  return (x as WardenError).details;
}

/** The example an error ends with, parsed. */
function exampleIn(lines: string[]): unknown {
  const last = lines.at(-1)!;
  expect(last).toMatch(/^example of (a valid '[^']+'|valid arguments): /);
  return JSON.parse(last.slice(last.indexOf(': ') + 2));
}

describe('validation errors on oneOf/anyOf bodies', () => {
  it('DigitalOcean: a DNS record without `type` names the missing `type` and gives an example', async () => {
    const catalog = await digitalOcean();
    const args = { domain_name: 'example.com', body: { name: 'www', data: '192.0.2.10' } };
    const lines = details(attempt(catalog, 'domains_create_record', args));
    expect(lines[0]).toBe("'body' must match one of the 9 allowed shapes; the closest is shape 1 of 9:");
    expect(lines).toContain("'body.type' is required");
    const example = exampleIn(lines) as Record<string, unknown>;
    expect(Object.keys(example).sort()).toEqual(['data', 'name', 'type']);
    // The example is built from the schema, not the caller's values.
    expect(JSON.stringify(example)).not.toContain('192.0.2.10');
    // docs/serving.md shows this very error.
    const doc = readFileSync(new URL('../../docs/serving.md', import.meta.url), 'utf8');
    const shown = /```\n(\[INVALID_ARGUMENT\] Invalid arguments for domains_create_record\.\n[^`]*)```/.exec(
      doc,
    )?.[1];
    expect(shown).toBe(
      `${toolErrorResult(attempt(catalog, 'domains_create_record', args) as WardenError).content[0]!.text}\n`,
    );
    // Fixed as the example shows, the call passes.
    const fixed = attempt(catalog, 'domains_create_record', { ...args, body: { ...args.body, type: 'A' } });
    expect(isWardenError(fixed)).toBe(false);
  });

  it('a property pinned per branch (the discriminator) selects the branch the errors are about', async () => {
    const catalog = await catalogOf(BRANCHES_SPEC);
    const lines = details(attempt(catalog, 'createPet', { body: { kind: 'dog', name: 'Rex' } }));
    expect(lines[0]).toBe(
      `'body' must match exactly one of the 2 allowed shapes; the closest is shape 2 of 2 ("Dog") (selected by 'body.kind'):`,
    );
    expect(lines).toContain("'body.bark' is required");
    expect(lines.join('\n')).not.toContain('lives');
    expect(exampleIn(lines)).toEqual({ kind: 'dog', name: 'string', bark: 'loud' });
  });

  it("OpenAPI's discriminator selects the branch when no property is pinned (implicit names, a mapping, or its order)", async () => {
    const shapes = (discriminator: object) =>
      minimalSpec(
        {
          '/shapes': {
            post: {
              operationId: 'createShape',
              requestBody: {
                required: true,
                content: { 'application/json': { schema: { $ref: '#/components/schemas/Shape' } } },
              },
              responses: jsonOk(),
            },
          },
        },
        {
          components: {
            schemas: {
              Shape: {
                oneOf: [{ $ref: '#/components/schemas/Circle' }, { $ref: '#/components/schemas/Square' }],
                discriminator,
              },
              // The discriminating property is a plain string in each branch: nothing to infer from.
              Circle: {
                type: 'object',
                required: ['shape', 'radius'],
                properties: { shape: { type: 'string' }, radius: { type: 'number' } },
                additionalProperties: false,
              },
              Square: {
                type: 'object',
                required: ['shape', 'side'],
                properties: { shape: { type: 'string' }, side: { type: 'number' } },
                additionalProperties: false,
              },
            },
          },
        },
      );
    const cases: Array<[object, string, string]> = [
      [{ propertyName: 'shape' }, 'Square', '"Circle", "Square"'],
      [
        { propertyName: 'shape', mapping: { sq: '#/components/schemas/Square', ci: 'Circle' } },
        'sq',
        '"ci", "sq"',
      ],
      // Names bundling cannot match (external files): the mapping's order, one entry per branch.
      [
        { propertyName: 'shape', mapping: { round: 'models.yml#/circle', boxy: 'models.yml#/square' } },
        'boxy',
        '"round", "boxy"',
      ],
    ];
    for (const [discriminator, square, all] of cases) {
      const catalog = await catalogOf(shapes(discriminator));
      const lines = details(attempt(catalog, 'createShape', { body: { shape: square } }));
      expect(lines[0], JSON.stringify(discriminator)).toBe(
        `'body' must match exactly one of the 2 allowed shapes; the closest is shape 2 of 2 ("Square") (selected by 'body.shape'):`,
      );
      expect(lines).toContain("'body.side' is required");
      const unknown = details(attempt(catalog, 'createShape', { body: { shape: 'hexagon' } }));
      expect(unknown[0]).toBe(
        `'body.shape' must be one of: ${all} (it selects which of the 2 allowed shapes applies)`,
      );
    }
  });

  it('an unknown discriminator value is named with the values that select a branch', async () => {
    const catalog = await catalogOf(BRANCHES_SPEC);
    const lines = details(attempt(catalog, 'createPet', { body: { kind: 'cow', name: 'Daisy' } }));
    expect(lines[0]).toBe(
      `'body.kind' must be one of: "cat", "dog" (it selects which of the 2 allowed shapes applies)`,
    );
    expect(exampleIn(lines)).toEqual({ kind: 'cat', name: 'string', lives: 1 });
  });

  it('without a discriminator value, the branch with the fewest problems is named', async () => {
    const catalog = await catalogOf(BRANCHES_SPEC);
    const lines = details(attempt(catalog, 'createPet', { body: { name: 'Tom', lives: 20 } }));
    // Nothing selected it (the value has no `kind`): fewest problems, said without "selected by".
    expect(lines[0]).toMatch(/the closest is shape 1 of 2 \("Cat"\):$/);
    expect(lines).toContain("'body.kind' is required");
    expect(lines).toContain("'body.lives' must be <= 9");
  });

  it('every other error ends with an example of the argument too', async () => {
    const catalog = await catalogOf(BRANCHES_SPEC);
    const lines = details(attempt(catalog, 'createNote', {}));
    expect(lines[0]).toBe("'body' is required");
    expect(exampleIn(lines)).toEqual({ text: 'string' });
  });
});

describe('oneOf branches that overlap', () => {
  it('are found at load, and a value valid for one branch passes (anyOf for exactly those branches)', async () => {
    const catalog = await catalogOf(BRANCHES_SPEC);
    const note = toolNamed(catalog, 'createNote');
    // Every pinned note is also a text note (open, same `text`): one way round only.
    expect(findOneOfOverlaps(note.inputSchema)).toEqual([{ at: '/properties/body', covered: 3, by: 1 }]);
    expect(attempt(catalog, 'createNote', { body: { text: 'hi' } })).toEqual({ body: { text: 'hi' } });
    const pinned = { body: { text: 'hi', pinned: true } };
    expect(attempt(catalog, 'createNote', pinned)).toEqual(pinned);
    expect(attempt(catalog, 'createNote', { body: { url: 'https://example.com' } })).toEqual({
      body: { url: 'https://example.com' },
    });
    // The link branch stays exclusive: a value that fits it and the text branch is refused, as oneOf says.
    const both = details(attempt(catalog, 'createNote', { body: { url: 'https://example.com', text: 'x' } }));
    expect(both[0]).toMatch(/^'body' matches more than one of the 2 allowed shapes/);
    // Told-apart branches are never relaxed.
    expect(findOneOfOverlaps(toolNamed(catalog, 'createPet').inputSchema)).toEqual([]);
  });
});

describe('oneOf branches that overlap in a real spec', () => {
  it('DigitalOcean: a snapshot action fits both droplet-action branches; found, and the call passes', async () => {
    const catalog = await digitalOcean();
    const tool = toolNamed(catalog, 'dropletActions_post_byTag');
    // droplet_action_snapshot is allOf [droplet_action, { name }]: every snapshot is a droplet action.
    expect(findOneOfOverlaps(tool.inputSchema)).toEqual([{ at: '/properties/body', covered: 2, by: 1 }]);
    const args = { tag_name: 'web', body: { type: 'snapshot', name: 'nightly' } };
    // Plain oneOf refuses it: it matches both branches.
    expect(createSchemaCompiler(catalog.formats).compile(tool.inputSchema)(args)).toBe(false);
    expect(attempt(catalog, 'dropletActions_post_byTag', args)).toEqual(args);
    // Still checked: a type outside the enum is refused.
    const bad = details(
      attempt(catalog, 'dropletActions_post_byTag', { ...args, body: { type: 'explode' } }),
    );
    expect(bad.join('\n')).toContain("'body.type' must be one of:");
    // No other oneOf of the spec is relaxed.
    expect(
      catalog.tools.filter((t) => findOneOfOverlaps(t.inputSchema).length > 0).map((t) => t.name),
    ).toEqual(['dropletActions_post_byTag']);
  });
});

describe('scan', () => {
  it('reports an overlapping oneOf among the warnings, and nothing for told-apart branches', async () => {
    const dir = tempTree({ 'spec.json': BRANCHES_SPEC });
    let out = '';
    await runScan(
      join(dir, 'spec.json'),
      { format: 'json', quiet: true },
      {
        stdout: (s) => {
          out += s;
        },
        stderr: () => {},
      },
    );
    const warnings = (JSON.parse(out) as { warnings: string[] }).warnings.filter((w) => w.includes('oneOf'));
    expect(warnings).toEqual([
      'createNote: oneOf at /properties/body refuses values meant for one branch, which another branch accepts too (branch 3 within 1); calls are validated by the branch that fits (anyOf for those branches)',
    ]);
  });
});
