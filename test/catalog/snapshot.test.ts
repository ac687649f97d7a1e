import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { restoreCatalog, snapshotCatalog } from '../../src/catalog/snapshot.js';
import type { Catalog } from '../../src/model/catalog.js';
import { type LoadedSpec, loadSpec } from '../../src/openapi/load.js';
import { expectSame, fromCache } from '../support/catalog-equality.js';
import { CRM_SPEC } from '../support/crm.js';
import { CORPUS, jsonOk, loadCorpusSpec, minimalSpec, tempTree } from '../support/helpers.js';
import { PETS_SPEC } from '../support/petstore.js';
import { SHOP_SPEC } from '../support/shop.js';

// A catalogue restored from its snapshot (src/catalog/snapshot.ts) is the catalogue `buildCatalog`
// builds: every field of every tool, the lazies read, the output schema's parts, and the first list.

function roundTrip(spec: LoadedSpec): Catalog {
  const bytes = snapshotCatalog(buildCatalog(spec), spec);
  expect(bytes).toBeInstanceOf(Uint8Array);
  const restored = restoreCatalog(bytes!, fromCache(spec));
  expect(restored).toBeDefined();
  return restored!;
}

describe('a restored catalogue is the built one', () => {
  for (const [file, refRoot] of CORPUS) {
    it(`shared spec ${file}`, async () => {
      const spec = await loadCorpusSpec(file, refRoot);
      expectSame(buildCatalog(spec), roundTrip(spec));
    }, 300_000);
  }

  const inline: Record<string, Record<string, unknown>> = {
    crm: CRM_SPEC,
    // Cycles, a schema named like a prototype key, a `$ref` loop, no response body, a non-object result.
    edges: minimalSpec(
      {
        '/nodes/{id}': {
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          get: { operationId: 'getNode', responses: jsonOk({ $ref: '#/components/schemas/Node' }) },
          delete: { operationId: 'deleteNode', responses: { '204': { description: 'gone' } } },
        },
        '/count': { get: { operationId: 'count', responses: jsonOk({ type: 'integer' }) } },
        '/loop': {
          post: {
            requestBody: {
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Loop' } } },
            },
            responses: jsonOk({ $ref: '#/components/schemas/constructor' }),
          },
        },
      },
      {
        components: {
          schemas: {
            Node: {
              type: 'object',
              properties: {
                email: { type: 'string', format: 'email' },
                children: { type: 'array', items: { $ref: '#/components/schemas/Node' } },
              },
            },
            Loop: { $ref: '#/components/schemas/Loop' },
            constructor: { type: 'object', properties: { password: { type: 'string' } } },
          },
        },
      },
    ),
  };
  for (const [name, doc] of Object.entries(inline)) {
    it(`test spec ${name}`, async () => {
      const spec = await loadSpec(join(tempTree({ 'spec.json': doc }), 'spec.json'));
      expectSame(buildCatalog(spec), roundTrip(spec));
    });
  }
  for (const file of [PETS_SPEC, SHOP_SPEC]) {
    it(`test spec ${file.split('/').slice(-2).join('/')}`, async () => {
      const spec = await loadSpec(file);
      expectSame(buildCatalog(spec), roundTrip(spec));
    });
  }

  it('names the spec as this load does, not as the load that made the snapshot', async () => {
    const dir = tempTree({ 'spec.json': CRM_SPEC });
    const spec = await loadSpec(join(dir, 'spec.json'));
    const bytes = snapshotCatalog(buildCatalog(spec), spec)!;
    const other = { ...spec, source: { ...spec.source, label: 'elsewhere/spec.json' } };
    expect(restoreCatalog(bytes, other)?.source).toBe('elsewhere/spec.json');
  });
});

describe('a snapshot that does not fit is refused', () => {
  const specOf = async (doc: Record<string, unknown>) =>
    loadSpec(join(tempTree({ 'spec.json': doc }), 'spec.json'));

  it('damaged bytes, another layout, or a tool list changed after it was stored, give undefined', async () => {
    const spec = await specOf(CRM_SPEC);
    const bytes = snapshotCatalog(buildCatalog(spec), spec)!;
    expect(restoreCatalog(bytes, spec)?.tools.length).toBeGreaterThan(1);
    expect(restoreCatalog(bytes.subarray(0, bytes.byteLength >> 1), spec)).toBeUndefined();
    expect(restoreCatalog(new Uint8Array([1, 2, 3]), spec)).toBeUndefined();
    expect(restoreCatalog(serialize({ v: 1 }), spec)).toBeUndefined();
    const changed = (edit: (s: { v: number; tools: Array<Record<string, unknown>> }) => void) => {
      const s = deserialize(bytes);
      edit(s);
      return restoreCatalog(serialize(s), spec);
    };
    // The layout before this one (it checked the spec's operations instead of counting its own).
    expect(
      changed((s) => {
        s.v = 1;
      }),
    ).toBeUndefined();
    // A tool dropped or added after the snapshot was made.
    expect(
      changed((s) => {
        s.tools.pop();
      }),
    ).toBeUndefined();
    expect(
      changed((s) => {
        s.tools.push(s.tools[0]!);
      }),
    ).toBeUndefined();
    // A tool without its operation, or using definitions the snapshot does not hold.
    expect(
      changed((s) => {
        (s.tools[0]!.tool as Record<string, unknown>).source = undefined;
      }),
    ).toBeUndefined();
    expect(
      changed((s) => {
        s.tools[0]!.inputDeps = ['NotStored'];
      }),
    ).toBeUndefined();
  });

  it('a tool not made by buildTool (a copy) is not snapshotted', async () => {
    const spec = await specOf(CRM_SPEC);
    const c = buildCatalog(spec);
    expect(snapshotCatalog({ ...c, tools: c.tools.map((t) => ({ ...t })) }, spec)).toBeUndefined();
  });
});
