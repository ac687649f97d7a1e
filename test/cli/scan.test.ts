import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScan } from '../../src/cli/scan.js';
import { isWardenError } from '../../src/errors/index.js';
import type { ScanReport } from '../../src/report/json.js';
import { jsonOk, minimalSpec, SHARED_SPECS, tempTree } from '../support/helpers.js';
import { SHOP_SPEC } from '../support/paths.js';

const PETSTORE = join(SHARED_SPECS, 'petstore-v3.yaml');

async function scan(
  specs: string[],
  opts: { format?: 'table' | 'json' | 'sarif'; api?: string[] } = {},
): Promise<string> {
  const out: string[] = [];
  await runScan(
    specs,
    { format: opts.format ?? 'json', quiet: true, ...(opts.api ? { api: opts.api } : {}) },
    { stdout: (s) => void out.push(s), stderr: () => {} },
  );
  return out.join('');
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return isWardenError(e) ? `${e.code}: ${e.message}` : `not a WardenError: ${String(e)}`;
  }
  return undefined;
}

describe('scan of several specs: one report for the API set', () => {
  it('names bare specs for their titles, prefixes every tool, and sums the APIs', async () => {
    const r = JSON.parse(await scan([SHOP_SPEC, PETSTORE])) as ScanReport;
    expect(r.reportVersion).toBe(1);
    expect(r.apis!.map((a) => [a.name, a.prefix, a.spec.title])).toEqual([
      ['acme-shop', 'acme-shop', 'Acme Shop API'],
      ['petstore', 'petstore', 'Swagger Petstore'],
    ]);
    expect(r.spec.title).toBe('acme-shop + petstore');
    expect(r.tools.every((t) => t.name.startsWith(`${t.api}_`))).toBe(true);
    expect(r.tools.filter((t) => t.api === 'petstore').map((t) => t.name)).toEqual([
      'petstore_listPets',
      'petstore_createPets',
      'petstore_showPetById',
    ]);
    const [shop, pets] = r.apis!;
    expect(r.summary.operations).toBe(shop!.summary.operations + pets!.summary.operations);
    expect(r.summary.exposed).toBe(shop!.summary.exposed + pets!.summary.exposed);
    expect(pets!.summary).toMatchObject({ operations: 3, exposed: 2, hidden: 1 });
  });

  it('takes names from --api, keeps names unique when two specs share operationIds, and is stable', async () => {
    const args = { api: [`shop=${SHOP_SPEC}`, `a=${PETSTORE}`, `b=${PETSTORE}`] };
    const r = JSON.parse(await scan([], args)) as ScanReport;
    expect(r.apis!.map((a) => a.name)).toEqual(['shop', 'a', 'b']);
    const names = r.tools.map((t) => t.name);
    expect(names).toContain('a_listPets');
    expect(names).toContain('b_listPets');
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
    expect(names.every((n) => /^[A-Za-z0-9_.-]{1,64}$/.test(n))).toBe(true);
    // The same names on every run, whatever order the APIs are given in.
    const again = JSON.parse(await scan([], { api: [...args.api].reverse() })) as ScanReport;
    expect(again.tools.map((t) => t.name).sort()).toEqual([...names].sort());
  });

  it('keeps names within 64 characters after prefixing', async () => {
    const long = `get${'VeryLongOperationName'.repeat(3)}`;
    const dir = tempTree({
      'long.json': minimalSpec({ '/x': { get: { operationId: long, responses: jsonOk() } } }),
    });
    const r = JSON.parse(
      await scan([], { api: [`a-rather-long-api-name=${join(dir, 'long.json')}`] }),
    ) as ScanReport;
    const [tool] = r.tools;
    expect(tool!.name.length).toBeLessThanOrEqual(64);
    expect(tool!.name.startsWith('a-rather-long-api-name_getVeryLong')).toBe(true);
    expect(tool!.api).toBe('a-rather-long-api-name');
  });

  it('prints the table grouped by API, each with its own heading and summary', async () => {
    const text = await scan([], { format: 'table', api: [`shop=${SHOP_SPEC}`, `pets=${PETSTORE}`] });
    expect(text).toMatch(
      /^API set: shop \+ pets {2}\(2 APIs\)\n12 operations: 7 exposed by default, 5 hidden/,
    );
    const shop = text.indexOf('\nshop: Acme Shop API');
    const pets = text.indexOf('\npets: Swagger Petstore');
    expect(shop).toBeGreaterThan(0);
    expect(pets).toBeGreaterThan(shop);
    // Each tool row sits under its API's heading.
    expect(text.indexOf('shop_listCustomers')).toBeGreaterThan(shop);
    expect(text.indexOf('shop_listCustomers')).toBeLessThan(pets);
    expect(text.indexOf('pets_listPets')).toBeGreaterThan(pets);
    expect(text).toMatch(/\n {2}3 operations: 2 exposed by default, 1 hidden/);
  });

  it('writes one SARIF run whose results point into each API’s own spec file', async () => {
    const sarif = JSON.parse(
      await scan([], { format: 'sarif', api: [`shop=${SHOP_SPEC}`, `pets=${PETSTORE}`] }),
    );
    expect(sarif.runs).toHaveLength(1);
    const results = sarif.runs[0].results as Array<{
      locations: Array<{
        physicalLocation?: { artifactLocation: { uri: string }; region?: { startLine: number } };
        logicalLocations: Array<{ name?: string }>;
      }>;
      partialFingerprints: Record<string, string>;
    }>;
    const uriOf = (tool: string) =>
      results.find((x) => x.locations[0]!.logicalLocations[0]!.name === tool)?.locations[0]?.physicalLocation;
    expect(uriOf('shop_deleteCustomer')).toMatchObject({
      artifactLocation: { uri: relative(process.cwd(), SHOP_SPEC) },
      region: { startLine: expect.any(Number) },
    });
    expect(uriOf('pets_createPets')?.artifactLocation.uri).toBe(relative(process.cwd(), PETSTORE));
    expect(results.every((x) => /^(shop|pets):/.test(Object.values(x.partialFingerprints)[0]!))).toBe(true);
  });

  it('keeps a single spec exactly as before: no apis, no api, no prefix', async () => {
    const r = JSON.parse(await scan([PETSTORE])) as ScanReport;
    expect(r).not.toHaveProperty('apis');
    expect(r.tools.map((t) => t.name)).toEqual(['listPets', 'createPets', 'showPetById']);
    expect(r.tools.some((t) => 'api' in t)).toBe(false);
    expect(r.spec.title).toBe('Swagger Petstore');
  });

  it('refuses nothing to scan, a malformed --api and a name given twice, as usage errors', async () => {
    expect(await codeOf(scan([]))).toMatch(/^USAGE: name a spec to scan/);
    expect(await codeOf(scan([], { api: ['Shop=x.yaml'] }))).toMatch(
      /^USAGE: --api "Shop=x.yaml": write name=spec/,
    );
    expect(await codeOf(scan([], { api: ['shop'] }))).toMatch(/^USAGE: --api "shop"/);
    expect(await codeOf(scan([], { api: [`a=${PETSTORE}`, `a=${SHOP_SPEC}`] }))).toMatch(
      /^USAGE: two APIs are named "a"/,
    );
  });
});
