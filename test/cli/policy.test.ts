import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runExplain, runPolicyCheck } from '../../src/cli/policy.js';
import { alertRuleLines } from '../../src/policy/check.js';
import { readPolicyFile } from '../../src/policy/load.js';
import { SHOP_SPEC, tempTree } from '../support/paths.js';

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
