import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load.js';
import type { Gateway } from '../../src/server/serve.js';
import { callPipeline, codeOf, startShopGateway, textOf, useFixture } from '../support/gateway.js';
import { adminApi } from '../support/http.js';
import { ALICE_TOKEN, approvalIdOf, BOB_AGENT, BOB_TOKEN, OPERATOR_LINES } from '../support/operators.js';
import { ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { expectAudited, readAudit } from '../support/wait.js';

/**
 * The admin API's approval routes: who may decide (an authenticated operator, by token or session),
 * what a decision needs (a reason), and every refusal the service gives, by code.
 */
const POLICY = shopPolicy(OPERATOR_LINES, [
  '  - match: { name: deleteCustomer }',
  '    enabled: true',
  '    approval: operator',
  '  - match: { name: createOrder }',
  '    enabled: true',
  '    confirm: true',
  '    approvers: 2',
]);

const startOperatorsGateway = () =>
  startShopGateway({
    policy: POLICY,
    admin: true,
    env: { ALICE_TOKEN, BOB_TOKEN },
  });

const SCOPES = ['tools:read', 'tools:write', 'tools:delete'];

/** A destructive call parked for an operator, as `principal`: its approval id. */
async function park(gw: Gateway, customerId: string, principal = BOB_AGENT): Promise<string> {
  const r = await callPipeline(gw, 'deleteCustomer', { customerId }, principal, SCOPES);
  expect(codeOf(r)).toBe('APPROVAL_PENDING');
  return approvalIdOf(textOf(r));
}

describe('admin API: /approvals', () => {
  const env = useFixture(startOperatorsGateway);
  const as = (token: string, actor?: string) => adminApi(env().gw.adminUrl!, token, actor);

  it('needs an admin or operator token', async () => {
    const id = await park(env().gw, 'c_1001');
    for (const [method, path] of [
      ['GET', '/approvals'],
      ['GET', `/approvals/${id}`],
      ['POST', `/approvals/${id}/approve`],
    ] as const) {
      const r = await as('not-a-token')(
        method,
        path,
        method === 'POST' ? { reason: 'looks fine' } : undefined,
      );
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('ADMIN_DENIED');
    }
    expect((await as(ADMIN_TOKEN)('GET', `/approvals/${id}`)).body.status).toBe('pending');
  });

  it('lists and shows requests: the call, who asked, the masked arguments', async () => {
    const id = await park(env().gw, 'c_1002');
    const list = await as(ALICE_TOKEN)('GET', '/approvals?status=pending');
    expect(list.status).toBe(200);
    const ids = (list.body.approvals as Array<{ id: string }>).map((a) => a.id);
    expect(ids).toContain(id);
    const one = await as(ALICE_TOKEN)('GET', `/approvals/${id}`);
    expect(one.body).toMatchObject({
      id,
      status: 'pending',
      method: 'DELETE',
      path: '/customers/{customerId}',
      binding: { tool: 'deleteCustomer', principal: BOB_AGENT },
      approversNeeded: 1,
      decisions: [],
    });
    expect(one.body.risk).toContain('destructive');
    expect(JSON.stringify(one.body.preview)).toContain('c_1002');
    // Other statuses filter it out; a status that is not one is a usage error.
    const denied = await as(ALICE_TOKEN)('GET', '/approvals?status=denied');
    expect((denied.body.approvals as Array<{ id: string }>).map((a) => a.id)).not.toContain(id);
    const bad = await as(ALICE_TOKEN)('GET', '/approvals?status=maybe');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('USAGE');
  });

  it('needs a reason of 3 to 500 characters', async () => {
    const id = await park(env().gw, 'c_1003');
    for (const body of [undefined, {}, { reason: 42 }, { reason: '  ok  ' }, { reason: 'x'.repeat(501) }]) {
      const r = await as(ALICE_TOKEN)('POST', `/approvals/${id}/approve`, body);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('USAGE');
      expect(r.body.message).toMatch(/reason/);
    }
    expect((await as(ALICE_TOKEN)('GET', `/approvals/${id}`)).body.status).toBe('pending');
  });

  it('records the operator the token authenticates; x-actor cannot impersonate', async () => {
    const gw = env().gw;
    // Bob's token with Alice's name: still Bob, who asked for this call himself.
    const own = await park(gw, 'c_1004');
    const self = await as(BOB_TOKEN, 'alice')('POST', `/approvals/${own}/approve`, { reason: 'my own call' });
    expect(self.status).toBe(403);
    expect(self.body.error).toBe('APPROVAL_SELF');
    // The shared token with Alice's name is `admin`, not Alice — and with named operators
    // configured, `admin` names nobody, so it cannot approve at all.
    const shared = await as(ADMIN_TOKEN, 'alice')('POST', `/approvals/${own}/approve`, {
      reason: 'checked the ticket',
    });
    expect(shared.status).toBe(403);
    expect(shared.body.error).toBe('APPROVAL_NOT_OPERATOR');
    // Alice's own token: Alice.
    const other = await park(gw, 'c_1005');
    const r = await as(ALICE_TOKEN, 'somebody-else')('POST', `/approvals/${other}/approve`, {
      reason: 'customer asked to be removed',
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 'approved',
      decisions: [{ operator: 'alice', verdict: 'approve' }],
    });
    await expectAudited(env().auditFile, {
      kind: 'approval',
      event: 'approved',
      approval: other,
      operator: 'alice',
      reason: 'customer asked to be removed',
    });
    // The admin API's audit page selects one approval's records.
    await env().gw.flushAudit();
    const page = await as(ALICE_TOKEN)('GET', `/audit?approval=${other}`);
    const events = (page.body.records as Array<Record<string, unknown>>).map((x) => x.event ?? x.kind);
    expect(events).toEqual(expect.arrayContaining(['requested', 'approved']));
    expect((page.body.records as Array<Record<string, unknown>>).every((x) => x.approval === other)).toBe(
      true,
    );
    // Nobody named in x-actor shows up as a decider anywhere.
    expect(
      readAudit(env().auditFile).filter((a) => a.kind === 'approval' && a.operator === 'somebody-else'),
    ).toEqual([]);
  });

  it('refuses a request that is not pending (409) and one that does not exist (404)', async () => {
    const id = await park(env().gw, 'c_1006', 'key:carol');
    expect(
      (await as(ALICE_TOKEN)('POST', `/approvals/${id}/deny`, { reason: 'not today' })).body.status,
    ).toBe('denied');
    for (const verdict of ['approve', 'deny']) {
      const again = await as(BOB_TOKEN)('POST', `/approvals/${id}/${verdict}`, { reason: 'second thought' });
      expect(again.status).toBe(409);
      expect(again.body.error).toBe('APPROVAL_NOT_PENDING');
    }
    const missing = await as(ALICE_TOKEN)('GET', '/approvals/apr_nonexistent');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('APPROVAL_NOT_FOUND');
    const decideMissing = await as(ALICE_TOKEN)('POST', '/approvals/apr_nonexistent/approve', {
      reason: 'whatever it is',
    });
    expect(decideMissing.status).toBe(404);
    expect(decideMissing.body.error).toBe('APPROVAL_NOT_FOUND');
    // The denied call is told so when it comes back, and nothing reached the upstream.
    const { shop } = env();
    const before = shop.requests.filter((r) => r.method === 'DELETE').length;
    const back = await callPipeline(
      env().gw,
      'deleteCustomer',
      { customerId: 'c_1006' },
      'key:carol',
      SCOPES,
    );
    expect(codeOf(back)).toBe('APPROVAL_DENIED');
    expect(textOf(back)).toContain('not today');
    expect(shop.requests.filter((r) => r.method === 'DELETE').length).toBe(before);
  });

  it('two-person rule: the same operator twice is refused, a second operator completes it', async () => {
    const r = await callPipeline(
      env().gw,
      'createOrder',
      { body: { customerId: 'c_1007', items: [{ sku: 'KB-01', quantity: 1 }] } },
      'key:carol',
      SCOPES,
    );
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    const id = approvalIdOf(textOf(r));
    const first = await as(ALICE_TOKEN)('POST', `/approvals/${id}/approve`, { reason: 'order checked' });
    expect(first.body).toMatchObject({ status: 'pending', approversNeeded: 2 });
    const twice = await as(ALICE_TOKEN)('POST', `/approvals/${id}/approve`, { reason: 'really sure' });
    expect(twice.status).toBe(403);
    expect(twice.body.error).toBe('APPROVAL_SAME_OPERATOR');
    const second = await as(BOB_TOKEN)('POST', `/approvals/${id}/approve`, { reason: 'second pair of eyes' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'approved' });
    expect((second.body.decisions as Array<{ operator: string }>).map((d) => d.operator)).toEqual([
      'alice',
      'bob',
    ]);
  });

  it('a dashboard session decides as the operator who logged in, whatever name was typed', async () => {
    const gw = env().gw;
    const admin = new URL(gw.adminUrl!);
    const login = await fetch(new URL('/ui/login', admin), {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: admin.origin },
      body: JSON.stringify({ token: ALICE_TOKEN, name: 'bob' }),
    });
    expect(login.status).toBe(200);
    const session = (await login.json()) as { actor: string; operator: string; csrf: string };
    expect(session).toMatchObject({ actor: 'alice', operator: 'alice' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const id = await park(gw, 'c_1008');
    const decide = (headers: Record<string, string>) =>
      fetch(new URL(`/approvals/${id}/approve`, admin), {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', origin: admin.origin, ...headers },
        body: JSON.stringify({ reason: 'from the dashboard' }),
      });
    // The session alone is not enough to change anything: the CSRF token must come with it.
    expect((await decide({})).status).toBe(403);
    const ok = await decide({ 'x-csrf-token': session.csrf });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'approved', decisions: [{ operator: 'alice' }] });
  });
});

describe('admin.operators in the policy', () => {
  const start = (lines: string[], env: NodeJS.ProcessEnv) =>
    startShopGateway({ policy: shopPolicy(lines), admin: true, env });

  it('refuses two operators with the same token, or one sharing the admin token', async () => {
    const same = start(OPERATOR_LINES, { ALICE_TOKEN, BOB_TOKEN: ALICE_TOKEN });
    await expect(same).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(same).rejects.toThrow(/operator bob has the same token as operator alice/);
    const shared = start(OPERATOR_LINES, { ALICE_TOKEN: ADMIN_TOKEN, BOB_TOKEN });
    await expect(shared).rejects.toThrow(/operator alice has the same token as admin\.token/);
  });

  it('refuses duplicate ids, the reserved id admin, and ids outside [\\w.@-]{1,64}', async () => {
    const ops = (...entries: string[]) => ['admin:', '  token: env:ADMIN_TOKEN', '  operators:', ...entries];
    for (const lines of [
      ops('    - { id: alice, token: env:ALICE_TOKEN }', '    - { id: alice, token: env:BOB_TOKEN }'),
      ops('    - { id: admin, token: env:ALICE_TOKEN }'),
      ops('    - { id: "al ice", token: env:ALICE_TOKEN }'),
      ops('    - { id: alice, token: "literal-token" }'),
    ])
      await expect(start(lines, { ALICE_TOKEN, BOB_TOKEN })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
  });

  it('keeps operator tokens out of the audit and the logs (the redactor learns them)', async () => {
    const fx = await startOperatorsGateway();
    try {
      const id = await park(fx.gw, 'c_1009', 'key:carol');
      // An operator pasting their token into a reason: the audit keeps the reason, not the token.
      const r = await adminApi(fx.gw.adminUrl!, ALICE_TOKEN)('POST', `/approvals/${id}/approve`, {
        reason: `token is ${BOB_TOKEN}`,
      });
      expect(r.status).toBe(200);
      await expectAudited(fx.auditFile, { kind: 'approval', event: 'approved', approval: id });
      await fx.gw.flushAudit();
      const text = JSON.stringify(readAudit(fx.auditFile));
      expect(text).not.toContain(BOB_TOKEN);
      expect(text).not.toContain(ALICE_TOKEN);
    } finally {
      await fx.close();
    }
  });
});

describe('docs/approvals.md', () => {
  it('its set-up example is valid policy with every key it explains', () => {
    const md = readFileSync(new URL('../../docs/approvals.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const { doc } = parsePolicy(`version: 1\n${yaml}`, 'docs/approvals.md');
    expect(doc.admin).toMatchObject({
      publicUrl: 'https://warden.example.com/',
      operators: [
        { id: 'alice' },
        { id: 'bob', principals: ['key:bob-laptop', 'jwt:https://idp.example.com/#bob'] },
      ],
    });
    expect(doc.approvals).toEqual({ pendingSeconds: 3600, runSeconds: 900 });
    expect(doc.rules.map((r) => r.approval ?? r.approvers)).toEqual(['operator', 2]);
  });
});
