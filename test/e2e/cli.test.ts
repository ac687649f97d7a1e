import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mcpClient } from '../support/gateway.js';
import { jsonOk, minimalSpec, SHARED_SPECS, tempTree } from '../support/helpers.js';
import { CLI, tempPath } from '../support/paths.js';
import { SHOP_SPEC } from '../support/shop.js';
import { runCli, stdioTransport } from '../support/stdio.js';

const run = (...args: string[]) => runCli(args);

const shop = minimalSpec(
  {
    '/customers': {
      get: {
        operationId: 'listCustomers',
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer' } }],
        responses: jsonOk({
          type: 'array',
          items: { type: 'object', properties: { email: { type: 'string' }, name: { type: 'string' } } },
        }),
      },
    },
    '/customers/{id}': {
      delete: {
        operationId: 'deleteCustomer',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'gone' } },
      },
    },
    '/admin/export': {
      get: {
        operationId: 'exportAll',
        responses: { '200': { description: 'csv', content: { 'text/csv': {} } } },
      },
    },
  },
  {
    components: { securitySchemes: { shopKey: { type: 'apiKey', in: 'header', name: 'X-Shop-Key' } } },
    security: [{ shopKey: [] }],
  },
);

describe('mcp-warden scan', () => {
  it('prints a table with exposure, risks and reasons, and exits 0', () => {
    const dir = tempTree({ 'shop.json': shop });
    const r = run('scan', join(dir, 'shop.json'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 operations: 1 exposed by default, 2 hidden/);
    expect(r.stdout).toMatch(/exposed\s+listCustomers/);
    expect(r.stdout).toMatch(/deleteCustomer: write: DELETE can change state \| destructive/);
    expect(r.stdout).toMatch(/exportAll: admin: .*bulk-export/);
  });

  it('emits a documented, stable JSON report on stdout only', () => {
    const dir = tempTree({ 'shop.json': shop });
    const r = run('scan', join(dir, 'shop.json'), '--format', 'json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.reportVersion).toBe(1);
    // listCustomers has no page-size maximum; exportAll lists everything without pagination.
    expect(report.summary).toMatchObject({ operations: 3, exposed: 1, hidden: 2, unbounded: 2 });
    const list = report.tools.find((t: { name: string }) => t.name === 'listCustomers');
    expect(list).toMatchObject({
      method: 'GET',
      path: '/customers',
      exposed: true,
      risk: ['read'],
      unbounded: true,
    });
    expect(list.dataClasses.map((d: { path: string }) => d.path)).toContain('$[*].email');
    expect(list.auth.alternatives[0][0]).toMatchObject({
      scheme: 'shopKey',
      type: 'apiKey',
      in: 'header',
      paramName: 'X-Shop-Key',
    });
  });

  it('emits SARIF 2.1.0 with rules, levels and the operation line', () => {
    const dir = tempTree({ 'shop.yaml': JSON.stringify(shop, null, 2) });
    const r = run('scan', join(dir, 'shop.yaml'), '--format', 'sarif');
    expect(r.code).toBe(0);
    const sarif = JSON.parse(r.stdout);
    expect(sarif.version).toBe('2.1.0');
    const run0 = sarif.runs[0];
    const ids = run0.tool.driver.rules.map((x: { id: string }) => x.id);
    expect(ids).toContain('method-delete');
    const del = run0.results.find((x: { ruleId: string }) => x.ruleId === 'method-delete');
    expect(del.level).toBe('warning');
    expect(run0.tool.driver.rules[del.ruleIndex].id).toBe('method-delete');
    expect(del.locations[0].physicalLocation.region.startLine).toBeGreaterThan(1);
    expect(del.locations[0].logicalLocations[0].name).toBe('deleteCustomer');
  });

  it('exits 2 with a short located error and no stack trace on a bad spec', () => {
    // (A missing info.version is repaired now; an unknown key in info is still refused.)
    const dir = tempTree({
      'bad.json':
        '{"openapi": "3.0.3", "info": {"title": "x", "version": "1", "versionNote": "y"}, "paths": {}}',
    });
    const r = run('scan', join(dir, 'bad.json'));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error SPEC_INVALID: .*version/);
    expect(r.stderr).toMatch(/bad\.json:1:\d+ at \/info/);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('exits 2 on a missing file and on bad usage', () => {
    expect(run('scan', '/definitely/not/here.yaml').code).toBe(2);
    expect(run('scan').code).toBe(2);
    expect(run('scan', 'x', '--format', 'xml').code).toBe(2);
    expect(run('frobnicate').code).toBe(2);
  });

  it('shows progress on stderr for a huge spec, keeping stdout clean JSON', () => {
    const r = run('scan', join(SHARED_SPECS, 'github-rest.json'), '--format', 'json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/mcp-warden: parsed .*github-rest\.json/);
    expect(r.stderr).toMatch(/catalogued 700\/771 operations/);
    expect(JSON.parse(r.stdout).summary.operations).toBe(771);
    expect(run('scan', join(SHARED_SPECS, 'github-rest.json'), '--format', 'json', '--quiet').stderr).toBe(
      '',
    );
  });
});

describe('mcp-warden scan: spec deviations', () => {
  // A lower-case status range (refused before) and a boolean `required` inside a schema.
  const deviant = minimalSpec({
    '/a': {
      get: {
        operationId: 'getA',
        responses: {
          ...jsonOk({ type: 'object', properties: { id: { type: 'string', required: true } } }),
          '4xx': { description: 'client error' },
        },
      },
    },
  });

  it('loads the spec and reports each kind in the table, the JSON report and SARIF', () => {
    const dir = tempTree({ 'd.json': JSON.stringify(deviant, null, 2) });
    const table = run('scan', join(dir, 'd.json'));
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/Spec deviations repaired or ignored \(2 kinds\)/);
    expect(table.stdout).toMatch(/status-range-case: 1× repaired/);

    const report = JSON.parse(run('scan', join(dir, 'd.json'), '--format', 'json').stdout);
    expect(report.reportVersion).toBe(1);
    expect(report.deviations).toEqual([
      expect.objectContaining({
        kind: 'status-range-case',
        action: 'repaired',
        count: 1,
        where: ['/paths/~1a/get/responses/4xx'],
      }),
      expect.objectContaining({ kind: 'schema-required-boolean', count: 1 }),
    ]);
    expect(report.warnings.filter((w: string) => w.includes('status-range-case'))).toHaveLength(1);

    const sarif = JSON.parse(run('scan', join(dir, 'd.json'), '--format', 'sarif').stdout).runs[0];
    const result = sarif.results.find(
      (r: { ruleId: string }) => r.ruleId === 'spec-deviation-status-range-case',
    );
    expect(result.level).toBe('note');
    expect(sarif.tool.driver.rules[result.ruleIndex].id).toBe('spec-deviation-status-range-case');
    expect(result.locations[0].physicalLocation.region.startLine).toBeGreaterThan(1);
  });
});

/** A directory holding w.yaml: a policy that turns the admin port on with ADMIN_TOKEN. */
function adminPolicyDir(): string {
  return tempTree({ 'w.yaml': 'version: 1\nadmin: { token: env:ADMIN_TOKEN }\n' });
}

/** Holds a TCP port on 127.0.0.1 (port 0: any free one) until closed. */
function occupy(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const s: Server = createServer().listen(0, '127.0.0.1', () =>
      resolve({
        port: (s.address() as { port: number }).port,
        close: () => new Promise<void>((r) => s.close(() => r())),
      }),
    );
  });
}

describe('mcp-warden serve: a port that cannot be bound', () => {
  const policy = adminPolicyDir();
  const env = { ADMIN_TOKEN: 'admin-token-for-port-tests-0123456789' };
  // The audit opens before the ports are bound: keep it out of the working directory.
  const base = [
    'serve',
    '--spec',
    SHOP_SPEC,
    '--base-url',
    'http://127.0.0.1:9/',
    '--audit-file',
    tempPath(),
  ];

  it('--port in use: exit 2, the port and the flag named, no stack trace', async () => {
    const held = await occupy();
    try {
      const r = runCli([...base, '--port', String(held.port)], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `error CONFIG_INVALID: port ${held.port} on 127.0.0.1 is already in use (EADDRINUSE): stop the other process or choose another port with --port`,
      );
      expect(r.stderr).not.toMatch(/INTERNAL|\bat .*\.js:\d+/);
    } finally {
      await held.close();
    }
  });

  it('--admin-port in use: exit 2, naming --admin-port', async () => {
    const held = await occupy();
    try {
      const r = runCli(
        [...base, '--port', '0', '--policy', join(policy, 'w.yaml'), '--admin-port', String(held.port)],
        env,
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(`port ${held.port} on 127\\.0\\.0\\.1 is already in use \\(EADDRINUSE\\).*--admin-port`),
      );
      expect(r.stderr).not.toMatch(/INTERNAL|\bat .*\.js:\d+/);
    } finally {
      await held.close();
    }
  });

  it('a privileged port without privileges: EACCES, named', () => {
    // As root, which may bind port 80, the CLI runs as `nobody`; its audit goes where nobody may write.
    const asRoot = process.getuid?.() === 0;
    const audit = join('/tmp', `warden-eacces-${process.pid}-${Date.now()}.jsonl`);
    const args = ['serve', '--spec', SHOP_SPEC, '--base-url', 'http://127.0.0.1:9/', '--audit-file', audit];
    const r = spawnSync(process.execPath, [CLI, ...args, '--port', '80'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '' },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    rmSync(audit, { force: true });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no permission to listen on port 80 on 127\.0\.0\.1 \(EACCES\).*--port/);
    expect(r.stderr).not.toMatch(/INTERNAL|\bat .*\.js:\d+/);
  });

  it("the demo's upstream port in use: exit 2, naming the port and SHOP_PORT", async () => {
    const held = await occupy();
    try {
      const demo = new URL('../../scripts/demo.mjs', import.meta.url).pathname;
      const r = spawnSync(process.execPath, [demo], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', SHOP_PORT: String(held.port) },
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`port ${held.port} is already in use (EADDRINUSE)`);
      expect(r.stderr).toContain('SHOP_PORT');
      expect(r.stderr).not.toMatch(/\bat .*\.m?js:\d+/);
    } finally {
      await held.close();
    }
  });
});

describe('mcp-warden serve --stdio: a failed start reaches the MCP client', () => {
  /**
   * Connects a real MCP client to `serve --stdio …`: the error its connect fails with or, when its
   * initialize was answered while the spec loaded (docs/serving.md), the error its first request gets.
   */
  async function connectError(args: string[], env: NodeJS.ProcessEnv = {}) {
    const { transport, stderr } = stdioTransport(
      ['serve', '--stdio', '--audit-file', tempPath(), ...args],
      env,
    );
    const client = mcpClient();
    const failed = (e: unknown) => e as Error;
    const error = await client
      .connect(transport)
      .then(() => client.listTools().then(() => undefined, failed), failed);
    await client.close().catch(() => {});
    return { error, stderr };
  }

  it('a bad spec: the client is told why, in the answer to its first request', async () => {
    const dir = tempTree({
      'bad.json': minimalSpec({ '/a/{id}': { get: { responses: { '200': { description: 'ok' } } } } }),
    });
    const { error, stderr } = await connectError(['--spec', join(dir, 'bad.json')]);
    expect(error?.message).toMatch(
      /mcp-warden could not start: error SPEC_INVALID: .*\{id\} of GET \/a\/\{id\} has no path parameter/,
    );
    expect(stderr()).toMatch(/error SPEC_INVALID/);
  });

  it('a bad policy and a port in use reach the client the same way', async () => {
    const dir = tempTree({ 'p.yaml': 'version: 1\nmode: sideways\n' });
    const bad = await connectError(['--spec', SHOP_SPEC, '--policy', join(dir, 'p.yaml')]);
    expect(bad.error?.message).toMatch(/mcp-warden could not start: error CONFIG_INVALID/);
    const held = await occupy();
    try {
      const taken = await connectError(
        [
          '--spec',
          SHOP_SPEC,
          '--policy',
          join(adminPolicyDir(), 'w.yaml'),
          '--admin-port',
          String(held.port),
        ],
        { ADMIN_TOKEN: 'admin-token-for-port-tests-0123456789' },
      );
      expect(taken.error?.message).toMatch(
        new RegExp(`could not start: error CONFIG_INVALID: port ${held.port} .*EADDRINUSE.*--admin-port`),
      );
    } finally {
      await held.close();
    }
  });
});
