import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, openPage, SHOTS } from '../support/browser.js';
import { callPipeline, codeOf, type ShopGateway, startShopGateway, textOf } from '../support/gateway.js';
import { type Listening, listen } from '../support/http.js';
import { ALICE_TOKEN, approvalIdOf, BOB_TOKEN, OPERATOR_ENV, OPERATOR_LINES } from '../support/operators.js';
import { shopPolicy } from '../support/shop.js';
import { expectAudited, waitFor } from '../support/wait.js';

/** The error code a client's tool result starts with, or OK. */
const code = (r: { content: unknown }) => codeOf(r as Parameters<typeof codeOf>[0]);
/**
 * Out-of-band approval, end to end, as an operator lives it: an agent's destructive call parks; the
 * webhook brings a link; the operator opens it in Chromium, logs in with their own token, reads the
 * request and approves it with a reason; the agent's repeat runs once, and only once.
 */

describe.runIf(haveBrowser)('approving a parked call on the dashboard (headless Chromium)', () => {
  let fx: ShopGateway;
  let hooks: Listening;
  const notices: Array<Record<string, unknown>> = [];
  let browser: Browser;
  let page: Page;
  let client: Client;
  let pageErrors: string[] = [];
  let cspViolations: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    hooks = await listen((req, res) => {
      let text = '';
      req.on('data', (d) => {
        text += d;
      });
      req.on('end', () => {
        notices.push(JSON.parse(text));
        res.writeHead(204).end();
      });
    });
    fx = await startShopGateway({
      // No `approval:` key: a destructive tool's default, `auto`, is the operator for this client.
      policy: shopPolicy(
        [
          ...OPERATOR_LINES,
          'callers:',
          '  anonymous: { scopes: [tools:read, tools:write, tools:delete], reason: loopback test }',
          'alerts:',
          '  firstUse: false',
          '  webhooks:',
          `    - { url: "${hooks.url}/hook" }`,
        ],
        ['  - match: { name: deleteCustomer }', '    enabled: true'],
      ),
      admin: true,
      env: OPERATOR_ENV,
    });
    // A real MCP client (2025-11-25 over Streamable HTTP) that declares no elicitation.
    client = await fx.connect({ name: 'agent-without-elicitation' });
    ({ browser, page, cspViolations, pageErrors } = await openPage({ width: 1366, height: 900 }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await fx?.close();
    await hooks?.close();
  });

  const deletesOf = (customerId: string) =>
    fx.shop.requests.filter((r) => r.method === 'DELETE' && r.url.endsWith(`/customers/${customerId}`))
      .length;
  const remove = (customerId: string) =>
    client.callTool({ name: 'deleteCustomer', arguments: { customerId } });

  it('parks, is approved through the link by a logged-in operator, runs once, and not twice', async () => {
    const parked = await remove('c_1024');
    expect(code(parked)).toBe('APPROVAL_PENDING');
    const id = approvalIdOf(textOf(parked));
    expect(deletesOf('c_1024')).toBe(0);

    const notice = await waitFor(() => notices.find((n) => (n.approval as { id?: string })?.id === id), {
      what: 'the webhook notice of the parked call',
    });
    const link = notice.link as string;
    expect(link).toBe(`${fx.gw.adminUrl}/ui/#/approvals/${id}`);

    // The link alone shows the login form, nothing of the request.
    await page.goto(link);
    await page.getByLabel('Admin token').waitFor();
    expect(await page.content()).not.toContain('c_1024');
    await page.screenshot({ path: join(SHOTS, 'approval-login.png'), fullPage: true });
    await page.getByLabel('Admin token').fill(ALICE_TOKEN);
    // A name typed here changes nothing: the token says who this is.
    await page.getByLabel(/Your name/).fill('bob');
    await page.getByRole('button', { name: 'Log in' }).click();

    // Straight to the request the link names.
    await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
    expect(await page.getByText('Signed in as').textContent()).toContain('alice');
    expect(await page.getByText('Signed in as').textContent()).not.toContain('bob');
    const facts = page.locator('dl.facts');
    await expect.poll(() => facts.textContent()).toContain(id);
    const text = (await facts.textContent())!;
    expect(text).toContain('DELETE /customers/{customerId}');
    expect(text).toContain('anonymous');
    expect(text).toContain('destructive');
    // "59 min" or "1 h 0 min": the page rounds what is left of a one-hour window.
    expect(text).toMatch(/decide within (\d+ h )?\d+ min/);
    expect(await page.locator('pre.preview').textContent()).toContain('c_1024');
    await page.screenshot({ path: join(SHOTS, 'approval-detail.png'), fullPage: true });

    // A reason is required before the confirmation even opens.
    await page.getByRole('button', { name: 'Approve…' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Give a reason');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await page.getByLabel(/Reason/).fill('Ticket 4711: the customer asked to be removed');
    await page.getByRole('button', { name: 'Approve…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('DELETE /customers/{customerId}');
    await page.screenshot({ path: join(SHOTS, 'approval-confirm.png'), fullPage: true });
    await dialog.getByRole('button', { name: 'Yes, approve' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Approved');
    await expect.poll(() => page.locator('ul.decisions').textContent()).toContain('alice');
    expect(await page.locator('ul.decisions').textContent()).toContain('Ticket 4711');

    // The agent repeats the call: it runs, once.
    expect(code(await remove('c_1024'))).toBe('OK');
    expect(deletesOf('c_1024')).toBe(1);
    const again = await remove('c_1024');
    expect(code(again)).toBe('APPROVAL_PENDING');
    expect(approvalIdOf(textOf(again))).not.toBe(id);
    expect(deletesOf('c_1024')).toBe(1);
    await expectAudited(
      fx.auditFile,
      { kind: 'approval', event: 'approved', approval: id, operator: 'alice' },
      { kind: 'approval', event: 'executed', approval: id },
      { kind: 'call', tool: 'deleteCustomer', approval: id, outcome: 'ok', confirmed: 'operator' },
    );

    // The page follows: executed, and nothing left to decide.
    await page.reload();
    await expect.poll(() => page.locator('dl.facts').textContent()).toContain(id);
    await expect.poll(() => page.locator('h2').first().textContent()).toContain('executed');
    expect(await page.getByRole('button', { name: 'Approve…' }).count()).toBe(0);
  });

  it('lists waiting requests; a deny from the list page reaches the agent', async () => {
    const parked = await remove('c_1025');
    const id = approvalIdOf(textOf(parked));
    await page.goto(`${fx.gw.adminUrl}/ui/#/approvals`);
    await page.reload();
    const row = page.locator(`tr[data-approval="${id}"]`);
    await expect.poll(() => row.textContent()).toContain('pending');
    expect(await row.textContent()).toContain('deleteCustomer');
    await page.screenshot({ path: join(SHOTS, 'approvals-list.png'), fullPage: true });
    await row.getByRole('link', { name: id }).click();
    await expect.poll(() => page.locator('dl.facts').textContent()).toContain(id);
    await page.getByLabel(/Reason/).fill('No ticket for this');
    await page.getByRole('button', { name: 'Deny…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Yes, deny' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Denied');
    const back = await remove('c_1025');
    expect(code(back)).toBe('APPROVAL_DENIED');
    expect(textOf(back)).toContain('No ticket for this');
    expect(deletesOf('c_1025')).toBe(0);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('refuses an operator approving their own call, on the page', async () => {
    // Bob logs in; the request is his own agent's (his principals name it).
    const other = await browser.newPage();
    try {
      const r = await callPipeline(fx.gw, 'deleteCustomer', { customerId: 'c_1026' }, 'key:bob-agent', [
        'tools:delete',
      ]);
      const id = approvalIdOf(textOf(r));
      await other.goto(`${fx.gw.adminUrl}/ui/#/approvals/${id}`);
      await other.getByLabel('Admin token').fill(BOB_TOKEN);
      await other.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => other.locator('dl.facts').textContent()).toContain(id);
      await other.getByLabel(/Reason/).fill('looks fine to me');
      await other.getByRole('button', { name: 'Approve…' }).click();
      await other.getByRole('dialog').getByRole('button', { name: 'Yes, approve' }).click();
      await expect.poll(() => other.getByRole('alert').textContent()).toContain('cannot approve');
      expect(deletesOf('c_1026')).toBe(0);
    } finally {
      await other.close();
    }
  });
});
