import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { TOOL_NAME } from '../../src/catalog/names.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import { buildView } from '../../src/control/view.js';
import { isWardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { createBuildRequest } from '../../src/pipeline/build-request.js';
import { DEFAULT_POLICY, evaluatePolicy } from '../../src/policy/evaluate.js';
import { parseBaseUrl } from '../../src/upstream/base-url.js';
import { callPipeline, startTestGateway, type TestGateway } from '../support/gateway.js';
import { catalogOf, minimalSpec, startUpstream, tempTree } from '../support/helpers.js';
import { contextFor } from '../support/pipeline.js';

/**
 * The spec is input too: an attacker who can change it (a compromised URL, a poisoned repository)
 * must not be able to stop the gateway, exhaust it, or make an argument choose where a request goes.
 */

function bombSpec() {
  const schemas: Record<string, unknown> = {};
  // Each level refers to the next twice: expanded inline this would be 2^40 nodes.
  for (let i = 0; i < 40; i++)
    schemas[`L${i}`] =
      i === 39
        ? { type: 'string' }
        : {
            type: 'object',
            properties: {
              a: { $ref: `#/components/schemas/L${i + 1}` },
              b: { $ref: `#/components/schemas/L${i + 1}` },
            },
          };
  let deep: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < 50; i++) deep = { type: 'object', properties: { x: deep } };
  schemas.Deep = deep;
  schemas.Wide = {
    anyOf: Array.from({ length: 3000 }, (_, i) => ({
      type: 'object',
      properties: { [`k${i}`]: { type: 'integer' } },
      required: [`k${i}`],
    })),
  };
  schemas.BigEnum = { type: 'string', enum: Array.from({ length: 50_000 }, (_, i) => `v${i}`) };
  const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
  return {
    openapi: '3.0.3',
    info: { title: 'Bomb', version: '1' },
    paths: {
      '/x': {
        post: {
          operationId: 'bomb',
          requestBody: json({
            type: 'object',
            properties: {
              chain: { $ref: '#/components/schemas/L0' },
              deep: { $ref: '#/components/schemas/Deep' },
              wide: { $ref: '#/components/schemas/Wide' },
              e: { $ref: '#/components/schemas/BigEnum' },
            },
          }),
          responses: { '200': { description: 'ok', ...json({ $ref: '#/components/schemas/L0' }) } },
        },
      },
    },
    components: { schemas },
  };
}

describe('schema bombs in a spec', () => {
  it('start, list and validate in bounded size, with errors that stay short', async () => {
    let upstreamCalls = 0;
    const up = await startUpstream((_req, res) => {
      upstreamCalls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":{"b":{}}}');
    });
    let fx: TestGateway | undefined;
    try {
      fx = await startTestGateway({
        spec: bombSpec(),
        policy: 'version: 1\nmode: read-write\nrules:\n  - match: { name: bomb }\n    enabled: true\n',
        baseUrl: up.origin,
        logLevel: 'fatal',
      });
      const { gw } = fx;
      const listed = gw.controller.view().listFor(['tools:read', 'tools:write']);
      expect(listed.map((t) => t.name)).toEqual(['bomb']);
      // The 50,000-value enum is not published (the gateway checks it); the outline is bounded.
      const size = JSON.stringify(listed).length;
      expect(size).toBeLessThan(400_000);
      expect(JSON.stringify(listed)).toContain('One of 50000 values');
      const call = (body: unknown) => callPipeline(gw, 'bomb', { body }, 'p', ['tools:read', 'tools:write']);
      const text = (r: { content: Array<{ text?: string }> }) => r.content.map((c) => c.text).join('\n');
      const before = upstreamCalls;
      for (const bad of [
        { wide: { nope: 1 } },
        { e: 'zzz' },
        { chain: { a: { a: { a: 5 } } } },
        { deep: { x: { x: 7 } } },
      ]) {
        const r = await call(bad);
        expect(text(r)).toMatch(/^\[INVALID_ARGUMENT\]/);
        expect(text(r).length).toBeLessThan(600);
      }
      expect(upstreamCalls).toBe(before);
      expect((await call({ e: 'v49999', wide: { k2999: 1 } })).isError).toBeFalsy();
      expect(upstreamCalls).toBe(before + 1);
    } finally {
      await fx?.close();
      await up.close();
    }
  }, 60_000);
});

/** Random, often broken, OpenAPI documents: odd names, odd paths, refs to nowhere, recursive refs. */
const word = fc.oneof(
  fc.constantFrom('a', 'items', 'ü', '..', '.', '%2e', '{id}', '{x}', 'a b', '?q', '#h', '\\', ''),
  fc.string({ maxLength: 6 }),
);
const schemaArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  s: fc.oneof(
    { depthSize: 'small' },
    fc.record({
      type: fc.constantFrom('string', 'integer', 'number', 'boolean', 'object', 'array', 'null', 'weird'),
    }),
    fc.record({
      $ref: fc.constantFrom(
        '#/components/schemas/A',
        '#/components/schemas/B',
        '#/nowhere',
        'other.json#/x',
        'http://evil.example/x',
      ),
    }),
    fc.record({
      type: fc.constant('string'),
      pattern: fc.constantFrom('^(a+)+$', '(?=x)', '[', '^\\d+$', '(a|a)*'),
    }),
    fc.record({ type: fc.constant('object'), properties: fc.dictionary(word, tie('s'), { maxKeys: 3 }) }),
    fc.record({ type: fc.constant('array'), items: tie('s') }),
    fc.record({ anyOf: fc.array(tie('s'), { maxLength: 3 }) }),
    fc.anything({ maxDepth: 2 }),
  ),
})).s;
const paramArb = fc.record({
  name: word,
  in: fc.constantFrom('path', 'query', 'header', 'cookie', 'body', 'nowhere'),
  required: fc.boolean(),
  schema: schemaArb,
});
const opArb = fc.record(
  {
    operationId: fc.oneof(word, fc.string({ maxLength: 80 })),
    parameters: fc.array(paramArb, { maxLength: 4 }),
    responses: fc.constant({
      '200': {
        description: 'ok',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/A' } } },
      },
    }),
  },
  { requiredKeys: ['responses'] },
);
const specArb = fc.record({
  openapi: fc.constantFrom('3.0.3', '3.1.0', '2.0', 'x'),
  info: fc.constant({ title: 'Fuzz', version: '1' }),
  servers: fc.array(
    fc.record({
      url: fc.constantFrom(
        'https://api.example.com/v1',
        '{scheme}://{host}/x',
        'file:///etc',
        '/rel',
        'http://169.254.169.254/',
      ),
    }),
    { maxLength: 2 },
  ),
  paths: fc.dictionary(
    fc.array(word, { minLength: 1, maxLength: 4 }).map((ws) => `/${ws.join('/')}`),
    fc.dictionary(fc.constantFrom('get', 'post', 'delete', 'put', 'trace', 'x-get'), opArb, { maxKeys: 2 }),
    { maxKeys: 4 },
  ),
  components: fc.record({
    schemas: fc.record({ A: schemaArb, B: fc.record({ $ref: fc.constant('#/components/schemas/A') }) }),
  }),
});

describe('fuzzing specs (property)', () => {
  it('a spec either loads or is refused with a SPEC_* error; every tool it yields is safe to serve', async () => {
    const target = parseBaseUrl('https://api.example.com/base', 'test');
    await fc.assert(
      fc.asyncProperty(
        specArb,
        fc.array(fc.string({ maxLength: 12 }), { minLength: 4, maxLength: 4 }),
        async (spec, values) => {
          const dir = tempTree({ 'spec.json': spec });
          let catalog: ReturnType<typeof buildCatalog>;
          try {
            catalog = buildCatalog(await loadSpec(join(dir, 'spec.json')));
          } catch (e) {
            expect(isWardenError(e), String((e as Error)?.stack ?? e)).toBe(true);
            expect((e as { code: string }).code).toMatch(/^SPEC_|^CONFIG_/);
            return;
          }
          const compiler = createSchemaCompiler(catalog.formats);
          const view = buildView(
            evaluatePolicy(catalog, { doc: DEFAULT_POLICY }),
            new Map(),
            { toggles: new Map(), kill: 'none' },
            1,
          );
          expect(() =>
            JSON.stringify(view.listFor(['tools:read', 'tools:write', 'tools:delete', 'tools:admin'])),
          ).not.toThrow();
          const targets = new Map(catalog.tools.map((t) => [t, target]));
          const build = createBuildRequest({ targets });
          for (const tool of catalog.tools) {
            expect(tool.name).toMatch(TOOL_NAME);
            compiler.compile(tool.inputSchema);
            // Whatever the path arguments, the request stays on the target and on the template.
            const pathParams = tool.bindings.filter((b) => b.in === 'path');
            const args = Object.fromEntries(pathParams.map((b, i) => [b.arg, values[i % values.length]!]));
            const ctx = contextFor({ name: tool.name, arguments: args });
            ctx.tool = tool;
            ctx.args = args;
            try {
              build(ctx);
            } catch (e) {
              expect(isWardenError(e)).toBe(true);
              continue;
            }
            const url = new URL(`${ctx.request!.origin}${ctx.request!.path}`);
            expect(url.origin).toBe('https://api.example.com');
            const templateSegments = `/base${tool.source.path}`.split('/').length;
            expect(url.pathname.split('/').length).toBe(templateSegments);
            expect(url.pathname.startsWith('/base/') || url.pathname === '/base').toBe(true);
          }
        },
      ),
      { numRuns: Number(process.env.FC_RUNS ?? 150) },
    );
  }, 120_000);
});

describe('path text from the spec (regressions found by the fuzzer)', () => {
  const build = async (path: string, args: Record<string, unknown>) => {
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const catalog = await catalogOf(
      minimalSpec({
        [path]: {
          get: { operationId: 'op', parameters: params, responses: { '200': { description: 'ok' } } },
        },
      }),
    );
    const tool = catalog.tools[0]!;
    const run = createBuildRequest({
      targets: new Map([[tool, parseBaseUrl('https://api.example.com/base', 't')]]),
    });
    const ctx = contextFor({ name: 'op', arguments: args });
    ctx.tool = tool;
    ctx.args = args;
    run(ctx);
    return ctx.request!.path;
  };

  it('encodes a ? or # or space in a template instead of letting it end the path', async () => {
    expect(await build('/files/#frag/{id}', { id: 'x' })).toBe('/base/files/%23frag/x');
    expect(await build('/a b/?q/{id}', { id: 'x' })).toBe('/base/a%20b/%3Fq/x');
    expect(await build('/caf%C3%A9/{id}', { id: 'x' })).toBe('/base/caf%C3%A9/x');
  });

  it('treats a $ref that only refers back to itself as any value, instead of overflowing the stack', async () => {
    // Found by the spec fuzzer in CI: `A: { $ref: A }` on a parameter crashed the validator's compile.
    const catalog = await catalogOf(
      minimalSpec(
        {
          '/': {
            get: {
              operationId: 'op',
              parameters: [{ name: 'a', in: 'query', schema: { $ref: '#/components/schemas/A' } }],
              responses: {
                '200': {
                  description: 'ok',
                  content: { 'application/json': { schema: { $ref: '#/components/schemas/B' } } },
                },
              },
            },
          },
        },
        {
          components: {
            schemas: {
              A: { $ref: '#/components/schemas/A' },
              B: { $ref: '#/components/schemas/C' },
              C: { $ref: '#/components/schemas/B' },
            },
          },
        },
      ),
    );
    const tool = catalog.tools[0]!;
    const validate = createSchemaCompiler(catalog.formats).compile(tool.inputSchema);
    expect(validate({ a: 'anything' })).toBe(true);
    createSchemaCompiler(catalog.formats).compile(tool.outputSchema!);
    expect(catalog.warnings.join('\n')).toMatch(/only ever refers back to itself/);
  });

  it('refuses a template whose own text is a dot segment, encoded or not', async () => {
    for (const p of ['/%2e%2e/admin/{id}', '/%2E/{id}'])
      await expect(build(p, { id: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
