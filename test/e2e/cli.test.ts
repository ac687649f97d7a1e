import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonOk, minimalSpec, SHARED_SPECS, tempTree } from '../support/helpers.js';
import { runCli } from '../support/stdio.js';

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
    const dir = tempTree({ 'bad.json': '{"openapi": "3.0.3", "info": {"title": "x"}, "paths": {}}' });
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
