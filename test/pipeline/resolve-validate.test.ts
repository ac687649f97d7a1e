import { describe, expect, it } from 'vitest';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import { createResolve } from '../../src/pipeline/resolve.js';
import { createToggle } from '../../src/pipeline/toggle.js';
import { createValidate } from '../../src/pipeline/validate.js';
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
    expect(e.details).toEqual(["'part' is required"]);
    const e2 = (await run('getPart', { id: 'a', part: 1, limit: '5' }).catch(
      (x: WardenError) => x,
    )) as WardenError;
    expect(e2.details).toEqual(["'limit' must be an integer"]);
  });

  it('names nested fields with a path', async () => {
    const e = (await run('createItem', { body: { name: 3 } }).catch((x: WardenError) => x)) as WardenError;
    expect(e.details).toEqual(["'body.name' must be a string"]);
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
});
