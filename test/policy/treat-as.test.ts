import { describe, expect, it } from 'vitest';
import { buildView } from '../../src/control/view.js';
import type { Catalog } from '../../src/model/catalog.js';
import { checkPolicy } from '../../src/policy/check.js';
import { evaluatePolicy, type ToolDecision } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

const body = {
  required: true,
  content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } } } } },
};
const post = (operationId: string) => ({ post: { operationId, requestBody: body, responses: jsonOk() } });

let catalog: Promise<Catalog> | undefined;
const rpc = () =>
  (catalog ??= catalogOf(
    minimalSpec({
      '/accounts/get': post('accountsGet'),
      '/accounts/list': post('accountsList'),
      '/accounts/remove': post('accountsRemove'),
      '/accounts/transfer': post('accountsTransfer'),
      '/api-keys/list': post('apiKeysList'),
      '/accounts/put': { put: { operationId: 'accountsPut', requestBody: body, responses: jsonOk() } },
    }),
  ));

async function decide(rules: string, mode = 'read-only'): Promise<Map<string, ToolDecision>> {
  const p = parsePolicy(`version: 1\nmode: ${mode}\nrules:\n${rules}`, 'warden.yaml');
  const ds = evaluatePolicy(await rpc(), { doc: p.doc, file: 'warden.yaml', lineOf: p.lineOf });
  return new Map(ds.map((d) => [d.tool.name, d]));
}
const rule = (name: string, reason = 'an RPC read: it only fetches an account') =>
  `  - match: { name: ${name} }\n    treatAs: read\n    reason: "${reason}"\n`;

describe('treatAs: read — a POST the operator declares a read', () => {
  it('needs a reason', () => {
    expect(() =>
      parsePolicy('version: 1\nrules:\n  - match: { name: accountsGet }\n    treatAs: read\n', 'w.yaml'),
    ).toThrow(/treatAs: read needs a reason/);
    expect(() =>
      parsePolicy(
        'version: 1\nrules:\n  - match: { name: x }\n    treatAs: write\n    reason: "some words here"\n',
        'w.yaml',
      ),
    ).toThrow();
  });

  it('exposes the listed POST as a read in read-only mode, with read scopes and limits, never retried', async () => {
    const d = await decide(rule('accountsGet'));
    const get = d.get('accountsGet')!;
    expect(get.kind).toBe('read');
    expect(get.blockers).toEqual([]);
    expect(get.scopes).toEqual(['tools:read']);
    expect(get.confirm).toBe(false);
    expect(get.rateLimit.perToolPrincipal).toEqual({ calls: 120, perSeconds: 60 });
    expect(get.retries).toBe(false);
    // Its body still goes out: an outward channel for the taint guard unless a rule says not.
    expect(get.egress).toBe(true);
    expect(get.treatAs).toEqual({
      reason: 'an RPC read: it only fetches an account',
      by: 'rules[0] (warden.yaml:4)',
    });
    expect(get.tool.risk.classes).toEqual(['write']);
    expect(get.tool.source.method).toBe('post');
    expect(get.steps.map((s) => s.what).join('\n')).toMatch(
      /treatAs: read because "an RPC read: it only fetches an account" \(recognised as read-like by its verb "get"\): decided as a read, still sent as a POST\n.*treatAs: read$/m,
    );
  });

  it('leaves an unlisted read-like POST a hidden write', async () => {
    const d = await decide(rule('accountsGet'));
    const list = d.get('accountsList')!;
    expect(list.tool.risk.readLike?.verb).toBe('list');
    expect(list.kind).toBe('write');
    expect(list.blockers.map((b) => b.kind)).toEqual(['mode', 'disabled']);
    expect(list.treatAs).toBeUndefined();
  });

  it('never turns a destructive POST or another method into a read', async () => {
    const d = await decide(`${rule('accountsRemove')}${rule('accountsPut')}`, 'read-write');
    const remove = d.get('accountsRemove')!;
    expect(remove.kind).toBe('destructive');
    expect(remove.blockers.map((b) => b.kind)).toEqual(['disabled']);
    expect(remove.steps.map((s) => s.what)).toContain(
      'treatAs: read ignored: the tool is classified destructive',
    );
    const put = d.get('accountsPut')!;
    expect(put.kind).toBe('write');
    expect(put.steps.map((s) => s.what)).toContain(
      'treatAs: read ignored: only a POST can be treated as a read (this is PUT)',
    );
  });

  it('does not lift a restricted risk: a credential POST still needs allowRisk', async () => {
    const d = await decide(rule('apiKeysList'));
    const keys = d.get('apiKeysList')!;
    expect(keys.kind).toBe('read');
    expect(keys.blockers.map((b) => b.kind)).toEqual(['risk']);
    const allowed = await decide(
      `${rule('apiKeysList')}  - match: { name: apiKeysList }\n    allowRisk: [credential]\n    reason: "the agent audits key names"\n`,
    );
    expect(allowed.get('apiKeysList')!.blockers).toEqual([]);
  });

  it('policy check warns when a treatAs: read rule can have no effect, and not when it can', async () => {
    const check = async (rules: string) =>
      checkPolicy(await rpc(), parsePolicy(`version: 1\nrules:\n${rules}`, 'warden.yaml')).map(
        (p) => `${p.level} ${p.line}: ${p.message}`,
      );
    expect(await check(rule('accountsRemove'))).toEqual([
      'warning 4: rules[0]: treatAs: read has no effect: it matches no POST that is a plain write (destructive tools and other methods stay what they are)',
    ]);
    expect(await check(rule('accountsPut'))).toHaveLength(1);
    expect(await check(rule('accountsGet'))).toEqual([]);
    // A broad match that sweeps in a POST with no read verb names it.
    const broad = `  - match: { path: "/accounts/*" }\n    treatAs: read\n    reason: "every account call only reads"\n`;
    expect(await check(broad)).toEqual([
      'warning 4: rules[0]: treatAs: read turns 1 POST(s) with no read verb into reads: accountsTransfer — match them by name if that is meant',
    ]);
  });

  it('the read-only kill switch stops a POST treated as a read with the writes (it is still a POST)', async () => {
    const d = await decide(rule('accountsGet'));
    const view = buildView([...d.values()], new Map(), { kill: 'read-only', toggles: new Map() }, 1);
    const blockers = (name: string) => view.entries.find((e) => e.decision.tool.name === name)?.blockers;
    expect(blockers('accountsGet')).toContainEqual({ kind: 'mode', reason: 'kill switch: read-only' });
    const normal = buildView([...d.values()], new Map(), { kill: 'none', toggles: new Map() }, 1);
    expect(normal.entries.find((e) => e.decision.tool.name === 'accountsGet')?.blockers).toEqual([]);
  });
});
