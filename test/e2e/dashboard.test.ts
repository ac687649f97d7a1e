import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { haveBrowser, openPage, SHOTS } from '../support/browser.js';
import { type ShopGateway, startShopGateway } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { tempPath } from '../support/paths.js';
import { ADMIN_LINES, ADMIN_TOKEN, rugPull, SHOP_SPEC, shopPolicy } from '../support/shop.js';
import { eventually } from '../support/wait.js';

/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core. CI installs chromium
 * and sets MCP_WARDEN_REQUIRE_BROWSER=1, so there a missing browser fails the run instead of skipping.
 */

/** The page's globals, inside page.evaluate (this file is type-checked without the DOM library). */
type PageGlobals = { document: { cookie: string; activeElement: { textContent: string | null } | null } };

const POLICY_V1 = shopPolicy([
  ...ADMIN_LINES,
  'callers:',
  '  anonymous: { scopes: [tools:read, tools:write], reason: loopback test }',
]);

describe.runIf(haveBrowser)('the dashboard in headless Chromium', () => {
  let fx: ShopGateway;
  let gw: Gateway;
  let browser: Browser;
  let page: Page;
  let client: Client;
  let policyFile: string;
  let specFile: string;
  let cspViolations: string[] = [];
  let pageErrors: string[] = [];

  const toolNames = async () => (await client.listTools()).tools.map((t) => t.name);
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const goto = async (title: string) => {
    await page.getByRole('link', { name: title, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: title }).waitFor();
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // A copy, so a test can change the spec under the gateway (a "rug pull" to approve).
    specFile = tempPath('openapi.yaml');
    copyFileSync(SHOP_SPEC, specFile);
    fx = await startShopGateway({
      spec: specFile,
      policy: POLICY_V1,
      admin: true,
      serve: { watchPolicy: true },
    });
    ({ gw, policyFile } = fx);
    client = await fx.connect({ name: 'dashboard-e2e' });
    ({ browser, page, cspViolations, pageErrors } = await openPage());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await fx?.close();
  });

  it('logs in through the form (the token never lands in a script-readable place)', async () => {
    await page.goto(gw.adminUrl!);
    await page.getByLabel('Admin token').waitFor();
    await shot('login');
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not the admin token');
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByLabel(/Your name/).fill('alice');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tools' }).waitFor();
    expect(await page.getByText('Signed in as').textContent()).toContain('admin:alice');
    // HttpOnly: the page's own script cannot read the session.
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie)).toBe('');
    const cookies = await page.context().cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: true });
    expect(cookies[0]!.value).not.toBe(ADMIN_TOKEN);
  });

  it('disables a tool with one click, and an MCP client loses it', async () => {
    expect(await toolNames()).toContain('searchProducts');
    const row = page.locator('tr[data-tool="searchProducts"]');
    await expect.poll(() => row.textContent()).toContain('exposed');
    // Hidden tools are listed with the reason.
    expect(await page.locator('tr[data-tool="listApiKeys"]').textContent()).toMatch(/hidden.*credential/i);
    await shot('tools');
    await page.getByRole('button', { name: 'Disable searchProducts' }).click();
    await expect.poll(() => row.textContent()).toContain('runtime: disabled');
    expect(await toolNames()).not.toContain('searchProducts');
    await shot('tools-disabled');
    await page.getByRole('button', { name: 'Reset searchProducts to the policy' }).click();
    await expect.poll(() => row.textContent()).not.toContain('runtime: disabled');
    expect(await toolNames()).toContain('searchProducts');
  });

  it('flips the kill switch to read-only after a confirmation, and writes disappear', async () => {
    await goto('Kill switch');
    expect(await toolNames()).toContain('createOrder');
    await page.getByRole('button', { name: 'Switch to read-only' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await shot('kill-switch-confirm');
    // Cancel changes nothing.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await toolNames()).toContain('createOrder');
    await page.getByRole('button', { name: 'Switch to read-only' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Yes, switch to read-only' }).click();
    await expect.poll(() => page.locator('[data-mode]').getAttribute('data-mode')).toBe('read-only');
    const names = await toolNames();
    expect(names).not.toContain('createOrder');
    expect(names).toContain('searchProducts');
    await shot('kill-switch');
    await page.getByRole('button', { name: 'Switch to normal' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Yes, switch to normal' }).click();
    await expect.poll(() => page.locator('[data-mode]').getAttribute('data-mode')).toBe('read-write');
    expect(await toolNames()).toContain('createOrder');
  });

  it('filters the audit by tool and decision, and shows a record with its redactions', async () => {
    await client.callTool({ name: 'searchProducts', arguments: { q: 'mug' } });
    await client.callTool({ name: 'searchProducts', arguments: { q: 42 } });
    await client.callTool({ name: 'listCustomers', arguments: {} });
    await goto('Audit');
    const form = page.getByRole('form', { name: 'Audit filters' });
    await form.getByLabel('Tool').fill('searchProducts');
    await form.getByLabel('Decision').selectOption('denied');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    const rows = page.locator('table.records tbody tr');
    // The unfiltered list already has rows: wait for the filtered one itself, the denied call in it.
    await eventually(
      async () => {
        const texts = await rows.allTextContents();
        expect(texts.length).toBeGreaterThan(0);
        expect(texts.every((t) => t.includes('searchProducts') && t.includes('denied'))).toBe(true);
        expect(texts.some((t) => t.includes('INVALID_ARGUMENT'))).toBe(true);
      },
      { what: 'the audit table to show only denied searchProducts calls, the invalid one among them' },
    );
    await shot('audit-filtered');
    // A call's record as the agent saw it: PII masked or placeholders marked.
    await form.getByLabel('Tool').fill('listCustomers');
    await form.getByLabel('Decision').selectOption('');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await eventually(
      async () => {
        const texts = await rows.allTextContents();
        expect(texts.length).toBeGreaterThan(0);
        expect(texts.every((t) => t.includes('listCustomers'))).toBe(true);
      },
      { what: 'the audit table to show only listCustomers calls' },
    );
    await rows
      .first()
      .getByRole('button', { name: /Details/ })
      .click();
    const detail = page.getByRole('complementary', { name: 'Record detail' });
    await expect.poll(() => detail.textContent()).toContain('"tool": "listCustomers"');
    expect(await detail.textContent()).toMatch(/Redacted:.*masked:email × \d+/);
    // The shop's notes carry a pasted API key: caught by value, shown as a marked placeholder.
    expect(await detail.locator('mark.redacted').first().textContent()).toMatch(/^\[REDACTED:[a-z-]+\]$/);
    await shot('audit-detail');
    // Live tail: a new call appears without reloading. Count from the unfiltered list, not from the
    // filtered one still shown for a moment after Clear.
    await form.getByRole('button', { name: 'Clear' }).click();
    const before = await eventually(
      async () => {
        const texts = await rows.allTextContents();
        expect(texts.some((t) => t.includes('searchProducts'))).toBe(true);
        expect(texts.some((t) => t.includes('listCustomers'))).toBe(true);
        return texts.length;
      },
      { what: 'the unfiltered audit table after Clear' },
    );
    await client.callTool({ name: 'searchProducts', arguments: { q: 'tea' } });
    // Exactly the one new record, at the top: the tail appended it, nothing else changed.
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(before + 1);
    expect(await rows.first().textContent()).toContain('searchProducts');
  });

  it('charts calls and latency per tool', async () => {
    // The three searchProducts calls above (one denied), first as the server counts them…
    const admin = adminApi(gw.adminUrl!, ADMIN_TOKEN);
    await eventually(
      async () => {
        const { summary } = (await admin('GET', '/series?minutes=15')).body as {
          summary: Record<string, { calls: number; denied: number }>;
        };
        expect(summary.searchProducts).toMatchObject({ calls: 3, denied: 1 });
      },
      { what: 'GET /series to count 3 searchProducts calls, 1 denied' },
    );
    // …then as the page shows them (it polls the series every 10 s).
    await goto('Metrics');
    const row = page.locator('table.summary tr[data-tool="searchProducts"]');
    await eventually(
      async () => {
        expect(await row.count()).toBe(1);
        const cells = await row.locator('td').allTextContents();
        expect(Number(cells[0])).toBeGreaterThanOrEqual(3);
        expect(Number(cells[2])).toBeGreaterThanOrEqual(1);
      },
      { what: 'the metrics table to show 3 searchProducts calls, 1 denied', timeout: 15_000 },
    );
    expect(await page.locator('figure.chart canvas').count()).toBe(2);
    await page.getByLabel('Tool').selectOption('searchProducts');
    await shot('metrics');
  });

  it('lists fired alerts and acknowledges one', async () => {
    await goto('Alerts');
    const ack = page.getByRole('button', { name: /Acknowledge alert/ }).first();
    await ack.waitFor();
    await shot('alerts');
    const label = await ack.getAttribute('aria-label');
    await ack.click();
    await expect.poll(() => page.getByRole('button', { name: label! }).count()).toBe(0);
    expect(await page.locator('tbody').textContent()).toContain('acknowledged by admin:alice');
  });

  it('shows policy versions and a diff, and rolls back with a confirmation', async () => {
    writeFileSync(policyFile, POLICY_V1.replace('    enabled: true\n', '    enabled: false\n'));
    await eventually(() => expect(gw.controller.view().policyVersion).toBe(2), {
      what: 'the edited policy to become version 2',
    });
    await goto('Policy');
    await expect.poll(() => page.locator('[data-version]').getAttribute('data-version')).toBe('2');
    await page.getByRole('button', { name: 'Compare v1 with the current version' }).click();
    await expect.poll(() => page.locator('pre.diff').textContent()).toContain('+    enabled: false');
    await shot('policy-diff');
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Yes, roll back to v1' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('now v3');
    expect(readFileSync(policyFile, 'utf8')).toBe(POLICY_V1);
    expect(gw.controller.view().policyVersion).toBe(3);
    await expect.poll(async () => (await toolNames()).includes('createOrder')).toBe(true);
    await shot('policy');
  });

  it('shows a tool changed by a spec reload as waiting, and approves it with one click', async () => {
    rugPull(specFile, 'Search products (now also sends your cart)');
    await gw.reloadSpec('test');
    expect(await toolNames()).not.toContain('searchProducts');
    await goto('Tools');
    const row = page.locator('tr[data-tool="searchProducts"]');
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toMatch(/hidden/);
    expect(await page.getByText(/1 waiting for approval/).count()).toBe(1);
    // The operator sees what changed before approving it, not only that something did.
    await row.getByText('What changed').click();
    const diff = await row.locator('pre.diff').textContent();
    expect(diff).toMatch(/-.*Search the product catalogue/);
    expect(diff).toMatch(/\+.*now also sends your cart/);
    await shot('tools-pending');
    await page.getByRole('button', { name: 'Approve searchProducts' }).click();
    await expect.poll(() => row.textContent()).toContain('exposed');
    expect(await toolNames()).toContain('searchProducts');
  });

  it('is usable from the keyboard alone, and the page broke no CSP rule and threw nothing', async () => {
    await page.goto(`${gw.adminUrl}/ui/#/tools`);
    // Only the hash changed: reload, so focus starts at the top of a fresh page.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Tools' }).waitFor();
    // Tab reaches the page links in order; Enter follows one.
    let reached = '';
    for (let i = 0; i < 10 && reached !== 'Audit'; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(
        () => (globalThis as unknown as PageGlobals).document.activeElement?.textContent ?? '',
      );
    }
    expect(reached).toBe('Audit');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
