import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { beginEarlyBuild, dropEarlyBuild, finishEarlyBuild } from '../../src/catalog/early.js';
import { WardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { expectSame, fromCache } from '../support/catalog-equality.js';
import { CRM_SPEC } from '../support/crm.js';
import { CORPUS, jsonOk, loadCorpusSpec, minimalSpec, tempTree } from '../support/helpers.js';

// A catalogue begun while the prefetch worker validates the spec (src/catalog/early.ts), a slice of
// operations per macrotask, is the catalogue `buildCatalog` builds, and fails as it fails.

describe('a catalogue begun early is the catalogue built after the load', () => {
  for (const [file, refRoot] of CORPUS) {
    it(`shared spec ${file}`, async () => {
      const spec = await loadCorpusSpec(file, refRoot);
      beginEarlyBuild(spec);
      const early = await finishEarlyBuild(spec);
      expect(early).toBeDefined();
      expectSame(buildCatalog(fromCache(spec)), early!);
    }, 300_000);
  }

  it('requests are served between its slices', async () => {
    const paths: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) paths[`/r${i}`] = { get: { operationId: `get${i}`, responses: jsonOk() } };
    const spec = await loadSpec(join(tempTree({ 'spec.json': minimalSpec(paths) }), 'spec.json'));
    // A task queued before the build runs before it ends: the build yields between slices (built in
    // one go, it would have ended, and its promise settled, first).
    const order: string[] = [];
    setImmediate(() => order.push('other task'));
    beginEarlyBuild(spec);
    const catalog = await finishEarlyBuild(spec);
    order.push('built');
    expect(catalog?.tools).toHaveLength(200);
    expect(order).toEqual(['other task', 'built']);
  });

  it('an operation that cannot be catalogued fails it as buildCatalog fails', async () => {
    const base = await loadSpec(
      join(
        tempTree({
          'spec.json': minimalSpec(
            Object.fromEntries(
              Array.from({ length: 90 }, (_, i) => [
                `/r${i}`,
                { get: { operationId: `g${i}`, responses: jsonOk() } },
              ]),
            ),
          ),
        }),
        'spec.json',
      ),
    );
    // A reference to nothing, put in after loading (the loader refuses such a spec itself), late in
    // the operations: a later slice.
    const spec = fromCache(base);
    (spec.doc.paths as Record<string, { get: { responses: unknown } }>)['/r80']!.get.responses = jsonOk({
      $ref: '#/components/schemas/Missing',
    });
    let serial: unknown;
    try {
      buildCatalog(spec);
    } catch (e) {
      serial = e;
    }
    expect(serial).toBeInstanceOf(WardenError);
    beginEarlyBuild(spec);
    const e = await finishEarlyBuild(spec).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe((serial as WardenError).code);
    expect((e as WardenError).message).toBe((serial as WardenError).message);
    expect((e as WardenError).location).toEqual((serial as WardenError).location);
  });

  it('a build dropped, or never begun, gives nothing: the caller builds', async () => {
    const spec = await loadSpec(join(tempTree({ 'spec.json': CRM_SPEC }), 'spec.json'));
    expect(await finishEarlyBuild(spec)).toBeUndefined();
    beginEarlyBuild(spec);
    dropEarlyBuild(spec);
    expect(await finishEarlyBuild(spec)).toBeUndefined();
  });
});
