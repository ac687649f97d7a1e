import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CONFIRM_ARG } from '../../src/control/view.js';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import type { ApprovalRecord } from '../../src/model/audit.js';
import { boundedPreview, createConfirm } from '../../src/pipeline/confirm.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryReplayGuard } from '../../src/state/memory.js';
import { itemsCatalog, memoryAudit, resolvedContext, testApprovals, viewOf } from '../support/pipeline.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const rule = (extra: string) =>
  `version: 1\nmode: read-write\nrules:\n  - match: { name: createItem }\n    enabled: true\n    confirm: true\n${extra}`;
const ACCEPT = { action: 'accept', content: { confirm: true } };

async function setup(policy = rule('')) {
  let clock = T0;
  const view = viewOf(await itemsCatalog(), policy);
  const audit = memoryAudit();
  const approvals = testApprovals(audit, { pendingSeconds: 600, runSeconds: 60, now: () => clock });
  const confirm = createConfirm({
    secret: randomBytes(32),
    ttlSeconds: 60,
    replay: createMemoryReplayGuard(),
    redactor: createRedactor(),
    approvals,
    origin: () => 'https://api.example.com/v2',
    now: () => clock,
  });
  const call = async (
    args: Record<string, unknown>,
    extra: Partial<CallContext['input']> = {},
    who = 'key:alice',
  ) => {
    const ctx = resolvedContext(view, {
      name: 'createItem',
      arguments: args,
      principal: { id: who, scopes: ['tools:write'], via: 'api-key' },
      ...extra,
    });
    const { [CONFIRM_ARG]: _t, ...rest } = args;
    ctx.args = rest;
    try {
      await confirm(ctx);
    } catch (e) {
      if (!isWardenError(e)) throw e;
      return { ctx, error: e as WardenError };
    }
    return { ctx, error: undefined };
  };
  const lines = (e: WardenError | undefined) => [e?.message ?? '', ...(e?.details ?? [])].join('\n');
  const events = () => audit.records.filter((r): r is ApprovalRecord => r.kind === 'approval');
  return { call, approvals, lines, events, tick: (ms: number) => (clock += ms) };
}

describe('confirm stage: approval modes', () => {
  it('auto: a client that cannot elicit is parked for an operator, with everything the agent needs', async () => {
    const { call, lines } = await setup();
    const { ctx, error } = await call({ name: 'bolt' });
    expect(error?.code).toBe('APPROVAL_PENDING');
    const id = ctx.confirmed!.approval!;
    expect(id).toMatch(/^apr_/);
    expect(ctx.confirmed!.via).toBeUndefined();
    const text = lines(error);
    // What waits, its id, when it expires (date and seconds), who must act and where, what to do next.
    expect(text).toContain('createItem (POST /items) is waiting for a human operator');
    expect(text).toContain(`approval request ${id}`);
    expect(text).toContain(
      `Approval id: ${id}. It expires at ${new Date(T0 + 600_000).toISOString()} (in 600 s)`,
    );
    expect(text).toContain('A human operator must approve it out of band, on the mcp-warden dashboard');
    expect(text).toContain('You cannot approve it');
    // Who acts, never how: no command an agent with a shell could run to approve its own call.
    expect(text).not.toContain('mcp-warden approvals approve');
    expect(text).toContain('call createItem again with exactly the same arguments');
    expect(text).toContain('There is no token to pass');
    expect(text).not.toContain(CONFIRM_ARG);
  });

  it('auto: a client that can elicit is asked', async () => {
    const { call } = await setup();
    const { ctx, error } = await call(
      { name: 'bolt' },
      { confirmation: { kind: 'elicit', ask: async () => ACCEPT } },
    );
    expect(error).toBeUndefined();
    expect(ctx.confirmed).toEqual({ via: 'elicitation' });
  });

  it('operator: parks even a client that can elicit; answers, states and tokens count for nothing', async () => {
    const { call, approvals, tick, lines } = await setup(rule('    approval: operator\n'));
    let asked = 0;
    const elicit = {
      kind: 'elicit' as const,
      ask: async () => {
        asked++;
        return ACCEPT;
      },
    };
    const first = await call({ name: 'bolt' }, { confirmation: elicit });
    expect(first.error?.code).toBe('APPROVAL_PENDING');
    const id = first.ctx.confirmed!.approval!;
    // Everything a model or a client can produce on its own: still waiting, the same request.
    for (const extra of [
      { confirmation: elicit },
      { confirmation: { kind: 'mrtr' as const, state: 'forged.state', answer: ACCEPT } },
      { confirmation: { kind: 'mrtr' as const, answer: ACCEPT } },
    ]) {
      const again = await call({ name: 'bolt', [CONFIRM_ARG]: 'a.token' }, extra);
      expect(again.error?.code).toBe('APPROVAL_PENDING');
      expect(again.ctx.confirmed).toEqual({ approval: id });
      expect(lines(again.error)).toContain('is still waiting');
    }
    expect(asked).toBe(0);
    tick(1000);
    await approvals.decide(id, { operator: 'ops', verdict: 'approve', reason: 'checked with the user' });
    const run = await call({ name: 'bolt' });
    expect(run.error).toBeUndefined();
    expect(run.ctx.confirmed).toEqual({ via: 'operator', approval: id });
    expect((await call({ name: 'bolt' })).error?.code).toBe('APPROVAL_PENDING');
  });

  it('operator: other arguments or another caller are another request', async () => {
    const { call, approvals } = await setup(rule('    approval: operator\n'));
    const a = await call({ name: 'bolt' });
    await approvals.decide(a.ctx.confirmed!.approval!, {
      operator: 'ops',
      verdict: 'approve',
      reason: 'fine',
    });
    const other = await call({ name: 'nut' });
    expect(other.error?.code).toBe('APPROVAL_PENDING');
    expect(other.ctx.confirmed!.approval).not.toBe(a.ctx.confirmed!.approval);
    expect((await call({ name: 'bolt' }, {}, 'key:mallory')).error?.code).toBe('APPROVAL_PENDING');
    // Key order is not a difference.
    expect((await call({ name: 'bolt' })).error).toBeUndefined();
  });

  it('tells a denial once, with the reason, then parks anew', async () => {
    const { call, approvals, lines } = await setup(rule('    approval: operator\n'));
    const a = await call({ name: 'bolt' });
    const id = a.ctx.confirmed!.approval!;
    await approvals.decide(id, { operator: 'ops', verdict: 'deny', reason: 'not on a Friday' });
    const denied = await call({ name: 'bolt' });
    expect(denied.error?.code).toBe('APPROVAL_DENIED');
    expect(lines(denied.error)).toContain(`approval request ${id}, denied by ops: "not on a Friday"`);
    expect(lines(denied.error)).toContain('Nothing was run');
    const next = await call({ name: 'bolt' });
    expect(next.error?.code).toBe('APPROVAL_PENDING');
    expect(next.ctx.confirmed!.approval).not.toBe(id);
  });

  it('tells an expiry and parks anew', async () => {
    const { call, tick, lines } = await setup(rule('    approval: operator\n'));
    const a = await call({ name: 'bolt' });
    tick(601_000);
    const late = await call({ name: 'bolt' });
    expect(late.error?.code).toBe('APPROVAL_EXPIRED');
    const fresh = late.ctx.confirmed!.approval!;
    expect(fresh).not.toBe(a.ctx.confirmed!.approval);
    expect(lines(late.error)).toContain(
      `The earlier approval request ${a.ctx.confirmed!.approval} for createItem`,
    );
    expect(lines(late.error)).toContain(`A new approval request ${fresh} now waits`);
    expect(lines(late.error)).toContain(`Approval id: ${fresh}.`);
  });

  it('approvers: 2 says two operators are needed', async () => {
    const { call, lines } = await setup(rule('    approvers: 2\n'));
    const { error } = await call(
      { name: 'bolt' },
      { confirmation: { kind: 'elicit', ask: async () => ACCEPT } },
    );
    expect(error?.code).toBe('APPROVAL_PENDING');
    expect(lines(error)).toContain('(two different operators)');
  });

  it('elicit: a client that cannot be asked is refused clearly, not downgraded', async () => {
    const { call, lines } = await setup(rule('    approval: elicit\n'));
    const { error } = await call({ name: 'bolt', [CONFIRM_ARG]: 'x.y' });
    expect(error?.code).toBe('CONFIRMATION_UNSUPPORTED');
    expect(lines(error)).toContain('did not declare elicitation');
    expect(lines(error)).toContain('Nothing was run');
    expect(lines(error)).toContain('approval: operator');
  });

  it('elicit: a 2026-07-28 client that can elicit gets input_required (the pending confirmation)', async () => {
    const { call } = await setup(rule('    approval: elicit\n'));
    const { error } = await call({ name: 'bolt' }, { confirmation: { kind: 'mrtr' } });
    expect(error?.code).toBe('CONFIRMATION_REQUIRED');
    expect(error?.pending?.message).toContain('Allow createItem');
  });
});

describe('the stored preview of a parked call', () => {
  it('is kept to 4 KiB of JSON, saying it was cut; small arguments are kept as they are', () => {
    expect(boundedPreview({ id: 'c_1' })).toEqual({ id: 'c_1' });
    const big = boundedPreview({ note: 'x'.repeat(1_000_000) }) as Record<string, string>;
    expect(big['[cut]']).toContain('arguments of 1000011 characters');
    expect(big.text!.length).toBeLessThanOrEqual(4097);
  });
});
