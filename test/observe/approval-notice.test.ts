import { describe, expect, it } from 'vitest';
import { approvalLink } from '../../src/observe/approval-notice.js';
import { callPipeline, codeOf, startShopGateway, textOf } from '../support/gateway.js';
import { listen } from '../support/http.js';
import { approvalIdOf, OPERATOR_ENV, OPERATOR_LINES } from '../support/operators.js';
import { ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { waitFor } from '../support/wait.js';

/** A webhook receiver: every JSON body posted to it, by path. */
async function receiver() {
  const got: Array<{ path: string; body: Record<string, unknown> }> = [];
  const server = await listen((req, res) => {
    let text = '';
    req.on('data', (d) => {
      text += d;
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  return { ...server, got };
}

describe('approval notices on the alert webhooks', () => {
  it('posts JSON and Slack notices with the id, tool, requester, expiry and the dashboard link — no arguments, no secrets', async () => {
    const hooks = await receiver();
    const fx = await startShopGateway({
      policy: shopPolicy(
        [
          ...OPERATOR_LINES,
          '  publicUrl: https://warden.example.com/ops/',
          'alerts:',
          '  firstUse: false',
          '  webhooks:',
          `    - { url: "${hooks.url}/json" }`,
          `    - { url: "${hooks.url}/slack", format: slack }`,
        ],
        ['  - match: { name: deleteCustomer }', '    enabled: true', '    approval: operator'],
      ),
      admin: true,
      env: OPERATOR_ENV,
    });
    try {
      const r = await callPipeline(fx.gw, 'deleteCustomer', { customerId: 'c_1021' }, 'key:carol', [
        'tools:delete',
      ]);
      expect(codeOf(r)).toBe('APPROVAL_PENDING');
      const id = approvalIdOf(textOf(r));
      await waitFor(() => hooks.got.length >= 2, { what: 'both webhook notices' });
      const link = `https://warden.example.com/ops/ui/#/approvals/${id}`;

      const json = hooks.got.find((h) => h.path === '/json')!.body;
      expect(json).toMatchObject({
        source: 'mcp-warden',
        event: 'approval.requested',
        link,
        approval: {
          id,
          tool: 'deleteCustomer',
          method: 'DELETE',
          path: '/customers/{customerId}',
          requester: 'key:carol',
          approversNeeded: 1,
        },
      });
      const a = json.approval as { expiresAt: string; requestedAt: string };
      expect(Date.parse(a.expiresAt) - Date.parse(a.requestedAt)).toBe(3600 * 1000);
      expect(json.message).toContain(a.expiresAt);

      const slack = hooks.got.find((h) => h.path === '/slack')!.body;
      expect(Object.keys(slack)).toEqual(['text']);
      expect(slack.text).toContain(`<${link}|Open approval ${id}>`);
      expect(slack.text).toContain('key:carol asks to run deleteCustomer (DELETE /customers/{customerId})');
      expect(slack.text).toContain(a.expiresAt);

      // Neither the arguments nor any token travel with a notice.
      const all = JSON.stringify(hooks.got);
      expect(all).not.toContain('c_1021');
      for (const secret of [ADMIN_TOKEN, ...Object.values(OPERATOR_ENV), fx.shop.key])
        expect(all).not.toContain(secret);
    } finally {
      await fx.close();
      await hooks.close();
    }
  });

  it('links to the admin port by default, and the link alone shows nothing of the request', async () => {
    const hooks = await receiver();
    const fx = await startShopGateway({
      policy: shopPolicy(
        [
          ...OPERATOR_LINES,
          'alerts:',
          '  firstUse: false',
          '  webhooks:',
          `    - { url: "${hooks.url}/json" }`,
        ],
        ['  - match: { name: deleteCustomer }', '    enabled: true', '    approval: operator'],
      ),
      admin: true,
      env: OPERATOR_ENV,
    });
    try {
      const r = await callPipeline(fx.gw, 'deleteCustomer', { customerId: 'c_1022' }, 'key:carol', [
        'tools:delete',
      ]);
      const id = approvalIdOf(textOf(r));
      await waitFor(() => hooks.got.length >= 1, { what: 'the webhook notice' });
      const link = hooks.got[0]!.body.link as string;
      expect(link).toBe(approvalLink(fx.gw.adminUrl!, id));
      expect(link).toBe(`${fx.gw.adminUrl}/ui/#/approvals/${id}`);
      // The browser fetches the page without its fragment: the app shell, which asks for a login.
      const page = await fetch(link);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).not.toContain(id);
      expect(html).not.toContain('c_1022');
      // Its data needs a session or a token.
      const data = await fetch(new URL(`/approvals/${id}`, fx.gw.adminUrl));
      expect(data.status).toBe(401);
      // GET never decides: the link cannot be "clicked" into an approval.
      const get = await fetch(new URL(`/approvals/${id}/approve`, fx.gw.adminUrl), {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(get.status).toBe(404);
      const still = await fetch(new URL(`/approvals/${id}`, fx.gw.adminUrl), {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(((await still.json()) as { status: string }).status).toBe('pending');
    } finally {
      await fx.close();
      await hooks.close();
    }
  });
});
