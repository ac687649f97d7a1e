import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/server/callers.js';
import { tempTree } from '../support/paths.js';
import { SHOP_SPEC } from '../support/shop.js';
import { runCli } from '../support/stdio.js';

/** The CLI with PATH and `env` only (an explain must not see the runner's credentials). */
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, env);

describe('mcp-warden init', () => {
  it('writes a commented starter policy that passes its own check and changes nothing', () => {
    const dir = tempTree({});
    const out = join(dir, 'warden.yaml');
    const r = run(['init', SHOP_SPEC, '-o', out]);
    expect(r.code).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(text).toMatch(/^# yaml-language-server: \$schema=.*schema\/policy\.schema\.json$/m);
    expect(text).toContain('mode: read-only');
    // Every tool is listed with its risk and fate under the defaults.
    expect(text).toContain(
      '# deleteCustomer — DELETE /customers/{customerId} — destructive [write, destructive]',
    );
    expect(text).toMatch(/# listApiKeys .*\n {2}# {3}HIDDEN: admin: /);
    expect(text).toContain('#   allowRisk: [admin, credential]');
    const check = run(['policy', 'check', out, '--spec', SHOP_SPEC]);
    expect(check.stderr).toBe('');
    expect(check.stdout).toContain('ok — 5 of 9 tools exposed (mode read-only)');
    // Uncommenting an example rule yields a valid policy.
    const edited = text.replace(
      '# - match: { name: listCustomers }\n  #   enabled: false',
      '- match: { name: listCustomers }\n    enabled: false',
    );
    expect(edited).not.toBe(text);
    const dir2 = tempTree({ 'w.yaml': edited });
    expect(run(['policy', 'check', join(dir2, 'w.yaml'), '--spec', SHOP_SPEC]).stdout).toContain(
      '4 of 9 tools exposed',
    );
  });

  it('refuses to overwrite an existing file without --force', () => {
    const dir = tempTree({ 'warden.yaml': 'version: 1\n' });
    const r = run(['init', SHOP_SPEC, '-o', join(dir, 'warden.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--force');
  });
});

describe('mcp-warden policy check', () => {
  /** `policy check` of `yaml` (written to w.yaml) against the shop. */
  const check = (yaml: string) => {
    const file = join(tempTree({ 'w.yaml': yaml }), 'w.yaml');
    return { file, ...run(['policy', 'check', file, '--spec', SHOP_SPEC]) };
  };

  it('names the file, line and key of a schema error', () => {
    const r = check('version: 1\nrules:\n  - match: { name: getOrder }\n    enabeld: true\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error CONFIG_INVALID: policy: unknown key rules[0].enabeld');
    expect(r.stderr).toContain(`${r.file}:4:5`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('makes unknown names errors, with a did-you-mean', () => {
    const r = check('version: 1\nrules:\n  - match: { name: getOrders }\n    scopes: [x]\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(':3: error: rules[0]: no tool named "getOrders" (did you mean "getOrder"?)');
  });
});

describe('mcp-warden explain', () => {
  it('shows which rule decided what', () => {
    const dir = tempTree({
      'w.yaml':
        'version: 1\nmode: read-write\nrules:\n  - match: { method: delete }\n    enabled: true\n    scopes: [admins]\n',
    });
    const r = run(['explain', 'deleteCustomer', '--spec', SHOP_SPEC, '--policy', join(dir, 'w.yaml')], {
      MCP_WARDEN_CRED_SHOPKEY: 'k-123456',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deleteCustomer  DELETE /customers/{customerId}');
    expect(r.stdout).toContain('decision: EXPOSED (environment dev');
    expect(r.stdout).toContain('callers need: admins');
    expect(r.stdout).toContain('confirmation: required');
    expect(r.stdout).toContain('rules[0] (w.yaml:4): enabled: true; scopes: [admins]');
    expect(r.stdout).toContain('default: confirm: true (destructive)');
  });

  it('says why a tool is hidden, including a missing upstream credential', () => {
    const r = run(['explain', 'getOrder', '--spec', SHOP_SPEC, '--format', 'json']);
    const j = JSON.parse(r.stdout);
    expect(j.exposed).toBe(false);
    expect(j.hiddenBecause).toEqual(['no upstream credential: MCP_WARDEN_CRED_SHOPKEY is not set']);
    const hidden = run(['explain', 'listApiKeys', '--spec', SHOP_SPEC], {
      MCP_WARDEN_CRED_SHOPKEY: 'k-123456',
    });
    expect(hidden.stdout).toMatch(/hidden because \[risk\] admin: /);
  });

  it('suggests the closest name for an unknown tool', () => {
    const r = run(['explain', 'getOrdr', '--spec', SHOP_SPEC]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean "getOrder"?');
  });
});

describe('mcp-warden keys create', () => {
  it('prints the key once on stdout and only its hash in the policy entry', () => {
    const r = run(['keys', 'create', '--id', 'ci-bot', '--scopes', 'tools:read,orders', '--env', 'prod']);
    expect(r.code).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^mwk_[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).toContain(`hash: "${hashKey(key)}"`);
    expect(r.stderr).toContain('scopes: [tools:read, orders]');
    expect(r.stderr).toContain('environment: prod');
    expect(r.stderr).not.toContain(key);
  });
});
