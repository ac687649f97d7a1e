import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { type ShopGateway, startShopGateway } from '../support/gateway.js';
import { listen } from '../support/http.js';
import { ADMIN_TOKEN } from '../support/shop.js';
import { waitFor } from '../support/wait.js';

/** A webhook receiver: every POSTed body, by path. */
async function receiver(): Promise<{ url: string; got: Record<string, unknown[]>; close(): Promise<void> }> {
  const got: Record<string, unknown[]> = {};
  const server = await listen(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const key = req.url ?? '';
    got[key] ??= [];
    got[key].push(JSON.parse(Buffer.concat(chunks).toString()));
    res.writeHead(204).end();
  });
  return { ...server, got };
}

describe('metrics and alerts', () => {
  let fx: ShopGateway;
  let hooks: Awaited<ReturnType<typeof receiver>>;
  let gw: Gateway;
  let client: Client;

  beforeAll(async () => {
    hooks = await receiver();
    const policy = [
      'version: 1',
      'admin: { token: env:ADMIN_TOKEN }',
      'alerts:',
      '  webhooks:',
      `    - { url: "${hooks.url}/json" }`,
      `    - { url: "${hooks.url}/slack", format: slack }`,
      '  cooldownSeconds: 3600',
      '  errorRate: { windowSeconds: 60, ratio: 0.5, minCalls: 4 }',
      '  deniedRate: { windowSeconds: 60, count: 3 }',
    ].join('\n');
    fx = await startShopGateway({ policy, admin: true });
    gw = fx.gw;
    client = await fx.connect({ name: 'observe-e2e' });
  });
  afterAll(async () => {
    await fx?.close();
    await hooks?.close();
  });

  it('fires each alert exactly once per breach, to every webhook', async () => {
    await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
    await client.callTool({ name: 'searchProducts', arguments: { q: 'cable' } });
    // Upstream failures on one tool: the breach starts at the 4th call and goes on.
    for (let i = 0; i < 8; i++)
      await client.callTool({ name: 'getOrder', arguments: { orderId: `o_${9000 + i}` } });
    // Denied calls by one principal.
    for (let i = 0; i < 6; i++)
      await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1001' } }).catch(() => {});
    await gw.alerts.flush();
    const json = (hooks.got['/json'] ?? []) as Array<{ rule: string; subject: string; source: string }>;
    expect(json.map((a) => `${a.rule}:${a.subject}`).sort()).toEqual([
      'deniedRate:anonymous',
      'errorRate:getOrder',
      'firstUse:anonymous → searchProducts',
    ]);
    expect(json.every((a) => a.source === 'mcp-warden')).toBe(true);
    const slack = (hooks.got['/slack'] ?? []) as Array<{ text: string }>;
    expect(slack).toHaveLength(3);
    expect(slack.map((s) => s.text).join('\n')).toContain('getOrder: 100% of its last');
    // Alerts never carry arguments.
    expect(JSON.stringify(hooks.got)).not.toContain('o_900');
  });

  it('serves Prometheus metrics behind the admin token, with bounded labels', async () => {
    await client.callTool({ name: 'no-such-tool-\u0001', arguments: {} }).catch(() => {});
    expect((await fetch(new URL('/metrics', gw.adminUrl!))).status).toBe(401);
    const res = await fetch(new URL('/metrics', gw.adminUrl!), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="searchProducts",decision="allowed",code="OK"} 2',
    );
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="getOrder",decision="allowed",code="UPSTREAM_STATUS"} 8',
    );
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="(unknown)",decision="denied",code="TOOL_NOT_FOUND"} 1',
    );
    expect(text).toContain('mcp_warden_upstream_responses_total{tool="getOrder",class="4xx"} 8');
    expect(text).toMatch(/mcp_warden_alerts_fired_total\{rule="errorRate"\} 1/);
    expect(text).toMatch(/mcp_warden_audit_write_duration_seconds_count \d+/);
    expect(text).toMatch(/mcp_warden_call_duration_seconds_bucket\{le="0.005",tool="searchProducts"\}/);
    expect(text).not.toContain('anonymous');
  });
});

describe('alert defaults and delivery', () => {
  it('keeps the default rules when `alerts:` names only webhooks', async () => {
    const hooks = await receiver();
    const fx = await startShopGateway({
      policy: ['version: 1', 'alerts:', '  webhooks:', `    - { url: "${hooks.url}/json" }`].join('\n'),
    });
    try {
      const client = await fx.connect({ name: 'defaults-e2e' });
      // The default denied-calls rule: 20 in 300 s by one principal.
      for (let i = 0; i < 20; i++)
        await client
          .callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1001' } })
          .catch(() => {});
      await fx.gw.alerts.flush();
      const rules = ((hooks.got['/json'] ?? []) as Array<{ rule: string }>).map((a) => a.rule);
      expect(rules).toEqual(['deniedRate']);
    } finally {
      await fx.close();
      await hooks.close();
    }
  });

  it('delivers the alerts of calls answered just before shutdown (their observers run at close)', async () => {
    const hooks = await receiver();
    const fx = await startShopGateway({
      policy: ['version: 1', 'alerts:', '  webhooks:', `    - { url: "${hooks.url}/json" }`].join('\n'),
    });
    try {
      // Observers are told after the answer, on the next turn of the event loop: closing in the same
      // turn leaves this call's first-use alert to the pipeline's close, and shutdown still delivers it.
      const r = await fx.gw.pipeline.call({
        name: 'searchProducts',
        arguments: { q: 'mouse' },
        principal: { id: 'key:last-call', scopes: ['tools:read'], via: 'api-key' },
      });
      expect(r.isError).toBeFalsy();
      await fx.close();
      const rules = ((hooks.got['/json'] ?? []) as Array<{ rule: string }>).map((a) => a.rule);
      expect(rules).toEqual(['firstUse']);
    } finally {
      await hooks.close();
    }
  });

  it('never holds shutdown longer than the webhook flush limit (2 s) for a receiver that hangs', async () => {
    let received = 0;
    const hung = await listen(() => {
      received++;
    });
    const fx = await startShopGateway({
      policy: ['version: 1', 'alerts:', '  webhooks:', `    - { url: "${hung.url}/hang" }`].join('\n'),
    });
    try {
      const client = await fx.connect({ name: 'hung-e2e' });
      // A first use is an alert: its delivery hangs.
      await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
      await waitFor(() => received === 1, { what: 'the hung receiver to get the alert' });
      let closed = false;
      const closing = fx.close().then(() => {
        closed = true;
      });
      await waitFor(() => closed, { what: 'the gateway to close', timeout: 2000 + 1500 });
      await closing;
    } finally {
      await hung.close();
    }
  });
});
