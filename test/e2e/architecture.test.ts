import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const config = require(`${ROOT}.dependency-cruiser.cjs`) as { forbidden: Array<{ name: string }> };
const LAYERS = config.forbidden.filter((r) => r.name.startsWith('layer-')).map((r) => r.name.slice(6));

describe('the layer rule', () => {
  it('holds: no import runs up a floor, none runs in a circle', () => {
    const out = execFileSync(
      process.execPath,
      [
        `${ROOT}node_modules/dependency-cruiser/bin/dependency-cruise.mjs`,
        'src',
        '--config',
        '.dependency-cruiser.cjs',
        '--output-type',
        'json',
      ],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const result = JSON.parse(out) as {
      summary: { violations: Array<{ from: string; to: string; rule: { name: string } }> };
    };
    const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
    expect(violations, 'a lower floor must not import a higher one (docs/architecture.md)').toEqual([]);
  });

  it('gives every folder of src/ a floor', () => {
    const folders = readdirSync(`${ROOT}src`, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(folders).toEqual([...LAYERS].sort());
  });

  it('is the order docs/architecture.md describes', () => {
    const md = readFileSync(`${ROOT}docs/architecture.md`, 'utf8');
    const documented = [...md.matchAll(/^\| \d+ \| `([a-z]+)` \|/gm)].map((m) => m[1]);
    expect(documented, 'docs/architecture.md lists the floors of .dependency-cruiser.cjs, bottom up').toEqual(
      LAYERS,
    );
  });
});
