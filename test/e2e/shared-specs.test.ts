import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { TOOL_NAME } from '../../src/catalog/names.js';
import { createSchemaCompiler } from '../../src/catalog/validator.js';
import { loadSpec } from '../../src/openapi/load.js';
import { loadCorpusSpec, SHARED_SPECS } from '../support/helpers.js';

/** Operation counts from ../shared/specs/INDEX.md: an oracle independent of our own counting. */
const SPECS: Array<[file: string, ops: number, refRoot?: string]> = [
  ['github-rest.json', 771],
  ['stripe.yaml', 468],
  ['kubernetes-swagger2.json', 1123],
  ['digitalocean/specification/DigitalOcean-public.v2.yaml', 659],
  ['openai.yaml', 288],
  ['slack-web.json', 174],
  ['asana.yaml', 247],
  ['azure-storage-arm-2015-05-01-preview.json', 10],
  ['petstore-v3-swagger-api.yaml', 19],
  ['petstore-v3.yaml', 3],
  ['petstore-expanded-v3.yaml', 4],
  ['uspto-v3.yaml', 3],
  ['callback-example-v3.yaml', 1],
  ['link-example-v3.yaml', 6],
  ['petstore-swagger2.json', 3],
  ['petstore-separate-swagger2/spec/swagger.yaml', 4, 'petstore-separate-swagger2'],
  ['webhook-example-v3.1.json', 0],
];

/**
 * The harmless meta-schema deviations the loader repairs or ignores in the corpus (src/openapi/repair.ts),
 * by kind; every other spec has none. Pinned so that a loader change that starts or stops repairing
 * something in a real spec is seen (docs/catalogue.md quotes these counts).
 */
const DEVIATIONS: Record<string, Record<string, number>> = {
  'openai.yaml': { 'schema-exclusive-bound': 7, 'schema-nullable-3.1': 111 },
  'asana.yaml': { 'ref-siblings-ignored': 6 },
};

describe('every shared real-world spec', () => {
  for (const [file, ops, refRoot] of SPECS) {
    it(`${file}: loads, one valid uniquely named tool per operation, every schema compiles`, async () => {
      const spec = await loadCorpusSpec(file, refRoot);
      const catalog = buildCatalog(spec);
      expect(catalog.tools).toHaveLength(ops);
      expect(Object.fromEntries(spec.deviations.map((d) => [d.kind, d.count]))).toEqual(
        DEVIATIONS[file] ?? {},
      );
      // One warning line per deviation kind.
      for (const d of spec.deviations)
        expect(spec.warnings.filter((w) => w.startsWith(`spec deviation ${d.kind} `))).toHaveLength(1);
      const names = catalog.tools.map((t) => t.name);
      for (const n of names) expect(n).toMatch(TOOL_NAME);
      expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
      // Stable across runs: a second build from a fresh load gives the same names.
      const again = buildCatalog(await loadCorpusSpec(file, refRoot));
      expect(again.tools.map((t) => t.name)).toEqual(names);

      const compiler = createSchemaCompiler(catalog.formats);
      for (const t of catalog.tools) {
        expect(t.inputSchema.type).toBe('object');
        expect(t.inputSchema.additionalProperties).toBe(false);
        expect(() => compiler.compile(t.inputSchema), t.name).not.toThrow();
        if (t.outputSchema) expect(t.outputSchema.type, t.name).toBe('object');
        // Text from the spec reaches a model: no escapes or invisible characters survive.
        expect(t.description).not.toMatch(
          /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\ufeff]/,
        );
        // The secure default never exposes anything but reads.
        // Exposed: a plain read, or a read whose only "credential" finding is secret response fields
        // (dropped by masking before the agent sees them).
        if (t.exposure.exposed) {
          expect(t.risk.classes.filter((c) => c !== 'credential')).toEqual(['read']);
          for (const f of t.risk.findings.filter((x) => x.class === 'credential'))
            expect(f.rule).toBe('credential-response');
        } else expect(t.exposure.reasons.length).toBeGreaterThan(0);
      }
      // Two loads and a thousand schema compilations of a 4 MB spec: a bound for a busy machine, not a speed test.
    }, 180_000);
  }

  it('github: names come from operationIds with "/" made safe, and long ones are shortened', async () => {
    const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, 'github-rest.json')));
    const byOp = new Map(catalog.tools.map((t) => [t.source.operationId, t]));
    expect(byOp.get('pulls/list')?.name).toBe('pulls_list');
    expect(byOp.get('pulls/list')?.exposure.exposed).toBe(true);
    expect(byOp.get('repos/delete')?.risk.classes).toContain('destructive');
    expect(byOp.get('repos/delete')?.exposure.exposed).toBe(false);
    expect(catalog.tools.some((t) => t.risk.classes.includes('admin'))).toBe(true);
    expect(
      catalog.tools
        .filter((t) => (t.source.operationId ?? '').length > 64)
        .every((t) => t.name.length <= 64 && /_[0-9a-f]{8}$/.test(t.name)),
    ).toBe(true);
  });

  it('stripe: credentials are never arguments, form bodies and circular schemas survive, secrets are classified', async () => {
    const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, 'stripe.yaml')));
    const t = catalog.tools.find(
      (x) => x.source.method === 'get' && x.source.path === '/v1/customers/{customer}',
    );
    expect(t).toBeDefined();
    expect(t!.auth.alternatives.flat().map((r) => r.type)).toEqual(expect.arrayContaining(['http']));
    expect(Object.keys(t!.inputSchema.properties ?? {})).not.toContain('Authorization');
    const post = catalog.tools.find((x) => x.source.method === 'post' && x.source.path === '/v1/customers');
    expect(post!.bindings.find((b) => b.in === 'body')?.contentType).toBe(
      'application/x-www-form-urlencoded',
    );
    expect(post!.dataClasses.some((d) => d.class === 'pii' && d.kind === 'email')).toBe(true);
    expect(catalog.tools.find((x) => x.source.path === '/v1/customers/search')?.risk.classes).toContain(
      'raw-query',
    );
  });

  it('kubernetes: the exec endpoint is raw-query and secrets are credential', async () => {
    const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, 'kubernetes-swagger2.json')));
    const exec = catalog.tools.find(
      (t) => t.source.method === 'get' && t.source.path === '/api/v1/namespaces/{namespace}/pods/{name}/exec',
    );
    expect(exec?.risk.classes).toContain('raw-query');
    const secrets = catalog.tools.find(
      (t) => t.source.method === 'get' && t.source.path === '/api/v1/namespaces/{namespace}/secrets',
    );
    expect(secrets?.risk.classes).toContain('credential');
    expect(secrets?.exposure.exposed).toBe(false);
  });

  it('slack: the token parameter is stripped as a credential, admin methods are admin', async () => {
    const catalog = buildCatalog(await loadSpec(join(SHARED_SPECS, 'slack-web.json')));
    for (const t of catalog.tools) {
      const props = JSON.stringify(Object.keys(t.inputSchema.properties ?? {}));
      expect(props, t.name).not.toMatch(/"token"/);
    }
    expect(
      catalog.tools
        .filter((t) => t.source.path.startsWith('/admin.'))
        .every((t) => t.risk.classes.includes('admin')),
    ).toBe(true);
  });
});
