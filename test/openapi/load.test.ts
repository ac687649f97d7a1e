import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { runInThisContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { runScan } from '../../src/cli/scan.js';
import { WardenError } from '../../src/errors/index.js';
import { loadSpec } from '../../src/openapi/load.js';
import { minimalSpec, serveFiles, tempTree } from '../support/helpers.js';
import { CLI, SHARED_SPECS } from '../support/paths.js';
import { runCli } from '../support/stdio.js';

async function loadError(source: string, opts = {}): Promise<WardenError> {
  try {
    await loadSpec(source, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    return e as WardenError;
  }
  throw new Error('expected the load to fail');
}

const ok = { responses: { '200': { description: 'ok' } } };

describe('loading specs', () => {
  it('loads JSON and YAML, with or without a BOM', async () => {
    const dir = tempTree({
      'a.json': `\ufeff${JSON.stringify(minimalSpec({ '/a': { get: ok } }))}`,
      'b.yaml':
        'openapi: 3.1.0\ninfo: {title: T, version: 2023-08-16}\npaths:\n  /b:\n    get:\n      responses:\n        "200": {description: ok}\n',
    });
    const a = await loadSpec(join(dir, 'a.json'));
    expect(a.dialect).toBe('3.0');
    const b = await loadSpec(join(dir, 'b.yaml'));
    expect(b.dialect).toBe('3.1');
    // The core YAML schema keeps date-like versions as strings.
    expect((b.doc.info as { version: unknown }).version).toBe('2023-08-16');
  });

  it('names file, line and pointer for an invalid spec', async () => {
    const dir = tempTree({
      'bad.yaml':
        'openapi: 3.0.3\ninfo:\n  title: T\n  version: "1"\npaths:\n  /a:\n    get:\n      responses:\n        "200":\n          descriptio: ok\n',
    });
    const e = await loadError(join(dir, 'bad.yaml'));
    expect(e.code).toBe('SPEC_INVALID');
    expect(e.location?.pointer).toBe('/paths/~1a/get/responses/200');
    expect(e.location?.line).toBe(9);
    expect(e.message).toMatch(/description/);
  });

  it('reports a YAML syntax error with its line', async () => {
    const dir = tempTree({ 'x.yaml': 'openapi: 3.0.3\ninfo: [unclosed\n' });
    const e = await loadError(join(dir, 'x.yaml'));
    expect(e.code).toBe('SPEC_PARSE');
    expect(e.location?.line).toBeGreaterThanOrEqual(2);
  });

  // The YAML spec (and js-yaml 5, the loader's parser) refuse these; js-yaml 4 only warns (a
  // faster parser measured for issue 22 and not taken, see BENCHMARKS.md): a line at column 0
  // inside a quoted scalar or a flow collection, whether the key it hangs under is at the top or
  // nested, in the root file or a $ref'd one (server/early-title.ts relies on it).
  describe('refuses a line at column 0 inside a quoted scalar or a flow collection', () => {
    const head = 'openapi: 3.0.3\ninfo: {title: T, version: "1"}\n';
    const bodies = {
      'a double-quoted scalar': 'x-note: "starts here\nends here"\n',
      'a single-quoted scalar': "x-note: 'starts here\nends here'\n",
      'a flow mapping': 'x-note: {a: 1,\nb: 2}\n',
      'a flow sequence': 'x-note: [1,\n2]\n',
      'a nested quoted scalar': 'x-note:\n  inner: "starts\nends"\n',
    };
    for (const [what, body] of Object.entries(bodies)) {
      it(`${what}: in the root file, and in a $ref'd one`, async () => {
        const dir = tempTree({
          'root.yaml': `${head}${body}paths: {}\n`,
          'multi.yaml': `${head}paths:\n  /a: {$ref: "./a.yaml"}\n`,
          'a.yaml': `get:\n  responses: {"200": {description: ok}}\n${body}`,
        });
        const e = await loadError(join(dir, 'root.yaml'));
        expect(e.code).toBe('SPEC_PARSE');
        expect(e.message).toMatch(/deficient indentation/);
        const m = await loadError(join(dir, 'multi.yaml'));
        expect(m.code).toBe('SPEC_REF_UNRESOLVED');
        expect(m.message).toMatch(/a\.yaml.*deficient indentation/);
      });
    }

    it('while the same text indented, and a plain or block scalar ending at column 0, load', async () => {
      const dir = tempTree({
        'ok.yaml': `${head}x-a: "starts here\n  ends here"\nx-b: [1,\n  2]\nx-c: |\n  text\nx-d: plain\npaths: {}\n`,
      });
      const spec = await loadSpec(join(dir, 'ok.yaml'));
      expect(spec.doc).toMatchObject({
        'x-a': 'starts here ends here',
        'x-b': [1, 2],
        'x-c': 'text\n',
        'x-d': 'plain',
      });
    });
  });

  it('refuses a YAML spec without a document (empty, or comments only)', async () => {
    const dir = tempTree({ 'empty.yaml': '', 'comments.yaml': '# nothing here\n\n' });
    for (const f of ['empty.yaml', 'comments.yaml']) {
      const e = await loadError(join(dir, f));
      expect(e.code).toBe('SPEC_PARSE');
      expect(e.message).toMatch(/document|empty/);
    }
  });

  // What a laxer YAML parser would let through (js-yaml 4 reads all of these, js-yaml 5 does not):
  // each pinned here so that a change of parser cannot bring it in unnoticed.
  describe('YAML a laxer parser would read differently', () => {
    const head = 'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths: {}\n';
    it('refuses a collection as a mapping key (with aliases, a memory bomb in a few bytes), quickly', async () => {
      const big = 'x'.repeat(200_000);
      const key = `[${Array.from({ length: 100 }, () => '*a').join(', ')}]`;
      const dir = tempTree({
        'root.yaml': `${head}x-s: &a ${big}\nx-k:\n  ? ${key}\n  : 1\n`,
        'flow.yaml': `${head}x-k: {[a, b]: 1}\n`,
        'multi.yaml': 'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths:\n  /a: {$ref: "./a.yaml"}\n',
        'a.yaml': `get:\n  responses: {"200": {description: ok}}\n  x-s: &a ${big}\n  x-k:\n    ? ${key}\n    : 1\n`,
      });
      const started = performance.now();
      expect((await loadError(join(dir, 'root.yaml'))).code).toBe('SPEC_PARSE');
      expect((await loadError(join(dir, 'flow.yaml'))).code).toBe('SPEC_PARSE');
      expect((await loadError(join(dir, 'multi.yaml'))).code).toBe('SPEC_REF_UNRESOLVED');
      expect(performance.now() - started).toBeLessThan(10_000);
    });

    it('keeps signed hex and octal and binary numbers strings, as the core schema says', async () => {
      const dir = tempTree({ 'n.yaml': `${head}x-n: [-0x10, +0x1, 0b101, +0o7]\n` });
      expect((await loadSpec(join(dir, 'n.yaml'))).doc['x-n']).toEqual(['-0x10', '+0x1', '0b101', '+0o7']);
    });

    it("reads a $ref'd file that starts with a BOM, and one that names maxDepth beside an explicit tag", async () => {
      const dir = tempTree({
        'root.yaml':
          'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths:\n  /a:\n    get:\n      responses: {"200": {description: ok}}\n      x-bom: {$ref: "./bom.yaml"}\n      x-tag: {$ref: "./tag.yaml"}\n',
        'bom.yaml': '\ufefftype: string\n',
        'tag.yaml':
          'type: object\nproperties:\n  maxDepth: {type: integer}\n  since: !!timestamp 2024-01-02\n',
      });
      const get = (
        (await loadSpec(join(dir, 'root.yaml'))).doc.paths as Record<string, { get: Record<string, unknown> }>
      )['/a']!.get;
      expect(get['x-bom']).toEqual({ type: 'string' });
      expect((get['x-tag'] as { properties: Record<string, unknown> }).properties.maxDepth).toEqual({
        type: 'integer',
      });
    });
  });

  it("reads a $ref'd file as the ref parser would: an empty one is nothing, an explicit tag the core schema lacks is read by the default schema", async () => {
    const dir = tempTree({
      'root.yaml':
        'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths:\n  /a:\n    get:\n      responses: {"200": {description: ok}}\n      x-stamp: {$ref: "./stamp.yaml"}\n      x-empty: {$ref: "./empty.yaml"}\n',
      'stamp.yaml': 'at: !!timestamp 2024-01-02\nname: plain\n',
      'empty.yaml': '# only a comment\n',
    });
    const spec = await loadSpec(join(dir, 'root.yaml'));
    const get = (spec.doc.paths as Record<string, { get: Record<string, unknown> }>)['/a']!.get;
    expect((get['x-stamp'] as { name: string }).name).toBe('plain');
    expect((get['x-stamp'] as { at: unknown }).at).toBeInstanceOf(Date);
    expect(get['x-empty']).toBeUndefined();
  });

  it('reports a JSON syntax error with its line', async () => {
    const dir = tempTree({ 'x.json': '{\n  "openapi": "3.0.3",\n  "info": {,}\n}' });
    const e = await loadError(join(dir, 'x.json'));
    expect(e.code).toBe('SPEC_PARSE');
    expect(e.location?.line).toBe(3);
  });

  it('refuses unsupported versions and non-OpenAPI documents', async () => {
    const dir = tempTree({
      'v32.json': { openapi: '3.2.0', info: { title: 'T', version: '1' }, paths: {} },
      'sw1.json': { swagger: '1.2' },
      'other.json': { hello: 'world' },
      'num.yaml': 'openapi: 3.0\ninfo: {title: T, version: "1"}\npaths: {}\n',
    });
    expect((await loadError(join(dir, 'v32.json'))).code).toBe('SPEC_UNSUPPORTED');
    expect((await loadError(join(dir, 'sw1.json'))).code).toBe('SPEC_UNSUPPORTED');
    expect((await loadError(join(dir, 'other.json'))).code).toBe('SPEC_INVALID');
    expect((await loadError(join(dir, 'num.yaml'))).message).toMatch(/must be a string/);
  });

  it('refuses a file over the size limit before parsing it', async () => {
    const dir = tempTree({
      'big.json': JSON.stringify(minimalSpec({}, { padding: 'x'.repeat(2 * 1024 * 1024) })),
    });
    const e = await loadError(join(dir, 'big.json'), { maxBytes: 1024 * 1024 });
    expect(e.code).toBe('SPEC_TOO_LARGE');
  });

  it('refuses absurd nesting, in JSON and in YAML, quickly', async () => {
    const deep = `{"openapi":"3.0.3","info":{"title":"T","version":"1"},"paths":{},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const dir = tempTree({
      'deep.json': deep,
      'deep.yaml': `openapi: 3.0.3\nx: ${'['.repeat(5000)}${']'.repeat(5000)}\n`,
    });
    const t = performance.now();
    expect((await loadError(join(dir, 'deep.json'))).code).toBe('SPEC_TOO_DEEP');
    expect((await loadError(join(dir, 'deep.yaml'))).code).toBe('SPEC_TOO_DEEP');
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('refuses a YAML alias bomb in bounded time', async () => {
    let y =
      'openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths: {}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 12; i++)
      y += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    const dir = tempTree({ 'bomb.yaml': y });
    const e = await loadError(join(dir, 'bomb.yaml'), { maxNodes: 1_000_000 });
    expect(e.code).toBe('SPEC_TOO_LARGE');
  });

  describe("a $ref'd file is held to the spec's size limits before it is crawled", () => {
    const rootWith = (refs: string[]) =>
      `openapi: 3.0.3\ninfo: {title: T, version: "1"}\npaths: {}\ncomponents:\n  schemas:\n${refs
        .map((f, i) => `    S${i}: {$ref: ${f}}\n`)
        .join('')}`;

    it("refuses a YAML alias bomb in a $ref'd file, naming it, in bounded time", async () => {
      let y = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
      for (let i = 1; i < 12; i++)
        y += `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      const dir = tempTree({
        'root.yaml': rootWith(['schemas/bomb.yaml']),
        'schemas/bomb.yaml': `${y}type: object\n`,
      });
      const t = performance.now();
      const e = await loadError(join(dir, 'root.yaml'), { maxNodes: 1_000_000 });
      expect(e.code).toBe('SPEC_TOO_LARGE');
      expect(e.location?.file).toBe('schemas/bomb.yaml');
      expect(performance.now() - t).toBeLessThan(10_000);
    });

    it('counts the root and all its files against one node budget', async () => {
      // Each file alone is well under the limit; together they are over it.
      const big = `type: object\nproperties:\n${Array.from({ length: 400 }, (_, i) => `  p${i}: {type: string}\n`).join('')}`;
      const dir = tempTree({
        'root.yaml': rootWith(['a.yaml', 'b.yaml', 'c.yaml']),
        'a.yaml': big,
        'b.yaml': big,
        'c.yaml': big,
      });
      expect((await loadError(join(dir, 'root.yaml'), { maxNodes: 2_000 })).code).toBe('SPEC_TOO_LARGE');
      const loaded = await loadSpec(join(dir, 'root.yaml'), { maxNodes: 5_000 });
      expect(loaded.files).toBe(4);
    });

    it("refuses absurd nesting in a $ref'd file", async () => {
      const dir = tempTree({
        'root.yaml': rootWith(['deep.json']),
        'deep.json': `{"type":"object","x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      });
      expect((await loadError(join(dir, 'root.yaml'))).code).toBe('SPEC_TOO_DEEP');
    });
  });

  it('bundles multi-file specs with relative $refs', async () => {
    const dir = tempTree({
      'root.yaml': `openapi: 3.0.3
info: {title: T, version: "1"}
paths:
  /pets:
    $ref: paths/pets.yaml
`,
      'paths/pets.yaml': `get:
  operationId: listPets
  responses:
    "200":
      description: ok
      content:
        application/json:
          schema:
            $ref: ../schemas/Pet.yaml
`,
      'schemas/Pet.yaml': 'type: object\nproperties:\n  name: {type: string}\n  parent: {$ref: ./Pet.yaml}\n',
    });
    const spec = await loadSpec(join(dir, 'root.yaml'));
    expect(spec.files).toBe(3);
    expect(JSON.stringify(spec.doc)).not.toMatch(/"\$ref":"[^#]/);
  });

  it('refuses local $refs that leave the spec directory, unless the root is widened', async () => {
    const dir = tempTree({
      'spec/root.json': minimalSpec({
        '/a': { get: { responses: { '200': { $ref: '../common/ok.json' } } } },
      }),
      'common/ok.json': { description: 'ok' },
    });
    const e = await loadError(join(dir, 'spec/root.json'));
    expect(e.code).toBe('SPEC_REF_DENIED');
    expect(e.message).toMatch(/--ref-root/);
    const spec = await loadSpec(join(dir, 'spec/root.json'), { refRoot: dir });
    expect(spec.files).toBe(2);
  });

  it('refuses a $ref through a symlink that leads out of the spec directory, file or folder', async () => {
    const dir = tempTree({
      'spec/root.json': minimalSpec({
        '/a': { get: { responses: { '200': { $ref: 'link.json' } } } },
        '/b': { get: { responses: { '200': { $ref: 'dir/ok.json' } } } },
      }),
      'spec/inside.json': { description: 'ok' },
      'outside/ok.json': { description: 'ok' },
    });
    symlinkSync(join(dir, 'outside/ok.json'), join(dir, 'spec/link.json'));
    symlinkSync(join(dir, 'outside'), join(dir, 'spec/dir'));
    const e = await loadError(join(dir, 'spec/root.json'));
    expect(e.code).toBe('SPEC_REF_DENIED');
    // A symlink that stays inside is followed.
    rmSync(join(dir, 'spec/link.json'));
    rmSync(join(dir, 'spec/dir'));
    symlinkSync(join(dir, 'spec/inside.json'), join(dir, 'spec/link.json'));
    symlinkSync(join(dir, 'spec'), join(dir, 'spec/dir'));
    writeFileSync(join(dir, 'spec/ok.json'), JSON.stringify({ description: 'ok' }));
    expect((await loadSpec(join(dir, 'spec/root.json'))).files).toBe(3);
  });

  it('confines every kind of $ref target as its real path says: links, chains, loops, folders, missing parts', async () => {
    // One tree with every way a path can resolve; each target is $ref'd alone, and again after plain
    // files of the same folders were read (the loader resolves a folder once and opens a file with
    // O_NOFOLLOW, so a link among plain files must still be resolved on its own). The oracle is the
    // definition: the target's realpath exists, lies inside the spec's folder and is a regular file.
    const dir = tempTree({
      'spec/plain.json': { description: 'plain' },
      'spec/sub/plain.json': { description: 'sub-plain' },
      'outside/ok.json': { description: 'outside' },
    });
    const spec = join(dir, 'spec');
    const link = (target: string, at: string) => symlinkSync(target, join(spec, at));
    link('../plain.json', 'sub/link-in.json');
    link('../../outside/ok.json', 'sub/link-out.json');
    link('sub/link-in.json', 'chain-in.json');
    link('sub/link-out.json', 'chain-out.json');
    link('nowhere.json', 'dangling.json');
    link('loop.json', 'loop.json');
    link('sub', 'dir-in');
    link('../outside', 'dir-out');
    link(join(dir, 'outside/ok.json'), 'abs-out.json');
    execFileSync('mkfifo', [join(spec, 'fifo.json')]);
    mkdirSync(join(spec, 'folder.json'));
    const targets = [
      'plain.json',
      'sub/plain.json',
      'sub/link-in.json',
      'sub/link-out.json',
      'chain-in.json',
      'chain-out.json',
      'dangling.json',
      'loop.json',
      'dir-in/plain.json',
      'dir-in/link-in.json',
      'dir-in/link-out.json',
      'dir-out/ok.json',
      'abs-out.json',
      'fifo.json',
      'folder.json',
      'missing/x.json',
      'plain.json/x.json',
      'sub/../plain.json',
      'dir-in/../plain.json',
      // A trailing separator or dot names a folder: a file so named is none (ENOTDIR).
      'plain.json/',
      'plain.json/.',
      'sub/plain.json/',
      'dir-in/',
      'sub//plain.json',
    ];
    const expected = (target: string): { code: string } | { description: string } => {
      let real: string;
      try {
        // As the system reads the path (libuv's realpath, not the JS one, which normalises first: a
        // trailing `/` must stay).
        real = realpathSync.native(`${spec}${sep}${target}`);
      } catch {
        return { code: 'SPEC_REF_UNRESOLVED' };
      }
      if (!real.startsWith(realpathSync(spec) + sep) || !statSync(real).isFile())
        return { code: 'SPEC_REF_DENIED' };
      return { description: JSON.parse(readFileSync(real, 'utf8')).description };
    };
    let n = 0;
    for (const target of targets) {
      for (const warm of [false, true]) {
        const before = warm
          ? {
              '/w1': { get: { responses: { '200': { $ref: 'plain.json' } } } },
              '/w2': { get: { responses: { '200': { $ref: 'sub/plain.json' } } } },
            }
          : {};
        const root = join(spec, `root-${n++}.json`);
        writeFileSync(
          root,
          JSON.stringify(
            minimalSpec({ ...before, '/t': { get: { responses: { '200': { $ref: target } } } } }),
          ),
        );
        const want = expected(target);
        const got = await loadSpec(root, { specCache: false }).then(
          (s) => ({
            description: (
              s.doc.paths as Record<string, { get: { responses: Record<string, { description: string }> } }>
            )['/t']!.get.responses['200']!.description,
          }),
          (e: unknown) => ({ code: (e as WardenError).code }),
        );
        expect({ target, warm, ...got }).toEqual({ target, warm, ...want });
      }
    }
  });

  it('refuses a $ref to a FIFO or a folder in the spec directory at once (a read would block)', async () => {
    const dir = tempTree({
      'fifo/root.json': minimalSpec({ '/a': { get: { responses: { '200': { $ref: 'pipe.json' } } } } }),
      'dir/root.json': minimalSpec({ '/a': { get: { responses: { '200': { $ref: 'sub' } } } } }),
      'dir/sub/x.json': { description: 'ok' },
    });
    execFileSync('mkfifo', [join(dir, 'fifo/pipe.json')]);
    for (const root of ['fifo/root.json', 'dir/root.json']) {
      const e = await loadError(join(dir, root));
      expect(e.code).toBe('SPEC_REF_DENIED');
      expect(e.message).toMatch(/not a regular file/);
    }
  });

  it('refuses a $ref to an absolute local path such as /etc/passwd', async () => {
    const dir = tempTree({
      'root.json': minimalSpec({ '/a': { get: { responses: { '200': { $ref: '/etc/passwd' } } } } }),
    });
    expect((await loadError(join(dir, 'root.json'))).code).toBe('SPEC_REF_DENIED');
  });

  it('never fetches remote $refs of a local spec unless opted in', async () => {
    const srv = await serveFiles({ '/ok.json': { description: 'ok' } });
    try {
      const dir = tempTree({
        'root.json': minimalSpec({ '/a': { get: { responses: { '200': { $ref: `${srv.url}/ok.json` } } } } }),
      });
      const e = await loadError(join(dir, 'root.json'));
      expect(e.code).toBe('SPEC_REF_DENIED');
      expect(srv.requests).toEqual([]);
      const spec = await loadSpec(join(dir, 'root.json'), { remoteRefs: 'any' });
      expect(spec.files).toBe(2);
    } finally {
      await srv.close();
    }
  });

  it('loads a spec from a URL and follows its same-origin $refs, but not other origins or local files', async () => {
    const other = await serveFiles({ '/x.json': { description: 'x' } });
    const srv = await serveFiles({
      '/api/root.json': minimalSpec({ '/a': { get: { responses: { '200': { $ref: 'common/ok.json' } } } } }),
      '/api/common/ok.json': { description: 'ok' },
      '/api/cross.json': minimalSpec({
        '/a': { get: { responses: { '200': { $ref: `${other.url}/x.json` } } } },
      }),
      '/api/local.json': minimalSpec({
        '/a': { get: { responses: { '200': { $ref: 'file:///etc/hosts' } } } },
      }),
    });
    try {
      const spec = await loadSpec(`${srv.url}/api/root.json`);
      expect(spec.source.kind).toBe('url');
      expect(spec.files).toBe(2);
      expect((await loadError(`${srv.url}/api/cross.json`)).code).toBe('SPEC_REF_DENIED');
      expect(other.requests).toEqual([]);
      expect((await loadError(`${srv.url}/api/local.json`)).code).toBe('SPEC_REF_DENIED');
      expect((await loadError(`${srv.url}/api/missing.json`)).code).toBe('SPEC_NOT_FOUND');
    } finally {
      await srv.close();
      await other.close();
    }
  });

  it('refuses URLs with embedded credentials and unknown schemes', async () => {
    expect((await loadError('https://user:pw@example.invalid/spec.json')).code).toBe('SPEC_NOT_FOUND');
    expect((await loadError('ftp://example.invalid/spec.json')).code).toBe('SPEC_NOT_FOUND');
  });

  it('converts Swagger 2.0 to OpenAPI 3.0', async () => {
    const dir = tempTree({
      's.json': {
        swagger: '2.0',
        info: { title: 'T', version: '1' },
        paths: {
          '/a': {
            get: {
              operationId: 'getA',
              responses: { '200': { description: 'ok', schema: { type: 'string' } } },
            },
          },
        },
      },
    });
    const spec = await loadSpec(join(dir, 's.json'));
    expect(spec.originalVersion).toBe('2.0');
    expect(spec.doc.openapi).toMatch(/^3\.0/);
  });

  it('rejects what the meta-schema cannot express: duplicate operationIds and path templates without parameters', async () => {
    const dir = tempTree({
      'dup.json': minimalSpec({
        '/a': { get: { operationId: 'x', ...ok } },
        '/b': { get: { operationId: 'x', ...ok } },
      }),
      'tmpl.json': minimalSpec({ '/a/{id}': { get: ok } }),
      'stray.json': minimalSpec({
        '/a': { get: { parameters: [{ name: 'id', in: 'path', required: true, schema: {} }], ...ok } },
      }),
    });
    const dup = await loadError(join(dir, 'dup.json'));
    expect(dup.code).toBe('SPEC_INVALID');
    expect(dup.message).toMatch(/duplicate operationId "x"/);
    expect(dup.location?.pointer).toBe('/paths/~1b/get/operationId');
    expect((await loadError(join(dir, 'tmpl.json'))).message).toMatch(
      /\{id\} of GET \/a\/\{id\} has no path parameter/,
    );
    // A path parameter merely not marked `required` is repaired (test/openapi/repair.test.ts); one that
    // is in no template is refused.
    const stray = await loadError(join(dir, 'stray.json'));
    expect(stray.message).toMatch(/path parameter "id" does not appear in \/a/);
    expect(stray.location?.pointer).toBe('/paths/~1a/get');
  });

  it('replaces $refs in places OpenAPI does not allow them (a whole properties map, a description) and says so', async () => {
    const dir = tempTree({
      'root.json': minimalSpec(
        {
          '/a': {
            get: {
              responses: {
                '200': {
                  description: 'ok',
                  content: {
                    'application/json': {
                      schema: { type: 'object', properties: { $ref: '#/components/x-props' } },
                    },
                  },
                },
              },
            },
          },
        },
        {
          tags: [{ name: 't', description: { $ref: '#/components/x-text' } }],
          components: { 'x-props': { email: { type: 'string' } }, 'x-text': 'About t.' },
        },
      ),
    });
    const spec = await loadSpec(join(dir, 'root.json'));
    expect(spec.warnings[0]).toMatch(/2 \$ref\(s\) in places OpenAPI does not allow/);
    expect((spec.doc.tags as Array<{ description: unknown }>)[0]!.description).toBe('About t.');
  });
});

// The built CLI bundles dependencies' functions patched for speed (scripts/bundle-cli.mjs:
// ref-parser's $ref inventory, reftools' circularClone that the Swagger 2.0 converter copies a
// spec with, js-yaml's option spread that every YAML parse runs). Their reports must be the
// unpatched sources' own, here, in this process.
describe('the built CLI loads specs as the loader does', () => {
  const scanned = async (spec: string) => {
    let out = '';
    await runScan(
      spec,
      { format: 'json', quiet: true, specCache: false },
      {
        stdout: (s) => {
          out += s;
        },
        stderr: () => {},
      },
    );
    const cli = runCli(['scan', '-f', 'json', '-q', '--no-spec-cache', spec]);
    expect(cli.code, cli.stderr).toBe(0);
    return { cli: JSON.parse(cli.stdout) as unknown, here: JSON.parse(out) as unknown };
  };

  it('a multi-file spec: shared, chained and circular $refs across files', async () => {
    const pet =
      'type: object\nproperties:\n  name: {type: string}\n  ownerEmail: {type: string, format: email}\n  tag: {$ref: "./Tag.yaml"}\n  parent: {$ref: "./Pet.yaml"}\n';
    const op = (method: string, id: string, schema: string) =>
      `${method}:\n  operationId: ${id}\n  requestBody:\n    content:\n      application/json:\n        schema: {$ref: "${schema}"}\n  responses:\n    "200":\n      description: ok\n      content:\n        application/json:\n          schema: {type: array, items: {$ref: "${schema}"}}\n`;
    const dir = tempTree({
      'root.yaml': `openapi: 3.0.3
info: {title: T, version: "1"}
paths:
  /pets: {$ref: "paths/pets.yaml"}
  /pets/{id}: {$ref: "paths/pet.yaml"}
  /tags: {$ref: "paths/tags.yaml"}
components:
  schemas:
    Pet: {$ref: "schemas/Pet.yaml"}
    Owner: {$ref: "schemas/Owner.yaml#/Owner"}
`,
      'paths/pets.yaml': op('post', 'addPet', '../schemas/Pet.yaml'),
      'paths/pet.yaml': `parameters:\n  - {name: id, in: path, required: true, schema: {type: string}}\n${op('put', 'putOwner', '../schemas/Owner.yaml#/Owner')}`,
      'paths/tags.yaml': op('post', 'addTag', '../schemas/Tag.yaml'),
      'schemas/Pet.yaml': pet,
      'schemas/Tag.yaml': 'type: object\nproperties:\n  label: {type: string}\n',
      'schemas/Owner.yaml':
        'Owner:\n  type: object\n  properties:\n    pets: {type: array, items: {$ref: "./Pet.yaml"}}\n    best: {$ref: "#/Best"}\nBest: {$ref: "./Pet.yaml"}\n',
    });
    const { cli, here } = await scanned(join(dir, 'root.yaml'));
    // The report reads the schemas the $refs lead to: Owner's pets, through two files, have an email.
    const put = (here as { tools: Array<{ name: string; dataClasses: unknown[] }> }).tools.find(
      (t) => t.name === 'putOwner',
    );
    expect(JSON.stringify(put?.dataClasses)).toMatch(/email/i);
    expect(cli).toEqual(here);
  });

  it('YAML files: anchors, aliases, merge keys, tags and YAML 1.1 scalars, in the root and in $refd files', async () => {
    const quirks = `base: &base {type: object, description: "~ yes no on 0o17 0x1F 1_000 2026-12-03 .inf"}
merged:
  <<: *base
  properties:
    when: {type: string, example: 2026-12-03T10:00:00Z}
    flag: {type: boolean, example: yes}
    octal: {type: integer, example: 0o17}
    hex: {type: integer, example: 0x1F}
    big: {type: number, example: 1_000.5}
    none: {type: string, nullable: true, example: ~}
    text: {type: string, example: !!str 123}
    block:
      type: string
      example: |
        two lines,
        kept
`;
    const dir = tempTree({
      'root.yaml': `openapi: 3.0.3
info: {title: Quirks, version: "1"}
x-shared: &shared
  description: ok
  content:
    application/json:
      schema: {$ref: "parts.yaml#/merged"}
paths:
  /a:
    get:
      operationId: getA
      parameters:
        - {name: on, in: query, schema: {type: string, enum: [yes, no, on, off, "yes"]}}
      responses:
        "200": *shared
  /b:
    get:
      operationId: getB
      responses:
        "200": *shared
`,
      'parts.yaml': quirks,
    });
    const { cli, here } = await scanned(join(dir, 'root.yaml'));
    expect(JSON.stringify(here)).toMatch(/getA/);
    expect(cli).toEqual(here);
  });

  it('the bundled js-yaml parses every YAML file of the corpus, and quirky YAML, as js-yaml does', async () => {
    type Yaml = {
      load(text: string, options?: object): unknown;
      CORE_SCHEMA: object;
      JSON_SCHEMA: object;
      FAILSAFE_SCHEMA: object;
    };
    // The unpatched CommonJS build, the one the bundle patches (scripts/bundle-cli.mjs js-yaml-object-spread).
    const real = createRequire(import.meta.url)('js-yaml') as Yaml;
    // The worker's bundle (where YAML specs are parsed), run as its entry runs it but returning its
    // inlined js-yaml module; its own work is given a spec that does not exist, and ends there.
    const file = join(dirname(CLI), '../openapi/load-worker.bundle.cjs');
    const text = readFileSync(file, 'latin1');
    expect(text).toContain('js-yaml/dist/js-yaml.cjs.js');
    const tail = text.lastIndexOf('\n})');
    const fn = runInThisContext(`${text.slice(0, tail)}\n;return require_js_yaml_cjs;})`, { filename: file });
    const realRequire = createRequire(file);
    const thread = {
      ...(realRequire('node:worker_threads') as object),
      workerData: { source: join(tempTree({}), 'none.yaml'), options: { specCache: false } },
      parentPort: { postMessage() {}, on() {}, once() {} },
    };
    const fakeRequire = (id: string) =>
      id === 'node:worker_threads' || id === 'worker_threads' ? thread : realRequire(id);
    const module = { exports: {} as { done?: Promise<void> } };
    const mod = fn(module.exports, fakeRequire, module, file, dirname(file)) as () => Yaml;
    await module.exports.done;
    const bundled = mod();
    expect(typeof bundled.load).toBe('function');
    const outcome = (y: Yaml, text: string, options?: object) => {
      try {
        return { value: y.load(text, options) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    };
    const texts: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (/\.ya?ml$/.test(e.name)) texts.push(readFileSync(join(d, e.name), 'utf8'));
      }
    };
    walk(SHARED_SPECS);
    expect(texts.length).toBeGreaterThan(2000);
    for (const text of texts) expect(outcome(bundled, text)).toEqual(outcome(real, text));
    const quirks = [
      'a: &a {b: 1}\nc: *a\nd:\n  <<: *a\n  e: 2\n',
      'on: yes\noff: no\nn: ~\no: 0o17\nh: 0x1F\nu: 1_000\nt: 2026-12-03T10:00:00Z\ni: .inf\ns: !!str 123\n',
      'bin: !!binary aGVsbG8=\nset: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\n',
      'k: |\n  two\n  lines\nf: >-\n  folded\n  text\n',
      'dup: 1\ndup: 2\n',
      'a: [1, 2\n',
      '--- 1\n--- 2\n',
      '!!js/function "x"\n',
      '? [complex, key]\n: value\n',
    ];
    for (const text of quirks)
      for (const options of [
        undefined,
        { schema: real.CORE_SCHEMA },
        { schema: real.JSON_SCHEMA },
        { schema: real.FAILSAFE_SCHEMA },
        { json: true },
      ]) {
        // The bundle's own copy of a schema: the same tags, another object.
        const theirs = options?.schema
          ? {
              schema: Object.entries(real).find(([, v]) => v === options.schema)![0],
            }
          : options;
        const bundledOptions =
          theirs && 'schema' in theirs
            ? { schema: (bundled as unknown as Record<string, object>)[theirs.schema as string] }
            : theirs;
        expect(outcome(bundled, text, bundledOptions), text).toEqual(outcome(real, text, options));
      }
  });

  it('a Swagger 2.0 spec', async () => {
    const { cli, here } = await scanned(join(SHARED_SPECS, 'petstore-swagger2.json'));
    expect(JSON.stringify(cli).length).toBeGreaterThan(1000);
    expect(cli).toEqual(here);
  });
});
