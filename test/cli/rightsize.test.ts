import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { applyPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { openJsonlAudit } from '../../src/audit/jsonl.js';
import { runPolicyCheck } from '../../src/cli/policy.js';
import { runRightsize } from '../../src/cli/rightsize.js';
import { WardenError } from '../../src/errors/index.js';
import { startShopGateway } from '../support/gateway.js';
import { SHOP_SPEC, tempTree } from '../support/paths.js';
import { changesOf, EXPECTED, io, KEYS, ok, POLICY, recordTraffic } from '../support/rightsize.js';
import { type Shop, startShop } from '../support/shop.js';
import { runCli } from '../support/stdio.js';

async function serveAndCallUsed(shop: Shop, policy: string) {
  const fx = await startShopGateway({ shop, policy, env: { SPARE_SHOP_KEY: 'spare' } });
  try {
    const reader = await fx.connect({ token: KEYS.reader.key });
    const writer = await fx.connect({ token: KEYS.writer.key });
    const idle = await fx.connect({ token: KEYS.idle.key });
    // Every call the audit shows allowed still goes through, for the same caller.
    ok(await reader.callTool({ name: 'searchProducts', arguments: { q: 'mug' } }));
    ok(await reader.callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } }));
    ok(await reader.callTool({ name: 'listCustomers', arguments: {} }));
    ok(
      await writer.callTool({
        name: 'createOrder',
        arguments: { body: { customerId: 'c_1001', items: [{ sku: 'KB-01', quantity: 1 }] } },
      }),
    );
    ok(await writer.callTool({ name: 'searchProducts', arguments: { q: 'kettle' } }));
    // What was removed is gone: the reader's write scope, the idle key's reads. The writer's delete,
    // held for an operator's approval in the window, went past the grant checks: it is kept.
    const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();
    expect(await names(reader)).not.toContain('createOrder');
    expect(await names(writer)).toContain('createOrder');
    expect(await names(writer)).toContain('deleteCustomer');
    expect(await names(idle)).toEqual([]);
  } finally {
    await fx.close();
  }
}

describe('audit rightsize on an audit recorded by a real gateway', () => {
  it('proposes exactly the unused grants, keeps comments, and the result passes policy check and serves every used call', async () => {
    const shop = await startShop();
    try {
      const fx = await recordTraffic(shop);
      const policyFile = join(fx.dir, 'warden.yaml');
      const proposed = join(fx.dir, 'tight.yaml');
      const o = io();
      await runRightsize(
        fx.auditFile,
        { policy: policyFile, spec: SHOP_SPEC, since: '1d', write: proposed },
        o,
      );
      expect(changesOf(o.out)).toEqual(EXPECTED);
      // The evidence: counts, last use, peaks, and calls refused at the grant checks named as not counting.
      expect(o.out).toContain('#   key:reader: 5 call(s) used its grants, to 3 tool(s) in the window');
      expect(o.out).toContain('#   key:idle: no call used its grants in the window; no use in the audit');
      expect(o.out).toContain(
        '#   1 call(s) refused at the grant checks do not count (they used no grant): createOrder DENIED_SCOPE ×1',
      );
      expect(o.out).toContain(
        '# note: 1 call(s) to 1 name(s) the catalogue does not know were refused at the grant checks',
      );
      // A file is one instance's audit, and the output says so.
      expect(o.out).toContain(`# note: only the instance that wrote ${fx.auditFile} is seen`);
      expect(o.out).not.toContain('WARNING');
      expect(o.out).toMatch(/peak [1-6] call\(s\) in 60 s/);
      expect(o.out).toMatch(/peak upstream response \d+ bytes \(listCustomers/);

      // The diff, applied to the policy, is the written policy.
      const diff = o.out.slice(o.out.indexOf('==='));
      const original = readFileSync(policyFile, 'utf8');
      const tight = readFileSync(proposed, 'utf8');
      expect(applyPatch(original, diff)).toBe(tight);
      // Only the grants above changed; the rest is the user's text, comments included.
      expect(tight).toContain('# The shop, as served to the order bots.');
      expect(tight).toContain(
        `- { id: reader, hash: "${KEYS.reader.hash}", scopes: [tools:read] }  # the reporting bot`,
      );
      expect(tight).toContain(
        '      scopes:\n        - tools:read\n        - tools:write\n        - tools:delete\n    - { id: idle',
      );
      expect(tight).toContain(`- { id: idle, hash: "${KEYS.idle.hash}", scopes: [] }`);
      expect(tight).toContain('  # Orders are placed by the writer bot.\n  - match: { name: createOrder }');
      expect(tight).toContain('Deleting customers');
      expect(tight).not.toContain('spare');
      expect(tight).toContain(
        'perPrincipal: { calls: 10, perSeconds: 60 }   # generous while the bots were new',
      );
      expect(tight).toContain('maxResultBytes: 65536   # results of a whole page of customers\n');
      expect(o.out).toMatch(/peak result to the agent \d+ bytes \(listCustomers/);
      expect(tight).toContain('maxResponseBytes: 65536  # rightsize: peak');
      const removed = diff.split('\n').filter((l) => l.startsWith('-') && !l.startsWith('---'));
      expect(removed).toHaveLength(9);

      // Exactly the grants listed, as values.
      const before = parseYaml(original);
      const after = parseYaml(tight);
      expect(after.callers.apiKeys.map((k: { scopes: string[] }) => k.scopes)).toEqual([
        ['tools:read'],
        ['tools:read', 'tools:write', 'tools:delete'],
        [],
      ]);
      expect(after.rules).toEqual([
        before.rules[0],
        before.rules[1],
        { ...before.rules[2], maxResponseBytes: 65536, maxResultBytes: 65536 },
      ]);
      expect(Object.keys(after.credentials)).toEqual(['shop']);
      expect(after.rateLimit).toEqual({ perPrincipal: { calls: 10, perSeconds: 60 } });
      const { callers: _c, rules: _r, credentials: _k, rateLimit: _l, ...restBefore } = before;
      const { callers: _c2, rules: _r2, credentials: _k2, rateLimit: _l2, ...restAfter } = after;
      expect(restAfter).toEqual(restBefore);

      const check = io();
      await runPolicyCheck(proposed, { spec: SHOP_SPEC }, check);
      expect(check.out).toContain(`${proposed}: ok`);
      await serveAndCallUsed(shop, tight);
    } finally {
      await shop.close();
    }
  }, 120_000);

  it('proposes nothing from an empty window, and says why', async () => {
    const shop = await startShop();
    try {
      const fx = await startShopGateway({ shop, policy: POLICY, env: { SPARE_SHOP_KEY: 'spare' } });
      await fx.close();
      const o = io();
      await runRightsize(
        fx.auditFile,
        { policy: fx.policyFile, spec: SHOP_SPEC, since: '30d', write: join(fx.dir, 'same.yaml') },
        o,
      );
      expect(o.out).toMatch(/no proposal: the window \(30d, since .*\) holds no call that used its grants/);
      expect(o.out).toContain('# no change proposed');
      expect(o.out).not.toContain('---');
      expect(readFileSync(join(fx.dir, 'same.yaml'), 'utf8')).toBe(POLICY);

      // Calls before the window do not count either: the window is what is judged.
      const recorded = await recordTraffic(shop);
      const later = io();
      await runRightsize(
        recorded.auditFile,
        { policy: recorded.policyFile, spec: SHOP_SPEC, since: new Date(Date.now() + 60_000).toISOString() },
        later,
      );
      expect(later.out).toContain('# no change proposed');
    } finally {
      await shop.close();
    }
  }, 120_000);

  it('run with another spec than the one served: callers of unknown tools keep their scopes, no enable, credential or limit change, a loud warning', async () => {
    const shop = await startShop();
    try {
      const fx = await recordTraffic(shop);
      // The same API, two operations renamed (another spec version): the reader's 4 calls and one
      // of the writer's are to tools this catalogue does not know.
      const renamed = readFileSync(SHOP_SPEC, 'utf8')
        .replace('operationId: searchProducts', 'operationId: findProducts')
        .replace('operationId: getOrder', 'operationId: fetchOrder');
      const spec = join(fx.dir, 'openapi-v2.yaml');
      writeFileSync(spec, renamed);
      const o = io();
      await runRightsize(fx.auditFile, { policy: fx.policyFile, spec, since: '1d' }, o);
      // Only the idle key (no call at all) is narrowed.
      expect(changesOf(o.out)).toEqual(['callers.apiKeys[2].scopes (key:idle): remove tools:read']);
      expect(o.out).toContain(
        '# kept: callers.apiKeys[0].scopes (key:reader): not judged, 4 call(s) in the window used 2 tool(s) the catalogue does not know ("searchProducts" ×3, "getOrder" ×1)',
      );
      expect(o.out).toContain(
        '# kept: callers.apiKeys[1].scopes (key:writer): not judged, 1 call(s) in the window used 1 tool(s) the catalogue does not know ("searchProducts" ×1)',
      );
      expect(o.out).toMatch(
        /^# note: 5 call\(s\) in the window used 2 tool\(s\) the catalogue does not know .*no enable, credential or limit change is proposed$/m,
      );
      const warning =
        '5 calls in the window used 2 tool(s) the catalogue does not know ("searchProducts" ×4, "getOrder" ×1): the spec (or its version, or the API set\'s prefixes) probably differs from the one the gateway served; rerun with the served --spec';
      expect(o.out).toContain(`# WARNING: ${warning}\n`);
      expect(o.err).toContain(`WARNING: ${warning}\n`);
      // The warning comes before the changes.
      expect(o.out.indexOf('# WARNING')).toBeLessThan(o.out.indexOf('# change 1'));
    } finally {
      await shop.close();
    }
  }, 120_000);

  it('refuses --instance with a file (a file is one instance: the output says so)', async () => {
    const shop = await startShop();
    try {
      const fx = await startShopGateway({ shop, policy: POLICY, env: { SPARE_SHOP_KEY: 'spare' } });
      await fx.close();
      const err = await runRightsize(
        fx.auditFile,
        { policy: fx.policyFile, spec: SHOP_SPEC, instance: 'gw-1' },
        io(),
      ).catch((e: unknown) => e);
      expect((err as WardenError).code).toBe('USAGE');
      expect((err as WardenError).message).toContain('--instance');
    } finally {
      await shop.close();
    }
  }, 120_000);

  it('refuses a tampered audit with AUDIT_BROKEN and proposes nothing', async () => {
    const shop = await startShop();
    try {
      const fx = await recordTraffic(shop);
      const lines = readFileSync(fx.auditFile, 'utf8').split('\n');
      // The delete attempt rewritten as allowed: the chain no longer verifies.
      const i = lines.findIndex((l) => l.includes('"APPROVAL_PENDING"') && l.includes('"kind":"call"'));
      expect(i).toBeGreaterThan(0);
      lines[i] = lines[i]!.replace('"decision":"denied"', '"decision":"allowed"');
      writeFileSync(fx.auditFile, lines.join('\n'));
      const o = io();
      const err = await runRightsize(fx.auditFile, { policy: fx.policyFile, spec: SHOP_SPEC }, o).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WardenError);
      expect((err as WardenError).code).toBe('AUDIT_BROKEN');
      expect((err as WardenError).details.join('\n')).toMatch(/audit\.jsonl:\d+ \(seq \d+\)/);
      expect(o.out).toBe('');
    } finally {
      await shop.close();
    }
  }, 120_000);

  it('runs from the built CLI: the diff on stdout, exit 0; a broken chain exits 1 with AUDIT_BROKEN (run `npm run build` first)', async () => {
    const shop = await startShop();
    try {
      const fx = await recordTraffic(shop);
      const args = [
        'audit',
        'rightsize',
        fx.auditFile,
        '--policy',
        fx.policyFile,
        '--spec',
        SHOP_SPEC,
        '--since',
        '2h',
      ];
      const good = runCli(args, { SPARE_SHOP_KEY: 'spare' });
      expect(good.stderr).toBe('');
      expect(good.code).toBe(0);
      expect(changesOf(good.stdout)).toEqual(EXPECTED);
      expect(good.stdout).toContain(`--- ${fx.policyFile}`);

      const lines = readFileSync(fx.auditFile, 'utf8').split('\n');
      lines.splice(3, 1); // a record removed
      writeFileSync(fx.auditFile, lines.join('\n'));
      const bad = runCli(args, {});
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('AUDIT_BROKEN');
      expect(bad.stdout).toBe('');
    } finally {
      await shop.close();
    }
  }, 120_000);

  it("rightsizes an API set policy: each API's rules and credentials, edited in place", async () => {
    const dir = tempTree({});
    const audit = openJsonlAudit(join(dir, 'audit.jsonl'));
    // Records as the pipeline writes them for an API set (the file above drives a real gateway).
    const call = (tool: string, principal: string, api: string) =>
      audit.write({
        kind: 'call',
        time: new Date().toISOString(),
        id: `${tool}-${principal}`,
        tool,
        api,
        decision: 'allowed',
        outcome: 'ok',
        principal,
        auth: principal === 'anonymous' ? 'anonymous' : 'stdio',
        ms: 1,
      });
    call('shop_createOrder', 'stdio:demo-user', 'shop');
    call('shop_getOrder', 'anonymous', 'shop');
    await audit.close();
    const o = io();
    const policy = new URL('../../examples/gateway.yaml', import.meta.url).pathname;
    await runRightsize(join(dir, 'audit.jsonl'), { policy, since: '1d', write: join(dir, 'tight.yaml') }, o);
    expect(changesOf(o.out)).toEqual([
      'callers.stdio.scopes (stdio:demo-user): remove tools:read, tools:delete',
      'callers.anonymous.scopes (anonymous): remove tools:write, tools:delete',
      'apis.shop.rules[1]: remove the rule (enables shop_deleteCustomer)',
      'apis.pets.rules[0]: remove the rule (enables pets_requestAdoption)',
      'apis.pets.credentials.pets: remove the credential',
    ]);
    expect(o.out).not.toContain('re-rendered');
    const tight = readFileSync(join(dir, 'tight.yaml'), 'utf8');
    expect(tight).toContain(
      '  pets:\n    spec: petstore/openapi.yaml\n    baseUrl: http://127.0.0.1:4011/v1\n    rules: []\n',
    );
    expect(tight).toContain('      # Agents may place orders; no confirmation (not destructive).\n');
    expect(parseYaml(tight).apis.shop.credentials).toEqual(
      parseYaml(readFileSync(policy, 'utf8')).apis.shop.credentials,
    );
  }, 60_000);

  it('without since reads the last 30 days: an older use does not count, a recent one does; --write makes a 0600 file', async () => {
    const dir = tempTree({});
    const file = join(dir, 'audit.jsonl');
    const audit = openJsonlAudit(file);
    const DAY = 86_400_000;
    // Records as the pipeline writes them for an API set (as above), dated by hand.
    const call = (tool: string, principal: string, ago: number) =>
      audit.write({
        kind: 'call',
        time: new Date(Date.now() - ago).toISOString(),
        id: `${tool}-${principal}-${ago}`,
        tool,
        api: 'shop',
        decision: 'allowed',
        outcome: 'ok',
        principal,
        auth: principal === 'anonymous' ? 'anonymous' : 'stdio',
        ms: 1,
      });
    // The stdio user's write is 31 days old: outside the default window. Its read is 29 days old: inside.
    call('shop_createOrder', 'stdio:demo-user', 31 * DAY);
    call('shop_getOrder', 'stdio:demo-user', 29 * DAY);
    call('shop_getOrder', 'anonymous', DAY);
    await audit.close();
    const policy = new URL('../../examples/gateway.yaml', import.meta.url).pathname;
    const written = join(dir, 'tight.yaml');

    const before = Date.now();
    const o = io();
    await runRightsize(file, { policy, write: written }, o);
    const header = /window 30d \(since (\S+)\), (\d+) call\(s\) in it/.exec(o.out);
    expect(header, o.out).not.toBeNull();
    const since = Date.parse(header![1]!);
    expect(since).toBeGreaterThanOrEqual(before - 30 * DAY - 1000);
    expect(since).toBeLessThanOrEqual(Date.now() - 30 * DAY);
    expect(header![2]).toBe('2');
    // The old write does not count: tools:write is proposed for removal (with tools:delete), the read is kept.
    expect(changesOf(o.out)).toContain(
      'callers.stdio.scopes (stdio:demo-user): remove tools:write, tools:delete',
    );
    expect(o.out).toContain('apis.shop.rules[0]: remove the rule (enables shop_createOrder)');

    // The same audit over 60 days: the write is used, and neither change is proposed.
    const wide = io();
    await runRightsize(file, { policy, since: '60d' }, wide);
    expect(wide.out).toContain('window 60d');
    expect(changesOf(wide.out)).toContain('callers.stdio.scopes (stdio:demo-user): remove tools:delete');
    expect(wide.out).not.toContain('enables shop_createOrder)');

    // --write: the proposal, readable by its owner only.
    expect(statSync(written).mode & 0o777).toBe(0o600);
    expect(readFileSync(written, 'utf8')).toBe(
      applyPatch(readFileSync(policy, 'utf8'), o.out.slice(o.out.indexOf('==='))),
    );
    expect(o.err).toContain(`wrote ${written}:`);
  }, 60_000);

  it("checks signed checkpoints with --key-env or the policy's audit.signingKey, and finds the audit with --state-dir", async () => {
    const shop = await startShop();
    const right = 'rightsize-signing-key-0123456789';
    try {
      const fx = await recordTraffic(
        shop,
        `${POLICY}audit:\n  signingKey: env:AUDIT_KEY\n  checkpointEvery: 3\n`,
        {
          AUDIT_KEY: right,
        },
      );
      const opts = { policy: fx.policyFile, spec: SHOP_SPEC, since: '1d' };
      const env = { AUDIT_KEY: process.env.AUDIT_KEY, OTHER_KEY: process.env.OTHER_KEY };
      try {
        // The policy's key, read from its reference: the signatures verify.
        process.env.AUDIT_KEY = right;
        const o = io();
        await runRightsize(fx.auditFile, opts, o);
        expect(changesOf(o.out)).toEqual(EXPECTED);
        // Another key, named by --key-env: the signatures do not verify, and nothing is proposed.
        process.env.OTHER_KEY = 'not-the-signing-key-0123456789';
        const wrong = await runRightsize(fx.auditFile, { ...opts, keyEnv: 'OTHER_KEY' }, io()).catch(
          (e) => e,
        );
        expect((wrong as WardenError).code).toBe('AUDIT_BROKEN');
        // The policy's reference now reads a wrong key: refused too (the key is the policy's).
        process.env.AUDIT_KEY = 'not-the-signing-key-0123456789';
        const viaPolicy = await runRightsize(fx.auditFile, opts, io()).catch((e) => e);
        expect((viaPolicy as WardenError).code).toBe('AUDIT_BROKEN');
        process.env.AUDIT_KEY = right;

        // Without a file: the one audit under --state-dir, named on stderr.
        const state = tempTree({});
        mkdirSync(join(state, 'shop-0123abcd'));
        for (const f of readdirSync(fx.dir).filter((n) => n.startsWith('audit.jsonl')))
          copyFileSync(join(fx.dir, f), join(state, 'shop-0123abcd', f));
        const found = io();
        await runRightsize(undefined, { ...opts, stateDir: state }, found);
        expect(found.err).toContain(`audit file: ${join(state, 'shop-0123abcd', 'audit.jsonl')}`);
        expect(changesOf(found.out)).toEqual(EXPECTED);
      } finally {
        for (const [k, v] of Object.entries(env))
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
      }
    } finally {
      await shop.close();
    }
  }, 120_000);
});
