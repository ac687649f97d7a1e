import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import { createResolve } from '../../src/pipeline/resolve.js';
import { createToggle } from '../../src/pipeline/toggle.js';
import {
  createValidate,
  KEY_WALK_BUDGET,
  type KeyWalkBudget,
  walkKeys,
} from '../../src/pipeline/validate.js';
import { contextFor, itemsCatalog, toolNamed, viewOf } from '../support/pipeline.js';

function caught(f: () => void): WardenError {
  try {
    f();
  } catch (e) {
    if (isWardenError(e)) return e;
    throw e;
  }
  throw new Error('expected a WardenError');
}

describe('resolve stage', () => {
  it('finds an exposed tool', async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    const resolve = createResolve({ view: () => view });
    const ctx = contextFor({ name: 'getPart' });
    resolve(ctx);
    expect(ctx.tool?.name).toBe('getPart');
    expect(ctx.decision?.exposed).toBe(true);
  });

  it('gives an unknown and a hidden tool the same message (the audit code tells them apart)', async () => {
    const catalog = await itemsCatalog();
    const view = viewOf(catalog);
    expect(view.get('createItem')?.exposed).toBe(false);
    const resolve = createResolve({ view: () => view });
    const toggle = createToggle();
    const hidden = caught(() => {
      const ctx = contextFor({ name: 'createItem' });
      resolve(ctx);
      toggle(ctx);
    });
    const unknown = caught(() => resolve(contextFor({ name: 'createItex' })));
    expect(hidden.code).toBe('DENIED_HIDDEN');
    expect(unknown.code).toBe('TOOL_NOT_FOUND');
    expect(hidden.message.replace('createItem', 'X')).toBe(unknown.message.replace('createItex', 'X'));
  });

  it('echoes a hostile name only as short printable ASCII', async () => {
    const view = viewOf(await itemsCatalog());
    const resolve = createResolve({ view: () => view });
    const e = caught(() => resolve(contextFor({ name: `a\r\n\u001b[31m${'x'.repeat(500)}` })));
    expect(e.message).not.toMatch(/[\r\n\u001b]/);
    expect(e.message.length).toBeLessThan(100);
  });
});

describe('validate stage', () => {
  async function run(name: string, args: unknown) {
    const catalog = await itemsCatalog();
    const validate = createValidate({ catalog });
    const ctx = contextFor({ name, arguments: args });
    ctx.tool = toolNamed(catalog, name);
    validate(ctx);
    return ctx;
  }

  it('accepts valid arguments unchanged', async () => {
    const ctx = await run('getPart', { id: 'a', part: 2, tags: ['x'] });
    expect(ctx.args).toEqual({ id: 'a', part: 2, tags: ['x'] });
  });

  it('names each bad field and what was expected', async () => {
    const e = await run('getPart', { id: 7, part: '2', extra: true }).catch((x: WardenError) => x);
    expect(isWardenError(e) && e.code).toBe('INVALID_ARGUMENT');
    const err = e as WardenError;
    expect(err.details).toContain("'id' must be a string");
    expect(err.details).toContain("'part' must be an integer");
    expect(err.details.find((d) => d.startsWith("'extra' is not an argument of this tool"))).toContain(
      '"id"',
    );
  });

  it('reports missing required arguments and does not coerce types', async () => {
    const e = (await run('getPart', { id: 'a' }).catch((x: WardenError) => x)) as WardenError;
    expect(e.details).toEqual(["'part' is required", "example of a valid 'part': 0"]);
    const e2 = (await run('getPart', { id: 'a', part: 1, limit: '5' }).catch(
      (x: WardenError) => x,
    )) as WardenError;
    expect(e2.details).toEqual(["'limit' must be an integer", "example of a valid 'limit': 1"]);
  });

  it('names nested fields with a path', async () => {
    const e = (await run('createItem', { body: { name: 3 } }).catch((x: WardenError) => x)) as WardenError;
    expect(e.details).toEqual([
      "'body.name' must be a string",
      `example of a valid 'body': {"name":"string"}`,
    ]);
  });

  it.each([null, [], 'x', 5])('refuses arguments that are not an object (%j)', async (args) => {
    const e = (await run('getPart', args).catch((x: WardenError) => x)) as WardenError;
    expect(e.code).toBe('INVALID_ARGUMENT');
  });

  it('refuses prototype-pollution keys as unknown arguments', async () => {
    const e = (await run('getPart', JSON.parse('{"id":"a","part":1,"__proto__":{"admin":true}}')).catch(
      (x: WardenError) => x,
    )) as WardenError;
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('names where the polluting key is', () => {
    expect(walkKeys(JSON.parse('{"a":[1,{"constructor":{"prototype":{}}}]}'))).toEqual({
      kind: 'polluting',
      path: 'a[1].constructor.prototype',
    });
    expect(walkKeys(JSON.parse('{"f":{"__proto__":1}}'))).toEqual({ kind: 'polluting', path: 'f.__proto__' });
    // `prototype` alone, or under an array named constructor, reaches no prototype.
    expect(walkKeys(JSON.parse('{"prototype":1,"constructor":[{"prototype":1}]}'))).toEqual({
      kind: 'clean',
    });
  });

  it('refuses a __proto__ key hidden past the value budget behind a large array (fails closed)', async () => {
    // JSON.parse keeps "__proto__" as an own key; the schema lets `filter` take any string-valued key.
    const tags = JSON.stringify(Array.from({ length: 150_000 }, () => 't'));
    const text = `{"filter":{"__proto__":"x"},"id":"a","part":1,"tags":${tags}}`;
    expect(text.length).toBeLessThan(1024 * 1024);
    const e = (await run('getPart', JSON.parse(text)).catch((x: WardenError) => x)) as WardenError;
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details.join()).toContain(`more than ${KEY_WALK_BUDGET.maxValues} values`);
  });

  it('refuses arguments nested past the depth budget, rather than leaving the deep part unchecked', async () => {
    let deep: unknown = JSON.parse('{"__proto__":{"admin":true}}');
    for (let i = 0; i < 70; i++) deep = { a: deep };
    const e = (await run('createItem', { body: { name: 'n', extra: deep } }).catch(
      (x: WardenError) => x,
    )) as WardenError;
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details.join()).toContain(`deeper than ${KEY_WALK_BUDGET.maxDepth} levels`);
  });

  it('property: arguments past any budget of the key walk are refused; within them only polluting keys are', async () => {
    const catalog = await itemsCatalog();
    const tool = toolNamed(catalog, 'createItem');
    // JSON text, parsed: `__proto__` stays an own key, as it does for arguments off the wire.
    const { node } = fc.letrec<{ node: string; leaf: string; arr: string; obj: string }>((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('arr'), tie('obj')),
      leaf: fc.constantFrom('1', '"s"', 'null', 'true'),
      arr: fc.array(tie('node'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
      obj: fc
        .array(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'a', 'b'), tie('node')), {
          maxLength: 4,
        })
        .map((kv) => `{${kv.map(([k, v]) => `"${k}":${v}`).join(',')}}`),
    }));
    fc.assert(
      fc.property(
        node,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 8 }),
        (text, maxValues, maxDepth) => {
          const args = { body: { name: 'n', extra: JSON.parse(text) as unknown } };
          const ref = measure(args);
          const over = ref.values > maxValues || ref.deepest >= maxDepth;
          const validate = createValidate({
            catalog,
            keyWalk: { maxValues, maxDepth } satisfies KeyWalkBudget,
          });
          const ctx = contextFor({ name: 'createItem', arguments: args });
          ctx.tool = tool;
          let code: string | undefined;
          try {
            validate(ctx);
          } catch (e) {
            code = isWardenError(e) ? e.code : 'NOT_A_WARDEN_ERROR';
          }
          if (over || ref.polluting) return code === 'INVALID_ARGUMENT' && ctx.args === undefined;
          return code === undefined && ctx.args !== undefined;
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** What the key walk is bounded by, computed independently (recursively; fine for small values). */
function measure(v: unknown, depth = 0, key = ''): { values: number; deepest: number; polluting: boolean } {
  const out = { values: 1, deepest: -1, polluting: false };
  if (v === null || typeof v !== 'object') return out;
  out.deepest = depth;
  const entries: Array<[string, unknown]> = Array.isArray(v) ? v.map((x) => ['', x]) : Object.entries(v);
  for (const [k, x] of entries) {
    if (!Array.isArray(v) && (k === '__proto__' || (k === 'prototype' && key === 'constructor')))
      out.polluting = true;
    const m = measure(x, depth + 1, k);
    out.values += m.values;
    out.deepest = Math.max(out.deepest, m.deepest);
    out.polluting ||= m.polluting;
  }
  return out;
}
