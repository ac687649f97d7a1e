import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  codeCacheState,
  importModule,
  KEEP_PER_ROLE,
  runBundle,
  saveCodeCache,
} from '../../src/lib/code-cache.js';
import { codeCacheDir } from '../../src/lib/state-dir.js';
import { CLI, tempTree } from '../support/paths.js';

// V8's code cache for the CLI's bundle (issue 22): a cache is only ever an optimisation, so every
// file that is not exactly what this build and this process wrote is ignored, never run.

const HOOK = Symbol.for('mcp-warden.code-cache');
const IMPORT = Symbol.for('mcp-warden.import');
afterEach(() => {
  delete (globalThis as Record<symbol, unknown>)[HOOK];
  delete (globalThis as Record<symbol, unknown>)[IMPORT];
});

/** A bundle as the build writes it: one script whose value is the module function. */
function bundle(dir: string, body = 'module.exports.answer = (n) => n * 2 + Number(__filename.length > 0);') {
  const file = join(dir, 'b.bundle.cjs');
  // Enough functions that V8's cache is not trivially small.
  const fns = Array.from({ length: 50 }, (_, i) => `exports.f${i} = (x) => x + ${i};`).join('\n');
  writeFileSync(file, `(function (exports, require, module, __filename, __dirname) {${body}\n${fns}\n})`);
  return file;
}

const run = (file: string, dir: string | undefined, id = 'b1') =>
  runBundle({ file, id, role: 'test', dir }) as { answer(n: number): number };

const cacheFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.bin'));

describe('runBundle: the bundle through V8’s code cache', () => {
  it('runs the bundle, writes the cache when asked, and the next start uses it', () => {
    const t = tempTree({});
    const file = bundle(t);
    const dir = join(t, 'code');
    expect(run(file, dir).answer(20)).toBe(41);
    expect(codeCacheState()).toBe('none');
    saveCodeCache();
    const [name] = cacheFiles(dir);
    expect(name).toMatch(/^test-b1-v\d+\.\d+\.\d+-\w+\.bin$/);
    if (process.platform !== 'win32') {
      expect(statSync(join(dir, name!)).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
    const written = readFileSync(join(dir, name!));
    expect(run(file, dir).answer(1)).toBe(3);
    expect(codeCacheState()).toBe('used');
    // Used, so not written again.
    saveCodeCache();
    expect(readFileSync(join(dir, name!)).equals(written)).toBe(true);
  });

  it('ignores a cache that is torn, altered, of another build or edited bundle, or not private', () => {
    const t = tempTree({});
    const file = bundle(t);
    const dir = join(t, 'code');
    run(file, dir);
    saveCodeCache();
    const path = join(dir, cacheFiles(dir)[0]!);
    const good = readFileSync(path);
    const cases: Array<[string, () => void]> = [
      ['truncated', () => writeFileSync(path, good.subarray(0, good.length - 100))],
      ['one byte of the data changed', () => writeFileSync(path, Buffer.from(good).fill(1, 200, 201))],
      ['the header only', () => writeFileSync(path, good.subarray(0, 40))],
      ['empty', () => writeFileSync(path, '')],
      [
        'another format',
        () => writeFileSync(path, Buffer.concat([Buffer.from('NOTOURS!'), good.subarray(8)])),
      ],
    ];
    if (process.platform !== 'win32')
      for (const mode of [0o666, 0o620, 0o602])
        cases.push([
          `mode ${mode.toString(8)}`,
          () => {
            writeFileSync(path, good);
            chmodSync(path, mode);
          },
        ]);
    for (const [what, spoil] of cases) {
      spoil();
      expect(run(file, dir).answer(2), what).toBe(5);
      expect(codeCacheState(), what).toBe('none');
      // And a whole one is written in its place (our check passes it: V8 is offered it).
      saveCodeCache();
      run(file, dir);
      expect(codeCacheState(), what).toBe('used');
    }
    // Another build's id names another file: this one is not read.
    run(file, dir, 'b2');
    expect(codeCacheState()).toBe('none');
    // The same build id over an edited bundle (same length): its key differs, the old bytecode is not run.
    const edited = bundle(t, 'module.exports.answer = (n) => n * 3 + Number(__filename.length > 0);');
    expect(run(edited, dir).answer(2)).toBe(7);
    expect(codeCacheState()).toBe('none');
  });

  it.skipIf(process.platform === 'win32')(
    'never reads through a link, a FIFO, a second hard link, or in a folder others may write or a linked one',
    () => {
      const t = tempTree({});
      const file = bundle(t);
      const dir = join(t, 'code');
      run(file, dir);
      saveCodeCache();
      const name = cacheFiles(dir)[0]!;
      const path = join(dir, name);
      const good = readFileSync(path);
      const elsewhere = join(t, 'elsewhere.bin');
      const reset = () => {
        rmSync(path, { force: true });
        writeFileSync(path, good, { mode: 0o600 });
        chmodSync(dir, 0o700);
      };
      const cases: Array<[string, () => void]> = [
        [
          'a link to a file of ours',
          () => {
            writeFileSync(elsewhere, good, { mode: 0o600 });
            rmSync(path);
            symlinkSync(elsewhere, path);
          },
        ],
        [
          'a second hard link',
          () => {
            rmSync(elsewhere, { force: true });
            linkSync(path, elsewhere);
          },
        ],
        [
          'a FIFO (no hang)',
          () => {
            rmSync(path);
            execFileSync('mkfifo', [path]);
          },
        ],
        ['a folder others may write', () => chmodSync(dir, 0o777)],
      ];
      for (const [what, plant] of cases) {
        reset();
        plant();
        run(file, dir);
        expect(codeCacheState(), what).toBe('none');
        rmSync(elsewhere, { force: true });
      }
      // A linked folder: neither read nor written through.
      reset();
      const real = join(t, 'real-code');
      renameSync(dir, real);
      symlinkSync(real, dir);
      run(file, dir);
      expect(codeCacheState()).toBe('none');
      rmSync(join(real, name));
      saveCodeCache();
      expect(readdirSync(real)).toEqual([]);
    },
  );

  it('makes the cache with the start’s flags when a flag changed at run time (the serving heap bound)', () => {
    // In processes of their own, as two starts are: in one isolate V8's compilation cache would
    // answer the second compile before the code cache is looked at. (dist/: the tsc output.)
    const t = tempTree({});
    const file = bundle(t);
    const lib = pathToFileURL(join(import.meta.dirname, '../../dist/lib/code-cache.js')).href;
    const start = (dir: string, then: string) =>
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { setFlagsFromString } from 'node:v8';
import * as c from ${JSON.stringify(lib)};
c.runBundle({ file: ${JSON.stringify(file)}, id: 'b0', role: 'test', dir: ${JSON.stringify(dir)} });
process.stdout.write(c.codeCacheState());
${then}`,
        ],
        { encoding: 'utf8' },
      );
    const flag = "setFlagsFromString('--heap-growing-percent=100');";
    const noted = "c.noteRuntimeFlag('--heap-growing-percent=0', '--heap-growing-percent=100');";
    for (const note of [true, false]) {
      const dir = join(t, note ? 'noted' : 'not-noted');
      const first = start(dir, `${flag}${note ? noted : ''}c.saveCodeCache();`);
      expect(first.stderr).toBe('');
      expect(first.stdout).toBe('none');
      // The next start, with V8's default flags: it takes the cache made with them put back, and
      // refuses one made with the flag still set.
      expect(start(dir, '').stdout, note ? 'noted' : 'not noted').toBe(note ? 'used' : 'rejected');
    }
  });

  it('keeps the newest caches of a kind of run and removes temporary files a stopped writer left', () => {
    const t = tempTree({});
    const file = bundle(t);
    const dir = join(t, 'code');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const old = Date.now() / 1000 - 3600;
    const put = (name: string) => {
      writeFileSync(join(dir, name), 'x');
      utimesSync(join(dir, name), old, old);
    };
    for (let i = 0; i < KEEP_PER_ROLE + 2; i++) put(`test-a${i}-v0.0.0-x.bin`);
    put('other-a0-v0.0.0-x.bin');
    put('.test-b1-v0.0.0-x.bin.123.0.tmp');
    writeFileSync(join(dir, '.test-b1-v0.0.0-x.bin.456.0.tmp'), 'in flight');
    // Files not named as this module names its own: the folder may be one the user chose.
    for (const other of ['test-notes.bin', '.session.tmp', 'test-a9-v0.0.0-x.bin.bak']) put(other);
    run(file, dir);
    saveCodeCache();
    const left = readdirSync(dir).sort();
    // This build's, the newest others of its kind up to the bound, another kind's, a fresh temporary file.
    expect(left.filter((f) => /^test-[0-9a-f]+-v.*\.bin$/.test(f))).toHaveLength(KEEP_PER_ROLE);
    expect(left).toContain(cacheFiles(dir).find((f) => f.startsWith('test-b1-'))!);
    expect(left).toContain('other-a0-v0.0.0-x.bin');
    expect(left).toContain('.test-b1-v0.0.0-x.bin.456.0.tmp');
    expect(left).not.toContain('.test-b1-v0.0.0-x.bin.123.0.tmp');
    for (const other of ['test-notes.bin', '.session.tmp', 'test-a9-v0.0.0-x.bin.bak'])
      expect(left).toContain(other);
  });

  it('without a directory, runs the bundle and writes nothing', () => {
    const t = tempTree({});
    expect(run(bundle(t), undefined).answer(0)).toBe(1);
    expect(codeCacheState()).toBe('off');
    saveCodeCache();
    expect(readdirSync(t)).toEqual(['b.bundle.cjs']);
  });

  it('imports an ES module file through the entry’s import(), from a CommonJS bundle too', async () => {
    const t = tempTree({ 'm.mjs': 'export const v = 42;' });
    const href = pathToFileURL(join(t, 'm.mjs')).href;
    // Without an entry: this module's own import().
    delete (globalThis as Record<symbol, unknown>)[IMPORT];
    expect(((await importModule(href)) as { v: number }).v).toBe(42);
    // A bundle that runBundle ran has no import() of its own: it calls the one the entry lent.
    const file = bundle(t, `module.exports.load = (h) => globalThis[Symbol.for('mcp-warden.import')](h);`);
    const b = runBundle({ file, id: 'c1', role: 'test', dir: undefined }) as {
      load(h: string): Promise<{ v: number }>;
    };
    expect((await b.load(href)).v).toBe(42);
  });
});

describe('codeCacheDir', () => {
  it('beside the spec cache’s default place, not under MCP_WARDEN_CACHE_DIR; its own variable; off', () => {
    expect(codeCacheDir({ env: { HOME: '/home/u' }, platform: 'linux' })).toBe(
      '/home/u/.cache/mcp-warden/code',
    );
    expect(codeCacheDir({ env: { XDG_CACHE_HOME: '/x', HOME: '/home/u' }, platform: 'linux' })).toBe(
      '/x/mcp-warden/code',
    );
    expect(
      codeCacheDir({ env: { MCP_WARDEN_CACHE_DIR: '/specs', HOME: '/home/u' }, platform: 'linux' }),
    ).toBe('/home/u/.cache/mcp-warden/code');
    expect(codeCacheDir({ env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, platform: 'win32' })).toBe(
      'C:\\Users\\u\\AppData\\Local\\mcp-warden\\cache\\code',
    );
    expect(
      codeCacheDir({ env: { MCP_WARDEN_CODE_CACHE_DIR: '/c', HOME: '/home/u' }, platform: 'linux' }),
    ).toBe('/c');
    expect(
      codeCacheDir({
        env: { MCP_WARDEN_CODE_CACHE: 'off', MCP_WARDEN_CODE_CACHE_DIR: '/c' },
        platform: 'linux',
      }),
    ).toBeUndefined();
    expect(codeCacheDir({ env: {}, platform: 'linux' })).toBeUndefined();
  });
});

describe('the built CLI and its code cache', () => {
  const scan = (dir: string, extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(
      process.execPath,
      [CLI, 'scan', join(import.meta.dirname, '../../examples/shop/openapi.yaml')],
      {
        encoding: 'utf8',
        env: { ...process.env, MCP_WARDEN_CODE_CACHE_DIR: dir, ...extra },
      },
    );

  it('writes its cache once, uses it after, and replaces a damaged one', () => {
    const dir = join(tempTree({}), 'code');
    const first = scan(dir);
    expect(first.status, first.stderr).toBe(0);
    const [name] = cacheFiles(dir);
    expect(name).toMatch(/^cli-[0-9a-f]{32}-/);
    const path = join(dir, name!);
    const made = statSync(path);
    const again = scan(dir);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toBe('');
    // Used, not rewritten.
    expect(statSync(path).mtimeMs).toBe(made.mtimeMs);
    // Damaged: the scan is the same, and a whole cache replaces it.
    const good = readFileSync(path);
    writeFileSync(path, good.subarray(0, good.length >> 1));
    const third = scan(dir);
    expect(third.stdout).toBe(first.stdout);
    expect(third.stderr).toBe('');
    const rewritten = statSync(path);
    expect(rewritten.size).toBeGreaterThan(good.length >> 1);
    // …which the next start uses (a refused one would be written again).
    scan(dir);
    expect(statSync(path).mtimeMs).toBe(rewritten.mtimeMs);
    // Off: nothing read or written.
    const off = join(tempTree({}), 'code');
    expect(scan(off, { MCP_WARDEN_CODE_CACHE: 'off' }).stdout).toBe(first.stdout);
    expect(() => readdirSync(off)).toThrow();
  });
});
