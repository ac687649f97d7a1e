import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: the package check is a plain JavaScript script
import { checkContents, checkImports } from '../../scripts/check-package.mjs';
import { tempTree } from '../support/paths.js';

// The quick half of `npm run check:package` (CI runs the whole: install, run the installed CLI): what
// `npm pack` would put in the tarball, and that nothing it imports is missing from `dependencies`.

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));

describe('the npm package', () => {
  it('is publishable: not private, a bin with a shebang, engines, license, repository', () => {
    expect(pkg.private).toBeUndefined();
    expect(pkg.bin).toEqual({ 'mcp-warden': 'dist/cli/main.js' });
    expect(pkg.exports['./package.json']).toBe('./package.json');
    expect(pkg.engines.node).toMatch(/^>=20/);
    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync(`${root}LICENSE`, 'utf8')).toContain('Apache License');
    expect(pkg.repository.url).toContain('github.com/mcp-warden/mcp-warden');
    expect(pkg.scripts['check:package']).toBe('node scripts/check-package.mjs');
    expect(readFileSync(`${root}.ci/run`, 'utf8')).toMatch(/^npm test\n[\s\S]*^npm run check:package$/m);
  });

  it('packs the built CLI and what it reads, and no tests, sources, maps, secrets or audit files', () => {
    // Scripts off: prepack would rebuild dist/ under the feet of tests running beside this one.
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/cli/main.js', 'dist/ui/index.html', 'LICENSE']));
    expect(checkContents(root, pkg, files)).toEqual([]);
    const { problems, used } = checkImports(root, pkg, files);
    expect(problems).toEqual([]);
    expect(used).toContain('stemmer'); // a runtime import of the search (minisearch once broke the packed package)
  });

  it('names each kind of bad file and each import an installed package could not resolve', () => {
    const dir = tempTree({
      'dist/cli/main.js': [
        '#!/usr/bin/env node',
        "import { readFileSync } from 'node:fs';",
        "import MiniSearch from 'minisearch';",
        "export { x } from './gone.js';",
        "const pad = await import('left-pad');",
      ].join('\n'),
      'dist/cli/main.js.map': '{}',
      'src/cli/main.ts': '',
      'test/a.test.ts': '',
      'demo-audit.jsonl': '{}',
      '.env': 'TOKEN=x',
      'dist/old.js': '',
      'dist/key.js': `export const k = '-----BEGIN ${'PRIVATE'} KEY-----';`,
      'package.json': '{}',
    });
    const fake = {
      bin: { 'mcp-warden': 'dist/cli/main.js' },
      dependencies: {},
      devDependencies: { minisearch: '1' },
    };
    const files = [
      'package.json',
      'dist/cli/main.js',
      'dist/cli/main.js.map',
      'test/a.test.ts',
      'demo-audit.jsonl',
      '.env',
      'dist/old.js',
      'dist/key.js',
    ];
    const contents = checkContents(dir, fake, files).join('\n');
    for (const expected of [
      'dist/cli/main.js.map: TypeScript source, declarations or a source map',
      'test/a.test.ts: a development folder',
      'demo-audit.jsonl: an audit file',
      '.env: a secret or key file',
      'README.md is missing',
      'LICENSE is missing',
      'dist/old.js: stale build output (no src/old.ts)',
      'dist/key.js: contains what looks like key material',
    ])
      expect(contents).toContain(expected);
    expect(checkImports(dir, fake, files).problems).toEqual([
      'dist/cli/main.js imports minisearch: minisearch is a devDependency, absent from an installed package',
      'dist/cli/main.js imports ./gone.js, which is not in the package',
      'dist/cli/main.js imports left-pad: left-pad is not in dependencies',
    ]);
  });
});
