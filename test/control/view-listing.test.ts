import { describe, expect, it } from 'vitest';
import { buildView, sameListing, type ToolView } from '../../src/control/view.js';
import type { Catalog, Tool } from '../../src/model/catalog.js';
import { evaluatePolicy } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

// tools/list without output schemas (the default) builds none of them: publishing one walks the
// tool's whole output schema. The list with them is the same list with each one in its place, and
// list-change notices compare views without building what neither caller sees differently.

const Customer = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: 'string', format: 'email' },
    note: { type: 'string' },
  },
};
const specWith = (customer: object) =>
  minimalSpec(
    {
      '/customers/{id}': {
        get: {
          operationId: 'getCustomer',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: jsonOk({ $ref: '#/components/schemas/Customer' }),
        },
      },
      '/ping': { get: { operationId: 'ping', responses: { '204': { description: 'no content' } } } },
    },
    { components: { schemas: { Customer: customer } } },
  );

function viewOf(
  catalog: Catalog,
  policy = 'version: 1',
  toggles = new Map<string, 'enabled' | 'disabled'>(),
) {
  const p = parsePolicy(policy, 'test.yaml');
  return buildView(evaluatePolicy(catalog, { doc: p.doc }), new Map(), { kill: 'none', toggles }, 1);
}

/** The catalogue with each tool's `outputSchema` read counted (reading it is what builds it). */
function counted(catalog: Catalog): { catalog: Catalog; reads: () => number } {
  let reads = 0;
  const tools = catalog.tools.map((t) => {
    const copy = Object.create(null) as Tool;
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(t)))
      if (k !== 'outputSchema') Object.defineProperty(copy, k, d);
    if ('outputSchema' in t)
      Object.defineProperty(copy, 'outputSchema', {
        enumerable: true,
        get: () => {
          reads++;
          return t.outputSchema;
        },
      });
    return copy;
  });
  return { catalog: { ...catalog, tools }, reads: () => reads };
}

const SCOPES = ['tools:read'];

describe('the view lists output schemas only when asked', () => {
  it('without output schemas reads none; with them, each sits where tools/list always had it', async () => {
    const { catalog, reads } = counted(await catalogOf(specWith(Customer)));
    const view = viewOf(catalog);
    const bare = view.listFor(SCOPES, false);
    expect(bare.map((t) => t.name)).toEqual(['getCustomer', 'ping']);
    expect(bare.every((t) => !('outputSchema' in t))).toBe(true);
    expect(JSON.stringify(bare)).not.toContain('outputSchema');
    expect(reads()).toBe(0);
    // Cached per scope set and variant.
    expect(view.listFor(SCOPES, false)).toBe(bare);

    const full = view.listFor(SCOPES);
    expect(reads()).toBeGreaterThan(0);
    expect(Object.keys(full[0]!)).toEqual([
      'name',
      'description',
      'inputSchema',
      'outputSchema',
      'annotations',
    ]);
    // Masked as published: the e-mail address is a string placeholder, its format relaxed.
    expect(JSON.stringify(full[0]!.outputSchema)).toContain('masked by mcp-warden');
    // The same tool otherwise, and the entry's own `listed` (describe_tool) is that one.
    const { outputSchema: _o, ...rest } = full[0]!;
    expect(rest).toEqual(bare[0]);
    expect(view.get('getCustomer')!.listed).toBe(full[0]);
    expect(full[1]).toEqual(bare[1]);
  });
});

describe('sameListing', () => {
  it('sees the same list across views of one catalogue without building output schemas', async () => {
    const { catalog, reads } = counted(await catalogOf(specWith(Customer)));
    const a = viewOf(catalog);
    const b = viewOf(catalog);
    expect(sameListing(a, b, SCOPES)).toBe(true);
    expect(reads()).toBe(0);
    // A toggle changes what is listed.
    const off = viewOf(catalog, 'version: 1', new Map([['ping', 'disabled']]));
    expect(sameListing(a, off, SCOPES)).toBe(false);
  });

  it('tells a masking change apart only where it changes the published output schema', async () => {
    const catalog = await catalogOf(specWith(Customer));
    const masked = viewOf(catalog);
    const allowed = viewOf(
      catalog,
      'version: 1\nrules:\n  - match: { name: getCustomer }\n    masking: { pii: allow }\n',
    );
    expect(sameListing(masked, allowed, SCOPES)).toBe(false);
    // Financial data it does not have: the published schema is the same.
    const financial = viewOf(
      catalog,
      'version: 1\nrules:\n  - match: { name: getCustomer }\n    masking: { financial: allow }\n',
    );
    expect(sameListing(masked, financial, SCOPES)).toBe(true);
  });

  it('compares a reloaded catalogue by content: same spec same list, a changed output schema a change', async () => {
    const first = viewOf(await catalogOf(specWith(Customer)));
    const again = viewOf(await catalogOf(specWith(Customer)));
    expect(sameListing(first, again, SCOPES)).toBe(true);
    const changed = viewOf(
      await catalogOf(
        specWith({ ...Customer, properties: { ...Customer.properties, phone: { type: 'string' } } }),
      ),
    );
    // Only the output schema differs: the list without it is the same text.
    expect(JSON.stringify(changed.listFor(SCOPES, false))).toBe(JSON.stringify(first.listFor(SCOPES, false)));
    expect(sameListing(first, changed, SCOPES)).toBe(false);
  });

  it('agrees with comparing the full lists as text', async () => {
    const views: ToolView[] = [];
    for (const c of [Customer, { ...Customer, required: ['id'] }]) {
      const catalog = await catalogOf(specWith(c));
      views.push(
        viewOf(catalog),
        viewOf(catalog, 'version: 1\nrules:\n  - match: { name: ping }\n    enabled: false\n'),
      );
    }
    for (const a of views)
      for (const b of views)
        expect(sameListing(a, b, SCOPES)).toBe(
          JSON.stringify(a.listFor(SCOPES)) === JSON.stringify(b.listFor(SCOPES)),
        );
  });
});
