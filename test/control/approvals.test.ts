import { describe, expect, it } from 'vitest';
import { type ApprovalCall, bindingKey } from '../../src/control/approvals.js';
import type { WardenError } from '../../src/errors/index.js';
import type { ApprovalRequest } from '../../src/model/approval.js';
import { memoryAudit, testApprovals } from '../support/pipeline.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');

function setup(o: { approvers?: number } = {}) {
  let clock = T0;
  const audit = memoryAudit();
  const approvals = testApprovals(audit, {
    pendingSeconds: 60,
    runSeconds: 30,
    now: () => clock,
    operators: { alice: ['key:alice', 'jwt:https://idp#alice'], bob: [] },
  });
  const call = (args = 'd1', principal = 'key:alice'): ApprovalCall => ({
    callId: `call-${args}`,
    binding: {
      tool: 'deleteThing',
      argsDigest: args,
      principal,
      target: 'DELETE https://api/things/{id}',
      policyVersion: 3,
      policy: 'sha-of-policy-a',
    },
    preview: { id: 't_1' },
    method: 'DELETE',
    path: '/things/{id}',
    risk: ['destructive'],
    dataClasses: ['pii'],
    approvers: o.approvers ?? 1,
  });
  const refusal = async (p: Promise<unknown>): Promise<WardenError> =>
    p.then(
      () => {
        throw new Error('expected a refusal');
      },
      (e: WardenError) => e,
    );
  const events = () => audit.records.filter((r) => r.kind === 'approval');
  return { approvals, call, refusal, events, tick: (ms: number) => (clock += ms) };
}

describe('approvals service', () => {
  it('parks a call, tells the listeners, and audits the request', async () => {
    const { approvals, call, events } = setup();
    const told: ApprovalRequest[] = [];
    approvals.onRequested((r) => told.push(r));
    approvals.onRequested(() => {
      throw new Error('a broken webhook');
    });
    const a = await approvals.admit(call());
    expect(a.outcome).toBe('created');
    expect(a.request).toMatchObject({
      id: expect.stringMatching(/^apr_[A-Za-z0-9_-]{16}$/),
      key: bindingKey(call().binding, 1),
      status: 'pending',
      approversNeeded: 1,
      expiresAt: new Date(T0 + 60_000).toISOString(),
    });
    expect(told.map((r) => r.id)).toEqual([a.request.id]);
    expect(events()).toEqual([
      expect.objectContaining({
        kind: 'approval',
        event: 'requested',
        approval: a.request.id,
        tool: 'deleteThing',
        principal: 'key:alice',
        call: 'call-d1',
        target: 'DELETE /things/{id}',
        expiresAt: a.request.expiresAt,
        policyVersion: 3,
      }),
    ]);
  });

  it('with named operators, the shared admin token cannot approve (it names nobody), but can deny', async () => {
    const { approvals, call } = setup();
    const a = await approvals.admit(call('d-shared', 'key:ci-bot'));
    await expect(
      approvals.decide(a.request.id, { operator: 'admin', verdict: 'approve', reason: 'looks fine' }),
    ).rejects.toMatchObject({ code: 'APPROVAL_NOT_OPERATOR' });
    const denied = await approvals.decide(a.request.id, {
      operator: 'admin',
      verdict: 'deny',
      reason: 'not now',
    });
    expect(denied.status).toBe('denied');
  });

  it('an id the gateway could not have made never reaches the store', async () => {
    const { approvals } = setup();
    for (const id of ['all', 'apr_x:dec', `apr_${'a'.repeat(17)}`, '../apr'])
      await expect(
        approvals.decide(id, { operator: 'bob', verdict: 'approve', reason: 'whatever' }),
      ).rejects.toMatchObject({ code: 'APPROVAL_NOT_FOUND' });
  });

  it('binds the request to every part of the call: any change is another request', async () => {
    const { approvals, call } = setup();
    const base = call();
    const ids = new Set<string>();
    for (const change of [
      {},
      { argsDigest: 'd2' },
      { principal: 'key:bob' },
      { tool: 'deleteOther' },
      { target: 'DELETE https://other/things/{id}' },
      { policy: 'sha-of-policy-b' },
    ])
      ids.add((await approvals.admit({ ...base, binding: { ...base.binding, ...change } })).request.id);
    expect(ids.size).toBe(6);
  });

  it("binds to the policy text, not to an instance's count of reloads (instances sharing Redis)", async () => {
    const { approvals, call } = setup();
    const base = call();
    const first = await approvals.admit(base);
    const again = await approvals.admit({ ...base, binding: { ...base.binding, policyVersion: 7 } });
    expect(again.request.id).toBe(first.request.id);
  });

  it('runs after approval, once, and audits who approved and the execution', async () => {
    const { approvals, call, events, tick } = setup();
    const { request } = await approvals.admit(call());
    tick(1000);
    const decided = await approvals.decide(request.id, {
      operator: 'bob',
      verdict: 'approve',
      reason: ' fine ',
    });
    expect(decided).toMatchObject({ status: 'approved', expiresAt: new Date(T0 + 31_000).toISOString() });
    expect((await approvals.admit(call())).outcome).toBe('run');
    expect((await approvals.admit(call())).outcome).toBe('created');
    expect(events().map((e) => [e.event, e.approval === request.id])).toEqual([
      ['requested', true],
      ['approved', true],
      ['executed', true],
      ['requested', false],
    ]);
    expect(events()[1]).toMatchObject({
      operator: 'bob',
      reason: 'fine',
      status: 'approved',
      principal: 'key:alice',
    });
    expect(events()[2]).toMatchObject({ call: 'call-d1' });
  });

  it('refuses the requester approving its own call: by id or as one of its principals', async () => {
    const { approvals, call, refusal } = setup();
    const mine = (await approvals.admit(call('d1', 'key:alice'))).request;
    const e = await refusal(
      approvals.decide(mine.id, { operator: 'alice', verdict: 'approve', reason: 'mine' }),
    );
    expect(e.code).toBe('APPROVAL_SELF');
    expect(e.message).toContain('another operator must');
    const asJwt = (await approvals.admit(call('d2', 'jwt:https://idp#alice'))).request;
    expect(
      (await refusal(approvals.decide(asJwt.id, { operator: 'alice', verdict: 'approve', reason: 'x' })))
        .code,
    ).toBe('APPROVAL_SELF');
    // An operator whose id is the caller's id (a stdio principal, say) is the same person too.
    const same = (await approvals.admit(call('d3', 'bob'))).request;
    expect(
      (await refusal(approvals.decide(same.id, { operator: 'bob', verdict: 'approve', reason: 'x' }))).code,
    ).toBe('APPROVAL_SELF');
    expect((await approvals.get(mine.id))!.status).toBe('pending');
  });

  it('needs two different operators under a two-person rule', async () => {
    const { approvals, call, refusal } = setup({ approvers: 2 });
    const { request } = await approvals.admit(call('d1', 'key:carol'));
    expect(
      await approvals.decide(request.id, { operator: 'bob', verdict: 'approve', reason: 'ok' }),
    ).toMatchObject({
      status: 'pending',
    });
    const again = await refusal(
      approvals.decide(request.id, { operator: 'bob', verdict: 'approve', reason: 'ok!' }),
    );
    expect(again.code).toBe('APPROVAL_SAME_OPERATOR');
    expect((await approvals.admit(call('d1', 'key:carol'))).outcome).toBe('pending');
    expect(
      await approvals.decide(request.id, { operator: 'alice', verdict: 'approve', reason: 'ok' }),
    ).toMatchObject({
      status: 'approved',
    });
    expect((await approvals.admit(call('d1', 'key:carol'))).outcome).toBe('run');
  });

  it('refuses unknown ids, decided requests and empty reasons', async () => {
    const { approvals, call, refusal } = setup();
    expect(
      (await refusal(approvals.decide('apr_nothing', { operator: 'bob', verdict: 'deny', reason: 'x' })))
        .code,
    ).toBe('APPROVAL_NOT_FOUND');
    const { request } = await approvals.admit(call());
    expect(
      (await refusal(approvals.decide(request.id, { operator: 'bob', verdict: 'deny', reason: '  ' }))).code,
    ).toBe('USAGE');
    await approvals.decide(request.id, { operator: 'bob', verdict: 'deny', reason: 'too risky' });
    const twice = await refusal(
      approvals.decide(request.id, { operator: 'bob', verdict: 'approve', reason: 'x' }),
    );
    expect(twice.code).toBe('APPROVAL_NOT_PENDING');
    expect(twice.message).toContain('is denied');
    expect(await approvals.admit(call())).toMatchObject({ outcome: 'denied', request: { id: request.id } });
    expect((await approvals.admit(call())).outcome).toBe('created');
  });

  it('expires what nobody decided, audits it once, and refuses a late decision', async () => {
    const { approvals, call, refusal, events, tick } = setup();
    const { request } = await approvals.admit(call());
    tick(59_000);
    expect(await approvals.sweep()).toBe(0);
    tick(1000);
    expect(await approvals.sweep()).toBe(1);
    expect(await approvals.sweep()).toBe(0);
    expect(
      (await refusal(approvals.decide(request.id, { operator: 'bob', verdict: 'approve', reason: 'x' })))
        .code,
    ).toBe('APPROVAL_NOT_PENDING');
    const anew = await approvals.admit(call());
    expect(anew).toMatchObject({ outcome: 'created', expired: { id: request.id } });
    expect(events().filter((e) => e.event === 'expired')).toEqual([
      expect.objectContaining({ approval: request.id, tool: 'deleteThing' }),
    ]);
  });

  it('audits an expiry found by a call or a decision before the sweeper', async () => {
    const { approvals, call, refusal, events, tick } = setup();
    const a = (await approvals.admit(call('d1'))).request;
    const b = (await approvals.admit(call('d2'))).request;
    tick(61_000);
    await approvals.admit(call('d1'));
    await refusal(approvals.decide(b.id, { operator: 'bob', verdict: 'approve', reason: 'x' }));
    expect(await approvals.sweep()).toBe(0);
    expect(
      events()
        .filter((e) => e.event === 'expired')
        .map((e) => e.approval),
    ).toEqual([a.id, b.id]);
  });
});
