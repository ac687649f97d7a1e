import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors/index.js';
import { Metrics } from '../../src/observe/metrics.js';
import { startShopGateway } from '../support/gateway.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';
import { contextFor } from '../support/pipeline.js';
import { ADMIN_LINES, shopPolicy } from '../support/shop.js';

describe('metrics labels in an API set', () => {
  it('label a known tool with its API from the catalogue, and nothing the caller sends', async () => {
    const catalog = await catalogOf(
      minimalSpec({
        '/pets': { get: { operationId: 'pets_list', responses: jsonOk() } },
        '/orders': { get: { operationId: 'shop_orders', responses: jsonOk() } },
      }),
    );
    const [pets, shop] = catalog.tools.map((t, i) => ({ ...t, api: i === 0 ? 'pets' : 'shop' }));
    const metrics = new Metrics(() => new Set(['pets_list', 'shop_orders']));

    const ok = contextFor({ name: 'pets_list' });
    ok.tool = pets!;
    ok.response = {
      status: 200,
      contentType: 'application/json',
      headers: {},
      body: Buffer.from('{}'),
      truncated: false,
      ms: 2,
    };
    metrics.observeCall(ok, undefined);
    const other = contextFor({ name: 'shop_orders' });
    other.tool = shop!;
    metrics.observeCall(other, undefined);
    // A made-up name stays `(unknown)` with no API, whatever API it claims to belong to.
    const made = contextFor({ name: 'evil_api_name_1' });
    made.tool = { ...pets!, api: 'evil' };
    made.error = new WardenError('TOOL_NOT_FOUND', 'Unknown tool');
    metrics.observeCall(made, undefined);

    const text = await metrics.text();
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="pets_list",api="pets",decision="allowed",code="OK"} 1',
    );
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="shop_orders",api="shop",decision="allowed",code="OK"} 1',
    );
    expect(text).toContain('mcp_warden_upstream_responses_total{tool="pets_list",api="pets",class="2xx"} 1');
    expect(text).toContain(
      'mcp_warden_tool_calls_total{tool="(unknown)",decision="denied",code="TOOL_NOT_FOUND"} 1',
    );
    expect(text).not.toContain('evil');
    const apis = new Set([...text.matchAll(/api="([^"]*)"/g)].map((m) => m[1]));
    expect([...apis].sort()).toEqual(['pets', 'shop']);
  });

  it('carry no api label for a single spec', async () => {
    const catalog = await catalogOf(
      minimalSpec({ '/pets': { get: { operationId: 'listPets', responses: jsonOk() } } }),
    );
    const metrics = new Metrics(() => new Set(['listPets']));
    const ctx = contextFor({ name: 'listPets' });
    ctx.tool = catalog.tools[0]!;
    metrics.observeCall(ctx, undefined);
    const text = await metrics.text();
    expect(text).toContain('mcp_warden_tool_calls_total{tool="listPets",decision="allowed",code="OK"} 1');
    expect(text).not.toContain('api=');
  });

  it('count every call by the next read, however reads and calls interleave, never twice', async () => {
    const catalog = await catalogOf(
      minimalSpec({ '/pets': { get: { operationId: 'listPets', responses: jsonOk() } } }),
    );
    const metrics = new Metrics(() => new Set(['listPets']));
    const call = (code?: 'UPSTREAM_STATUS') => {
      const ctx = contextFor({ name: 'listPets' });
      ctx.tool = catalog.tools[0]!;
      ctx.response = {
        status: code ? 502 : 200,
        contentType: 'application/json',
        headers: {},
        body: Buffer.from('{}'),
        truncated: false,
        ms: 1,
      };
      if (code) ctx.error = new WardenError(code, 'The upstream API answered HTTP 502.');
      metrics.observeCall(ctx, undefined);
    };
    const line = (text: string, prefix: string) =>
      text.split('\n').find((l) => l.startsWith(prefix)) ?? `${prefix} (none)`;
    const ok = 'mcp_warden_tool_calls_total{tool="listPets",decision="allowed",code="OK"}';
    const failed = 'mcp_warden_tool_calls_total{tool="listPets",decision="denied",code="UPSTREAM_STATUS"}';
    const fives = 'mcp_warden_upstream_responses_total{tool="listPets",class="5xx"}';
    call();
    call();
    let text = await metrics.text();
    expect(line(text, ok)).toBe(`${ok} 2`);
    text = await metrics.text();
    expect(line(text, ok)).toBe(`${ok} 2`);
    call();
    call('UPSTREAM_STATUS');
    text = await metrics.text();
    expect(line(text, ok)).toBe(`${ok} 3`);
    expect(line(text, failed)).toBe(`${failed} 1`);
    expect(line(text, fives)).toBe(`${fives} 1`);
    // A read of the one metric (as a dashboard might) sees the same counts.
    const calls = await metrics.registry.getSingleMetric('mcp_warden_tool_calls_total')!.get();
    expect(calls.values.reduce((n, v) => n + v.value, 0)).toBe(4);
  });
});

describe('runtime metrics', () => {
  const RUNTIME = 'mcp_warden_nodejs_eventloop_lag_seconds';

  it('start when the metrics are first read, not when they are built (no idle wake-ups for nobody)', async () => {
    const metrics = new Metrics(() => new Set());
    expect(metrics.registry.getSingleMetric(RUNTIME)).toBeUndefined();
    expect(await metrics.registry.metrics()).not.toContain('mcp_warden_process_cpu');
    const text = await metrics.text();
    expect(text).toContain('mcp_warden_process_cpu_user_seconds_total');
    expect(metrics.registry.getSingleMetric(RUNTIME)).toBeDefined();
    // Started once: a second read neither throws (a second registration would) nor duplicates them.
    const again = await metrics.text();
    expect(again.match(/^# TYPE mcp_warden_process_cpu_user_seconds_total /gm)).toHaveLength(1);
  });
});

describe('runtime metrics of a gateway', () => {
  it('run from the start when the admin port is open, and not at all without one', async () => {
    const withAdmin = await startShopGateway({ policy: shopPolicy(ADMIN_LINES), admin: true });
    const without = await startShopGateway({ policy: shopPolicy() });
    try {
      expect(
        withAdmin.gw.metrics.registry.getSingleMetric('mcp_warden_nodejs_eventloop_lag_seconds'),
      ).toBeDefined();
      expect(
        without.gw.metrics.registry.getSingleMetric('mcp_warden_nodejs_eventloop_lag_seconds'),
      ).toBeUndefined();
    } finally {
      await withAdmin.close();
      await without.close();
    }
  });
});
