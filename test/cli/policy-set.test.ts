import { describe, expect, it } from 'vitest';
import { exitCode } from '../../src/errors/index.js';
import { runCli } from '../support/stdio.js';

// `policy check`, `explain` and `toolsets` read an API set from the policy (apis:) as `serve --policy`
// serves it: prefixed names, every API loaded (one that cannot be is an error here, never skipped).
const GATEWAY = new URL('../../examples/gateway.yaml', import.meta.url).pathname;
const SHOP = new URL('../../examples/shop/openapi.yaml', import.meta.url).pathname;

describe('policy tools on an API set', () => {
  it('policy check reads the set from the policy: ok, counting the prefixed tools of every API', () => {
    const r = runCli(['policy', 'check', GATEWAY], {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gateway\.yaml: ok — \d+ of 12 tools exposed/);
  });

  it('explain names a prefixed tool and the API rule that decided it', () => {
    const r = runCli(['explain', 'shop_deleteCustomer', '--policy', GATEWAY], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('shop_deleteCustomer  DELETE /customers/{customerId}');
    expect(r.stdout).toMatch(/apis\.shop\.rules\[\d\] \(gateway\.yaml:\d+\)/);
  });

  it('toolsets lists one toolset per API and api:tag groups', () => {
    const r = runCli(['toolsets', '--policy', GATEWAY, '--format', 'json'], {});
    expect(r.code).toBe(0);
    const names = (JSON.parse(r.stdout).toolsets as Array<{ name: string }>).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['shop', 'pets', 'shop:customers', 'pets:pets']));
  });

  it('--spec with a set, or neither, is a usage error saying what to give', () => {
    const both = runCli(['policy', 'check', GATEWAY, '--spec', SHOP], {});
    expect(both.code).toBe(exitCode('USAGE'));
    expect(both.stderr).toContain('describes an API set (apis:)');
    const neither = runCli(['explain', 'searchProducts'], {});
    expect(neither.code).toBe(exitCode('USAGE'));
    expect(neither.stderr).toContain('--spec <file|url>');
    expect(neither.stderr).not.toMatch(/\n\s+at /);
  });
});
