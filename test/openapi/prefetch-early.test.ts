import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonOk, minimalSpec, tempTree } from '../support/helpers.js';
import { waitFor } from '../support/wait.js';

// The built modules: the worker thread runs dist/openapi/load-worker.js (the bundle's entry), which
// the source tree does not have; loadSpec and the prefetch must be one module instance. Imported by
// a computed path (typed as the sources): CI type-checks before it builds.
const dist = new URL('../../dist/openapi/', import.meta.url).href;
const { loadSpec } = (await import(`${dist}load.js`)) as typeof import('../../src/openapi/load.js');
const { PREFETCH_MIN_BYTES, prefetchSpec, whenEarlySpec, whileLoadingLong } = (await import(
  `${dist}prefetch.js`
)) as typeof import('../../src/openapi/prefetch.js');

// The prefetch worker posts the spec before validating it (src/openapi/prefetch.ts): the main thread
// is handed that spec at once, and it is the very object the load then returns when valid.

const big = (paths: Record<string, unknown>) =>
  minimalSpec(paths, { info: { title: 'T', version: '1', description: 'x'.repeat(PREFETCH_MIN_BYTES) } });

describe('the spec a prefetch worker posts before validating it', () => {
  it('is handed over first, and is what the load returns', async () => {
    const file = join(
      tempTree({ 'big.json': big({ '/a': { get: { operationId: 'a', responses: jsonOk() } } }) }),
      'big.json',
    );
    prefetchSpec(file);
    const events: string[] = [];
    let early: unknown;
    whenEarlySpec(file, {}, (s) => {
      events.push('early');
      early = s;
    });
    const spec = await loadSpec(file);
    events.push('loaded');
    expect(events).toEqual(['early', 'loaded']);
    expect(spec).toBe(early);
  });

  it('is handed over for an invalid spec too, and the load then fails with the loader’s error', async () => {
    // Valid JSON, invalid against the rules (a path template without its parameter).
    const file = join(
      tempTree({ 'bad.json': big({ '/a/{id}': { get: { operationId: 'a', responses: jsonOk() } } }) }),
      'bad.json',
    );
    prefetchSpec(file);
    let early: unknown;
    whenEarlySpec(file, {}, (s) => {
      early = s;
    });
    await expect(loadSpec(file)).rejects.toMatchObject({ code: 'SPEC_INVALID' });
    expect(early).toBeDefined();
  });

  it('nothing is handed for another source, nor without a prefetch', async () => {
    const dir = tempTree({ 'one.json': big({}), 'two.json': big({}) });
    prefetchSpec(join(dir, 'one.json'));
    let called = false;
    whenEarlySpec(join(dir, 'two.json'), {}, () => {
      called = true;
    });
    await loadSpec(join(dir, 'one.json'));
    expect(called).toBe(false);
  });
});

// While the worker has a long load ahead — a YAML parse, a Swagger 2.0 conversion — of a spec no
// cache entry serves, the main thread is told it has a while to wait (the server loads the guard
// stages' modules then: src/server/serve.ts). Not for a JSON OpenAPI 3 spec: it comes soon.
describe('the main thread told that the prefetch worker has a long load ahead', () => {
  const saved = { on: process.env.MCP_WARDEN_SPEC_CACHE, dir: process.env.MCP_WARDEN_CACHE_DIR };
  afterEach(() => {
    for (const [k, v] of [
      ['MCP_WARDEN_SPEC_CACHE', saved.on],
      ['MCP_WARDEN_CACHE_DIR', saved.dir],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const description = 'x'.repeat(PREFETCH_MIN_BYTES);
  const yamlFile = () =>
    join(
      tempTree({
        'big.yaml': `openapi: 3.0.3\ninfo:\n  title: T\n  version: "1"\n  description: ${description}\npaths:\n  /a:\n    get:\n      operationId: a\n      responses:\n        "200":\n          description: ok\n`,
      }),
      'big.yaml',
    );
  const swagger2File = () =>
    join(
      tempTree({
        'big.json': {
          swagger: '2.0',
          info: { title: 'T', version: '1', description },
          paths: { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok' } } } } },
        },
      }),
      'big.json',
    );
  const jsonFile = () =>
    join(
      tempTree({ 'big.json': big({ '/a': { get: { operationId: 'a', responses: jsonOk() } } }) }),
      'big.json',
    );

  /** What the main thread is told, in order, while the worker prefetches `file`. */
  const told = async (file: string) => {
    prefetchSpec(file);
    const events: string[] = [];
    whileLoadingLong(file, {}, () => events.push('long'));
    whenEarlySpec(file, {}, () => events.push('early'));
    await loadSpec(file);
    events.push('loaded');
    return events;
  };

  it('is told once, before the spec comes, for a YAML spec and a Swagger 2.0 one', async () => {
    expect(await told(yamlFile())).toEqual(['long', 'early', 'loaded']);
    expect(await told(swagger2File())).toEqual(['long', 'early', 'loaded']);
  });

  it('is not told for a JSON OpenAPI 3 spec, which comes soon after its parse', async () => {
    expect(await told(jsonFile())).toEqual(['early', 'loaded']);
  });

  it('is not told when the cache serves the spec, nor for another source, nor without a prefetch', async () => {
    delete process.env.MCP_WARDEN_SPEC_CACHE;
    process.env.MCP_WARDEN_CACHE_DIR = join(tempTree({}), 'cache');
    const file = yamlFile();
    const other = yamlFile();
    const heard: string[] = [];
    // No prefetch of this file under way (whatever an earlier test left is another file's).
    whileLoadingLong(file, {}, () => heard.push('no prefetch'));
    await loadSpec(file);
    expect(heard).toEqual([]);
    // Stored by a first prefetch (the worker writes its entry, under its own code's key, after the
    // hand-over).
    const cache = process.env.MCP_WARDEN_CACHE_DIR;
    const entries = () => readdirSync(cache).filter((f) => f.endsWith('.spec')).length;
    const before = entries();
    prefetchSpec(file);
    await loadSpec(file);
    await waitFor(() => entries() > before, { what: 'the worker’s cache entry' });
    expect(heard).toEqual([]);
    prefetchSpec(file);
    whileLoadingLong(file, {}, () => heard.push('cached'));
    whileLoadingLong(other, {}, () => heard.push('other'));
    await loadSpec(file);
    expect(heard).toEqual([]);
    // A control: the same file after the cache was cleared is loaded again, and that is told.
    process.env.MCP_WARDEN_CACHE_DIR = join(tempTree({}), 'cache');
    prefetchSpec(file);
    whileLoadingLong(file, {}, () => heard.push('loaded again'));
    await loadSpec(file);
    expect(heard).toEqual(['loaded again']);
  });
});
