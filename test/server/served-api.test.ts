import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/log.js';
import { DEFAULT_POLICY } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { loadApis, membersOf } from '../../src/server/served-api.js';
import { jsonOk, minimalSpec, SHARED_SPECS, tempTree } from '../support/helpers.js';
import { SHOP_SPEC } from '../support/paths.js';

const logger = createLogger({ level: 'silent', redactor: createRedactor() });
const set = (yaml: string) => parsePolicy(yaml, 'warden.yaml').doc;

describe('what is served: --spec, --api or apis:', () => {
  it('serves one --spec as the one-API case: no name, no prefix, required', () => {
    expect(membersOf({ spec: 'a.yaml', baseUrl: 'https://x.test' }, DEFAULT_POLICY, undefined)).toEqual([
      { prefix: '', required: true, source: { spec: 'a.yaml', baseUrl: 'https://x.test', load: {} } },
    ]);
  });

  it('reads apis: with specs relative to the policy file', () => {
    const members = membersOf(
      {},
      set(
        'version: 1\napis:\n  crm: { spec: specs/crm.yaml, prefix: c }\n  gh: { spec: "https://x.test/gh.json", required: false }\n',
      ),
      '/etc/warden/gateway.yaml',
    );
    expect(members.map((m) => [m.name, m.prefix, m.required, m.source.spec])).toEqual([
      ['crm', 'c', false, '/etc/warden/specs/crm.yaml'],
      ['gh', 'gh', false, 'https://x.test/gh.json'],
    ]);
  });

  it.each([
    [{ spec: 'a.yaml', apis: [{ name: 'x', spec: 'b.yaml' }] }, 'version: 1', /either --spec .* or --api/],
    [{ spec: 'a.yaml' }, 'version: 1\napis:\n  x: { spec: b.yaml }', /apis:.*so --spec is not used/],
    [
      { apis: [{ name: 'x', spec: 'b.yaml' }] },
      'version: 1\napis:\n  x: { spec: b.yaml }',
      /so --api is not used/,
    ],
    [
      { baseUrl: 'https://x.test' },
      'version: 1\napis:\n  x: { spec: b.yaml }',
      /--base-url goes with --spec/,
    ],
    [{}, 'version: 1', /nothing to serve/],
    [
      {
        apis: [
          { name: 'x', spec: 'a' },
          { name: 'x', spec: 'b' },
        ],
      },
      'version: 1',
      /two --api flags are named "x"/,
    ],
    [
      { apis: [{ name: 'x', spec: 'a' }] },
      'version: 1\ncredentials:\n  k: { scheme: s, dev: env:K }',
      /MCP_WARDEN_CRED_<API>_<SCHEME>/,
    ],
  ])('refuses %j with %j as a usage error', (o, yaml, message) => {
    expect(() => membersOf(o, set(yaml), 'w.yaml')).toThrow(message);
    try {
      membersOf(o, set(yaml), 'w.yaml');
    } catch (e) {
      expect((e as { code: string }).code).toBe('USAGE');
    }
  });

  it('names the same tools the same on every start, whatever else the set holds', async () => {
    const members = membersOf(
      {
        apis: [
          { name: 'shop', spec: SHOP_SPEC },
          { name: 'pets', spec: join(SHARED_SPECS, 'petstore-v3.yaml') },
        ],
      },
      DEFAULT_POLICY,
      undefined,
    );
    const names = async (m: typeof members) =>
      (await loadApis(m, logger)).catalog.tools.map((t) => `${t.api}:${t.name}`);
    const first = await names(members);
    expect(first).toContain('shop:shop_getCustomer');
    expect(first).toContain('pets:pets_listPets');
    expect(await names(members)).toEqual(first);
    expect((await names([...members].reverse())).sort()).toEqual([...first].sort());
    expect((await names([members[1]!])).every((n) => first.includes(n))).toBe(true);
  });

  it('two specs with the same operationIds: distinct tools, each with its own API', async () => {
    const spec = minimalSpec(
      { '/items': { get: { operationId: 'listItems', responses: jsonOk() } } },
      { servers: [{ url: 'https://x.test' }] },
    );
    const dir = tempTree({ 'a.json': spec, 'b.json': spec });
    const loaded = await loadApis(
      membersOf(
        {},
        set(`version: 1\napis:\n  a: { spec: a.json }\n  b: { spec: b.json, prefix: bee }\n`),
        join(dir, 'w.yaml'),
      ),
      logger,
    );
    expect(loaded.catalog.title).toBe('a + b');
    expect(loaded.catalog.tools.map((t) => [t.name, t.api])).toEqual([
      ['a_listItems', 'a'],
      ['bee_listItems', 'b'],
    ]);
  });

  it('starts without an API that is not required, and refuses to start with none at all', async () => {
    const dir = tempTree({ 'a.json': minimalSpec({}, { servers: [{ url: 'https://x.test' }] }) });
    const loaded = await loadApis(
      membersOf(
        {},
        set('version: 1\napis:\n  a: { spec: a.json }\n  gone: { spec: missing.json, required: false }\n'),
        join(dir, 'w.yaml'),
      ),
      logger,
    );
    expect(loaded.parts.map((p) => [p.member.name, p.error !== undefined])).toEqual([
      ['a', false],
      ['gone', true],
    ]);
    await expect(
      loadApis(
        membersOf(
          {},
          set('version: 1\napis:\n  gone: { spec: missing.json, required: false }\n'),
          join(dir, 'w.yaml'),
        ),
        logger,
      ),
    ).rejects.toThrow(/no API of the set could be loaded/);
  });
});
