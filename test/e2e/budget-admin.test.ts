import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, openPage, SHOTS } from '../support/browser.js';
import { callPipeline, codeOf, type ShopGateway, startShopGateway, textOf } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { cliEnv, runCliAsync } from '../support/stdio.js';
import { expectAudited } from '../support/wait.js';

const SCOPES = ['tools:read', 'tools:write', 'tools:delete'];
const POLICY = shopPolicy(
  ['budgets:', '  - { class: destructive, calls: 2, perSeconds: 3600 }', 'admin: { token: env:ADMIN_TOKEN }'],
  [
    '  - match: { name: deleteCustomer }',
    '    enabled: true',
    '    confirm: false',
    '    reason: the budget tests delete without asking anyone',
  ],
);

/**
 * A restricted caller as an operator meets it: the alert, the metric, `restricted list` and
 * `restricted lift` (the built CLI against the admin API), and the dashboard's Restricted page.
 */
describe('restricted callers: alert, admin API, CLI and dashboard', () => {
  let fx: ShopGateway;
  let next = 1001;
  const del = (who: string) =>
    callPipeline(fx.gw, 'deleteCustomer', { customerId: `c_${next++}` }, who, SCOPES);
  /** Spends `who`'s budget of 2 and passes it: the caller is then read-only. */
  async function restrict(who: string) {
    expect(codeOf(await del(who))).toBe('OK');
    expect(codeOf(await del(who))).toBe('OK');
    const over = await del(who);
    expect(codeOf(over)).toBe('BUDGET_EXCEEDED');
    return over;
  }
  const cli = (token: string, ...args: string[]) =>
    runCliAsync(args, cliEnv({ MCP_WARDEN_ADMIN_TOKEN: token, MCP_WARDEN_ADMIN_URL: fx.gw.adminUrl! }));

  let browser: Browser | undefined;
  let page: Page;
  let pageErrors: string[] = [];
  let cspViolations: string[] = [];

  beforeAll(async () => {
    fx = await startShopGateway({ policy: POLICY, admin: true });
    if (haveBrowser) {
      mkdirSync(SHOTS, { recursive: true });
      ({ browser, page, cspViolations, pageErrors } = await openPage({ width: 1366, height: 900 }));
    }
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await fx?.close();
  });

  it('alerts once and counts the restriction; later writes are CALLER_READ_ONLY', async () => {
    await restrict('key:mallory');
    const write = await callPipeline(
      fx.gw,
      'createOrder',
      { body: { customerId: 'c_1010', items: [{ sku: 'sku-1', quantity: 1 }] } },
      'key:mallory',
      SCOPES,
    );
    expect(codeOf(write)).toBe('CALLER_READ_ONLY');
    expect(textOf(write)).toContain('destructive-calls');
    const admin = adminApi(fx.gw.adminUrl!, ADMIN_TOKEN);
    const alerts = (await admin('GET', '/alerts')).body.alerts as Array<Record<string, unknown>>;
    expect(alerts.filter((a) => a.rule === 'budgetExceeded')).toEqual([
      expect.objectContaining({ subject: 'key:mallory', value: 2, threshold: 2 }),
    ]);
    const metrics = await (
      await fetch(`${fx.gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).text();
    expect(metrics).toMatch(/mcp_warden_budget_restrictions_total\{budget="destructive-calls"\} 1/);
  });

  it('lists and lifts with the CLI (the admin token required); the lift is audited', async () => {
    const refused = await cli('not-the-admin-token-0123456789', 'restricted', 'list').then(
      () => 'ran',
      (e: { code: number }) => e.code,
    );
    expect(refused).not.toBe('ran');
    const list = await cli(ADMIN_TOKEN, 'restricted', 'list');
    expect(list.stdout).toMatch(
      /^key:mallory +destructive-calls +2\/2 calls per 3600 s +deleteCustomer +since /m,
    );
    const json = JSON.parse((await cli(ADMIN_TOKEN, 'restricted', 'list', '--format', 'json')).stdout);
    expect(json).toEqual([
      expect.objectContaining({ principal: 'key:mallory', budget: 'destructive-calls' }),
    ]);
    const lifted = await cli(
      ADMIN_TOKEN,
      'restricted',
      'lift',
      'key:mallory',
      '--reason',
      'reviewed the deletes',
    );
    expect(lifted.stdout).toContain('lifted: key:mallory (budget destructive-calls');
    await expectAudited(fx.auditFile, {
      kind: 'control',
      action: 'budget.lift',
      target: 'key:mallory',
      actor: 'admin',
    });
    expect((await cli(ADMIN_TOKEN, 'restricted', 'list')).stdout).toBe('no restricted callers\n');
    expect(codeOf(await del('key:mallory'))).toBe('OK');
  });

  describe.runIf(haveBrowser)('on the dashboard (headless Chromium)', () => {
    it('shows the restricted caller and lifts it behind a confirmation', async () => {
      await restrict('key:trent');
      await page.goto(`${fx.gw.adminUrl}/ui/#/restricted`);
      await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Restricted' }).waitFor();
      const row = page.locator('tr[data-principal="key:trent"]');
      await expect.poll(() => row.textContent()).toContain('destructive-calls');
      expect(await row.textContent()).toContain('2 of 2 calls per 3600 s');
      expect(await row.textContent()).toContain('deleteCustomer');
      await page.screenshot({ path: join(SHOTS, 'restricted-list.png'), fullPage: true });
      await row.getByRole('button', { name: 'Lift the restriction of key:trent' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      expect(await dialog.textContent()).toContain('key:trent');
      await dialog.getByRole('button', { name: 'Lift' }).click();
      await expect.poll(() => page.getByRole('status').textContent()).toContain('Lifted key:trent');
      await expect.poll(() => page.locator('tr[data-principal="key:trent"]').count()).toBe(0);
      expect(codeOf(await del('key:trent'))).toBe('OK');
      await expectAudited(fx.auditFile, { kind: 'control', action: 'budget.lift', target: 'key:trent' });
      expect(cspViolations).toEqual([]);
      expect(pageErrors).toEqual([]);
    });
  });
});
