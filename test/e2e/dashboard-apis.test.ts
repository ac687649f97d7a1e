import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway } from '../../src/server/serve.js';
import { haveBrowser, openPage } from '../support/browser.js';
import { adminApi } from '../support/http.js';
import { tempTree } from '../support/paths.js';
import { PETS_SPEC, type Petstore, startPetstore } from '../support/petstore.js';
import { ADMIN_LINES, ADMIN_TOKEN, SHOP_SPEC, type Shop, startShop } from '../support/shop.js';

/**
 * Two APIs behind one gateway (and a third that failed to load): the admin API's rows name their
 * API, the dashboard groups by it and says which API is out.
 */
describe('an API set on the admin port and the dashboard', () => {
  let shop: Shop;
  let pets: Petstore;
  let gw: Gateway;

  beforeAll(async () => {
    shop = await startShop();
    pets = await startPetstore();
    // The set as a policy describes it, with a third API whose spec is missing: it is out, the others served.
    const dir = tempTree({
      'warden.yaml': [
        'version: 1',
        ...ADMIN_LINES,
        'apis:',
        '  shop:',
        `    spec: ${SHOP_SPEC}`,
        `    baseUrl: ${shop.url}`,
        '  pets:',
        `    spec: ${PETS_SPEC}`,
        `    baseUrl: ${pets.url}`,
        '  crm:',
        '    spec: no-such-crm.yaml',
        '    required: false',
      ].join('\n'),
    });
    gw = await startGateway({
      policy: join(dir, 'warden.yaml'),
      auditFile: join(dir, 'audit.jsonl'),
      transport: { kind: 'http', port: 0 },
      admin: { port: 0 },
      logLevel: 'silent',
      env: {
        ADMIN_TOKEN,
        MCP_WARDEN_CRED_SHOP_SHOPKEY: shop.key,
        MCP_WARDEN_CRED_PETS_PETSKEY: pets.key,
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await shop?.close();
    await pets?.close();
  });

  it('GET /tools: every row carries its API', async () => {
    const r = await adminApi(gw.adminUrl!, ADMIN_TOKEN)('GET', '/tools');
    const rows = (r.body as { tools: Array<{ name: string; api?: string; exposed: boolean }> }).tools;
    expect(rows.map((t) => `${t.api}:${t.name}`)).toEqual(
      expect.arrayContaining(['shop:shop_listCustomers', 'pets:pets_listPets', 'pets:pets_requestAdoption']),
    );
    expect(rows.every((t) => t.name.startsWith(`${t.api}_`))).toBe(true);
    expect((r.body as { apis: unknown[] }).apis).toEqual([
      expect.objectContaining({ name: 'shop', state: 'serving', tools: 9 }),
      expect.objectContaining({ name: 'pets', state: 'serving', tools: 3 }),
      expect.objectContaining({ name: 'crm', state: 'out', required: false, error: expect.any(String) }),
    ]);
  });

  it.runIf(haveBrowser)(
    'the Tools page groups the tools by API, each under a heading with its count, and filters by API',
    async () => {
      const { browser, page } = await openPage();
      try {
        await page.goto(gw.adminUrl!);
        await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
        await page.getByLabel(/Your name/).fill('alice');
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByRole('heading', { level: 1, name: 'Tools' }).waitFor();
        const petsGroup = page.locator('tbody[data-api="pets"]');
        await petsGroup.getByRole('rowheader', { name: /^pets 2 of 3 exposed$/ }).waitFor();
        expect(
          await petsGroup
            .locator('tr[data-tool]')
            .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tool'))),
        ).toEqual(['pets_listPets', 'pets_getPet', 'pets_requestAdoption']);
        expect(await page.locator('[data-api-out="crm"]').textContent()).toMatch(
          /^API crm is out: its spec could not be loaded, its tools are not served\. \S/,
        );
        const shopGroup = page.locator('tbody[data-api="shop"]');
        expect(await shopGroup.locator('tr[data-tool="shop_listCustomers"]').count()).toBe(1);
        expect(await shopGroup.locator('tr[data-tool^="pets_"]').count()).toBe(0);
        await page.getByRole('combobox', { name: /^API/ }).selectOption('pets');
        await expect.poll(() => page.locator('tbody[data-api="shop"]').count()).toBe(0);
        expect(await page.locator('tr[data-tool]').count()).toBe(3);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
