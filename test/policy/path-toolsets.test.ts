import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/catalog/build.js';
import { runToolsets } from '../../src/cli/policy.js';
import { loadSpec } from '../../src/openapi/load.js';
import { DEFAULT_POLICY } from '../../src/policy/evaluate.js';
import { listToolsets } from '../../src/policy/toolsets.js';
import { RPC_BANK } from '../cli/rpc-bank-spec.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';
import { SHARED_SPECS, tempTree } from '../support/paths.js';

const sets = (c: Awaited<ReturnType<typeof catalogOf>>) =>
  Object.fromEntries(listToolsets(c, DEFAULT_POLICY).map((s) => [s.name, s]));
const shared = async (file: string) => buildCatalog(await loadSpec(join(SHARED_SPECS, file), {}));

describe('toolsets by path prefix for untagged and single-tag APIs', () => {
  it('splits a single-tag RPC API by the first path segment after the version and the shared prefix', async () => {
    const s = sets(await catalogOf(RPC_BANK));
    expect(Object.keys(s).sort()).toEqual(['accounts', 'bank', 'messages', 'payments', 'users']);
    expect(s.bank).toMatchObject({ source: 'tag' });
    expect(s.bank!.tools).toHaveLength(7);
    expect(s.accounts).toMatchObject({
      source: 'path',
      description: 'Operations under /bank/accounts',
      tools: ['accountsGet', 'accountsList'],
    });
    expect(s.users!.tools).toEqual(['getOrCreateUser', 'usersLookup']);
    expect(s.payments!.tools).toEqual(['paymentsSearch', 'paymentsCreate']);
  });

  it('keeps tag toolsets for an API with several tags, and path groups only for its untagged operations', async () => {
    const c = await catalogOf(
      minimalSpec({
        '/v2/people/list': { post: { operationId: 'peopleList', tags: ['People'], responses: jsonOk() } },
        '/v2/deals/list': { post: { operationId: 'dealsList', tags: ['Deals'], responses: jsonOk() } },
        '/v2/notes/list': { post: { operationId: 'notesList', responses: jsonOk() } },
      }),
    );
    expect(listToolsets(c, DEFAULT_POLICY).map((x) => [x.name, x.source])).toEqual([
      ['deals', 'tag'],
      ['notes', 'path'],
      ['people', 'tag'],
    ]);
  });

  it('groups RPC method names by their namespace (`/chat.postMessage` → chat)', async () => {
    const c = await catalogOf(
      minimalSpec({
        '/api/chat.postMessage': { post: { operationId: 'chatPost', responses: jsonOk() } },
        '/api/chat.update': { post: { operationId: 'chatUpdate', responses: jsonOk() } },
        '/api/users.list': { get: { operationId: 'usersList', responses: jsonOk() } },
        '/api/users.profile.get': { get: { operationId: 'usersProfileGet', responses: jsonOk() } },
      }),
    );
    const s = sets(c);
    expect(Object.keys(s).sort()).toEqual(['chat', 'users']);
    expect(s.chat).toMatchObject({ source: 'path', description: 'Operations under /chat' });
    expect(s.users!.tools).toEqual(['usersList', 'usersProfileGet']);
  });

  it('skips a numeric version segment in a shared spec (link-example: /2.0/users, /2.0/repositories)', async () => {
    const s = sets(await shared('link-example-v3.yaml'));
    expect(Object.keys(s).sort()).toEqual(['repositories', 'users']);
    expect(s.repositories!.tools).toHaveLength(5);
  });

  it('keeps the one tag of a single-tag shared spec when its paths say the same (petstore: pets)', async () => {
    const s = sets(await shared('petstore-v3.yaml'));
    expect(Object.entries(s).map(([n, x]) => [n, x.source, x.tools.length])).toEqual([['pets', 'tag', 3]]);
  });

  it('keeps the tag toolsets of a multi-tag shared spec (uspto: metadata, search)', async () => {
    const s = sets(await shared('uspto-v3.yaml'));
    expect(Object.entries(s).map(([n, x]) => [n, x.source])).toEqual([
      ['metadata', 'tag'],
      ['search', 'tag'],
    ]);
  });

  it('`mcp-warden toolsets` lists the path groups with their size and exposure', async () => {
    const spec = join(tempTree({ 'bank.json': RPC_BANK }), 'bank.json');
    const out: string[] = [];
    await runToolsets(spec, { format: 'json' }, { stdout: (x) => void out.push(x), stderr: () => {} });
    const json = JSON.parse(out.join('')) as {
      toolsets: Array<{ name: string; source: string; exposed: number }>;
    };
    expect(json.toolsets.map((t) => [t.name, t.source, t.exposed])).toEqual([
      ['accounts', 'path', 0],
      ['bank', 'tag', 0],
      ['messages', 'path', 0],
      ['payments', 'path', 0],
      ['users', 'path', 0],
    ]);
    const text: string[] = [];
    await runToolsets(spec, {}, { stdout: (x) => void text.push(x), stderr: () => {} });
    expect(text.join('')).toMatch(/\naccounts +2 +0 +path +Operations under \/bank\/accounts\n/);
  });
});
