import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runExplain, runInit, runPolicyCheck } from '../../src/cli/policy.js';
import { alertRuleLines } from '../../src/policy/check.js';
import { readPolicyFile } from '../../src/policy/load.js';
import { SHARED_SPECS, SHOP_SPEC, tempTree } from '../support/paths.js';

/** Runs a CLI command in process; its stdout. */
async function stdout(
  run: (io: { stdout: (s: string) => void; stderr: (s: string) => void }) => Promise<void>,
) {
  let out = '';
  await run({ stdout: (s) => (out += s), stderr: () => {} });
  return out;
}

const policyFile = (yaml: string) => join(tempTree({ 'w.yaml': `version: 1\n${yaml}` }), 'w.yaml');

describe('the alert rules in force, as `policy check` and `explain` show them', () => {
  it('shows every default rule when `alerts:` names only webhooks, and never a webhook URL', async () => {
    const file = policyFile(
      'alerts:\n  webhooks:\n    - { url: "https://hooks.slack.com/services/T000/B000/s3cr3tpath", format: slack }\n',
    );
    const out = await stdout((io) => runPolicyCheck(file, { spec: SHOP_SPEC }, io));
    expect(out).toContain('alerts in force:');
    expect(out).toContain(
      "errorRate: a tool's calls fail upstream at 50% or more, over at least 20 calls in 300 s",
    );
    expect(out).toContain('deniedRate: 20 or more denied calls by one principal in 300 s');
    expect(out).toContain(
      'volume: 200 or more calls by one principal in 300 s, over 10× its busiest of its last 12 windows',
    );
    expect(out).toContain('adminAuthFailures: 20 or more refused admin tokens in 300 s');
    expect(out).toContain('webhooks: hooks.slack.com (slack)');
    expect(out).not.toContain('s3cr3tpath');
  });

  it('shows a rule turned off as off, in `policy check` and in `explain` (text and JSON)', async () => {
    const file = policyFile('alerts:\n  volume: false\n  firstUse: false\n');
    const check = await stdout((io) => runPolicyCheck(file, { spec: SHOP_SPEC }, io));
    expect(check).toContain('  volume: off\n');
    expect(check).toContain('  firstUse: off\n');
    expect(check).toContain('  deniedRate: 20 or more');
    // The guards of issue 24 are rules in force too.
    expect(check).toContain('  budgetExceeded: a caller hits a budget');
    expect(check).toContain('  taintBlocked: the taint guard refuses or parks');
    expect(check).toContain('  injectionSuspected: a response holds text that looks like instructions');
    const off = policyFile('alerts:\n  injectionSuspected: false\n');
    expect(await stdout((io) => runPolicyCheck(off, { spec: SHOP_SPEC }, io))).toContain(
      '  injectionSuspected: off\n',
    );
    const text = await stdout((io) => runExplain('searchProducts', { spec: SHOP_SPEC, policy: file }, io));
    expect(text).toContain('alerts in force:');
    expect(text).toContain('  volume: off\n');
    const json = JSON.parse(
      await stdout((io) =>
        runExplain('searchProducts', { spec: SHOP_SPEC, policy: file, format: 'json' }, io),
      ),
    );
    expect(json.alerts).toEqual(alertRuleLines(readPolicyFile(file).doc.alerts));
    expect(json.alerts).toContain('volume: off');
  });

  it('shows the defaults with no policy at all', async () => {
    const text = await stdout((io) => runExplain('searchProducts', { spec: SHOP_SPEC }, io));
    expect(text).toContain('errorRate: a tool');
    expect(text).toContain('webhooks: none (log and metrics only)');
  });
});

describe('`init` with several specs: an `apis:` policy for the API set', () => {
  const PETSTORE = join(SHARED_SPECS, 'petstore-v3.yaml');

  it('writes each API with its spec (relative to the policy), base URL, credentials hint and prefixed tools', async () => {
    const dir = tempTree({ 'conf/.keep': '' });
    const out = join(dir, 'conf', 'gateway.yaml');
    const err: string[] = [];
    await runInit(
      [PETSTORE],
      { output: out, api: [`shop=${SHOP_SPEC},http://127.0.0.1:4010`] },
      {
        stdout: () => {},
        stderr: (s) => void err.push(s),
      },
    );
    expect(err.join('')).toMatch(
      /an API set of 2 \(shop, petstore\), 12 tools listed; serve it with: mcp-warden serve --policy/,
    );
    const text = readFileSync(out, 'utf8');
    const { doc } = readPolicyFile(out);
    expect(Object.keys(doc.apis ?? {})).toEqual(['shop', 'petstore']);
    expect(resolve(dirname(out), doc.apis!.shop!.spec)).toBe(SHOP_SPEC);
    expect(resolve(dirname(out), doc.apis!.petstore!.spec)).toBe(PETSTORE);
    expect(doc.apis!.shop!.baseUrl).toBe('http://127.0.0.1:4010');
    expect(doc.apis!.petstore!.baseUrl).toBeUndefined();
    // Each API's tools, by the names the gateway serves, listed under that API.
    const shopAt = text.indexOf('\n  shop:\n');
    const petsAt = text.indexOf('\n  petstore:\n');
    expect(text.indexOf('# - match: { name: shop_deleteCustomer }')).toBeGreaterThan(shopAt);
    expect(text.indexOf('# - match: { name: shop_deleteCustomer }')).toBeLessThan(petsAt);
    expect(text.indexOf('# - match: { name: petstore_createPets }')).toBeGreaterThan(petsAt);
    expect(text).toContain("a scheme's credential is read from MCP_WARDEN_CRED_SHOP_<SCHEME>");
    expect(text).toContain('#     dev: env:SHOP_SHOPKEY_DEV');
    // No top-level credentials in a set: each API has its own.
    expect(text).not.toMatch(/^# credentials:/m);
  });

  it('writes rules that become valid policy once uncommented', async () => {
    const dir = tempTree({});
    const out = join(dir, 'warden.yaml');
    await runInit([], { output: out, api: [`pets=${PETSTORE}`] }, { stdout: () => {}, stderr: () => {} });
    const text = readFileSync(out, 'utf8')
      .replace('# - match: { name: pets_createPets }', '- match: { name: pets_createPets }')
      .replace(/(- match: \{ name: pets_createPets \}\n\s+)#\s+enabled: true.*/, '$1  enabled: true')
      .replace('mode: read-only', 'mode: read-write');
    const edited = join(dir, 'edited.yaml');
    writeFileSync(edited, text);
    expect(readPolicyFile(edited).doc.apis!.pets!.rules).toEqual([
      expect.objectContaining({ match: { name: 'pets_createPets' }, enabled: true }),
    ]);
  });

  it('refuses two APIs with one name, and an existing file without --force', async () => {
    const dir = tempTree({ 'warden.yaml': 'version: 1\n' });
    const io = { stdout: () => {}, stderr: () => {} };
    await expect(
      runInit([], { output: join(dir, 'new.yaml'), api: [`a=${PETSTORE}`, `a=${SHOP_SPEC}`] }, io),
    ).rejects.toThrow(/two APIs are named "a"/);
    await expect(runInit([PETSTORE, SHOP_SPEC], { output: join(dir, 'warden.yaml') }, io)).rejects.toThrow(
      /exists; pass --force/,
    );
  });
});
