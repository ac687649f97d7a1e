import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import { parsePolicy } from '../../src/policy/load.js';
import { policyJsonSchema } from '../../src/policy/schema.js';

function refused(text: string): WardenError {
  try {
    parsePolicy(text, 'warden.yaml');
  } catch (e) {
    if (isWardenError(e)) return e;
    throw e;
  }
  throw new Error('expected the policy to be refused');
}

describe('policy loading', () => {
  it('applies the secure defaults to a minimal file', () => {
    const { doc } = parsePolicy('version: 1\n', 'warden.yaml');
    expect(doc).toMatchObject({ version: 1, mode: 'read-only', rules: [] });
  });

  it('reads JSON as well as YAML', () => {
    const { doc } = parsePolicy('{"version": 1, "mode": "read-write"}', 'warden.json');
    expect(doc.mode).toBe('read-write');
  });

  it('treats `rules:` with every entry commented out as no rules', () => {
    expect(parsePolicy('version: 1\nrules:\n  # - match: { name: x }\n', 'w.yaml').doc.rules).toEqual([]);
  });

  it('refuses an unknown key, naming the file, line and key', () => {
    const e = refused('version: 1\nrules:\n  - match: { name: listCustomers }\n    enabeld: false\n');
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('unknown key rules[0].enabeld');
    expect(e.location).toMatchObject({ file: 'warden.yaml', line: 4, column: 5 });
  });

  it('refuses a bad value at its line, and lists every other problem at once', () => {
    const e = refused('version: 1\nmode: yolo\nrules:\n  - match: {}\n    scopes: ["a b"]\n');
    expect(e.location?.line).toBe(2);
    expect(e.message).toMatch(/^policy: mode: /);
    expect(e.details.join('\n')).toMatch(/line 4:.*at least one of name, tag, method, path/);
    expect(e.details.join('\n')).toMatch(/line 5:.*scope is printable ASCII/);
  });

  it('needs a reason to lift a restricted risk or to switch confirmation off', () => {
    expect(refused('version: 1\nrules:\n  - match: { name: a }\n    allowRisk: [admin]\n').message).toContain(
      'allowRisk needs a reason',
    );
    expect(refused('version: 1\nrules:\n  - match: { name: a }\n    confirm: false\n').message).toContain(
      'confirm: false needs a reason',
    );
    expect(() =>
      parsePolicy(
        'version: 1\nrules:\n  - match: { name: a }\n    confirm: false\n    reason: idempotent soft delete\n',
        'w',
      ),
    ).not.toThrow();
  });

  it('never accepts a literal secret where a reference is expected', () => {
    const e = refused('version: 1\ncredentials:\n  shop:\n    scheme: shopKey\n    prod: sk_live_123\n');
    expect(e.message).toContain('a secret is a reference, never a literal');
    expect(e.message).not.toContain('sk_live_123');
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(refused('version: 1\nmode: [\n').code).toBe('CONFIG_INVALID');
    const dup = refused('version: 1\nmode: read-only\nmode: read-write\n');
    expect(dup.message).toContain('not valid YAML');
    expect(dup.location?.line).toBe(3);
  });

  it('refuses an empty file and a YAML alias bomb without hanging', () => {
    expect(refused('').message).toContain('empty');
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 9; i++)
      bomb.push(
        `${'bcdefghij'[i]}: &${'bcdefghij'[i]} [${Array(9)
          .fill(`*${i === 0 ? 'a' : 'bcdefghij'[i - 1]}`)
          .join(',')}]`,
      );
    expect(refused(`version: 1\n${bomb.join('\n')}\n`).code).toBe('CONFIG_INVALID');
  });
});

describe('published JSON Schema', () => {
  it('is exactly what the zod schema generates (run `npm run schema` after changing it)', () => {
    const committed = JSON.parse(
      readFileSync(new URL('../../schema/policy.schema.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(JSON.parse(JSON.stringify(policyJsonSchema())));
  });

  it('forbids unknown keys for editors too', () => {
    const s = policyJsonSchema() as { additionalProperties?: unknown };
    expect(s.additionalProperties).toBe(false);
  });
});
