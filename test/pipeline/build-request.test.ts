import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import { createBuildRequest } from '../../src/pipeline/build-request.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { parseBaseUrl } from '../../src/upstream/base-url.js';
import { contextFor, itemsCatalog, toolNamed } from '../support/pipeline.js';

async function setup() {
  const catalog = await itemsCatalog();
  const target = parseBaseUrl('https://api.example.com/v2', 'test');
  const targets = new Map(catalog.tools.map((t) => [t, target]));
  const build = createBuildRequest({ targets });
  const run = (name: string, args: Record<string, unknown>): CallContext => {
    const ctx = contextFor({ name, arguments: args });
    ctx.tool = toolNamed(catalog, name);
    ctx.args = args;
    build(ctx);
    return ctx;
  };
  return { run };
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return isWardenError(e) ? e.code : 'NOT_A_WARDEN_ERROR';
  }
}

describe('build-request stage', () => {
  it('puts each path argument in exactly one percent-encoded segment', async () => {
    const { run } = await setup();
    const ctx = run('getPart', { id: 'a/b?c#d;e%f&g', part: 3 });
    expect(ctx.request?.origin).toBe('https://api.example.com');
    expect(ctx.request?.path).toBe('/v2/items/a%2Fb%3Fc%23d%3Be%25f%26g/parts/3');
  });

  it.each(['../admin', '..%2Fadmin', '%2e%2e/admin', 'a?x=1', 'a#b', '..\\admin', '/etc/passwd'])(
    'keeps the path template when the id is %j',
    async (id) => {
      const { run } = await setup();
      const path = run('getPart', { id, part: 1 }).request!.path;
      const url = new URL(`https://api.example.com${path}`);
      // What an upstream's URL parser sees: same origin, same number of segments, same literals.
      expect(url.origin).toBe('https://api.example.com');
      const segs = url.pathname.split('/');
      expect(segs).toHaveLength(6);
      expect([segs[1], segs[2], segs[4]]).toEqual(['v2', 'items', 'parts']);
      expect(url.search).toBe('');
      expect(url.hash).toBe('');
    },
  );

  it.each(['.', '..', ''])('refuses %j as a whole path segment', async (id) => {
    const { run } = await setup();
    expect(codeOf(() => run('getPart', { id, part: 1 }))).toBe('INVALID_ARGUMENT');
  });

  it('serialises query parameters by style and explode', async () => {
    const { run } = await setup();
    const q = run('getPart', {
      id: 'x',
      part: 1,
      tags: ['a b', 'c&d=e'],
      csv: ['1', '2'],
      filter: { color: 'red', 'size[': '&' },
      q: 'x=1&admin=true',
    }).request!.query;
    expect(q).toBe(
      'tags=a%20b&tags=c%26d%3De&csv=1,2&filter%5Bcolor%5D=red&filter%5Bsize%5B%5D=%26&q=x%3D1%26admin%3Dtrue',
    );
    // Whatever the values, the upstream sees exactly the parameters the spec declares.
    const names = new Set([...new URLSearchParams(q).keys()]);
    expect(names).toEqual(new Set(['tags', 'csv', 'filter[color]', 'filter[size[]', 'q']));
  });

  it('refuses header values with CR, LF or NUL and names the argument', async () => {
    const { run } = await setup();
    for (const v of ['a\r\nX-Injected: 1', 'a\nb', 'a\u0000b', 'caf\u00e9']) {
      try {
        run('getPart', { id: 'x', part: 1, 'X-Trace': v });
        expect.unreachable();
      } catch (e) {
        expect(isWardenError(e) && e.code).toBe('INVALID_ARGUMENT');
        expect((e as Error).message).toContain("'X-Trace'");
      }
    }
    expect(run('getPart', { id: 'x', part: 1, 'X-Trace': 'abc-123' }).request!.headers['x-trace']).toBe(
      'abc-123',
    );
  });

  it('encodes cookie parameters so a value cannot add a cookie', async () => {
    const { run } = await setup();
    const h = run('getPart', { id: 'x', part: 1, session_hint: 'v; admin=1' }).request!.headers;
    expect(h.cookie).toBe('session_hint=v%3B%20admin%3D1');
  });

  it('clamps a page size the spec leaves unbounded and says so', async () => {
    const { run } = await setup();
    const req = run('getPart', { id: 'x', part: 1, limit: 5000 }).request!;
    expect(req.query).toBe('limit=100');
    expect(req.notes?.[0]).toMatch(/lowered from 5000 to .* 100/);
    expect(run('getPart', { id: 'x', part: 1, limit: 20 }).request!.query).toBe('limit=20');
  });

  it('encodes JSON and form bodies by content type', async () => {
    const { run } = await setup();
    const json = run('createItem', { body: { name: 'n', qty: 2 } }).request!;
    expect(json.method).toBe('POST');
    expect(json.headers['content-type']).toBe('application/json');
    expect(JSON.parse(json.body as string)).toEqual({ name: 'n', qty: 2 });
    const form = run('postForm', { body: { a: 'x&y=z', b: ['1', '2'] } }).request!;
    expect(form.body).toBe('a=x%26y%3Dz&b=1&b=2');
  });

  it('property: no argument values change the origin or the path template', async () => {
    const { run } = await setup();
    const anyText = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '..%2f',
        '/',
        '?',
        '#',
        '\\',
        '%00',
        '%',
        '//evil.com',
        'http://evil.com/',
      ),
      fc
        .array(fc.constantFrom('.', '/', '%', '2', 'e', 'f', '?', '#', '\\', '@', ':'), { maxLength: 12 })
        .map((a) => a.join('')),
    );
    fc.assert(
      fc.property(
        anyText,
        fc.integer(),
        anyText,
        fc.array(anyText, { maxLength: 3 }),
        (id, part, q, tags) => {
          let ctx: CallContext;
          try {
            ctx = run('getPart', { id, part, q, tags });
          } catch (e) {
            // Refusing is fine; anything but a typed INVALID_ARGUMENT is not.
            return isWardenError(e) && e.code === 'INVALID_ARGUMENT';
          }
          const req = ctx.request!;
          const url = new URL(`${req.origin}${req.path}?${req.query}`);
          const segs = url.pathname.split('/');
          return (
            url.origin === 'https://api.example.com' &&
            segs.length === 6 &&
            segs[1] === 'v2' &&
            segs[2] === 'items' &&
            segs[4] === 'parts' &&
            segs[5] === String(part) &&
            decodeURIComponent(segs[3]!) === id &&
            url.hash === '' &&
            [...url.searchParams.keys()].every((k) => k === 'q' || k === 'tags')
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});
