import {
  chmodSync,
  chownSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors/index.js';
import { specCacheDir } from '../../src/lib/state-dir.js';
import {
  isLocalFileSystem,
  MAX_ENTRIES,
  openSpecCache,
  overrideLocalFs,
  overrideRacyWindow,
} from '../../src/openapi/cache.js';
import { type LoadedSpec, type LoadOptions, loadSpec } from '../../src/openapi/load.js';
import { isDamagedCopy } from '../../src/openapi/spec-transfer.js';
import { loadApi } from '../../src/server/served-api.js';
import { mcpClient } from '../support/gateway.js';
import { jsonOk, minimalSpec, serveFiles, tempTree } from '../support/helpers.js';
import { runCli, serveArgs, stdioTransport } from '../support/stdio.js';

// The cache of loaded specs (src/openapi/cache.ts). vitest.config.ts turns it off for every other
// test; here it is on, in a fresh directory per test.

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
});

const entries = (dir = cacheDir) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.spec')) : [];

/** A spec over 1 MiB, so that the loader writes its progress lines (the parse's among them). */
function bigSpec(extra = ''): string {
  return JSON.stringify(
    minimalSpec(
      {
        '/items': { get: { operationId: 'listItems', responses: jsonOk() } },
        '/items/{id}': {
          get: {
            operationId: 'getItem',
            parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
            responses: jsonOk({ $ref: '#/components/schemas/Item' }),
          },
        },
      },
      {
        info: { title: 'Big', version: '1', description: `${'x'.repeat(1100 * 1024)}${extra}` },
        components: { schemas: { Item: { type: 'object', properties: { id: { type: 'string' } } } } },
      },
    ),
  );
}

async function load(file: string, opts: LoadOptions = {}): Promise<{ spec: LoadedSpec; progress: string[] }> {
  const progress: string[] = [];
  const spec = await loadSpec(file, { ...opts, onProgress: (m) => progress.push(m) });
  return { spec, progress };
}

async function loadError(file: string, opts: LoadOptions = {}): Promise<WardenError> {
  try {
    await loadSpec(file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    return e as WardenError;
  }
  throw new Error('expected the load to fail');
}

/**
 * Breaks the stored JSON of the document part that starts with `marker` (a byte changed, lengths
 * kept) and writes the checksum again: an entry that passes every check of its frame, yet one of
 * whose parts does not parse when it is first read.
 */
function damagePart(entry: string, marker: string): void {
  const buf = readFileSync(entry);
  const magic = 8;
  const headerBytes = buf.readUInt32LE(magic);
  const header = JSON.parse(buf.toString('utf8', magic + 4, magic + 4 + headerBytes)) as { crc: number };
  const payload = Buffer.from(buf.subarray(magic + 4 + headerBytes));
  const at = payload.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  payload[at + 1] = 0x7b; // '{"' becomes '{{': not JSON
  header.crc = crc32(payload);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length);
  writeFileSync(entry, Buffer.concat([buf.subarray(0, magic), len, h, payload]), { mode: 0o600 });
}

/** A root file with a `$ref` to a schema in another file, beside it. */
function multiFile(schema: object = { type: 'object', properties: { id: { type: 'string' } } }) {
  const dir = tempTree({
    'api/root.yaml': JSON.stringify(
      minimalSpec({
        '/items': { get: { operationId: 'listItems', responses: jsonOk({ $ref: 'item.yaml' }) } },
      }),
    ),
    'api/item.yaml': JSON.stringify(schema),
    'api/other.yaml': JSON.stringify({ type: 'string' }),
  });
  return { dir, root: join(dir, 'api/root.yaml'), item: join(dir, 'api/item.yaml') };
}

/** The `files` of the one entry's header: [path, real path, size, SHA-256, fingerprint?] each. */
function entryFiles(): unknown[][] {
  const buf = readFileSync(join(cacheDir, entries()[0]!));
  const n = buf.readUInt32LE(8);
  return (JSON.parse(buf.toString('utf8', 12, 12 + n)) as { files: unknown[][] }).files;
}

const itemSchema = (spec: LoadedSpec) =>
  JSON.stringify((spec.doc.paths!['/items'] as { get: { responses: unknown } }).get.responses);

describe('the spec cache', () => {
  it('a second load is a hit: the same LoadedSpec, without parsing (no parse progress line)', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    const first = await load(file);
    expect(first.progress.some((m) => m.startsWith('parsed '))).toBe(true);
    expect(entries()).toHaveLength(1);
    const second = await load(file);
    expect(second.progress).toEqual([
      expect.stringMatching(/^loaded .*big\.json \(\d+ KiB\) from cache in \d+ ms$/),
    ]);
    expect(second.spec).toEqual(first.spec);
    expect(second.spec.rootText).toBe(readFileSync(file, 'utf8'));
    // The entry and its directory are private.
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(cacheDir, entries()[0]!)).mode & 0o777).toBe(0o600);
  });

  it('with deferStore (the prefetch worker) the entry is written when the caller says, not before the load returns', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    let store: (() => void) | undefined;
    const first = await load(file, {
      deferStore: (s) => {
        store = s;
      },
    });
    expect(first.progress.some((m) => m.startsWith('parsed '))).toBe(true);
    expect(entries()).toHaveLength(0);
    expect(store).toBeTypeOf('function');
    store!();
    expect(entries()).toHaveLength(1);
    const second = await load(file);
    expect(second.progress).toEqual([expect.stringMatching(/ from cache in \d+ ms$/)]);
    expect(second.spec).toEqual(first.spec);
    // A hit has nothing to store: the hook is not called.
    let called = false;
    await load(file, {
      deferStore: () => {
        called = true;
      },
    });
    expect(called).toBe(false);
  });

  it('keeps warnings, deviations, Swagger 2.0 conversion and the file count', async () => {
    const dir = tempTree({
      'v2.json': {
        swagger: '2.0',
        info: { title: 'T', version: '1' },
        paths: { '/a': { get: { operationId: 'getA', responses: { '200': { description: 'ok' } } } } },
      },
    });
    const file = join(dir, 'v2.json');
    const a = await loadSpec(file);
    const b = await loadSpec(file);
    expect(entries()).toHaveLength(1);
    expect(b).toEqual(a);
    expect(b.originalVersion).toBe('2.0');
    const m = multiFile();
    const c = await loadSpec(m.root);
    const d = await loadSpec(m.root);
    expect(d).toEqual(c);
    expect(d.files).toBe(2);
  });

  it('any change of the root file is a miss', async () => {
    const dir = tempTree({ 'big.json': bigSpec() });
    const file = join(dir, 'big.json');
    await load(file);
    writeFileSync(file, bigSpec('y'));
    const again = await load(file);
    expect(again.progress.some((m) => m.startsWith('parsed '))).toBe(true);
    expect((again.spec.doc.info as { description: string }).description.endsWith('y')).toBe(true);
  });

  it('the key is the root file bytes: the same entry as its text for valid UTF-8, and any change of the bytes is a miss', async () => {
    // A BOM, two- and four-byte characters: the text's UTF-8 encoding is the file's bytes.
    const text = `\ufeff${JSON.stringify(minimalSpec({}, { info: { title: 'Café 🚀', version: '1' } }))}`;
    const dir = tempTree({ 'spec.json': text });
    const file = join(dir, 'spec.json');
    const source = { kind: 'file' as const, location: file, baseUrl: `file://${file}`, label: 'spec.json' };
    const byText = openSpecCache<LoadedSpec>(source, text, {})!;
    const byBytes = openSpecCache<LoadedSpec>(source, text, {}, readFileSync(file))!;
    expect(byBytes.entryFile).toBe(byText.entryFile);

    // Two files that decode to the same text (each invalid byte becomes U+FFFD): two entries.
    const fromCache = (spec: LoadedSpec) =>
      typeof Object.getOwnPropertyDescriptor(spec.doc, 'paths')?.get === 'function';
    const withByte = (b: number) =>
      Buffer.concat([
        Buffer.from('{"openapi":"3.0.3","info":{"title":"T'),
        Buffer.from([b]),
        Buffer.from('","version":"1"},"paths":{}}'),
      ]);
    writeFileSync(file, withByte(0xff));
    const first = await loadSpec(file);
    expect(fromCache(first)).toBe(false);
    expect(fromCache(await loadSpec(file))).toBe(true);
    writeFileSync(file, withByte(0xfe));
    const other = await loadSpec(file);
    expect(fromCache(other)).toBe(false);
    expect(other.doc.info).toEqual(first.doc.info);
    expect(entries()).toHaveLength(2);
  });

  it("a change in a $ref'd file is a miss, and so is the $ref'd path pointing elsewhere", async () => {
    const m = multiFile();
    const before = await loadSpec(m.root);
    expect(itemSchema(before)).toContain('"id"');
    writeFileSync(m.item, JSON.stringify({ type: 'object', properties: { renamed: { type: 'string' } } }));
    const after = await loadSpec(m.root);
    expect(itemSchema(after)).toContain('"renamed"');
    // Same bytes in place, but item.yaml now a symlink to another file.
    rmSync(m.item);
    symlinkSync(join(m.dir, 'api/other.yaml'), m.item);
    const linked = await loadSpec(m.root);
    expect(itemSchema(linked)).toContain('"string"');
    // A $ref'd file that is gone: the loader's own error, not the cached spec.
    rmSync(m.item);
    expect((await loadError(m.root)).code).toBe('SPEC_REF_UNRESOLVED');
  });

  it("a $ref'd file or directory reached through a symlink hits while it resolves to the same file", async () => {
    const m = multiFile();
    // item.yaml a symlink to a real file elsewhere, and the whole api/ directory reached by a link too.
    writeFileSync(join(m.dir, 'api/real-item.yaml'), readFileSync(m.item));
    rmSync(m.item);
    symlinkSync(join(m.dir, 'api/real-item.yaml'), m.item);
    symlinkSync(join(m.dir, 'api'), join(m.dir, 'linked'));
    const fromCache = (spec: LoadedSpec) =>
      typeof Object.getOwnPropertyDescriptor(spec.doc, 'paths')?.get === 'function';
    for (const root of [m.root, join(m.dir, 'linked/root.yaml')]) {
      const first = await loadSpec(root);
      expect(fromCache(first)).toBe(false);
      const again = await loadSpec(root);
      expect(fromCache(again)).toBe(true);
      expect(again).toEqual(first);
    }
    // The link pointed elsewhere (same bytes): a miss, as the file is another.
    writeFileSync(join(m.dir, 'api/copy.yaml'), readFileSync(m.item));
    rmSync(m.item);
    symlinkSync(join(m.dir, 'api/copy.yaml'), m.item);
    expect(fromCache(await loadSpec(m.root))).toBe(false);
  });

  it('counts a Linux disk or memory file system as local, and nothing it cannot tell', () => {
    const dir = tempTree({});
    // Linux: the temp directory is on ext4, xfs, btrfs, tmpfs or overlayfs here; elsewhere never.
    expect(isLocalFileSystem(dir)).toBe(process.platform === 'linux');
    expect(isLocalFileSystem(join(dir, 'missing'))).toBe(false);
  });

  // By one lstat on a local file system (this machine's temp directory, on Linux), by open and
  // fstat on any other (NFS answers a stat from its cache; an open asks the server).
  for (const [how, local] of [
    ['where this machine has it', undefined],
    ['as on a network file system', () => false],
  ] as const)
    it(`a settled $ref'd file is re-checked by its stat (${how}), a fresh one by its bytes; any change is a miss`, async () => {
      overrideLocalFs(local);
      const fromCache = (spec: LoadedSpec) =>
        typeof Object.getOwnPropertyDescriptor(spec.doc, 'paths')?.get === 'function';
      // Files written just now have not settled (a second change within the file system's clock tick
      // could keep their stat): no fingerprint, the hit reads them.
      const fresh = multiFile();
      await loadSpec(fresh.root);
      expect(entryFiles().map((f) => f.length)).toEqual([4]);
      expect(fromCache(await loadSpec(fresh.root))).toBe(true);
      rmSync(cacheDir, { recursive: true });
      // Settled (as if changed long before their read): a fingerprint, and a hit by its stat alone.
      overrideRacyWindow(-1e15);
      try {
        const m = multiFile();
        const first = await loadSpec(m.root);
        const [item] = entryFiles();
        const st = statSync(m.item);
        expect(item).toEqual([
          m.item,
          m.item,
          st.size,
          expect.any(String),
          [st.dev, st.ino, st.mtimeMs, st.ctimeMs],
        ]);
        expect(fromCache(await loadSpec(m.root))).toBe(true);
        // Other bytes of the same size with the old mtime put back: the ctime still moved, a miss.
        const text = readFileSync(m.item, 'utf8');
        writeFileSync(m.item, text.replace('"id"', '"xy"'));
        utimesSync(m.item, st.atime, st.mtime);
        expect(statSync(m.item).size).toBe(st.size);
        const changed = await loadSpec(m.root);
        expect(fromCache(changed)).toBe(false);
        expect(itemSchema(changed)).toContain('"xy"');
        // Replaced by another file of the same bytes (a new inode): read again, the same bytes hit.
        const copy = join(m.dir, 'api/copy.yaml');
        writeFileSync(copy, readFileSync(m.item));
        rmSync(m.item);
        writeFileSync(m.item, readFileSync(copy));
        const same = await loadSpec(m.root);
        expect(fromCache(same)).toBe(true);
        expect(itemSchema(same)).toEqual(itemSchema(changed));
        // A symlink in its place, to a file of the same bytes: the full check, a miss.
        rmSync(m.item);
        symlinkSync(copy, m.item);
        expect(fromCache(await loadSpec(m.root))).toBe(false);
        expect(first.doc.paths).toBeDefined();
      } finally {
        overrideRacyWindow(undefined);
        overrideLocalFs(undefined);
      }
    });

  it('a file whose times are whole seconds (a file system that keeps no finer ones) gets no fingerprint', () => {
    const dir = tempTree({ 'root.json': '{}' });
    const root = join(dir, 'root.json');
    const source = { kind: 'file' as const, location: root, baseUrl: `file://${root}`, label: 'root.json' };
    const session = openSpecCache<LoadedSpec>(source, '{}', {})!;
    session.recordRoot(root, root);
    // Stat-like: settled long before (statAt far after), same size as the bytes; only ctime differs.
    const st = (ctimeMs: number) =>
      ({ isFile: () => true, size: 1, dev: 1, ino: 2, mtimeMs: ctimeMs, ctimeMs }) as unknown as Stats;
    session.recordFile(
      join(dir, 'a.json'),
      join(dir, 'a.json'),
      Buffer.from('a'),
      st(1_600_000_000_000),
      2e12,
    );
    session.recordFile(
      join(dir, 'b.json'),
      join(dir, 'b.json'),
      Buffer.from('b'),
      st(1_600_000_000_123.5),
      2e12,
    );
    session.store({
      source,
      rootText: '{}',
      originalVersion: '3.0.0',
      doc: { openapi: '3.0.0', info: { title: 't', version: '1' }, paths: {} },
      dialect: '3.0',
      files: 3,
      warnings: [],
      deviations: [],
    } as unknown as LoadedSpec);
    expect(entryFiles().map((f) => f.length)).toEqual([4, 5]);
  });

  it('an option that changes the result or the error is a miss', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    await loadSpec(file);
    expect((await loadError(file, { maxNodes: 10 })).code).toBe('SPEC_TOO_LARGE');
    expect((await loadError(file, { maxBytes: 1024 })).code).toBe('SPEC_TOO_LARGE');
    // --ref-root: the same root file loads with a wider root and is refused with its own.
    const dir = tempTree({
      'api/root.yaml': JSON.stringify(
        minimalSpec({ '/a': { get: { responses: jsonOk({ $ref: '../shared/item.yaml' }) } } }),
      ),
      'shared/item.yaml': JSON.stringify({ type: 'object' }),
    });
    await loadSpec(join(dir, 'api/root.yaml'), { refRoot: dir });
    expect((await loadError(join(dir, 'api/root.yaml'))).code).toBe('SPEC_REF_DENIED');
  });

  it('a corrupt or truncated entry is a miss, removed, and the load succeeds', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    const first = await load(file);
    const entry = join(cacheDir, entries()[0]!);
    const good = readFileSync(entry);
    for (const bad of [
      good.subarray(0, good.length - 100),
      Buffer.concat([good.subarray(0, good.length - 10), Buffer.alloc(10, 0xff)]),
      Buffer.from('not an entry'),
    ]) {
      writeFileSync(entry, bad, { mode: 0o600 });
      const again = await load(file);
      expect(again.progress.some((m) => m.startsWith('parsed '))).toBe(true);
      expect(again.spec).toEqual(first.spec);
      // Replaced by a good one again.
      expect(readFileSync(entry).equals(good)).toBe(true);
    }
  });

  it('a part that passes the checksum but does not parse: SPEC_PARSE on first read, the entry removed; loadApi loads again', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    const first = await load(file);
    const entry = join(cacheDir, entries()[0]!);
    const good = readFileSync(entry);
    damagePart(entry, '{"schemas"');
    // The hit is read (its frame is sound); the damaged part fails when first read, clearly.
    const hit = await load(file);
    expect(hit.progress.some((m) => m.startsWith('parsed '))).toBe(false);
    let thrown: unknown;
    try {
      void hit.spec.doc.components;
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(WardenError);
    expect((thrown as WardenError).code).toBe('SPEC_PARSE');
    expect((thrown as WardenError).message).toMatch(/cache.*damaged.*--no-spec-cache/);
    expect(isDamagedCopy(thrown)).toBe(true);
    expect(entries()).toEqual([]);
    // A start (loadApi) that meets such a part loads the spec again and stores a sound entry.
    writeFileSync(entry, good, { mode: 0o600 });
    damagePart(entry, '{"schemas"');
    const api = await loadApi({ spec: file, baseUrl: 'http://127.0.0.1:9', load: {} });
    expect(api.spec.doc.components).toEqual(first.spec.doc.components);
    expect(api.catalog.tools.map((t) => t.name)).toEqual(['listItems', 'getItem']);
    expect(readFileSync(entry).equals(good)).toBe(true);
  });

  it('an unusable cache directory: the spec loads without it', async () => {
    const dir = tempTree({ 'big.json': bigSpec(), 'file.txt': 'a file, not a directory' });
    process.env.MCP_WARDEN_CACHE_DIR = join(dir, 'file.txt', 'cache');
    const a = await load(join(dir, 'big.json'));
    const b = await load(join(dir, 'big.json'));
    expect(b.spec).toEqual(a.spec);
    expect(b.progress.some((m) => m.startsWith('parsed '))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['big.json', 'file.txt']);
  });

  it('ignores an entry or directory writable by others, or owned by another user', async () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    await load(file);
    const entry = join(cacheDir, entries()[0]!);
    chmodSync(entry, 0o620);
    expect((await load(file)).progress.some((m) => m.startsWith('parsed '))).toBe(true);
    // Not rewritten over either: the rename replaced it with a private one.
    chmodSync(entry, 0o600);
    expect((await load(file)).progress[0]).toMatch(/from cache/);
    chmodSync(cacheDir, 0o770);
    expect((await load(file)).progress.some((m) => m.startsWith('parsed '))).toBe(true);
    chmodSync(cacheDir, 0o700);
    if (process.getuid?.() === 0) {
      chownSync(entry, 12345, 12345);
      expect((await load(file)).progress.some((m) => m.startsWith('parsed '))).toBe(true);
    }
  });

  it('a spec from a URL is not cached', async () => {
    const files = await serveFiles({ '/spec.json': bigSpec() });
    try {
      await loadSpec(`${files.url}/spec.json`);
      expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    } finally {
      await files.close();
    }
  });

  it(`keeps at most ${MAX_ENTRIES} entries, the oldest go first`, async () => {
    const dir = tempTree({});
    const t0 = Date.now() - 3600_000;
    const names: string[] = [];
    for (let i = 0; i < MAX_ENTRIES + 3; i++) {
      const f = join(dir, `s${i}.json`);
      writeFileSync(f, JSON.stringify(minimalSpec({ [`/p${i}`]: { get: { responses: jsonOk() } } })));
      await loadSpec(f);
      const added = entries().filter((e) => !names.includes(e));
      expect(added).toHaveLength(1);
      names.push(added[0]!);
      // Stored a second apart, whatever the file system's time resolution.
      const t = new Date(t0 + i * 1000);
      utimesSync(join(cacheDir, added[0]!), t, t);
    }
    expect(entries().sort()).toEqual(names.slice(3).sort());
  });
});

describe('the spec cache through the CLI', () => {
  it('scan stores an entry, and a second scan hits it; --no-spec-cache and MCP_WARDEN_SPEC_CACHE=off write nothing', () => {
    const file = join(tempTree({ 'big.json': bigSpec() }), 'big.json');
    const env = { MCP_WARDEN_CACHE_DIR: cacheDir };
    const off = runCli(['scan', file, '-f', 'json', '--no-spec-cache'], env);
    expect(off.code).toBe(0);
    expect(entries()).toEqual([]);
    const envOff = runCli(['scan', file, '-f', 'json'], { ...env, MCP_WARDEN_SPEC_CACHE: 'off' });
    expect(envOff.code).toBe(0);
    expect(entries()).toEqual([]);
    const first = runCli(['scan', file, '-f', 'json'], env);
    expect(first.stderr).toMatch(/parsed /);
    expect(entries()).toHaveLength(1);
    const second = runCli(['scan', file, '-f', 'json'], env);
    expect(second.stderr).toMatch(/from cache/);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stdout).toBe(off.stdout);
  });

  it('serve (the spec loaded on the worker thread) stores and hits; --no-spec-cache writes nothing', async () => {
    const dir = tempTree({ 'big.json': bigSpec() });
    const list = async (extra: string[] = []) => {
      const client = mcpClient();
      const args = serveArgs({
        spec: join(dir, 'big.json'),
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
        extra,
      });
      await client.connect(stdioTransport(args, { MCP_WARDEN_CACHE_DIR: cacheDir }).transport);
      try {
        return (await client.listTools()).tools;
      } finally {
        await client.close();
      }
    };
    const off = await list(['--no-spec-cache']);
    expect(entries()).toEqual([]);
    const miss = await list();
    expect(entries()).toHaveLength(1);
    const entry = join(cacheDir, entries()[0]!);
    const stored = statSync(entry).mtimeMs;
    utimesSync(entry, new Date(stored - 60_000), new Date(stored - 60_000));
    const hit = await list();
    // A hit touches the entry.
    expect(statSync(entry).mtimeMs).toBeGreaterThan(stored - 60_000);
    expect(hit).toEqual(miss);
    expect(hit).toEqual(off);
    // scan (main thread) hits what serve (worker) stored: one entry still.
    expect(runCli(['scan', join(dir, 'big.json')], { MCP_WARDEN_CACHE_DIR: cacheDir }).stderr).toMatch(
      /from cache/,
    );
    expect(entries()).toHaveLength(1);
  });
});

describe('a damaged part through the CLI', () => {
  it('serve (the entry decoded on the main thread from the worker) lists the same tools and replaces the entry', async () => {
    const dir = tempTree({ 'big.json': bigSpec() });
    const list = async () => {
      const client = mcpClient();
      const args = serveArgs({
        spec: join(dir, 'big.json'),
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'a.jsonl'),
      });
      await client.connect(stdioTransport(args, { MCP_WARDEN_CACHE_DIR: cacheDir }).transport);
      try {
        return (await client.listTools()).tools;
      } finally {
        await client.close();
      }
    };
    const miss = await list();
    const entry = join(cacheDir, entries()[0]!);
    const good = readFileSync(entry);
    damagePart(entry, '{"schemas"');
    expect(await list()).toEqual(miss);
    expect(readFileSync(entry).equals(good)).toBe(true);
    expect(await list()).toEqual(miss);
  });
});

describe('mkdir of the cache directory', () => {
  it('creates missing parents', async () => {
    const file = join(tempTree({ 'a.json': minimalSpec({}) }), 'a.json');
    process.env.MCP_WARDEN_CACHE_DIR = join(cacheDir, 'deep', 'er');
    await loadSpec(file);
    expect(entries(join(cacheDir, 'deep', 'er'))).toHaveLength(1);
  });
});

describe('specCacheDir: where entries go', () => {
  it('$MCP_WARDEN_CACHE_DIR, else an absolute $XDG_CACHE_HOME, else ~/.cache; on Windows under LOCALAPPDATA', () => {
    const linux = (env: NodeJS.ProcessEnv) => specCacheDir({ env, platform: 'linux' });
    expect(linux({ MCP_WARDEN_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/c');
    expect(linux({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/mcp-warden/specs');
    expect(linux({ XDG_CACHE_HOME: 'relative', HOME: '/h' })).toBe('/h/.cache/mcp-warden/specs');
    expect(specCacheDir({ env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, platform: 'win32' })).toBe(
      'C:\\Users\\u\\AppData\\Local\\mcp-warden\\cache\\specs',
    );
    // A bare environment (no HOME): no cache, not one in the account's home nobody named.
    expect(linux({ PATH: '/bin' })).toBeUndefined();
  });
});
