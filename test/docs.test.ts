import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../src/catalog/build.js';
import { checkPolicy } from '../src/policy/check.js';
import { parsePolicy, readPolicyFile } from '../src/policy/load.js';
import { loadSpec } from '../src/spec/load.js';

describe('documentation stays true', () => {
  it('the example policy in docs/policy.md is valid against the schema', () => {
    const md = readFileSync(new URL('../docs/policy.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(yaml, 'docs/policy.md');
    expect(doc.rules.length).toBeGreaterThan(3);
  });

  it('the masking example in docs/data-protection.md is valid policy', () => {
    const md = readFileSync(new URL('../docs/data-protection.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(`version: 1\n${yaml}`, 'docs/data-protection.md');
    expect(doc.fields).toMatchObject({ loyaltyTier: 'financial' });
  });

  it("the demo's policy passes `policy check` against the demo spec", async () => {
    const policy = readPolicyFile(new URL('../examples/shop/warden.yaml', import.meta.url).pathname);
    const catalog = buildCatalog(
      await loadSpec(new URL('../examples/shop/openapi.yaml', import.meta.url).pathname, {}),
    );
    expect(checkPolicy(catalog, policy)).toEqual([]);
  });
});
