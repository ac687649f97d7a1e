import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ShopGateway, startShopGateway } from '../support/gateway.js';
import { readAudit, waitFor } from '../support/wait.js';

const POLICY = `version: 1
toolsList: { outputSchemas: true }
fields:
  loyaltyTier: financial
rules:
  - match: { name: listCustomers }
    masking: { pii: allow }
    maxItems: 5
    audit: digest
  - match: { name: getCustomer }
    fields: { createdAt: pii }
    audit: none
  - match: { name: searchProducts }
    masking: { financial: drop }
    fields: { price: financial }
`;

describe('data protection configured in the policy (real client, real upstream)', () => {
  let fx: ShopGateway;
  let client: Client;
  const audit = () => readAudit(fx.auditFile).filter((l) => l.kind === 'call');

  beforeAll(async () => {
    fx = await startShopGateway({ policy: POLICY });
    client = await fx.connect({ name: 'protect-e2e', era: { pin: '2026-07-28' } });
  });
  afterAll(() => fx?.close());

  it('allows PII where the policy says so, still redacts secrets by value, and cuts lists with a note', async () => {
    const r = await client.callTool({ name: 'listCustomers', arguments: { limit: 20 } });
    expect(r.isError).toBeFalsy();
    const data = (r.structuredContent as { data: Array<Record<string, unknown>> }).data;
    expect(data).toHaveLength(5);
    expect(data[0]!.email).toBe('ada.lovelace@example.org');
    expect(data[0]!.loyaltyTier).toBe('b***');
    expect(JSON.stringify(r)).toContain('[REDACTED:stripe-key]');
    expect((r.content as Array<{ text: string }>).at(-1)!.text).toMatch(
      /truncated: 5 of 20 items at \$\.data; ask for at most 5 items per call \(limit=5\)/,
    );
  });

  it('applies field tags per tool and drops a class from the published schema too', async () => {
    const c = (await client.callTool({ name: 'getCustomer', arguments: { customerId: 'c_1001' } }))
      .structuredContent as Record<string, unknown>;
    expect(c.createdAt).toBe('2***');
    const p = (await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } }))
      .structuredContent as {
      result: Array<Record<string, unknown>>;
    };
    expect(p.result[0]).toEqual({ sku: 'MS-02', name: 'Wireless mouse', inStock: true });
    const listed = (await client.listTools()).tools.find((t) => t.name === 'searchProducts')!;
    expect(JSON.stringify(listed.outputSchema)).not.toContain('"price"');
  });

  it('writes the audit at each tool’s detail level, with redaction counts', async () => {
    // One record per call above (three tools): written just after each answer.
    const lines = await waitFor(
      () => {
        const lines = audit();
        const tools = ['listCustomers', 'getCustomer', 'searchProducts'];
        return tools.every((t) => lines.some((l) => l.tool === t)) && lines;
      },
      { what: 'a call record of each of the three tools' },
    );
    const list = lines.find((l) => l.tool === 'listCustomers')!;
    expect(list.args).toBeUndefined();
    expect(list.response).toBeUndefined();
    expect(list.argsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(list.responseBytes).toBeGreaterThan(100);
    // Masking runs before the list is cut: every item of the page was masked.
    expect(list.redactions).toMatchObject({ 'stripe-key': 1, 'masked:financial': 20 });
    const get = lines.find((l) => l.tool === 'getCustomer')!;
    expect(get.args).toBeUndefined();
    expect(get.argsDigest).toBeUndefined();
    const search = lines.find((l) => l.tool === 'searchProducts')!;
    expect(search.args).toEqual({ q: 'mouse' });
    expect(search.response).toContain('Wireless mouse');
    expect(search.redactions).toMatchObject({ 'dropped:financial': 1 });
  });
});
