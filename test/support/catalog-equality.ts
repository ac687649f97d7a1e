import { deserialize, serialize } from 'node:v8';
import { expect } from 'vitest';
import { outputSchemaParts } from '../../src/catalog/tool.js';
import { buildView } from '../../src/control/view.js';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';
import type { LoadedSpec } from '../../src/openapi/load.js';
import { DEFAULT_POLICY, evaluatePolicy } from '../../src/policy/evaluate.js';

// Two catalogues of one spec are the same catalogue: a restored snapshot (test/catalog/snapshot) and
// a build begun before the spec's validation ended (test/catalog/early) against `buildCatalog`.

/** The spec as a cache hit (or another thread) gives it: the document deserialised, nothing shared. */
export const fromCache = (spec: LoadedSpec): LoadedSpec => ({
  ...spec,
  doc: deserialize(serialize(spec.doc)),
});

const SCOPES = ['tools:read', 'tools:write', 'tools:delete', 'tools:admin'];

function listings(catalog: Catalog): string[] {
  const view = buildView(
    evaluatePolicy(catalog, { doc: DEFAULT_POLICY }),
    new Map(),
    { kill: 'none', toggles: new Map() },
    1,
  );
  return [JSON.stringify(view.listFor(SCOPES, false)), JSON.stringify(view.listFor(SCOPES))];
}

/** Which tools share their `$defs` object (the converter gives one object per root list). */
function sharing(tools: Tool[], field: 'inputSchema' | 'outputSchema'): number[] {
  const ids = new Map<unknown, number>();
  return tools.map((t) => {
    const defs = (t[field] as JsonSchemaObject | undefined)?.$defs;
    if (defs === undefined) return -1;
    if (!ids.has(defs)) ids.set(defs, ids.size);
    return ids.get(defs)!;
  });
}

/** Both catalogues field by field, reading every lazy; then their lists (after the fields were read). */
export function expectSame(fresh: Catalog, restored: Catalog): void {
  const lists = [listings(fresh), listings(restored)];
  expect(Object.keys(restored)).toEqual(Object.keys(fresh));
  const { tools: ft, ...fh } = fresh;
  const { tools: rt, ...rh } = restored;
  expect(JSON.stringify(rh)).toBe(JSON.stringify(fh));
  expect(rt).toHaveLength(ft.length);
  ft.forEach((a, i) => {
    const b = rt[i]!;
    expect(Object.keys(b), a.name).toEqual(Object.keys(a));
    // The parts a list reads, before anything materialised the output schema.
    const pa = outputSchemaParts(a);
    const pb = outputSchemaParts(b);
    expect(pb === undefined, a.name).toBe(pa === undefined);
    if (pa && pb) {
      expect(JSON.stringify(pb.schema), a.name).toBe(JSON.stringify(pa.schema));
      for (const key of Object.keys(a.outputSchema?.$defs ?? {}))
        expect(JSON.stringify(pb.defs(key)), `${a.name} ${key}`).toBe(JSON.stringify(pa.defs(key)));
    }
    for (const k of Object.keys(a) as Array<keyof Tool>)
      expect(JSON.stringify(b[k]), `${a.name}.${k}`).toBe(JSON.stringify(a[k]));
    expect(b.dataClasses).toEqual(a.dataClasses);
    expect(b.dataClassesTruncated).toBe(a.dataClassesTruncated);
  });
  expect(sharing(rt, 'inputSchema')).toEqual(sharing(ft, 'inputSchema'));
  expect(sharing(rt, 'outputSchema')).toEqual(sharing(ft, 'outputSchema'));
  expect(lists[1]).toEqual(lists[0]);
  expect(listings(restored)).toEqual(listings(fresh));
}
