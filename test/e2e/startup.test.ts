import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCliGateway } from '../support/cli-gateway.js';
import { connectHttp, mcpClient } from '../support/gateway.js';
import { SHARED_SPECS, startUpstream } from '../support/helpers.js';
import { freePort, listen } from '../support/http.js';
import { CLI, tempTree } from '../support/paths.js';
import { ADMIN_LINES, ADMIN_TOKEN, SHOP_SPEC, shopEnv, shopPolicy, startShop } from '../support/shop.js';
import { onJsonLines, sendJson, serveArgs, spawnCli, stdioTransport } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

// Start-up (issue 22): the built CLI is one bundle run through V8's code cache
// (scripts/bundle-cli.mjs, src/lib/code-cache.ts), pins of the first catalogue are not hashed, and the Redis, PostgreSQL
// and tracing modules stay unloaded unless configured. A first call right after such a start, on a
// big spec whose YAML is parsed on the worker thread, must still go through the whole pipeline.

const ROOT = new URL('../../', import.meta.url).pathname;

describe('start-up of the built CLI', () => {
  it('is the bundle: its entry points and the chunks its manifest lists', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'dist/bundle.json'), 'utf8')) as {
      entries: string[];
      chunks: string[];
    };
    expect(manifest.entries).toEqual(['dist/cli/main.js', 'dist/openapi/load-worker.js']);
    for (const f of [...manifest.entries, ...manifest.chunks])
      expect(existsSync(join(ROOT, f)), f).toBe(true);
    const main = readFileSync(CLI, 'utf8');
    expect(main.startsWith('#!/usr/bin/env node\n')).toBe(true);
    // Imports its chunks, not the modules tsc wrote beside it (a bare `tsc` after the build puts
    // those back: `node scripts/bundle-cli.mjs` bundles again).
    const bundled = 'dist/cli/main.js is tsc output, not the bundle: run `npm run build`';
    expect(main, bundled).toContain('cli.bundle.cjs');
    expect(main).not.toMatch(/from\s*["']\.\.\/version\.js["']/);
    // The bundle is the module function src/lib/code-cache.ts runs, in ASCII (read as latin1).
    const bundle = readFileSync(join(ROOT, 'dist/cli/cli.bundle.cjs'));
    expect(bundle.toString('latin1', 0, 100)).toMatch(
      /^\(function \(exports, require, module, __filename, __dirname\) \{/,
    );
    expect(bundle.every((c) => c < 0x80)).toBe(true);
  });

  it('lists Stripe’s tools and answers a first call through the pipeline', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const funds = [{ amount: 1200, currency: 'eur', source_types: { card: 1200 } }];
      res.end(JSON.stringify({ object: 'balance', livemode: false, available: funds, pending: funds }));
    });
    const dir = tempTree({});
    const { transport, stderr } = stdioTransport(
      serveArgs({
        spec: join(SHARED_SPECS, 'stripe.yaml'),
        baseUrl: upstream.origin,
        auditFile: join(dir, 'audit.jsonl'),
        logLevel: 'warn',
      }),
      { MCP_WARDEN_CRED_BASICAUTH: 'sk_test:', MCP_WARDEN_CRED_BEARERAUTH: 'sk_test_123' },
    );
    const client = mcpClient();
    try {
      await client.connect(transport);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names.length, stderr()).toBeGreaterThan(150);
      expect(names).toContain('GetBalance');
      const result = (await client.callTool({ name: 'GetBalance', arguments: {} })) as {
        isError?: boolean;
        content: Array<{ type: string; text?: string }>;
      };
      expect(result.isError, JSON.stringify(result)).toBeFalsy();
      expect(result.content[0]?.text).toContain('"balance"');
      expect(upstream.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/balance']);
      // The call was audited, like any other.
      const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
      expect(audit).toContain('"GetBalance"');
    } finally {
      await client.close();
      await upstream.close();
    }
  }, 240_000);

  it('answers its first tools/list over stdio without the built-ins only metric pushes and cluster limiters use', async () => {
    const shop = await startShop();
    const dir = tempTree({});
    const record = join(dir, 'builtins.txt');
    const { transport, stderr } = stdioTransport(
      serveArgs({
        spec: SHOP_SPEC,
        baseUrl: shop.url,
        auditFile: join(dir, 'audit.jsonl'),
        logLevel: 'warn',
      }),
      shopEnv(shop, {
        NODE_OPTIONS: `--import=${new URL('./helpers/builtins-at-first-list.mjs', import.meta.url).pathname}`,
        WARDEN_TEST_BUILTINS: record,
      }),
    );
    const client = mcpClient();
    try {
      await client.connect(transport);
      expect((await client.listTools()).tools.length, stderr()).toBeGreaterThan(0);
      const builtins = readFileSync(record, 'utf8').split('\n');
      // The record is real: the stdio transport's own modules are in it.
      expect(builtins).toContain('net');
      // prom-client's Pushgateway (https) and rate-limiter-flexible's cluster limiters (cluster) are
      // never constructed (scripts/bundle-cli.mjs). Not http or zlib: the guard stages' undici loads
      // those, and it may be warming already (250 ms after serving) on a slow machine.
      for (const m of ['https', 'cluster']) expect(builtins).not.toContain(m);
    } finally {
      await client.close();
      await shop.close();
    }
  }, 120_000);

  it('over stdio, loads the guard stages only once a big first list has left, however slowly the client reads', async () => {
    // ~0.6 MB of tools/list: far more than a pipe holds, so while the client reads nothing the answer
    // waits in pieces. Loading the stages (undici, which loads http) during that wait held the event
    // loop, and the list's tail with it (issue 22: a 0.8 MB list came out 89–243 ms later,
    // bench/list-arrival.mjs).
    const paths: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++)
      paths[`/items${i}/{id}`] = {
        get: {
          operationId: `getItem${i}`,
          summary: `Item ${i}`,
          description: `Reads item ${i}. `.repeat(100),
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'ok' } },
        },
      };
    const dir = tempTree({
      'big.json': { openapi: '3.0.3', info: { title: 'Big', version: '1' }, paths },
    });
    const tail = join(dir, 'tail.txt');
    const started = join(dir, 'started.txt');
    const loaded = join(dir, 'loaded.txt');
    const child = spawnCli(
      serveArgs({
        spec: join(dir, 'big.json'),
        baseUrl: 'http://127.0.0.1:9',
        auditFile: join(dir, 'audit.jsonl'),
        logLevel: 'warn',
      }),
      {
        NODE_OPTIONS: `--import=${new URL('./helpers/builtins-at-list-tail.mjs', import.meta.url).pathname}`,
        WARDEN_TEST_TAIL: tail,
        WARDEN_TEST_STARTED: started,
        WARDEN_TEST_LOADED: loaded,
        WARDEN_TEST_WATCH: 'http',
      },
      'ignore',
    );
    const answers = new Map<unknown, Record<string, unknown>>();
    onJsonLines(child.stdout, (m) => answers.set(m.id, m));
    try {
      sendJson(child, {
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      await waitFor(() => answers.get(1), { what: 'the initialize answer', timeout: 60_000 });
      sendJson(child, { method: 'notifications/initialized' });
      child.stdout.pause();
      sendJson(child, { id: 2, method: 'tools/list' });
      // The answer is under way (the gateway was ready: the list is held until then)…
      await waitFor(() => existsSync(started), { what: 'the list answer begun', timeout: 60_000 });
      // …and the client reads nothing for a second more: four times what the gateway waits before
      // warming on its own (WARM_AFTER_MS), while the list's tail cannot be written.
      await new Promise((r) => setTimeout(r, 1000));
      expect(existsSync(tail), 'the list was taken whole by a pipe nobody reads').toBe(false);
      expect(existsSync(loaded), 'the stages were loaded while the list waited in the pipe').toBe(false);
      child.stdout.resume();
      const list = await waitFor(() => answers.get(2), { what: 'the tools/list answer', timeout: 30_000 });
      expect((list.result as { tools: unknown[] }).tools).toHaveLength(300);
      const atTail = await waitFor(() => existsSync(tail) && readFileSync(tail, 'utf8').split('\n'), {
        what: 'the built-ins loaded when the list had left',
      });
      // The record is real (the stdio transport's own modules are in it) and the stages were not loaded.
      expect(atTail).toContain('net');
      expect(atTail).not.toContain('http');
      // Once it has left, they are, without a call.
      await waitFor(() => existsSync(loaded), {
        what: 'the guard stages loaded after the list',
        timeout: 30_000,
      });
    } finally {
      child.kill();
    }
  }, 120_000);

  it('serves the process metrics at /metrics with an admin port (collectDefaultMetrics, loaded on first use)', async () => {
    const shop = await startShop();
    const dir = tempTree({ 'warden.yaml': shopPolicy(ADMIN_LINES) });
    const gw = await startCliGateway({
      dir,
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      port: await freePort(),
      adminPort: await freePort(),
      env: shopEnv(shop, { ADMIN_TOKEN }),
      logLevel: 'warn',
    });
    try {
      const res = await fetch(`${gw.adminUrl}/metrics`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      // The default metrics, each with the gateway's prefix: process, event loop, heap, GC, version.
      for (const name of [
        'mcp_warden_process_cpu_user_seconds_total',
        'mcp_warden_process_start_time_seconds',
        'mcp_warden_nodejs_eventloop_lag_seconds',
        'mcp_warden_nodejs_heap_size_total_bytes',
        'mcp_warden_nodejs_version_info',
      ])
        expect(text).toContain(`# TYPE ${name} `);
      expect(text).toContain('# TYPE mcp_warden_tool_calls_total counter');
    } finally {
      await gw.stop();
      await shop.close();
    }
  }, 120_000);

  it('posts an alert to a webhook (cockatiel loaded at the first delivery) from the built CLI', async () => {
    const shop = await startShop();
    const got: unknown[] = [];
    const hooks = await listen(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      got.push(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(204).end();
    });
    const policy = [
      'version: 1',
      'alerts:',
      '  webhooks:',
      `    - { url: "${hooks.url}/json" }`,
      'rules: []',
    ];
    const dir = tempTree({ 'warden.yaml': `${policy.join('\n')}\n` });
    const gw = await startCliGateway({
      dir,
      spec: SHOP_SPEC,
      baseUrl: shop.url,
      port: await freePort(),
      env: shopEnv(shop),
      logLevel: 'warn',
    });
    try {
      const client = await connectHttp(gw.mcpUrl, { name: 'webhook-cli' });
      await client.callTool({ name: 'searchProducts', arguments: { q: 'mouse' } });
      await client.close();
      // The first use of a tool by a principal fires `firstUse`, posted in the background.
      await waitFor(() => got.length > 0, { what: 'the alert posted', timeout: 20_000 });
      expect(got[0]).toMatchObject({ rule: 'firstUse', source: 'mcp-warden' });
    } finally {
      await gw.stop();
      await hooks.close();
      await shop.close();
    }
  }, 120_000);
});
