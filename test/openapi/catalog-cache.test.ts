import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { snapshotCatalog } from '../../src/catalog/snapshot.js';
import type { Catalog } from '../../src/model/catalog.js';
import { bundleIdentity, codeTree, overrideCodeIdentity } from '../../src/openapi/cache.js';
import { loadSpec } from '../../src/openapi/load.js';
import { storeSnapshot } from '../../src/openapi/load-worker.js';
import { loadApi } from '../../src/server/served-api.js';
import { mcpClient } from '../support/gateway.js';
import { jsonOk, minimalSpec, tempTree } from '../support/helpers.js';
import { serveArgs, stdioTransport } from '../support/stdio.js';

// The catalogue snapshot kept beside a spec cache entry (src/openapi/cache.ts, src/catalog/snapshot.ts):
// a start that hits restores it instead of building. To tell a restored catalogue from a built one,
// the tests change the stored snapshot's tool descriptions (a "forged" snapshot with a valid checksum):
// where the forged text shows, the snapshot was used.

let cacheDir: string;
const saved = { on: process.env.MCP_WARDEN_SPEC_CACHE, dir: process.env.MCP_WARDEN_CACHE_DIR };
beforeEach(() => {
  cacheDir = join(tempTree({}), 'cache');
  delete process.env.MCP_WARDEN_SPEC_CACHE;
  process.env.MCP_WARDEN_CACHE_DIR = cacheDir;
});
afterEach(() => {
  process.env.MCP_WARDEN_SPEC_CACHE = saved.on;
  process.env.MCP_WARDEN_CACHE_DIR = saved.dir;
  overrideCodeIdentity(undefined);
});

const files = (suffix: string) =>
  existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith(suffix)) : [];

const FORGED = 'restored from the snapshot';

/** Rewrites the one stored snapshot (header and checksum kept valid) after `change` edits it. */
function rewriteSnapshot(change: (snapshot: { tools: Array<{ tool: Record<string, unknown> }> }) => void) {
  const [name] = files('.catalog');
  expect(name).toBeDefined();
  const file = join(cacheDir, name!);
  const buf = readFileSync(file);
  const len = buf.readUInt32LE(8);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + len)) as { payloadBytes: number; crc: number };
  const snapshot = deserialize(buf.subarray(12 + len));
  change(snapshot);
  const payload = serialize(snapshot);
  header.payloadBytes = payload.byteLength;
  header.crc = crc32(payload);
  const h = Buffer.from(JSON.stringify(header));
  const l = Buffer.alloc(4);
  l.writeUInt32LE(h.byteLength);
  writeFileSync(file, Buffer.concat([buf.subarray(0, 8), l, h, payload]));
  return file;
}

const forge = () =>
  rewriteSnapshot((s) => {
    for (const t of s.tools) t.tool.description = FORGED;
  });

const spec = minimalSpec(
  {
    '/customers/{id}': {
      get: {
        operationId: 'getCustomer',
        summary: 'Get a customer',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: jsonOk({ $ref: '#/components/schemas/Customer' }),
      },
    },
  },
  {
    servers: [{ url: 'http://127.0.0.1:9' }],
    components: {
      schemas: {
        Customer: {
          type: 'object',
          properties: { id: { type: 'string' }, email: { type: 'string', format: 'email' } },
        },
      },
    },
  },
);

/**
 * A spec loaded once through the cache (stored), with its catalogue snapshot stored beside it; `more`:
 * other files beside spec.json (those it refers to).
 */
async function primed(
  doc: Record<string, unknown> = spec,
  more: Record<string, object> = {},
): Promise<string> {
  const file = join(tempTree({ 'spec.json': doc, ...more }), 'spec.json');
  let store: ((b: Uint8Array) => void) | undefined;
  const s = await loadSpec(file, {
    onCatalogMissing: (st) => {
      store = st;
    },
  });
  expect(store).toBeDefined();
  store!(snapshotCatalog(buildCatalog(s), s)!);
  expect(files('.spec')).toHaveLength(1);
  expect(files('.catalog')).toHaveLength(1);
  return file;
}

const descriptions = (c: Catalog) => c.tools.map((t) => t.description);

describe('the catalogue snapshot beside a spec cache entry', () => {
  it('a hit restores it: the same catalogue as a build', async () => {
    const file = await primed();
    const fresh = buildCatalog(await loadSpec(file, { specCache: false }));
    const { catalog } = await loadApi({ spec: file });
    expect(JSON.stringify(catalog)).toBe(JSON.stringify(fresh));
    forge();
    expect(descriptions((await loadApi({ spec: file })).catalog)).toEqual([FORGED]);
  });

  it('is not used by a reload, nor with --no-spec-cache (which reads and writes nothing)', async () => {
    const file = await primed();
    forge();
    expect(descriptions((await loadApi({ spec: file }, { reload: true })).catalog)).not.toContain(FORGED);
    expect(descriptions((await loadApi({ spec: file, load: { specCache: false } })).catalog)).not.toContain(
      FORGED,
    );
    process.env.MCP_WARDEN_CACHE_DIR = join(tempTree({}), 'other');
    const other = process.env.MCP_WARDEN_CACHE_DIR;
    await loadApi({ spec: file, load: { specCache: false } });
    expect(existsSync(other)).toBe(false);
  });

  it('a build of other code neither uses the entry nor its snapshot', async () => {
    const file = await primed();
    forge();
    overrideCodeIdentity('another build');
    const progress: string[] = [];
    const { catalog } = await loadApi({ spec: file, load: { onProgress: (m) => progress.push(m) } });
    expect(descriptions(catalog)).not.toContain(FORGED);
    // A new key: a second entry, stored by this load.
    expect(files('.spec')).toHaveLength(2);
  });

  it('a damaged snapshot is built fresh, without an error, and removed', async () => {
    const file = await primed();
    const name = join(cacheDir, files('.catalog')[0]!);
    const bytes = readFileSync(name);
    bytes[bytes.byteLength - 3]! ^= 0xff;
    writeFileSync(name, bytes);
    const fresh = buildCatalog(await loadSpec(file, { specCache: false }));
    const { catalog } = await loadApi({ spec: file });
    expect(JSON.stringify(catalog)).toBe(JSON.stringify(fresh));
    expect(files('.catalog')).toEqual([]);
  });

  it('a snapshot with a valid checksum that does not decode, or does not fit the spec, is built fresh', async () => {
    const file = await primed();
    const fresh = JSON.stringify(buildCatalog(await loadSpec(file, { specCache: false })));
    rewriteSnapshot((s) => {
      s.tools.length = 0;
    });
    expect(JSON.stringify((await loadApi({ spec: file })).catalog)).toBe(fresh);
    rewriteSnapshot((s) => {
      (s as unknown as { v: number }).v = 999;
    });
    expect(JSON.stringify((await loadApi({ spec: file })).catalog)).toBe(fresh);
  });

  it('a snapshot made for another entry of the same key is not used', async () => {
    const file = await primed();
    forge();
    const name = join(cacheDir, files('.catalog')[0]!);
    const buf = readFileSync(name);
    const len = buf.readUInt32LE(8);
    const header = JSON.parse(buf.toString('utf8', 12, 12 + len));
    header.entry.crc = (header.entry.crc + 1) >>> 0;
    const h = Buffer.from(JSON.stringify(header));
    const l = Buffer.alloc(4);
    l.writeUInt32LE(h.byteLength);
    writeFileSync(name, Buffer.concat([buf.subarray(0, 8), l, h, buf.subarray(12 + len)]));
    expect(descriptions((await loadApi({ spec: file })).catalog)).not.toContain(FORGED);
  });

  it.skipIf(process.getuid?.() === undefined)('a snapshot writable by others is ignored', async () => {
    const file = await primed();
    const name = forge();
    chmodSync(name, 0o666);
    expect(descriptions((await loadApi({ spec: file })).catalog)).not.toContain(FORGED);
    chmodSync(name, 0o600);
    expect(descriptions((await loadApi({ spec: file })).catalog)).toEqual([FORGED]);
  });

  it('a file the spec refers to changed: its entry is replaced, and the old snapshot is not restored', async () => {
    const customer = (props: string[]) => ({
      type: 'object',
      properties: Object.fromEntries(props.map((p) => [p, { type: 'string' }])),
    });
    const split = structuredClone(spec) as { components: { schemas: Record<string, unknown> } };
    split.components.schemas.Customer = { $ref: './customer.json' };
    const file = await primed(split, { 'customer.json': customer(['id']) });
    forge();
    // The root file is the same, so is the key: what tells the two apart is the entry's payload.
    expect(descriptions((await loadApi({ spec: file })).catalog)).toEqual([FORGED]);
    writeFileSync(join(dirname(file), 'customer.json'), JSON.stringify(customer(['id', 'nickname'])));
    // A miss, which stores the new entry; then a hit of that entry, beside the old snapshot still.
    for (let i = 0; i < 2; i++) {
      const catalog = (await loadApi({ spec: file })).catalog;
      expect(descriptions(catalog)).not.toContain(FORGED);
      expect(JSON.stringify(catalog.tools[0]!.outputSchema)).toContain('nickname');
    }
    // Found made for the entry before: removed (the next snapshot work stores one for this entry).
    expect(files('.catalog')).toEqual([]);
  });

  it('the worker stores a re-read spec only beside the entry that re-read made, not the one it was offered', async () => {
    // The prefetch worker's sequence on a hit without a snapshot: the hit's bytes go to the main
    // thread, the worker is offered the entry's store, and reads the spec again to build the
    // catalogue. Edited in between, the re-read is another version: its snapshot beside the first
    // entry would be restored when the first version comes back, with the other version's servers.
    const doc = (url: string) => ({ ...spec, servers: [{ url }] });
    const file = join(tempTree({ 'spec.json': doc('http://127.0.0.1:1') }), 'spec.json');
    await loadSpec(file);
    let offered: ((b: Uint8Array) => void) | undefined;
    await loadSpec(file, {
      onCachedBytes: () => {},
      onCatalogMissing: (st) => {
        offered = st;
      },
    });
    expect(offered).toBeDefined();
    writeFileSync(file, JSON.stringify(doc('http://127.0.0.1:2')));
    await storeSnapshot(file, {}, async (s) => snapshotCatalog(buildCatalog(s), s), offered!);
    writeFileSync(file, JSON.stringify(doc('http://127.0.0.1:1')));
    const { catalog } = await loadApi({ spec: file });
    expect(catalog.servers.map((s) => s.url)).toEqual(['http://127.0.0.1:1']);
    // The re-read version got its own snapshot, beside its own entry.
    writeFileSync(file, JSON.stringify(doc('http://127.0.0.1:2')));
    forge();
    expect(descriptions((await loadApi({ spec: file })).catalog)).toEqual([FORGED]);
  });

  it('goes with its entry when the entry is evicted', async () => {
    const file = await primed();
    const [entry] = files('.spec');
    rmSync(join(cacheDir, entry!));
    // The next store evicts: a snapshot without its entry is removed.
    await loadSpec(join(tempTree({ 'b.json': minimalSpec({}) }), 'b.json'));
    expect(files('.catalog')).toEqual([]);
    expect(file).toBeTruthy();
  });
});

describe('the code identity in the cache key', () => {
  it('unbundled: any module of the tree changed, added or removed is another identity', () => {
    const dir = tempTree({ 'a/x.js': 'export const x = 1;', 'b.ts': 'export {};', 'notes.txt': 'x' });
    const url = pathToFileURL(`${dir}/`);
    const first = codeTree(url);
    expect(codeTree(url)).toBe(first);
    writeFileSync(join(dir, 'notes.txt'), 'not code');
    expect(codeTree(url)).toBe(first);
    writeFileSync(join(dir, 'a/x.js'), 'export const x = 22;');
    expect(codeTree(url)).not.toBe(first);
    const second = codeTree(url);
    writeFileSync(join(dir, 'c.mjs'), '');
    expect(codeTree(url)).not.toBe(second);
  });

  it('bundled: the build id of dist/bundle.json, for the files it lists only', () => {
    const dir = tempTree({});
    mkdirSync(join(dir, 'dist/cli'), { recursive: true });
    writeFileSync(
      join(dir, 'dist/bundle.json'),
      JSON.stringify({ entries: ['dist/cli/main.js'], chunks: ['dist/cli/load-ABCDEFGH.js'], buildId: 'b1' }),
    );
    const at = (f: string) => pathToFileURL(join(dir, f)).href;
    expect(bundleIdentity(at('dist/cli/load-ABCDEFGH.js'))).toBe('bundle:b1');
    expect(bundleIdentity(at('dist/cli/main.js'))).toBe('bundle:b1');
    // tsc's output beside the bundle is not the bundle.
    expect(bundleIdentity(at('dist/openapi/cache.js'))).toBeUndefined();
  });

  it('the built CLI carries a build id that covers every output', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../dist/bundle.json', import.meta.url), 'utf8')) as {
      buildId?: string;
    };
    expect(manifest.buildId).toMatch(/^[0-9a-f]{64}$/);
  });
});

/**
 * Lists the tools of `file` over stdio (`extra` flags), then waits, before closing, until `until`
 * holds: the worker stores the snapshot in the background, and the gateway lives until it has.
 */
async function listOver(file: string, extra: string[] = [], until?: () => boolean) {
  const client = mcpClient();
  const args = serveArgs({
    spec: file,
    baseUrl: 'http://127.0.0.1:9',
    auditFile: join(dirname(file), 'a.jsonl'),
    extra,
  });
  await client.connect(stdioTransport(args, { MCP_WARDEN_CACHE_DIR: cacheDir }).transport);
  try {
    const tools = (await client.listTools()).tools;
    if (until) await expect.poll(until, { timeout: 30_000 }).toBe(true);
    return tools;
  } finally {
    await client.close();
  }
}

/** A spec over 1 MiB: `serve` loads it on the prefetch worker (src/openapi/prefetch.ts). */
function bigSpec(): Record<string, unknown> {
  return { ...spec, info: { title: 'Big', version: '1', description: 'x'.repeat(1100 * 1024) } };
}

describe('serve: the prefetch worker stores the snapshot and carries it to the main thread', () => {
  it('stores it after the first list, restores it on the next start; --no-spec-cache does neither', async () => {
    const dir = tempTree({ 'big.json': bigSpec() });
    const file = join(dir, 'big.json');
    const list = (extra: string[] = [], until?: () => boolean) => listOver(file, extra, until);
    const off = await list(['--no-spec-cache']);
    expect(files('')).toEqual([]);
    const miss = await list([], () => files('.catalog').length === 1);
    expect(files('.spec')).toHaveLength(1);
    const catalogFile = join(cacheDir, files('.catalog')[0]!);
    expect(statSync(catalogFile).mode & 0o777).toBe(0o600);
    const hit = await list();
    expect(hit).toEqual(miss);
    expect(hit).toEqual(off);
    forge();
    expect((await list()).map((t) => t.description)).toEqual([FORGED]);
    expect((await list(['--no-spec-cache'])).map((t) => t.description)).not.toContain(FORGED);
  }, 120_000);
});

describe('serve: a snapshot that passes its checksum but does not restore is replaced', () => {
  const list = (file: string, until?: () => boolean) => listOver(file, [], until);
  const snapshotBytes = () => {
    const [name] = files('.catalog');
    return name === undefined ? undefined : readFileSync(join(cacheDir, name));
  };

  // Small: loaded and restored on the main thread; big: loaded on the prefetch worker.
  for (const [kind, doc] of [
    ['a small spec', spec],
    ['a big spec', bigSpec()],
  ] as const) {
    it(`${kind}: the next snapshot work stores a good one, which the start after restores`, async () => {
      const file = join(tempTree({ 'spec.json': doc }), 'spec.json');
      const built = await list(file, () => files('.catalog').length === 1);
      rewriteSnapshot((s) => {
        s.tools.length = 0;
      });
      const broken = snapshotBytes()!;
      // Built, as it does not fit; and replaced after the list (without the replacement it stays).
      expect(await list(file, () => !(snapshotBytes()?.equals(broken) ?? true))).toEqual(built);
      forge();
      expect((await list(file)).map((t) => t.description)).toEqual([FORGED]);
    }, 120_000);
  }
});

describe('snapshot work of an API set', () => {
  it('runs one worker at a time, and each stores its snapshot', async () => {
    // The built module: its worker is the bundled dist/openapi/load-worker.js (src/ has no .js to start).
    const prefetch = (await import(
      pathToFileURL(join(import.meta.dirname, '../../dist/openapi/prefetch.js')).href
    )) as typeof import('../../src/openapi/prefetch.js');
    const dir = tempTree({ 'a.json': spec, 'b.json': spec, 'c.json': bigSpec() });
    for (const f of ['a.json', 'b.json', 'c.json']) prefetch.storeCatalogSnapshot(join(dir, f));
    expect(prefetch.snapshotWorkersAtOnce()).toBe(0);
    prefetch.startSnapshots();
    await expect.poll(() => files('.catalog').length, { timeout: 60_000 }).toBe(3);
    expect(files('.spec')).toHaveLength(3);
    expect(prefetch.snapshotWorkersAtOnce()).toBe(1);
  }, 120_000);
});
