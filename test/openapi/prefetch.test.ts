import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCode, formatError, WardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { PREFETCH_MIN_BYTES, worthPrefetching } from '../../src/openapi/prefetch.js';
import { mcpClient } from '../support/gateway.js';
import { jsonOk, minimalSpec, serveFiles, tempTree } from '../support/helpers.js';
import { CLI } from '../support/paths.js';
import { cliEnv, runCli, serveArgs, stdioTransport } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

// `serve --spec` loads the spec on a worker thread while the main thread loads the gateway's modules
// (src/openapi/prefetch.ts). The gateway must serve the same thing, load the spec once, and report a
// spec that fails exactly as the loader does, at start-up.

const spec = minimalSpec({
  '/items': { get: { operationId: 'listItems', summary: 'List items', responses: jsonOk() } },
});

async function listOver(args: string[]): Promise<string[]> {
  const client = mcpClient();
  await client.connect(stdioTransport(args).transport);
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await client.close();
  }
}

/**
 * The loader's own error for `spec` (in process), and what `serve --spec` of the built CLI prints
 * and exits with for it: a refused start must say exactly what the loader says.
 */
async function loadAndServe(spec: string, dir: string) {
  let expected: WardenError | undefined;
  try {
    await loadSpec(spec);
  } catch (e) {
    expected = e as WardenError;
  }
  expect(expected).toBeInstanceOf(WardenError);
  const r = runCli(
    [
      'serve',
      '--spec',
      spec,
      '--base-url',
      'http://127.0.0.1:9',
      '--audit-file',
      join(dir, 'a.jsonl'),
      '--port',
      '0',
    ],
    {},
  );
  return { expected, r };
}

describe('serve --spec: the spec loaded off the main thread', () => {
  it('only where it pays: a URL, or a file (YAML or JSON) of a megabyte or more', () => {
    const pad = 'x'.repeat(PREFETCH_MIN_BYTES);
    const dir = tempTree({
      'small.yaml': 'openapi: 3.0.3\npaths:\n  /a:\n    $ref: "#/x-paths/a"\n',
      'small.json': '{"openapi": "3.0.3", "paths": {"/a": {"$ref": "#/x-paths/a"}}}',
      'swagger.yaml': 'swagger: "2.0"\n',
      'swagger.json': '{"info": {}, "swagger": "2.0"}',
      'external.yaml': 'openapi: 3.0.3\npaths:\n  /a:\n    $ref: paths/a.yaml\n',
      'external.json': '{"openapi": "3.0.3", "paths": {"/a": {"$ref": "paths.json#/a"}}}',
      'big.yaml': `openapi: 3.0.3\ninfo: {title: T, version: "1", description: ${pad}}\n`,
      'big.json': `\ufeff  {"openapi": "3.0.3", "info": {"title": "T", "version": "1", "description": "${pad}"}}`,
    });
    expect(worthPrefetching('https://api.example.com/openapi.yaml')).toBe(true);
    expect(worthPrefetching(join(dir, 'big.yaml'))).toBe(true);
    expect(worthPrefetching(join(dir, 'small.yaml'))).toBe(false);
    // JSON parses fast, but the checks after the parse cost as much as for YAML.
    expect(worthPrefetching(join(dir, 'big.json'))).toBe(true);
    expect(worthPrefetching(join(dir, 'small.json'))).toBe(false);
    expect(worthPrefetching(dir)).toBe(false);
    // Small, even when it needs the Swagger 2.0 converter or the $ref bundler (measured: no gain).
    for (const f of ['swagger.yaml', 'swagger.json', 'external.yaml', 'external.json'])
      expect(worthPrefetching(join(dir, f)), f).toBe(false);
    expect(worthPrefetching(join(dir, 'missing.yaml'))).toBe(false);
    expect(worthPrefetching(`file://${join(dir, 'big.yaml')}`)).toBe(false);
  });

  it('the worker runs its own bundle, without the MCP server', () => {
    // The worker's entry runs its bundle (scripts/bundle-cli.mjs), in which the catalogue's modules
    // (for the snapshot) are evaluated only when imported; the MCP server is not in it at all.
    const entry = readFileSync(join(dirname(CLI), '../openapi/load-worker.js'), 'utf8');
    expect(entry).toContain('load-worker.bundle.cjs');
    const bundle = readFileSync(join(dirname(CLI), '../openapi/load-worker.bundle.cjs'), 'utf8');
    expect(bundle).not.toMatch(/\bMcpServer\b/);
    expect(bundle).not.toContain('node_modules/undici/');
    // About 1.6 MB (the loader, js-yaml, the converter, the catalogue); the CLI's is 4.6 MB.
    expect(bundle.length).toBeLessThan(2_500_000);
  });

  it('fetches a URL spec once and serves its tools', async () => {
    const files = await serveFiles({ '/openapi.json': spec });
    try {
      const dir = tempTree({});
      const args = serveArgs({
        spec: `${files.url}/openapi.json`,
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
      });
      expect(await listOver(args)).toEqual(['listItems']);
      // One load, not the worker's and then the main thread's.
      expect(files.requests).toEqual(['/openapi.json']);
    } finally {
      await files.close();
    }
  });

  it('serves a big JSON spec and a big Swagger 2.0 spec loaded on the worker as the loader loads them', async () => {
    const dir = tempTree({
      'big.json': minimalSpec(
        { '/items': { get: { operationId: 'listItems', summary: 'List items', responses: jsonOk() } } },
        { info: { title: 'T', version: '1', description: 'x'.repeat(PREFETCH_MIN_BYTES) } },
      ),
      'swagger.json': {
        swagger: '2.0',
        info: { title: 'T', version: '1', description: 'x'.repeat(PREFETCH_MIN_BYTES) },
        paths: {
          '/pets/{id}': {
            get: {
              operationId: 'getPet',
              parameters: [{ name: 'id', in: 'path', required: true, type: 'string' }],
              responses: { '200': { description: 'ok', schema: { type: 'object' } } },
            },
          },
        },
      },
    });
    for (const [file, tools] of [
      ['big.json', ['listItems']],
      ['swagger.json', ['getPet']],
    ] as const) {
      const spec = join(dir, file);
      expect(worthPrefetching(spec)).toBe(true);
      expect((await loadSpec(spec)).doc.paths).toBeDefined();
      const args = serveArgs({ spec, baseUrl: 'http://127.0.0.1:9', auditFile: join(dir, `${file}.jsonl`) });
      expect(await listOver(args)).toEqual(tools);
    }
  });

  it('a big spec’s catalogue is begun while the worker validates it, at a cold start, and lists as one built after the load', async () => {
    // 200 operations over shared definitions, one of them warning (a pattern a linear-time engine
    // refuses), padded over the prefetch threshold.
    const paths: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++)
      paths[`/things${i}/{id}`] = {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          operationId: `getThing${i}`,
          summary: `Get thing ${i}`,
          responses: jsonOk({ $ref: `#/components/schemas/${i % 3 ? 'Thing' : 'Other'}` }),
        },
        post: {
          operationId: `setThing${i}`,
          requestBody: {
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
          },
          responses: jsonOk({ type: 'object', properties: { ok: { type: 'boolean' } } }),
        },
      };
    const dir = tempTree({
      'big.json': minimalSpec(paths, {
        info: { title: 'T', version: '1', description: 'x'.repeat(PREFETCH_MIN_BYTES) },
        components: {
          schemas: {
            Thing: {
              type: 'object',
              properties: {
                id: { type: 'string', pattern: '(?=a)a' },
                other: { $ref: '#/components/schemas/Other' },
              },
            },
            Other: { type: 'object', properties: { email: { type: 'string', format: 'email' } } },
          },
        },
      }),
    });
    const env = { MCP_WARDEN_CACHE_DIR: join(dir, 'cache') };
    const start = async () => {
      const args = serveArgs({
        spec: join(dir, 'big.json'),
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
        logLevel: 'debug',
      });
      const { transport, stderr } = stdioTransport(args, env);
      const client = mcpClient();
      await client.connect(transport);
      try {
        const tools = (await client.listTools()).tools;
        // Logged before the list is answered, but stderr is read apart from stdout: waited for.
        const built = await waitFor(
          () => /"msg":"catalogue ready"/.test(stderr()) && /"built":"([a-z ]+)"/.exec(stderr())?.[1],
          {
            what: 'the "catalogue ready" line',
          },
        );
        // The loader's steps, with their times, at debug before it.
        const steps = stderr()
          .split('\n')
          .filter((l) => l.includes('"level":20') && / in \d+ ms"/.test(l))
          .map((l) => (JSON.parse(l) as { msg: string }).msg);
        return { tools, built, steps };
      } finally {
        await client.close();
      }
    };
    // Begun early unless the worker had validated the spec before this thread asked for it (then it
    // is built after the load: test/openapi/prefetch-early has the hand-over without that race).
    const cold = await start();
    expect(['early', 'here']).toContain(cold.built);
    expect(cold.steps).toEqual([
      expect.stringMatching(/^parsed \S*big\.json \(\d+ KiB\) in \d+ ms$/),
      expect.stringMatching(/^validated 3\.\d\.\d+ in \d+ ms$/),
    ]);
    const warm = await start();
    expect(['restored', 'here']).toContain(warm.built);
    expect(warm.steps).toEqual([
      expect.stringMatching(/^loaded \S*big\.json \(\d+ KiB\) from cache in \d+ ms$/),
    ]);
    expect(cold.tools.length).toBeGreaterThan(100);
    expect(JSON.stringify(cold.tools)).toBe(JSON.stringify(warm.tools));
  }, 60_000);

  it('--remote-refs and --ref-root, in either spelling, still use the one load', async () => {
    const files = await serveFiles({ '/openapi.json': spec });
    try {
      const dir = tempTree({});
      const args = serveArgs({
        spec: `${files.url}/openapi.json`,
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
        extra: ['--remote-refs=none', '--ref-root', dir],
      });
      expect(await listOver(args)).toEqual(['listItems']);
      expect(files.requests).toEqual(['/openapi.json']);
    } finally {
      await files.close();
    }
  });

  it('a spec that fails to load stops the start with the loader’s own error (code, file, line)', async () => {
    const dir = tempTree({});
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths:\n  /a: [unclosed\n');
    const { expected, r } = await loadAndServe(bad, dir);
    expect(expected!.code).toBe('SPEC_PARSE');
    expect(r.code).toBe(exitCode('SPEC_PARSE'));
    expect(r.stderr).toContain(formatError(expected!));
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  /** Each big invalid spec goes to the worker, and serve stops with exactly the loader's own error. */
  async function expectRefusedAsLoaderRefuses(dir: string, files: string[]) {
    for (const file of files) {
      const bad = join(dir, file);
      expect(worthPrefetching(bad)).toBe(true);
      const { expected, r } = await loadAndServe(bad, dir);
      expect(expected!.code, file).toBe('SPEC_INVALID');
      expect(r.code, file).toBe(exitCode('SPEC_INVALID'));
      expect(r.stderr, file).toContain(formatError(expected!));
    }
  }

  it('a big OpenAPI 3 spec the worker sent before validating, then found invalid, stops the start with the loader’s own error', async () => {
    const description = 'x'.repeat(PREFETCH_MIN_BYTES);
    const dir = tempTree({
      // Not valid against the meta-schema (a response that is not an object)…
      'meta.json': minimalSpec(
        { '/items': { get: { operationId: 'listItems', responses: { '200': 'ok' } } } },
        { info: { title: 'T', version: '1', description } },
      ),
      // …and valid against it, but breaking a rule only the prose states (operationIds unique).
      'rule.yaml': `openapi: 3.0.3\ninfo: {title: T, version: "1", description: ${description}}\npaths:\n  /a:\n    get: {operationId: same, responses: {"200": {description: ok}}}\n  /b:\n    get: {operationId: same, responses: {"200": {description: ok}}}\n`,
      // Big enough that the main thread had begun its catalogue (src/catalog/early.ts) when the
      // worker's validation found its last path's template without a parameter.
      'many.json': minimalSpec(
        Object.fromEntries(
          Array.from({ length: 200 }, (_, i) => [
            i === 199 ? '/things/{id}' : `/things${i}`,
            { get: { operationId: `get${i}`, responses: jsonOk() } },
          ]),
        ),
        { info: { title: 'T', version: '1', description } },
      ),
    });
    await expectRefusedAsLoaderRefuses(dir, ['meta.json', 'rule.yaml', 'many.json']);
  });

  it('a big Swagger 2.0 spec the worker found invalid stops the start with the loader’s own error', async () => {
    const description = 'x'.repeat(PREFETCH_MIN_BYTES);
    const swagger = (paths: Record<string, unknown>) => ({
      swagger: '2.0',
      info: { title: 'T', version: '1', description },
      paths,
    });
    const ok = { '200': { description: 'ok' } };
    const dir = tempTree({
      // Not valid against the meta-schema, and breaking a rule only the prose states.
      'meta.json': swagger({ '/items': { get: { operationId: 'listItems', responses: { '200': 'ok' } } } }),
      'rule.json': swagger({
        '/a': { get: { operationId: 'same', responses: ok } },
        '/b': { get: { operationId: 'same', responses: ok } },
      }),
    });
    await expectRefusedAsLoaderRefuses(dir, ['meta.json', 'rule.json']);
  });

  it('a big, valid Swagger 2.0 spec the converter refuses stops the start with the loader’s own error', async () => {
    // The worker converts a big 2.0 spec before validating it (src/openapi/load.ts); when the
    // converter refuses it (a YAML alias: shared objects), the start fails as the loader fails.
    const description = 'x'.repeat(PREFETCH_MIN_BYTES);
    const dir = tempTree({
      'alias.yaml': `swagger: "2.0"\ninfo: {title: T, version: "1", description: ${description}}\npaths:\n  /a:\n    get: {operationId: a, responses: &ok {"200": {description: ok}}}\n  /b:\n    get: {operationId: b, responses: *ok}\n`,
    });
    await expectRefusedAsLoaderRefuses(dir, ['alias.yaml']);
  });

  it('a spec URL that fails is fetched again by the main thread, which reports it', async () => {
    const files = await serveFiles({ '/openapi.json': '{"openapi": "3.0.3", "info": ' });
    try {
      const dir = tempTree({});
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            CLI,
            'serve',
            '--spec',
            `${files.url}/openapi.json`,
            '--base-url',
            'http://127.0.0.1:9',
            '--audit-file',
            join(dir, 'a.jsonl'),
            '--port',
            '0',
          ],
          { env: cliEnv() },
          (err, _out, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      expect(r.code).toBe(exitCode('SPEC_PARSE'));
      expect(r.stderr).toMatch(/SPEC_PARSE.*invalid JSON/);
      expect(files.requests).toEqual(['/openapi.json', '/openapi.json']);
    } finally {
      await files.close();
    }
  });
});
