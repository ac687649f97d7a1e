import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { newApiKey } from '../../src/server/callers.js';
import { codeOf, startShopGateway } from './gateway.js';
import type { Shop } from './shop.js';

/** Shared by the `audit rightsize` tests (test/cli/rightsize*.test.ts): the policy, its keys and the recorded traffic. */

/** The three API keys of the policy below: over-granted, using every grant (some calls held by guards), idle. */
export const KEYS = { reader: newApiKey(), writer: newApiKey(), idle: newApiKey() };

/** A production-like policy with comments, flow and block styles, and grants the calls below never use. */
export const POLICY = `# The shop, as served to the order bots.
version: 1
mode: read-write

callers:
  apiKeys:
    - { id: reader, hash: "${KEYS.reader.hash}", scopes: [tools:read, tools:write, tools:delete] }  # the reporting bot
    - id: writer
      hash: "${KEYS.writer.hash}"
      scopes:
        - tools:read
        - tools:write
        - tools:delete
    - { id: idle, hash: "${KEYS.idle.hash}", scopes: [tools:read] }

credentials:
  shop:
    scheme: shopKey
    dev: env:MCP_WARDEN_CRED_SHOPKEY
  # A second key for the same scheme, kept "just in case".
  spare:
    scheme: shopKey
    dev: env:SPARE_SHOP_KEY

rateLimit:
  perPrincipal: { calls: 5000, perSeconds: 60 }   # generous while the bots were new

rules:
  # Orders are placed by the writer bot.
  - match: { name: createOrder }
    enabled: true
  # Deleting customers: the clean-up bot may, once confirmed.
  - match: { name: deleteCustomer }
    enabled: true
  - match: { name: listCustomers }
    maxPageSize: 20
    maxResponseBytes: 8388608
    maxResultBytes: 1048576   # results of a whole page of customers
`;

export type Io = { out: string; err: string; stdout: (s: string) => void; stderr: (s: string) => void };
export function io(): Io {
  const o: Io = {
    out: '',
    err: '',
    stdout: (s) => {
      o.out += s;
    },
    stderr: (s) => {
      o.err += s;
    },
  };
  return o;
}

const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]!.text;
export const ok = (r: unknown) => {
  expect((r as { isError?: boolean }).isError, text(r)).toBeFalsy();
};

/**
 * The recorded traffic, through a real gateway: the reader reads (and calls a name the API does not
 * have: TOOL_NOT_FOUND), the writer orders (once with a bad argument: INVALID_ARGUMENT) and asks to
 * delete a customer (parked for an operator: APPROVAL_PENDING, past the grant checks, so the delete
 * grants count as used), the idle key only tries an order it has no scope for (DENIED_SCOPE: no use).
 */
export async function recordTraffic(shop: Shop, policy = POLICY, extraEnv: NodeJS.ProcessEnv = {}) {
  const fx = await startShopGateway({ shop, policy, env: { SPARE_SHOP_KEY: 'spare', ...extraEnv } });
  const reader = await fx.connect({ token: KEYS.reader.key, name: 'reader' });
  const writer = await fx.connect({ token: KEYS.writer.key, name: 'writer' });
  const idle = await fx.connect({ token: KEYS.idle.key, name: 'idle' });
  for (const q of ['mug', 'tea', 'pot'])
    ok(await reader.callTool({ name: 'searchProducts', arguments: { q } }));
  ok(await reader.callTool({ name: 'getOrder', arguments: { orderId: 'o_5001' } }));
  ok(await reader.callTool({ name: 'listCustomers', arguments: {} }));
  // Unknown, and not for this caller: one answer for both (an error or an error result); the audit has the codes.
  await reader.callTool({ name: 'dropTables', arguments: {} }).catch(() => undefined);
  const bad = await writer.callTool({ name: 'createOrder', arguments: { nonsense: true } });
  expect(codeOf(bad as Parameters<typeof codeOf>[0])).toBe('INVALID_ARGUMENT');
  await idle
    .callTool({ name: 'createOrder', arguments: { body: { customerId: 'c_1001', items: [] } } })
    .catch(() => undefined);
  for (let i = 0; i < 2; i++)
    ok(
      await writer.callTool({
        name: 'createOrder',
        arguments: { body: { customerId: 'c_1001', items: [{ sku: 'KB-01', quantity: 1 + i }] } },
      }),
    );
  ok(await writer.callTool({ name: 'searchProducts', arguments: { q: 'kettle' } }));
  const parked = await writer.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1009' } });
  expect(codeOf(parked as Parameters<typeof codeOf>[0])).toBe('APPROVAL_PENDING');
  await fx.close();
  const codes = readFileSync(fx.auditFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"kind":"call"'))
    .map((l) => `${JSON.parse(l).principal} ${JSON.parse(l).tool} ${JSON.parse(l).code ?? 'OK'}`);
  expect(codes).toContain('key:reader dropTables TOOL_NOT_FOUND');
  expect(codes).toContain('key:idle createOrder DENIED_SCOPE');
  return fx;
}

/** The changes the recorded traffic justifies, exactly (their `what` lines, in order). */
export const EXPECTED = [
  'callers.apiKeys[0].scopes (key:reader): remove tools:write, tools:delete',
  'callers.apiKeys[2].scopes (key:idle): remove tools:read',
  'credentials.spare: remove the credential',
  'rateLimit.perPrincipal.calls: 5000 → 10 per 60 s',
  'rules[2].maxResponseBytes: 8388608 → 65536',
  'rules[2].maxResultBytes: 1048576 → 65536',
];
export const changesOf = (out: string) => [...out.matchAll(/^# change \d+: (.*)$/gm)].map((m) => m[1]);
