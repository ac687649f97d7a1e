import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildCatalog } from '../../src/catalog/build.js';
import { callerGrants } from '../../src/cli/rightsize.js';
import { ERROR_CODES, type ErrorCode } from '../../src/errors/codes.js';
import { auditDecision } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import { loadSpec } from '../../src/openapi/load.js';
import { parsePolicy } from '../../src/policy/load.js';
import {
  type CallerGrant,
  NO_USE,
  nice,
  peakIn,
  rightsize,
  spliceOps,
  UNKNOWN_WARN,
  Usage,
} from '../../src/policy/rightsize.js';
import { SHOP_SPEC } from '../support/paths.js';

// The pure analysis on hand-written records: the end-to-end tests (test/cli/rightsize*.test.ts)
// record theirs through a real gateway; these pin the edge cases one at a time.

let catalog: Catalog;
beforeAll(async () => {
  catalog = buildCatalog(await loadSpec(SHOP_SPEC));
});

const T0 = Date.parse('2026-11-01T00:00:00Z');
function call(tool: string, principal: string, at: number, extra: Record<string, unknown> = {}) {
  return {
    kind: 'call',
    time: new Date(T0 + at).toISOString(),
    id: `r${at}`,
    tool,
    decision: 'allowed',
    outcome: 'ok',
    principal,
    ms: 1,
    ...extra,
  };
}
function usageOf(records: Array<Record<string, unknown>>): Usage {
  const u = new Usage(T0 - 1);
  for (const r of records) u.add(r);
  return u;
}
function run(policyText: string, records: Array<Record<string, unknown>>, callers: CallerGrant[] = []) {
  return rightsize({
    policy: parsePolicy(policyText, 'warden.yaml'),
    catalog,
    usage: usageOf(records),
    callers,
    windowLabel: '30d',
  });
}

describe('rightsize (the analysis)', () => {
  it('never removes an enable a used tool depends on: the check keeps it, and says why', () => {
    // rules[1] enables createOrder (unused) and, after rules[0] disabled reads, getOrder (used).
    const policy = [
      'version: 1',
      'mode: read-write',
      'rules:',
      '  - match: { name: getOrder }',
      '    enabled: false',
      '  - match: { name: "*Order" }',
      '    enabled: true',
      '',
    ].join('\n');
    const r = run(policy, [call('getOrder', 'stdio:local', 0)]);
    expect(r.changes).toEqual([]);
    expect(r.skipped).toEqual([
      'rules[1]: remove the rule (enables createOrder): not proposed, getOrder (used) would be hidden: disabled by a rule',
    ]);
    expect(r.text).toBe(policy);
  });

  it('does not lower a rate limit that refused calls in the window, and lowers one far above its peak', () => {
    const policy = [
      'version: 1',
      'rules:',
      '  - match: { name: searchProducts }',
      '    rateLimit: { perToolPrincipal: { calls: 1000, perSeconds: 60 } }',
      '  - match: { name: getOrder }',
      '    rateLimit:',
      '      perTool:',
      '        calls: 1000',
      '        perSeconds: 60',
      '',
    ].join('\n');
    const records = [
      // Seven getOrder calls within one minute, three more later: the peak is 7.
      ...[0, 1, 2, 3, 4, 5, 59_000].map((t) => call('getOrder', 'key:a', t)),
      ...[120_000, 200_000, 400_000].map((t) => call('getOrder', 'key:b', t)),
      call('searchProducts', 'key:a', 0),
      call('searchProducts', 'key:a', 1, { decision: 'denied', outcome: 'error', code: 'RATE_LIMITED' }),
    ];
    const r = run(policy, records);
    expect(r.changes.map((c) => c.what)).toEqual(['rules[1].rateLimit.perTool.calls: 1000 → 20 per 60 s']);
    expect(r.changes[0]!.evidence[0]).toMatch(
      /^peak 7 call\(s\) in 60 s \(2026-11-01T00:00:00.000Z, getOrder\)/,
    );
    expect(r.skipped).toEqual([
      'rules[0].rateLimit.perToolPrincipal: not lowered, 1 call(s) were refused RATE_LIMITED in the window (the limit is reached)',
    ]);
    expect(r.text).toContain('        calls: 20  # rightsize: peak 7 per 60 s in 30d; was 1000\n');
  });

  it('edits a JSON policy in place (no comments added), and empties a block list as []', () => {
    const json = `{
  "version": 1,
  "callers": {
    "stdio": { "principal": "me", "scopes": ["tools:read", "tools:write"] }
  },
  "rateLimit": { "perPrincipal": { "calls": 100000, "perSeconds": 60 } }
}
`;
    const stdio: CallerGrant = {
      principals: ['stdio:me'],
      path: ['callers', 'stdio', 'scopes'],
      scopes: ['tools:read', 'tools:write'],
      http: false,
    };
    const r = run(json, [call('getOrder', 'stdio:me', 0)], [stdio]);
    expect(r.rendering).toBe('in place');
    expect(r.text).toBe(
      json.replace('["tools:read", "tools:write"]', '["tools:read"]').replace('100000', '10'),
    );
    expect(JSON.parse(r.text).rateLimit.perPrincipal.calls).toBe(10);

    const block = ['version: 1', 'callers:', '  stdio:', '    scopes:', '      - tools:write', ''].join('\n');
    const none = run(block, [call('getOrder', 'key:other', 0)], [{ ...stdio, principals: ['stdio:local'] }]);
    expect(none.text).toBe(['version: 1', 'callers:', '  stdio:', '    scopes: []', ''].join('\n'));
  });

  it('re-renders (comments kept) when a layout cannot be edited in place, with the same values', () => {
    const policy = [
      '# keep me',
      'version: 1',
      'mode: read-write',
      'rules:',
      '  - enabled: true   # the first key on the dash line',
      '    match: { name: createOrder }',
      '',
    ].join('\n');
    expect(spliceOps(policy, [{ op: 'remove', path: ['rules', 0, 'enabled'] }], false)).toBeUndefined();
    const r = run(policy, [call('getOrder', 'stdio:local', 0)]);
    // The whole rule goes (it only enabled createOrder): a removal the splicer can make.
    expect(r.changes.map((c) => c.what)).toEqual(['rules[0]: remove the rule (enables createOrder)']);
    expect(parseYaml(r.text)).toEqual({ version: 1, mode: 'read-write', rules: [] });
    expect(r.text).toContain('# keep me');

    const withReason = policy.replace('    match:', '    timeoutMs: 5000\n    match:');
    const r2 = run(withReason, [call('getOrder', 'stdio:local', 0)]);
    expect(r2.rendering).toBe('re-rendered');
    expect(parseYaml(r2.text).rules).toEqual([{ timeoutMs: 5000, match: { name: 'createOrder' } }]);
    expect(r2.text).toContain('# keep me');
  });

  it('keeps the stdio scopes that anonymous loopback callers used (they get them when no HTTP caller is configured)', () => {
    const policy = [
      'version: 1',
      'mode: read-write',
      'callers:',
      '  stdio: { principal: me, scopes: [tools:read, tools:write, tools:delete] }',
      'rules:',
      '  - match: { name: createOrder }',
      '    enabled: true',
      '',
    ].join('\n');
    const grants = callerGrants(parsePolicy(policy, 'warden.yaml').doc);
    expect(grants.map((g) => g.principals)).toEqual([['stdio:me', 'anonymous']]);
    const r = run(policy, [call('getOrder', 'stdio:me', 0), call('createOrder', 'anonymous', 5)], grants);
    expect(r.changes.map((c) => c.what)).toEqual([
      'callers.stdio.scopes (stdio:me, anonymous): remove tools:delete',
    ]);
    // With an HTTP caller configured, anonymous callers no longer get them: the stdio grant is its own.
    const withKeys = policy.replace(
      'callers:\n',
      'callers:\n  anonymous: { scopes: [tools:read], reason: local tests only }\n',
    );
    expect(callerGrants(parsePolicy(withKeys, 'warden.yaml').doc).map((g) => g.principals)).toEqual([
      ['stdio:me'],
      ['anonymous'],
    ]);
  });

  it('keeps callers.requiredScopes for an HTTP caller that called, not for one that never did', () => {
    const hash = `sha256:${'0'.repeat(64)}`;
    const policy = [
      'version: 1',
      'callers:',
      '  requiredScopes: [mcp]',
      '  apiKeys:',
      `    - { id: bot, hash: "${hash}", scopes: [mcp, tools:read, tools:write] }`,
      `    - { id: idle, hash: "${hash}", scopes: [mcp, tools:read] }`,
      '',
    ].join('\n');
    const grants = callerGrants(parsePolicy(policy, 'warden.yaml').doc);
    const r = run(policy, [call('getOrder', 'key:bot', 0)], grants);
    expect(r.changes.map((c) => c.what)).toEqual([
      'callers.apiKeys[0].scopes (key:bot): remove tools:write',
      'callers.apiKeys[1].scopes (key:idle): remove mcp, tools:read',
    ]);
    expect(parseYaml(r.text).callers.apiKeys.map((k: { scopes: string[] }) => k.scopes)).toEqual([
      ['mcp', 'tools:read'],
      [],
    ]);
  });

  it('peaks are counted in a sliding window; proposals round up to 1, 2 or 5 × 10^n', () => {
    const facts = [0, 10, 20, 1000, 1005].map((t) => ({
      time: t,
      principal: 'p',
      tool: 't',
      used: true,
      allowed: true,
    }));
    expect(peakIn(facts, (f) => f.tool, 990)).toMatchObject({ count: 3, at: 0 });
    expect(peakIn(facts, (f) => f.tool, 1000)).toMatchObject({ count: 4, at: 10 });
    expect([1, 3, 10, 11, 26, 51, 140, 999].map(nice)).toEqual([1, 5, 10, 20, 50, 100, 200, 1000]);
  });
});

describe('rightsize: what counts as use (a call past the grant checks)', () => {
  // One writer whose only write in the window ended with `code`: its write scope and the rule that
  // enables the write are kept unless the call was refused at the grant checks (resolve, authorize, toggle).
  const policy = [
    'version: 1',
    'mode: read-write',
    'callers:',
    '  stdio: { principal: me, scopes: [tools:read, tools:write] }',
    'rules:',
    '  - match: { name: createOrder }',
    '    enabled: true',
    '',
  ].join('\n');
  const grants = () => callerGrants(parsePolicy(policy, 'warden.yaml').doc);
  const held = (code: ErrorCode) =>
    run(
      policy,
      [
        call('getOrder', 'stdio:me', 0),
        call('createOrder', 'stdio:me', 1, { decision: auditDecision(code), outcome: 'error', code }),
      ],
      grants(),
    );
  const callCodes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => {
    const m: { mcp: string; audit: string } = ERROR_CODES[c];
    return m.mcp !== 'none' && m.audit !== 'none';
  });

  it('every call code is classified: only unknown, hidden and missing-scope refusals use no grant', () => {
    expect([...NO_USE].sort()).toEqual(['DENIED_HIDDEN', 'DENIED_SCOPE', 'TOOL_NOT_FOUND']);
    // The codes the grant-check stages throw are exactly these (src/pipeline/resolve|authorize|toggle).
    for (const c of NO_USE) expect(callCodes).toContain(c);
  });

  it.each([
    'CALLER_READ_ONLY',
    'TAINT_BLOCKED',
    'APPROVAL_PENDING',
    'BREAKER_OPEN',
    'STATE_UNAVAILABLE',
    'CONCURRENCY_LIMITED',
    'BUDGET_EXCEEDED',
    'RATE_LIMITED',
    'INVALID_ARGUMENT',
    'CONFIRMATION_REQUIRED',
    'UPSTREAM_STATUS',
    'AUDIT_UNAVAILABLE',
  ] as const)('a write held by %s still used the write scope and enable: both kept', (code) => {
    const r = held(code);
    expect(r.changes.map((c) => c.what)).toEqual([]);
  });

  it('every other call code of the table counts as use too', () => {
    for (const code of callCodes.filter((c) => !NO_USE.has(c)))
      expect(
        held(code).changes.map((c) => c.what),
        code,
      ).toEqual([]);
  });

  it.each(['DENIED_SCOPE', 'DENIED_HIDDEN', 'TOOL_NOT_FOUND'] as const)(
    'a write refused %s used no grant: the scope and the enable are proposed for removal',
    (code) => {
      const r = held(code);
      expect(r.changes.map((c) => c.what)).toEqual([
        'callers.stdio.scopes (stdio:me, anonymous): remove tools:write',
        'rules[0]: remove the rule (enables createOrder)',
      ]);
      expect(r.changes[1]!.evidence[0]).toContain(
        `1 call(s) refused at the grant checks do not count (they used no grant): ${code} ×1`,
      );
    },
  );

  it('a held call shows in the evidence as counted', () => {
    const r = run(
      policy.replace('[tools:read, tools:write]', '[tools:read, tools:write, tools:delete]'),
      [
        call('getOrder', 'stdio:me', 0),
        call('createOrder', 'stdio:me', 1, {
          decision: 'denied',
          outcome: 'error',
          code: 'APPROVAL_PENDING',
        }),
      ],
      grants().map((g) => ({ ...g, scopes: ['tools:read', 'tools:write', 'tools:delete'] })),
    );
    expect(r.changes.map((c) => c.what)).toEqual([
      'callers.stdio.scopes (stdio:me, anonymous): remove tools:delete',
    ]);
    expect(r.changes[0]!.evidence).toContain(
      '1 of them stopped after the grant checks, and count as use: createOrder APPROVAL_PENDING ×1',
    );
  });

  it('a denied record without a code counts as use (fail closed: the grant is kept)', () => {
    const r = run(
      policy,
      [call('getOrder', 'stdio:me', 0), call('createOrder', 'stdio:me', 1, { decision: 'denied' })],
      grants(),
    );
    expect(r.changes).toEqual([]);
  });
});

describe('rightsize: calls to tools the catalogue does not know', () => {
  const hash = `sha256:${'0'.repeat(64)}`;
  const policy = [
    'version: 1',
    'mode: read-write',
    'callers:',
    '  apiKeys:',
    `    - { id: old, hash: "${hash}", scopes: [tools:read, tools:write, tools:delete] }`,
    `    - { id: bot, hash: "${hash}", scopes: [tools:read, tools:write] }`,
    'credentials:',
    '  shop:',
    '    scheme: shopKey',
    '    dev: env:MCP_WARDEN_CRED_SHOPKEY',
    '  spare:',
    '    scheme: shopKey',
    '    dev: env:SPARE_SHOP_KEY',
    'rateLimit:',
    '  perPrincipal: { calls: 5000, perSeconds: 60 }',
    'rules:',
    '  - match: { name: deleteCustomer }',
    '    enabled: true',
    '',
  ].join('\n');
  const grants = () => callerGrants(parsePolicy(policy, 'warden.yaml').doc);

  it('judges no scope of a caller that used them, and proposes no enable, credential or limit change', () => {
    // key:old used `purgeCustomer` (a tool of another spec version): what it needed is unknown here.
    const r = run(
      policy,
      [
        call('getOrder', 'key:bot', 0),
        call('purgeCustomer', 'key:old', 1),
        call('purgeCustomer', 'key:old', 2, {
          decision: 'denied',
          outcome: 'error',
          code: 'APPROVAL_PENDING',
        }),
      ],
      grants(),
    );
    // Only the caller with no unknown call is narrowed.
    expect(r.changes.map((c) => c.what)).toEqual(['callers.apiKeys[1].scopes (key:bot): remove tools:write']);
    expect(r.skipped).toContain(
      'callers.apiKeys[0].scopes (key:old): not judged, 2 call(s) in the window used 1 tool(s) the catalogue does not know ("purgeCustomer" ×2)',
    );
    expect(r.notes.join('\n')).toContain(
      '2 call(s) in the window used 1 tool(s) the catalogue does not know ("purgeCustomer" ×2), by key:old',
    );
    // A couple of calls: said, not warned about.
    expect(r.warnings).toEqual([]);
  });

  it('warns loudly when more than a few calls used unknown tools (the spec probably differs)', () => {
    const records = [
      call('getOrder', 'key:bot', 0),
      ...Array.from({ length: UNKNOWN_WARN + 1 }, (_, i) =>
        call(i % 2 ? 'shop_getOrder' : 'shop_listCustomers', 'key:bot', 10 + i),
      ),
    ];
    const r = run(policy, records, grants());
    // key:bot is not judged; key:old, with no call at all, is.
    expect(r.changes.map((c) => c.what)).toEqual([
      'callers.apiKeys[0].scopes (key:old): remove tools:read, tools:write, tools:delete',
    ]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(
      new RegExp(
        `^${UNKNOWN_WARN + 1} calls in the window used 2 tool\\(s\\) the catalogue does not know \\("shop_getOrder" ×2, "shop_listCustomers" ×2\\): the spec .* probably differs`,
      ),
    );
    // Exactly the threshold: no warning.
    expect(run(policy, records.slice(0, -1), grants()).warnings).toEqual([]);
  });

  it('names refused at the grant checks (an agent guessing names) block nothing', () => {
    const r = run(
      policy,
      [
        call('getOrder', 'key:bot', 0),
        ...[1, 2, 3, 4, 5].map((i) =>
          call(`guess${i}`, 'key:old', i, { decision: 'denied', outcome: 'error', code: 'TOOL_NOT_FOUND' }),
        ),
      ],
      grants(),
    );
    expect(r.warnings).toEqual([]);
    expect(r.changes.map((c) => c.what)).toEqual([
      'callers.apiKeys[0].scopes (key:old): remove tools:read, tools:write, tools:delete',
      'callers.apiKeys[1].scopes (key:bot): remove tools:write',
      'rules[0]: remove the rule (enables deleteCustomer)',
      'credentials.spare: remove the credential',
      'rateLimit.perPrincipal.calls: 5000 → 10 per 60 s',
    ]);
    expect(r.notes).toContain(
      '5 call(s) to 5 name(s) the catalogue does not know were refused at the grant checks (they used no grant; not judged)',
    );
  });
});
