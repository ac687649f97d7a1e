import { describe, expect, it } from 'vitest';
import type { WardenError } from '../../src/errors/index.js';
import { parsePolicy } from '../../src/policy/load.js';
import { itemsCatalog, viewOf } from '../support/pipeline.js';

const rules = (lines: string) =>
  `version: 1\nmode: read-write\nrules:\n  - match: { name: createItem }\n    enabled: true\n    confirm: true\n${lines}`;
const refused = (text: string): WardenError => {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (e) {
    return e as WardenError;
  }
  throw new Error('expected the policy to be refused');
};

describe('policy: approval modes', () => {
  it('defaults to auto with one approver, and says so in explain', async () => {
    const d = viewOf(await itemsCatalog(), rules('')).get('createItem')!.decision;
    expect([d.approval, d.approvers]).toEqual(['auto', 1]);
    expect(d.steps.map((s) => s.what)).toContain(
      'approval: auto (the user through the client where it can elicit, otherwise a human operator)',
    );
  });

  it('takes approval and approvers from the rules; approvers: 2 means operator', async () => {
    const op = viewOf(await itemsCatalog(), rules('    approval: operator\n')).get('createItem')!.decision;
    expect([op.approval, op.approvers]).toEqual(['operator', 1]);
    expect(op.steps.some((s) => s.what.includes('approval: operator'))).toBe(true);
    const two = viewOf(await itemsCatalog(), rules('    approvers: 2\n')).get('createItem')!.decision;
    expect([two.approval, two.approvers]).toEqual(['operator', 2]);
    expect(two.steps.map((s) => s.what)).toContain('approval: operator (approvers: 2 needs two operators)');
  });

  it('lists the token argument only for approval: agent', async () => {
    const agent = viewOf(
      await itemsCatalog(),
      rules('    approval: agent\n    reason: a trusted batch agent\n'),
    );
    expect(Object.keys(agent.get('createItem')!.listed.inputSchema.properties ?? {})).toContain(
      'mcp_warden_confirmation',
    );
    const auto = viewOf(await itemsCatalog(), rules(''));
    expect(Object.keys(auto.get('createItem')!.listed.inputSchema.properties ?? {})).not.toContain(
      'mcp_warden_confirmation',
    );
    expect(auto.get('createItem')!.listed.description).toContain("a human operator's approval");
  });

  it('a rule naming an approval asks for one even on a write (never silently none)', async () => {
    const noConfirm = (lines: string) =>
      `version: 1\nmode: read-write\nrules:\n  - match: { name: createItem }\n    enabled: true\n${lines}`;
    for (const lines of ['    approval: operator\n', '    approvers: 2\n']) {
      const d = viewOf(await itemsCatalog(), noConfirm(lines)).get('createItem')!.decision;
      expect(d.kind).toBe('write');
      expect(d.confirm).toBe(true);
      expect(d.steps.map((s) => s.what)).toContain('confirm: true (the rule names an approval)');
    }
    const refusedOff = refused(
      noConfirm('    confirm: false\n    approval: operator\n    reason: the nightly batch job\n'),
    );
    expect(refusedOff.message).toContain('confirm: false cannot go with approval');
    expect(
      refused(
        noConfirm('    approval: operator\n') +
          '  - match: { name: createItem }\n    confirm: false\n    approvers: 2\n    reason: a contradiction here\n',
      ).code,
    ).toBe('CONFIG_INVALID');
  });

  it('operator principals must be caller ids as the audit writes them', () => {
    const admin = (p: string) =>
      `version: 1\nadmin:\n  token: env:T\n  operators:\n    - { id: bob, token: env:B, principals: [${p}] }\n`;
    expect(
      parsePolicy(admin('"key:bob-laptop", "jwt:https://idp#bob", "stdio:local"'), 'p.yaml').doc.admin
        ?.operators?.[0]?.principals,
    ).toHaveLength(3);
    expect(refused(admin('bob-laptop')).message).toContain('a caller id as the audit writes it');
  });

  it('refuses approval: agent without a reason, and approvers: 2 with elicit or agent', () => {
    expect(refused(rules('    approval: agent\n')).message).toContain('approval: agent');
    expect(refused(rules('    approvers: 2\n    approval: elicit\n')).message).toContain('approvers: 2');
    expect(refused(rules('    approvers: 3\n')).code).toBe('CONFIG_INVALID');
    expect(refused(rules('    approval: human\n')).code).toBe('CONFIG_INVALID');
  });

  it('reads approvals.pendingSeconds and runSeconds, with their defaults', () => {
    expect(parsePolicy('version: 1\napprovals: {}\n', 'p.yaml').doc.approvals).toEqual({
      pendingSeconds: 3600,
      runSeconds: 900,
    });
    expect(
      parsePolicy('version: 1\napprovals: { pendingSeconds: 120, runSeconds: 30 }\n', 'p.yaml').doc.approvals,
    ).toEqual({ pendingSeconds: 120, runSeconds: 30 });
    expect(refused('version: 1\napprovals: { pendingSeconds: 0 }\n').code).toBe('CONFIG_INVALID');
    expect(refused('version: 1\napprovals: { waitSeconds: 10 }\n').code).toBe('CONFIG_INVALID');
  });
});

describe('docs/policy.md', () => {
  it('its approvals example is valid policy', async () => {
    const { readFileSync } = await import('node:fs');
    const md = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
    const yaml = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .find((y) => y.startsWith('approvals:'))!;
    const { doc } = parsePolicy(`version: 1\nmode: read-write\n${yaml}`, 'docs/policy.md');
    expect(doc.approvals).toEqual({ pendingSeconds: 3600, runSeconds: 900 });
    expect(doc.rules.map((r) => r.approval ?? r.approvers)).toEqual([undefined, 2, 'agent']);
  });
});
