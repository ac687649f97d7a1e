import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/errors/index.js';
import { type FormData, isFormData } from '../../src/lib/undici-parts.js';
import { createBuildRequest } from '../../src/pipeline/build-request.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { parseBaseUrl } from '../../src/upstream/base-url.js';
import { catalogOf, jsonOk, minimalSpec, startUpstream } from '../support/helpers.js';
import {
  contextFor,
  itemsCatalog,
  pipelineFor,
  codeOf as resultCode,
  toolNamed,
} from '../support/pipeline.js';

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
    expect(form.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it("encodes a multipart body as undici's FormData, leaving the content type (its boundary) to it", async () => {
    const catalog = await catalogOf(
      minimalSpec({
        '/files': {
          post: {
            operationId: 'upload',
            requestBody: {
              content: {
                'multipart/form-data': {
                  schema: {
                    type: 'object',
                    properties: { purpose: { type: 'string' }, n: { type: 'integer' } },
                  },
                },
              },
            },
            responses: jsonOk(),
          },
        },
      }),
    );
    const target = parseBaseUrl('https://api.example.com', 'test');
    const build = createBuildRequest({ targets: new Map(catalog.tools.map((t) => [t, target])) });
    const args = { body: { purpose: 'evidence', n: 2 } };
    const ctx = contextFor({ name: 'upload', arguments: args });
    ctx.tool = toolNamed(catalog, 'upload');
    ctx.args = args;
    build(ctx);
    const req = ctx.request!;
    expect(isFormData(req.body)).toBe(true);
    const form = req.body as FormData;
    expect([...form.entries()]).toEqual([
      ['purpose', 'evidence'],
      ['n', '2'],
    ]);
    expect(req.headers['content-type']).toBeUndefined();
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

/**
 * Page-size parameters as specs write them, and the range the gateway keeps each to under a policy
 * `maxPageSize` of 40. `specMax`: above the spec's own maximum, the schema check refuses first.
 */
const PAGED: Array<{
  op: string;
  param: string;
  schema: object;
  lo: number;
  hi: number;
  integer: boolean;
  specMax?: number;
}> = [
  { op: 'intNoBounds', param: 'limit', schema: { type: 'integer' }, lo: 1, hi: 40, integer: true },
  { op: 'numberNoBounds', param: 'per_page', schema: { type: 'number' }, lo: 1, hi: 40, integer: false },
  { op: 'untyped', param: 'page_size', schema: {}, lo: 1, hi: 40, integer: true },
  { op: 'minZero', param: 'limit', schema: { type: 'integer', minimum: 0 }, lo: 1, hi: 40, integer: true },
  {
    op: 'minusOneMeansAll',
    param: 'limit',
    schema: { type: 'integer', minimum: -1, maximum: 50 },
    lo: 1,
    hi: 40,
    integer: true,
    specMax: 50,
  },
  {
    op: 'exclusive',
    param: 'size',
    schema: { type: 'integer', minimum: 0, exclusiveMinimum: true, maximum: 30, exclusiveMaximum: true },
    lo: 1,
    hi: 29,
    integer: true,
    specMax: 29,
  },
  {
    op: 'fiveToTwenty',
    param: 'count',
    schema: { type: 'integer', minimum: 5, maximum: 20 },
    lo: 5,
    hi: 20,
    integer: true,
    specMax: 20,
  },
];

/** What must happen to page size `v`: sent as this number, or refused (undefined). */
function expectedPage(p: (typeof PAGED)[number], v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : undefined;
  if (
    n === undefined ||
    Number.isNaN(n) ||
    n < p.lo ||
    (p.integer && Number.isFinite(n) && !Number.isInteger(n))
  )
    return undefined;
  if (n <= p.hi) return n;
  return p.specMax !== undefined && n > p.specMax ? undefined : p.hi;
}

const PAGED_SPEC = minimalSpec(
  Object.fromEntries(
    PAGED.map((p) => [
      `/${p.op}`,
      {
        get: {
          operationId: p.op,
          parameters: [{ name: p.param, in: 'query', schema: p.schema }],
          responses: jsonOk({ type: 'array', items: { type: 'object' } }),
        },
      },
    ]),
  ),
);

describe('page sizes: only values in range reach the upstream (real upstream)', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let call: (
    op: string,
    args: Record<string, unknown>,
  ) => Promise<{ code: string; sent?: string | null; text: string }>;

  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    });
    const catalog = await catalogOf(PAGED_SPEC);
    for (const p of PAGED) expect(toolNamed(catalog, p.op).pageSize?.arg, p.op).toBe(p.param);
    const pipeline = pipelineFor(catalog, {
      origin: up.origin,
      // Many calls from one caller: the rate limits are lifted so that only the page size decides.
      policy: [
        'version: 1',
        'defaults: { maxPageSize: 40 }',
        'rateLimit:',
        '  perPrincipal: { calls: 1000000, perSeconds: 1 }',
        '  perToolPrincipal: { calls: 1000000, perSeconds: 1 }',
        '',
      ].join('\n'),
    });
    call = async (op, args) => {
      const before = up.requests.length;
      const r = await pipeline.call({
        name: op,
        arguments: args,
        principal: { id: 'pager', scopes: ['tools:read'], via: 'stdio' },
      });
      const text = r.content.map((c) => c.text).join('\n');
      if (up.requests.length === before) return { code: resultCode(r), text };
      const p = PAGED.find((x) => x.op === op)!;
      return {
        code: resultCode(r),
        sent: new URL(up.requests.at(-1)!.url, 'http://x').searchParams.get(p.param),
        text,
      };
    };
  });
  afterAll(() => up?.close());

  it.each(PAGED.map((p) => [p.op, p]))(
    '%s: 0, negative, fractional and huge sizes never reach it',
    async (_op, p) => {
      const outside: unknown[] = [
        0,
        -1,
        -1e9,
        p.lo - 1,
        -0.5,
        ...(p.integer ? [1.5, p.hi - 0.5] : []),
        '-1',
        '0',
        true,
        [5, -1],
      ];
      for (const v of outside) {
        const r = await call(p.op, { [p.param]: v });
        expect(r.sent, `${p.op} ${JSON.stringify(v)}`).toBeUndefined();
        expect(r.code, `${p.op} ${JSON.stringify(v)}`).toBe('INVALID_ARGUMENT');
      }
      for (const v of [p.hi + 1, 1e9, 1e300]) {
        const r = await call(p.op, { [p.param]: v });
        if (p.specMax !== undefined && v > p.specMax) {
          expect(r.code, `${p.op} ${v}`).toBe('INVALID_ARGUMENT');
          continue;
        }
        expect(r.sent, `${p.op} ${v}`).toBe(String(p.hi));
        expect(r.text).toContain(`was lowered from ${v} to the gateway's maximum page size ${p.hi}`);
      }
      for (const v of [p.lo, p.hi]) expect((await call(p.op, { [p.param]: v })).sent).toBe(String(v));
    },
  );

  it('property: whatever the value, the upstream sees a page size in range or no request at all', async () => {
    const value = fc.oneof(
      fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }),
      fc.integer({ min: -5, max: 60 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.double({ min: -5, max: 60, noNaN: true }),
      fc.constantFrom<unknown>(0, -1, -0, 1.5, 1e21, '7', '-1', '1e3', ' 8 ', 'all', false, {}, []),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PAGED), value, async (p, v) => {
        const r = await call(p.op, { [p.param]: v });
        if (r.sent === undefined)
          return r.code === 'INVALID_ARGUMENT' && (typeof v !== 'number' || expectedPage(p, v) === undefined);
        const n = Number(r.sent);
        const inRange = n >= p.lo && n <= p.hi && (!p.integer || Number.isInteger(n));
        // Numeric strings pass only where the schema has no type; they are read as their number.
        const asked = typeof v === 'string' ? Number(v) : v;
        return r.code === 'OK' && inRange && n === expectedPage(p, asked);
      }),
      { numRuns: 600 },
    );
  });
});
