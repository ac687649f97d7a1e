import { randomBytes } from 'node:crypto';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/server/serve.js';
import { mcpClient, type ShopGateway, startShopGateway, textOf, useFixture } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { type Shop, startShop } from '../support/shop.js';
import { connectShopStdio } from '../support/stdio.js';
import { eventually, expectAudited, readAudit, waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const ALICE = 'alice-operator-token-0123456789abcdef';
const BOB = 'bob-operator-token-0123456789abcdef0';
const CAROL = 'carol-operator-token-0123456789abcde';
const ORDER = { body: { customerId: 'c_1001', items: [{ sku: 'KB-01', quantity: 1 }] } };

/**
 * The shop behind the gateway: deleteCustomer under the default (`auto`), createOrder confirmed by two
 * operators (`approvers: 2`, so `operator` whatever the client can do). Anonymous loopback callers;
 * alice is an operator who is also the anonymous caller (she cannot approve its calls).
 */
const policy = (extra: string[] = []) =>
  [
    'version: 1',
    'mode: read-write',
    'rateLimit:',
    '  perPrincipal: { calls: 10000, perSeconds: 60 }',
    '  perToolPrincipal: { calls: 10000, perSeconds: 60 }',
    'callers:',
    '  anonymous: { scopes: [tools:read, tools:write, tools:delete], reason: loopback test gateway }',
    'admin:',
    '  token: env:ADMIN_TOKEN',
    '  operators:',
    '    - { id: alice, token: env:ALICE_TOKEN, principals: [anonymous] }',
    '    - { id: bob, token: env:BOB_TOKEN }',
    '    - { id: carol, token: env:CAROL_TOKEN }',
    ...extra,
    'rules:',
    '  - match: { name: createOrder }',
    '    enabled: true',
    '    confirm: true',
    '    approvers: 2',
    '  - match: { name: deleteCustomer }',
    '    enabled: true',
    '',
  ].join('\n');
const ENV = { ALICE_TOKEN: ALICE, BOB_TOKEN: BOB, CAROL_TOKEN: CAROL };

type Result = { content: unknown; isError?: boolean };
const codeOf = (r: Result) => /^\[([A-Z_]+)\]/.exec(textOf(r))?.[1] ?? 'OK';
const idOf = (r: Result) => /Approval id: (apr_[\w-]+)\./.exec(textOf(r))![1]!;
const deletes = (shop: Shop, id: string) =>
  shop.requests.filter((r) => r.method === 'DELETE' && r.url === `/v1/customers/${id}`).length;

describe('out-of-band approvals, end to end', () => {
  const fx = useFixture(() => startShopGateway({ policy: policy(), admin: true, env: ENV }));
  const admin = (token = BOB) => adminApi(fx().gw.adminUrl!, token);

  it('parks a destructive call from a client without elicitation, runs it once after approval', async () => {
    const { gw, shop, auditFile } = fx();
    const client = await fx().connect({ name: 'no-elicit-2025' });
    const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
    const first = await call();
    expect(first.isError).toBe(true);
    expect(codeOf(first)).toBe('APPROVAL_PENDING');
    const id = idOf(first);
    const text = textOf(first);
    expect(text).toContain('deleteCustomer (DELETE /customers/{customerId}) is waiting for a human operator');
    expect(text).toMatch(/It expires at \d{4}-\d\d-\d\dT[\d:.]+Z \(in 3600 s\)/);
    expect(text).toContain(`Approval id: ${id}.`);
    expect(text).not.toContain('approvals approve');
    expect(text).toContain('call deleteCustomer again with exactly the same arguments');
    expect(deletes(shop, 'c_1002')).toBe(0);
    // Waiting: the same request, and still nothing sent.
    const again = await call();
    expect([codeOf(again), idOf(again)]).toEqual(['APPROVAL_PENDING', id]);
    expect(textOf(again)).toContain('is still waiting');

    const listed = await admin()('GET', '/approvals?status=pending');
    expect(listed.body.approvals).toContainEqual(
      expect.objectContaining({
        id,
        status: 'pending',
        binding: expect.objectContaining({ principal: 'anonymous' }),
      }),
    );
    const ok = await admin()('POST', `/approvals/${id}/approve`, { reason: 'the customer asked for it' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id, status: 'approved' });

    const ran = await call();
    expect(ran.isError).toBeFalsy();
    expect(deletes(shop, 'c_1002')).toBe(1);
    // The same call once more: a new request, nothing sent.
    const repeat = await call();
    expect(codeOf(repeat)).toBe('APPROVAL_PENDING');
    expect(idOf(repeat)).not.toBe(id);
    expect(deletes(shop, 'c_1002')).toBe(1);
    expect((await gw.approvals.get(id))!.status).toBe('executed');
    await expectAudited(
      auditFile,
      { kind: 'approval', event: 'requested', approval: id, tool: 'deleteCustomer', principal: 'anonymous' },
      {
        kind: 'approval',
        event: 'approved',
        approval: id,
        operator: 'bob',
        reason: 'the customer asked for it',
      },
      { kind: 'approval', event: 'executed', approval: id },
      { kind: 'call', tool: 'deleteCustomer', code: 'APPROVAL_PENDING', approval: id, decision: 'denied' },
      { kind: 'call', tool: 'deleteCustomer', outcome: 'ok', confirmed: 'operator', approval: id },
    );
  });

  it('runs one of two concurrent repeats; the other parks', async () => {
    const { gw, shop } = fx();
    const client = await fx().connect();
    const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } });
    const id = idOf(await call());
    await gw.approvals.decide(id, { operator: 'bob', verdict: 'approve', reason: 'fine by me' });
    const both = await Promise.all([call(), call()]);
    expect(both.map(codeOf).sort()).toEqual(['APPROVAL_PENDING', 'OK']);
    expect(deletes(shop, 'c_1003')).toBe(1);
  });

  it('refuses after a denial (once, with the reason), and for other arguments asks anew', async () => {
    const { shop } = fx();
    const client = await fx().connect();
    const call = (customerId: string) =>
      client.callTool({ name: 'deleteCustomer', arguments: { customerId } });
    const id = idOf(await call('c_1004'));
    const other = await call('c_1005');
    expect(idOf(other)).not.toBe(id);
    expect((await admin()('POST', `/approvals/${id}/deny`, { reason: 'not this one' })).body).toMatchObject({
      status: 'denied',
    });
    const denied = await call('c_1004');
    expect(codeOf(denied)).toBe('APPROVAL_DENIED');
    expect(textOf(denied)).toContain(`${id}, denied by bob: "not this one"`);
    expect(codeOf(await call('c_1004'))).toBe('APPROVAL_PENDING');
    expect(deletes(shop, 'c_1004')).toBe(0);
    // A decided request cannot be decided again.
    const late = await admin()('POST', `/approvals/${id}/approve`, { reason: 'changed my mind' });
    expect([late.status, late.body.error]).toEqual([409, 'APPROVAL_NOT_PENDING']);
  });

  it('refuses the requester approving its own call, and the same operator twice under approvers: 2', async () => {
    const { shop } = fx();
    const client = await fx().connect();
    const id = idOf(await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1006' } }));
    const self = await admin(ALICE)('POST', `/approvals/${id}/approve`, { reason: 'my own call' });
    expect([self.status, self.body.error]).toEqual([403, 'APPROVAL_SELF']);

    const before = shop.requests.filter((r) => r.method === 'POST').length;
    const order = () => client.callTool({ name: 'createOrder', arguments: ORDER });
    const oid = idOf(await order());
    expect(textOf(await order())).toContain('(two different operators)');
    expect((await admin(BOB)('POST', `/approvals/${oid}/approve`, { reason: 'first' })).body).toMatchObject({
      status: 'pending',
    });
    const twice = await admin(BOB)('POST', `/approvals/${oid}/approve`, { reason: 'second' });
    expect([twice.status, twice.body.error]).toEqual([403, 'APPROVAL_SAME_OPERATOR']);
    expect(codeOf(await order())).toBe('APPROVAL_PENDING');
    expect(
      (await admin(CAROL)('POST', `/approvals/${oid}/approve`, { reason: 'second person' })).body,
    ).toMatchObject({
      status: 'approved',
    });
    expect(codeOf(await order())).toBe('OK');
    expect(shop.requests.filter((r) => r.method === 'POST').length).toBe(before + 1);
  });

  it('answers a 2026-07-28 client without elicitation with a result it can act on (not -32021)', async () => {
    const client = await fx().connect({ era: { pin: '2026-07-28' }, name: 'modern-no-elicit' });
    const r = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1007' } });
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    expect(idOf(r)).toMatch(/^apr_/);
  });

  it('asks a 2026-07-28 client that declared elicitation, and parks operator rules whatever it answers', async () => {
    const { shop, auditFile } = fx();
    const asked: string[] = [];
    const client = mcpClient({
      era: { pin: '2026-07-28' },
      name: 'modern-elicit',
      options: { capabilities: { elicitation: { form: {} } } },
    });
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push((req.params as { message: string }).message);
      return { action: 'accept', content: { confirm: true } };
    });
    await fx().connect({}, client);
    const yes = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1008' } });
    expect(yes.isError).toBeFalsy();
    expect(asked[0]).toContain('Allow deleteCustomer');
    expect(deletes(shop, 'c_1008')).toBe(1);
    await expectAudited(auditFile, { tool: 'deleteCustomer', outcome: 'ok', confirmed: 'input_required' });

    // createOrder's rule needs operators: the client is never asked, and a token in the arguments is nothing.
    const before = asked.length;
    const parked = await client.callTool({
      name: 'createOrder',
      arguments: { ...ORDER, mcp_warden_confirmation: 'made.up' },
    });
    expect(codeOf(parked)).toBe('APPROVAL_PENDING');
    expect(asked.length).toBe(before);
  });

  it('works with the v1 SDK client (2025-11-25 over HTTP)', async () => {
    const { gw, shop } = fx();
    const client = new V1Client({ name: 'v1-client', version: '1' });
    await client.connect(new V1HttpTransport(new URL(gw.url!)));
    try {
      const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1009' } });
      const first = (await call()) as Result;
      expect(codeOf(first)).toBe('APPROVAL_PENDING');
      await gw.approvals.decide(idOf(first), { operator: 'carol', verdict: 'approve', reason: 'checked it' });
      expect(codeOf((await call()) as Result)).toBe('OK');
      expect(codeOf((await call()) as Result)).toBe('APPROVAL_PENDING');
      expect(deletes(shop, 'c_1009')).toBe(1);
    } finally {
      await client.close();
    }
  });
});

describe('approval expiry', () => {
  const fx = useFixture(() =>
    startShopGateway({
      policy: policy(['approvals: { pendingSeconds: 1, runSeconds: 1 }']),
      admin: true,
      env: ENV,
    }),
  );

  it('expires a request nobody decided; the repeat says so and parks anew', async () => {
    const { gw, shop, auditFile } = fx();
    const client = await fx().connect();
    const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
    const first = await call();
    const id = idOf(first);
    expect(textOf(first)).toContain('(in 1 s)');
    await waitFor(async () => (await gw.approvals.get(id))?.status === 'expired', {
      what: 'the sweeper to expire it',
    });
    await expectAudited(auditFile, { kind: 'approval', event: 'expired', approval: id });
    const late = await gw.approvals
      .decide(id, { operator: 'bob', verdict: 'approve', reason: 'too late' })
      .catch((e) => e);
    expect(late.code).toBe('APPROVAL_NOT_PENDING');
    const again = await call();
    expect(codeOf(again)).toBe('APPROVAL_EXPIRED');
    expect(textOf(again)).toContain(`The earlier approval request ${id} for deleteCustomer`);
    expect(idOf(again)).not.toBe(id);
    // An approval not used in time expires too.
    const fresh = idOf(again);
    await gw.approvals.decide(fresh, { operator: 'bob', verdict: 'approve', reason: 'go ahead' });
    await waitFor(async () => (await gw.approvals.get(fresh))?.status === 'expired', {
      what: 'the approval to lapse',
    });
    expect(codeOf(await call())).toBe('APPROVAL_EXPIRED');
    expect(deletes(shop, 'c_1002')).toBe(0);
    expect(
      readAudit(auditFile).filter((r) => r.kind === 'approval' && r.event === 'expired' && r.approval === id),
    ).toHaveLength(1);
  });
});

describe('approvals shared by three instances through Redis', () => {
  let shop: Shop;
  const gws: ShopGateway[] = [];
  beforeAll(async () => {
    shop = await startShop();
    const prefix = `apr-e2e-${randomBytes(6).toString('hex')}`;
    for (let i = 0; i < 3; i++)
      gws.push(
        await startShopGateway({
          shop,
          policy: policy([`state: { redis: env:REDIS_URL, prefix: ${prefix} }`]),
          admin: true,
          env: { ...ENV, REDIS_URL },
        }),
      );
  });
  afterAll(async () => {
    for (const g of gws) await g.close();
    await shop?.close();
  });

  it('parks on one, is approved on another, runs once on a third', async () => {
    const [a, b, c] = gws as [ShopGateway, ShopGateway, ShopGateway];
    const on = async (g: ShopGateway) => {
      const client = await g.connect();
      return () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1003' } });
    };
    const [onA, onC] = [await on(a), await on(c)];
    const id = idOf(await onA());
    expect((await b.gw.approvals.get(id))?.status).toBe('pending');
    await b.gw.approvals.decide(id, { operator: 'bob', verdict: 'approve', reason: 'approved elsewhere' });
    const both = await Promise.all([onC(), onA()]);
    expect(both.map(codeOf).sort()).toEqual(['APPROVAL_PENDING', 'OK']);
    expect(deletes(shop, 'c_1003')).toBe(1);
    // Each instance audits what it did: the request on a, the decision on b, the run where it ran.
    await eventually(
      () => {
        const events = (g: Gateway) =>
          readAudit(g.auditFile)
            .filter((r) => r.kind === 'approval' && r.approval === id)
            .map((r) => r.event);
        expect(events(a.gw)).toContain('requested');
        expect(events(b.gw)).toEqual(['approved']);
        expect([...events(a.gw), ...events(c.gw)].filter((e) => e === 'executed')).toHaveLength(1);
      },
      { what: 'the approval story across the three audits' },
    );
  });
});

describe('approvals over stdio (2025-11-25, the real CLI)', () => {
  it('parks a call from a client that did not declare elicitation', async () => {
    const client = mcpClient({ name: 'stdio-no-elicit' });
    const served = await connectShopStdio(client, {
      policy: [
        'version: 1',
        'mode: read-write',
        'callers: { stdio: { principal: ops, scopes: [tools:read, tools:delete] } }',
        'rules:',
        '  - match: { name: deleteCustomer }',
        '    enabled: true',
        '',
      ].join('\n'),
    });
    try {
      const r = await client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1002' } });
      expect(codeOf(r)).toBe('APPROVAL_PENDING');
      expect(served.shop.requests.some((x) => x.method === 'DELETE')).toBe(false);
      await expectAudited(served.auditFile, {
        kind: 'approval',
        event: 'requested',
        approval: idOf(r),
        principal: 'stdio:ops',
      });
    } finally {
      await served.close();
    }
  });
});
