import { describe, expect, it } from 'vitest';
import { definitionHash, Pins } from '../../src/control/pins.js';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

// In memory (no pins file, no shared state) the first catalogue is trusted as it is: its tools are
// kept, not hashed, at start-up (issue 22); a reload still catches new and changed definitions.

const spec = (itemDescription: string, extra: Record<string, unknown> = {}) =>
  minimalSpec({
    '/items': {
      get: { operationId: 'listItems', responses: jsonOk({ type: 'array', items: { type: 'string' } }) },
    },
    '/items/{id}': {
      get: {
        operationId: 'getItem',
        description: itemDescription,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: jsonOk(),
      },
    },
    ...extra,
  });

/** The catalogue's tools behind getters that count every read of what a definition hash reads. */
function counted(catalog: Catalog): { tools: Tool[]; reads: () => number } {
  let reads = 0;
  const tools = catalog.tools.map((t) => {
    const copy = { ...t };
    for (const key of ['inputSchema', 'description', 'bindings'] as const) {
      const value = t[key];
      Object.defineProperty(copy, key, {
        enumerable: true,
        get() {
          reads++;
          return value;
        },
      });
    }
    return copy as Tool;
  });
  return { tools, reads: () => reads };
}

describe('pins in memory', () => {
  it('trusts the first catalogue without hashing a definition', async () => {
    const { tools, reads } = counted(await catalogOf(spec('One item.')));
    const pins = new Pins(undefined);
    expect(pins.empty).toBe(true);
    await pins.approve(tools);
    expect(pins.empty).toBe(false);
    expect(pins.pending(tools)).toEqual(new Map());
    expect(reads()).toBe(0);
  });

  it('after a reload: an equal definition passes, a changed one and a new tool wait', async () => {
    const first = await catalogOf(spec('One item.'));
    const pins = new Pins(undefined);
    await pins.approve(first.tools);

    const same = await catalogOf(spec('One item.'));
    expect(same.tools[0]).not.toBe(first.tools[0]);
    expect(pins.pending(same.tools)).toEqual(new Map());

    const changed = await catalogOf(
      spec('One item, now with instructions.', {
        '/orders': { get: { operationId: 'listOrders', responses: jsonOk() } },
      }),
    );
    const pending = pins.pending(changed.tools);
    expect([...pending.keys()].sort()).toEqual(['getItem', 'listOrders']);
    expect(pending.get('getItem')).toMatch(/definition changed/);
    expect(pending.get('listOrders')).toMatch(/new tool/);

    // Approving the change pins it; the first definition is no longer accepted.
    await pins.approve(changed.tools.filter((t) => t.name === 'getItem'));
    expect([...pins.pending(changed.tools).keys()]).toEqual(['listOrders']);
    expect([...pins.pending(first.tools).keys()]).toEqual(['getItem']);
  });

  it('compares by the same hash a pins file stores', async () => {
    const first = await catalogOf(spec('One item.'));
    const lazy = new Pins(undefined);
    await lazy.approve(first.tools);
    const changed = await catalogOf(spec('Another item.'));
    const tool = changed.tools.find((t) => t.name === 'getItem')!;
    const original = first.tools.find((t) => t.name === 'getItem')!;
    expect(definitionHash(tool)).not.toBe(definitionHash(original));
    expect([...lazy.pending(changed.tools).keys()]).toEqual(['getItem']);
  });
});
