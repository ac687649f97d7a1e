import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { loadSpec } from '../../src/openapi/load.js';
import { checkPolicy } from '../../src/policy/check.js';
import { parsePolicy, readPolicyFile } from '../../src/policy/load.js';
import { alertsSchema } from '../../src/policy/schema.js';
import { SHOP_SPEC } from '../support/paths.js';

describe('documentation stays true', () => {
  it('every test file the docs cite exists (SECURITY.md maps threats to them)', () => {
    const root = new URL('../../', import.meta.url).pathname;
    const docs = [
      'SECURITY.md',
      'README.md',
      'BENCHMARKS.md',
      ...readdirSync(`${root}docs`).map((f) => `docs/${f}`),
    ];
    const missing: string[] = [];
    let cited = 0;
    for (const doc of docs.filter((d) => d.endsWith('.md'))) {
      const md = readFileSync(`${root}${doc}`, 'utf8');
      for (const [, path] of md.matchAll(/`((?:test\/)?[\w./*-]+\.test\.ts)`/g)) {
        cited++;
        const rel = path!.replace(/^test\//, '');
        // `protect/*.test.ts` cites a folder of tests.
        const exists = rel.includes('*')
          ? existsSync(`${root}test/${rel.slice(0, rel.indexOf('*'))}`)
          : existsSync(`${root}test/${rel}`);
        if (!exists) missing.push(`${doc}: ${path}`);
      }
    }
    expect(cited).toBeGreaterThan(20);
    expect(missing, 'cited test files that do not exist').toEqual([]);
  });

  it('the example policy in docs/policy.md is valid against the schema', () => {
    const md = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(yaml, 'docs/policy.md');
    expect(doc.rules.length).toBeGreaterThan(3);
  });

  it('the masking example in docs/data-protection.md is valid policy', () => {
    const md = readFileSync(new URL('../../docs/data-protection.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(`version: 1\n${yaml}`, 'docs/data-protection.md');
    expect(doc.fields).toMatchObject({ loyaltyTier: 'financial' });
  });

  it('the audit and alerts examples in docs/audit.md are valid policy', () => {
    const md = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(2);
    for (const b of blocks) parsePolicy(`version: 1\n${b.replace('…', 'x')}`, 'docs/audit.md');
  });

  it('the alerts example in docs/audit.md shows exactly the default rules', () => {
    const md = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8');
    const block = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .find((b) => b.startsWith('alerts:'))!;
    const { webhooks: _, ...shown } = parsePolicy(`version: 1\n${block.replace('…', 'x')}`, 'docs/audit.md')
      .doc.alerts!;
    expect(shown).toEqual(alertsSchema.parse({}));
  });

  it('the examples in docs/resilience.md are valid policy', () => {
    const md = readFileSync(new URL('../../docs/resilience.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(2);
    for (const b of blocks) parsePolicy(`version: 1\n${b}`, 'docs/resilience.md');
  });

  it('the toolset example in docs/large-apis.md is valid policy', () => {
    const md = readFileSync(new URL('../../docs/large-apis.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(1);
    const { doc } = parsePolicy(`version: 1\n${blocks[0]}`, 'docs/large-apis.md');
    expect(Object.keys(doc.toolsets ?? {})).toEqual(['billing']);
  });

  it('the shipped Prometheus rules use only metrics the gateway exports', async () => {
    const { parse } = await import('yaml');
    const { Metrics } = await import('../../src/observe/metrics.js');
    const text = readFileSync(
      new URL('../../deploy/prometheus/mcp-warden-alerts.yml', import.meta.url),
      'utf8',
    );
    const rules = (parse(text) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> })
      .groups[0]!.rules;
    expect(rules.length).toBeGreaterThan(5);
    const exported = await new Metrics(() => new Set()).text();
    for (const r of rules)
      for (const m of r.expr.match(/mcp_warden_[a-z_]+/g) ?? [])
        expect(exported, `${r.alert} uses ${m}`).toContain(m.replace(/_(bucket|count|sum)$/, ''));
  });

  it("the demo's policy passes `policy check` against the demo spec", async () => {
    const policy = readPolicyFile(new URL('../../examples/shop/warden.yaml', import.meta.url).pathname);
    const catalog = buildCatalog(await loadSpec(SHOP_SPEC, {}));
    expect(checkPolicy(catalog, policy)).toEqual([]);
  });
});
