import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { isWardenError, WardenError } from '../../src/errors/index.js';
import type { Catalog } from '../../src/model/catalog.js';
import { type Alert, Alerts } from '../../src/observe/alerts.js';
import { Metrics } from '../../src/observe/metrics.js';
import { createConfirm } from '../../src/pipeline/confirm.js';
import type { CallContext, CallInput } from '../../src/pipeline/context.js';
import { createTaint, createTaintRecord } from '../../src/pipeline/taint.js';
import { checkPolicy } from '../../src/policy/check.js';
import { DEFAULT_TAINT, evaluatePolicy } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { alertsSchema } from '../../src/policy/schema.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryReplayGuard } from '../../src/state/memory.js';
import { createMemoryTaint, type TaintStore } from '../../src/state/taint.js';
import { CRM_SPEC } from '../support/crm.js';
import { catalogOf } from '../support/helpers.js';
import { contextFor, memoryAudit, resolvedContext, testApprovals, viewOf } from '../support/pipeline.js';

let catalog: Promise<Catalog> | undefined;
const crm = () => (catalog ??= catalogOf(CRM_SPEC));

const T0 = Date.parse('2030-01-01T00:00:00Z');
const WRITE_RULES = `
  - match: { name: sendMessage }
    enabled: true`;
/** A policy: read-write, sendMessage enabled, the customer's email in clear unless `masking` says so. */
const policy = (taint = '', rules = '', masking = 'allow') =>
  `version: 1\nmode: read-write\n${taint}\nrules:${WRITE_RULES}\n  - match: { name: getCustomer }\n    masking: { pii: ${masking} }\n${rules}`;

async function setup(policyYaml = policy(), store: TaintStore = createMemoryTaint({ now: () => T0 })) {
  let clock = T0;
  const view = viewOf(await crm(), policyYaml);
  const guard = createTaint({ store, now: () => clock });
  const record = createTaintRecord({ store, now: () => clock, redactor: createRedactor() });
  let n = 0;
  const ctxFor = (name: string, who: Partial<CallInput>) => {
    const ctx = resolvedContext(view, {
      name,
      principal: { id: 'key:alice', scopes: ['tools:read', 'tools:write'], via: 'api-key' },
      ...who,
    });
    (ctx as { id: string }).id = `call-${++n}`;
    return ctx;
  };
  /** A read whose result reached the caller (as protect leaves it). */
  const read = async (
    name = 'getCustomer',
    who: Partial<CallInput> = {},
    extra: Partial<CallContext> = {},
  ) => {
    const ctx = ctxFor(name, who);
    Object.assign(ctx, { result: { content: [{ type: 'text', text: '{}' }] } }, extra);
    await record(ctx);
    return ctx;
  };
  /** The guard on an outward call: the error it throws, if any, and the context. */
  const write = async (name = 'sendMessage', who: Partial<CallInput> = {}) => {
    const ctx = ctxFor(name, who);
    ctx.args = { to: 'x@evil.example', text: 'hi' };
    try {
      await guard(ctx);
      return { ctx, error: undefined as WardenError | undefined };
    } catch (e) {
      if (!isWardenError(e)) throw e;
      return { ctx, error: e };
    }
  };
  return { read, write, tick: (ms: number) => (clock += ms), view, store };
}

const REFUSE = 'taint: { mode: refuse, windowSeconds: 600 }';

describe('taint guard: refuse', () => {
  it('passes an outward call when the caller read nothing tainting', async () => {
    const { write } = await setup(policy(REFUSE));
    const { ctx, error } = await write();
    expect(error).toBeUndefined();
    expect(ctx.taintedBy).toBeUndefined();
  });

  it('refuses an outward call after a read of personal data in clear, naming the read', async () => {
    const { read, write, tick } = await setup(policy(REFUSE));
    const r = await read();
    expect(r.taints).toEqual(['pii']);
    tick(5000);
    const { ctx, error } = await write();
    expect(error?.code).toBe('TAINT_BLOCKED');
    expect(error?.message).toContain('sendMessage can send data out');
    expect(error?.message).toContain('personal data (pii) from getCustomer');
    expect(error?.message).toContain(`at ${new Date(T0).toISOString()} (5 s ago, call ${r.id})`);
    expect(error?.details).toContain('Nothing was run.');
    expect(ctx.taintedBy).toMatchObject({
      callId: r.id,
      tool: 'getCustomer',
      classes: ['pii'],
      action: 'refuse',
    });
  });

  it('passes once the window is over', async () => {
    const { read, write, tick } = await setup(policy(REFUSE));
    await read();
    tick(599_000);
    expect((await write()).error?.code).toBe('TAINT_BLOCKED');
    tick(2000);
    expect((await write()).error).toBeUndefined();
  });

  it('does not taint through a masked or dropped field: the value never reached the caller', async () => {
    for (const masking of ['mask', 'drop']) {
      const { read, write } = await setup(policy(REFUSE, '', masking));
      expect((await read()).taints).toBeUndefined();
      expect((await write()).error).toBeUndefined();
    }
  });

  it('does not taint through an error result, nor through a tool whose output carries no private class', async () => {
    const { read, write } = await setup(policy(REFUSE));
    await read('getCustomer', {}, { result: { content: [{ type: 'text', text: 'x' }], isError: true } });
    await read('getNote');
    expect((await write()).error).toBeUndefined();
  });

  it('a class let through in no classified field taints when detection by value finds it in the result', async () => {
    const rules = '  - match: { name: getNote }\n    masking: { pii: allow }\n';
    const { read, write } = await setup(policy(REFUSE, rules));
    const text = (t: string) => ({
      result: { content: [{ type: 'text' as const, text: JSON.stringify({ text: t }) }] },
    });
    expect((await read('getNote', {}, text('call me back tomorrow'))).taints).toBeUndefined();
    expect((await write()).error).toBeUndefined();
    expect((await read('getNote', {}, text('write to ada@example.org'))).taints).toEqual(['pii']);
    expect((await write()).error?.code).toBe('TAINT_BLOCKED');
    // Without a redactor to look, the class counts (fail closed).
    const store = createMemoryTaint({ now: () => T0 });
    const view = viewOf(await crm(), policy(REFUSE, rules));
    const ctx = resolvedContext(view, { name: 'getNote' });
    Object.assign(ctx, text('nothing'));
    await createTaintRecord({ store, now: () => T0 })(ctx);
    expect(ctx.taints).toEqual(['pii']);
  });

  it('taints through content the injection screen flagged, whatever its action', async () => {
    const { read, write } = await setup(policy(REFUSE));
    const flagged = {
      untrusted: { flagged: [{ path: '/text', signals: ['ignore-previous'] }], action: 'redact' },
    };
    const r = await read('getNote', {}, flagged as Partial<CallContext>);
    expect(r.taints).toEqual(['untrusted']);
    const { error } = await write();
    expect(error?.code).toBe('TAINT_BLOCKED');
    expect(error?.message).toContain('content flagged as a possible prompt injection from getNote');
  });

  it('leaves another principal alone', async () => {
    const { read, write } = await setup(policy(REFUSE));
    await read();
    const bob = {
      principal: { id: 'key:bob', scopes: ['tools:read', 'tools:write'], via: 'api-key' as const },
    };
    expect((await write('sendMessage', bob)).error).toBeUndefined();
  });

  it('per session (default): another session of the same principal is unaffected; per principal: it is', async () => {
    {
      const { read, write } = await setup(policy(REFUSE));
      await read('getCustomer', { session: 's1' });
      expect((await write('sendMessage', { session: 's1' })).error?.code).toBe('TAINT_BLOCKED');
      expect((await write('sendMessage', { session: 's2' })).error).toBeUndefined();
      expect((await write('sendMessage', {})).error).toBeUndefined();
    }
    {
      const { read, write } = await setup(policy('taint: { mode: refuse, per: principal }'));
      await read('getCustomer', { session: 's1' });
      expect((await write('sendMessage', { session: 's2' })).error?.code).toBe('TAINT_BLOCKED');
      expect((await write('sendMessage', {})).error?.code).toBe('TAINT_BLOCKED');
    }
  });

  it('egress: false lets a write through; egress: true guards a read', async () => {
    const rules = `  - match: { name: sendMessage }\n    egress: false\n  - match: { name: searchWeb }\n    egress: true\n`;
    const { read, write } = await setup(policy(REFUSE, rules));
    await read();
    expect((await write('sendMessage')).error).toBeUndefined();
    expect((await write('searchWeb')).error?.code).toBe('TAINT_BLOCKED');
    // A plain read is no outward channel by default.
    expect((await write('getNote')).error).toBeUndefined();
  });

  it('classes: only the listed classes taint, on record and on check', async () => {
    const { read, write } = await setup(policy('taint: { mode: refuse, classes: [untrusted] }'));
    expect((await read()).taints).toBeUndefined();
    expect((await write()).error).toBeUndefined();
  });

  it('checks classes again on the outward call: a reload that narrows them applies at once', async () => {
    const store = createMemoryTaint({ now: () => T0 });
    const before = await setup(policy(REFUSE), store);
    await before.read();
    const after = await setup(policy('taint: { mode: refuse, classes: [secret] }'), store);
    expect((await after.write()).error).toBeUndefined();
    const longer = await setup(policy('taint: { mode: refuse, windowSeconds: 60 }'), store);
    longer.tick(61_000);
    expect((await longer.write()).error).toBeUndefined();
  });

  it('off: records nothing and checks nothing', async () => {
    const store = createMemoryTaint({ now: () => T0 });
    const { read, write } = await setup(policy('taint: { mode: off }'), store);
    expect((await read()).taints).toBeUndefined();
    expect((await write()).error).toBeUndefined();
    const on = await setup(policy(REFUSE), store);
    expect((await on.write()).error).toBeUndefined();
  });

  it('fails closed when the store cannot answer: the outward call and the tainting read both stop', async () => {
    const broken: TaintStore = {
      mark: async () => {
        throw new Error('down');
      },
      marks: async () => {
        throw new Error('down');
      },
      close: async () => {},
    };
    const { read, write } = await setup(policy(REFUSE), broken);
    await expect(write()).rejects.toThrow('down');
    await expect(read()).rejects.toThrow('down');
    // A read that taints nothing does not need the store.
    await expect(read('getNote')).resolves.toBeDefined();
  });
});

describe('taint guard: park (the default)', () => {
  it('is on by default and parks the outward call for a human operator, with the reason on the request', async () => {
    const { read, write } = await setup(policy());
    const r = await read();
    // A client that can elicit: the user's yes would not do, an operator must decide.
    const elicit = {
      confirmation: {
        kind: 'elicit' as const,
        ask: async () => ({ action: 'accept', content: { confirm: true } }),
      },
    };
    const { ctx, error } = await write('sendMessage', elicit);
    expect(error).toBeUndefined();
    expect(ctx.taintedBy).toMatchObject({ callId: r.id, action: 'park' });

    const audit = memoryAudit();
    const approvals = testApprovals(audit, { now: () => T0 });
    const confirm = createConfirm({
      secret: Buffer.alloc(32, 1),
      ttlSeconds: 60,
      replay: createMemoryReplayGuard(),
      redactor: createRedactor(),
      approvals,
      origin: () => 'https://crm.example.com',
      now: () => T0,
    });
    // sendMessage needs no confirmation by its rule; the taint alone parks it, whatever the client can do.
    expect(ctx.decision!.decision.confirm).toBe(false);
    const parked = await Promise.resolve(confirm(ctx)).then(
      () => undefined,
      (e: WardenError) => e,
    );
    expect(parked?.code).toBe('APPROVAL_PENDING');
    const id = ctx.confirmed!.approval!;
    const request = await approvals.get(id);
    expect(request?.why).toContain('taint guard: sendMessage can send data out');
    expect(request?.why).toContain(`call ${r.id}`);

    // An operator approves; the identical call then runs, once.
    await approvals.decide(id, { operator: 'op', verdict: 'approve', reason: 'checked with the customer' });
    const again = await write('sendMessage', elicit);
    await confirm(again.ctx);
    expect(again.ctx.confirmed).toEqual({ via: 'operator', approval: id });
    expect(again.ctx.taintedBy?.callId).toBe(r.id);
  });
});

describe('taint guard: metrics', () => {
  it('counts tainting reads and refused, parked and approved outward calls', async () => {
    const metrics = new Metrics(() => new Set(['getCustomer', 'sendMessage']));
    const by = { callId: 'c1', tool: 'getCustomer', at: '', classes: ['pii'], reason: 'r' };
    const read = contextFor({ name: 'getCustomer' });
    read.taints = ['pii'];
    const refused = contextFor({ name: 'sendMessage' });
    refused.taintedBy = { ...by, action: 'refuse' };
    refused.error = new WardenError('TAINT_BLOCKED', 'refused');
    const parked = contextFor({ name: 'sendMessage' });
    parked.taintedBy = { ...by, action: 'park' };
    parked.error = new WardenError('APPROVAL_PENDING', 'parked');
    const approved = contextFor({ name: 'sendMessage' });
    approved.taintedBy = { ...by, action: 'park' };
    approved.confirmed = { via: 'operator', approval: 'a1' };
    // Approved, then the upstream failed: still approved (it ran), not parked again.
    const approvedFailed = contextFor({ name: 'sendMessage' });
    approvedFailed.taintedBy = { ...by, action: 'park' };
    approvedFailed.confirmed = { via: 'operator', approval: 'a2' };
    approvedFailed.error = new WardenError('UPSTREAM_STATUS', 'upstream 502');
    // An operator denied it: neither parked nor approved.
    const denied = contextFor({ name: 'sendMessage' });
    denied.taintedBy = { ...by, action: 'park' };
    denied.confirmed = { approval: 'a3' };
    denied.error = new WardenError('APPROVAL_DENIED', 'denied');
    for (const ctx of [read, refused, parked, approved, parked, approvedFailed, denied])
      metrics.observeCall(ctx, undefined);
    const text = await metrics.text();
    expect(text).toContain('mcp_warden_taint_total{event="read"} 1');
    expect(text).toContain('mcp_warden_taint_total{event="refused"} 1');
    expect(text).toContain('mcp_warden_taint_total{event="parked"} 2');
    expect(text).toContain('mcp_warden_taint_total{event="approved"} 2');
  });
});

describe('taint guard: policy', () => {
  const check = async (yaml: string) =>
    checkPolicy(await crm(), parsePolicy(yaml, 'p.yaml')).map((p) => `${p.level} ${p.line}: ${p.message}`);

  it('policy check warns when parked calls have no operator to approve them', async () => {
    const park = 'version: 1\nmode: read-write\ntaint:\n  mode: park\n';
    expect(await check(park)).toEqual([
      'warning 4: taint: mode park waits for an operator, and no admin is configured to approve: set admin (and serve --admin-port), or taint.mode: refuse',
    ]);
    expect(await check(`${park}admin: { token: env:T }\n`)).toEqual([]);
    expect(await check('version: 1\nmode: read-write\ntaint: { mode: refuse }\n')).toEqual([]);
    // Parking is the default: no `taint:` block warns the same (without a line to point at).
    expect(await check('version: 1\nmode: read-write\n')).toEqual([
      'warning undefined: taint: mode park waits for an operator, and no admin is configured to approve: set admin (and serve --admin-port), or taint.mode: refuse',
    ]);
    expect(await check('version: 1\n')).toEqual([]);
  });

  it('refuses a bad taint key or value, naming it', () => {
    for (const bad of [
      'taint: { mode: block }',
      'taint: { windowSeconds: 5 }',
      'taint: { classes: [pii, gossip] }',
      'taint: { per: tenant }',
      'taint: { modes: refuse }',
      'rules:\n  - match: { name: sendMessage }\n    egress: maybe',
    ])
      expect(() => parsePolicy(`version: 1\n${bad}\n`, 'p.yaml'), bad).toThrow(/taint|egress/);
  });

  it('explains egress: the default by kind, and a rule that sets it', async () => {
    const decisions = evaluatePolicy(await crm(), {
      doc: parsePolicy(`version: 1\nrules:\n  - match: { name: getNote }\n    egress: true\n`, 'p.yaml').doc,
    });
    const of = (n: string) => decisions.find((d) => d.tool.name === n)!;
    expect([of('sendMessage').egress, of('getCustomer').egress, of('getNote').egress]).toEqual([
      true,
      false,
      true,
    ]);
    expect(of('getNote').steps.map((s) => s.what)).toContain('egress: true');
    expect(of('getNote').taint).toEqual(DEFAULT_TAINT);
  });
});

describe('taint guard: alerts', () => {
  const tainted = (principal: string, action: 'refuse' | 'park', ok = false) => {
    const ctx = contextFor({
      name: 'sendMessage',
      principal: { id: principal, scopes: [], via: 'api-key' },
    });
    ctx.tool = { name: 'sendMessage' } as CallContext['tool'];
    ctx.taintedBy = { callId: 'c1', tool: 'getCustomer', at: '', classes: ['pii'], reason: 'r', action };
    if (!ok) ctx.error = new WardenError(action === 'refuse' ? 'TAINT_BLOCKED' : 'APPROVAL_PENDING', 'x');
    return ctx;
  };

  it('fires once per principal per cooldown when a call is refused or parked, never for an approved one; off with false', () => {
    let t = T0;
    const fired: Alert[] = [];
    const make = (config: Record<string, unknown>) =>
      new Alerts({
        config: alertsSchema.parse(config),
        logger: pino({ level: 'silent' }),
        now: () => t,
        onFire: (a) => fired.push(a),
      });
    const alerts = make({ cooldownSeconds: 60 });
    alerts.observe(tainted('key:alice', 'refuse'));
    alerts.observe(tainted('key:alice', 'park'));
    alerts.observe(tainted('key:bob', 'park', true));
    // Approved, ran, and the upstream failed: not refused or parked by the guard.
    const failed = tainted('key:dave', 'park', true);
    failed.error = new WardenError('UPSTREAM_STATUS', 'upstream 502');
    alerts.observe(failed);
    const taint = () => fired.filter((a) => a.rule === 'taintBlocked');
    expect(taint().map((a) => [a.subject, a.message])).toEqual([
      ['key:alice', 'key:alice called sendMessage after reading pii from getCustomer (call c1): refused'],
    ]);
    t += 61_000;
    alerts.observe(tainted('key:alice', 'park'));
    expect(taint().at(-1)?.message).toContain('parked for an operator');
    expect(taint()).toHaveLength(2);
    make({ taintBlocked: false }).observe(tainted('key:carol', 'refuse'));
    expect(taint()).toHaveLength(2);
  });
});
