import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONFIRM_ARG } from '../../src/control/view.js';
import { isWardenError, type WardenError } from '../../src/errors/index.js';
import { createConfirm, digest } from '../../src/pipeline/confirm.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { createRedactor } from '../../src/protect/redactor.js';
import { createMemoryReplayGuard } from '../../src/state/memory.js';
import { itemsCatalog, memoryAudit, resolvedContext, testApprovals, viewOf } from '../support/pipeline.js';

const POLICY =
  'version: 1\nmode: read-write\nrules:\n  - match: { name: createItem }\n    enabled: true\n    confirm: true\n';
/** The agent's own two-step token (today's fallback, now chosen explicitly). */
const AGENT_POLICY = `${POLICY}    approval: agent\n    reason: the test drives the token flow itself\n`;

/** The token in a CONFIRMATION_REQUIRED result's text (agent mode: there is no other place). */
const tokenIn = (e: WardenError): string => new RegExp(`${CONFIRM_ARG}: (\\S+)`).exec(e.text ?? '')![1]!;

async function setup(opts: { now?: () => number; secret?: Buffer; policy?: string } = {}) {
  const view = viewOf(await itemsCatalog(), opts.policy ?? POLICY);
  const confirm = createConfirm({
    secret: opts.secret ?? randomBytes(32),
    ttlSeconds: 60,
    replay: createMemoryReplayGuard(),
    redactor: createRedactor(),
    approvals: testApprovals(memoryAudit()),
    origin: () => 'https://api.example.com/v2',
    ...(opts.now ? { now: opts.now } : {}),
  });
  const call = async (
    args: Record<string, unknown>,
    principal = 'alice',
    extra: Partial<CallContext['input']> = {},
  ) => {
    const ctx = resolvedContext(view, {
      name: 'createItem',
      arguments: args,
      principal: { id: principal, scopes: ['tools:read'], via: 'stdio' },
      ...extra,
    });
    const { [CONFIRM_ARG]: _t, ...rest } = args;
    ctx.args = rest;
    await confirm(ctx);
    return ctx;
  };
  const refusal = async (p: Promise<unknown>): Promise<WardenError> => {
    try {
      await p;
    } catch (e) {
      if (isWardenError(e)) return e;
      throw e;
    }
    throw new Error('expected a refusal');
  };
  /** First step: the preview and its token. */
  const tokenFor = async (args: Record<string, unknown>, principal = 'alice') => {
    const e = await refusal(call(args, principal));
    expect(e.code).toBe('CONFIRMATION_REQUIRED');
    return tokenIn(e);
  };
  return { call, refusal, tokenFor };
}

describe('confirm stage: two-step token (approval: agent)', () => {
  it('answers the first call with a preview and a token, and runs nothing', async () => {
    const { refusal, call } = await setup({ policy: AGENT_POLICY });
    const e = await refusal(call({ name: 'bolt', qty: 2 }));
    expect(e.code).toBe('CONFIRMATION_REQUIRED');
    expect(e.text).toContain('Allow createItem (POST /items) with arguments {"name":"bolt","qty":2}?');
    expect(e.text).toContain(`${CONFIRM_ARG}: ${tokenIn(e)}`);
    expect(e.pending?.token).toBe(tokenIn(e));
  });

  it('accepts the token once, for the same caller and arguments (in any key order)', async () => {
    const { call, tokenFor, refusal } = await setup({ policy: AGENT_POLICY });
    const token = await tokenFor({ name: 'bolt', qty: 2 });
    const ctx = await call({ qty: 2, name: 'bolt', [CONFIRM_ARG]: token });
    expect(ctx.confirmed).toEqual({ via: 'token' });
    const replay = await refusal(call({ name: 'bolt', qty: 2, [CONFIRM_ARG]: token }));
    expect(replay.code).toBe('CONFIRMATION_INVALID');
    expect(replay.message).toContain('already been used');
  });

  it('refuses a token for other arguments, another caller, after expiry, or forged', async () => {
    let clock = 1_000_000;
    const { call, tokenFor, refusal } = await setup({ policy: AGENT_POLICY, now: () => clock });
    const t1 = await tokenFor({ name: 'bolt' });
    expect((await refusal(call({ name: 'nut', [CONFIRM_ARG]: t1 }))).message).toContain('arguments differ');
    const t2 = await tokenFor({ name: 'bolt' });
    expect((await refusal(call({ name: 'bolt', [CONFIRM_ARG]: t2 }, 'mallory'))).message).toContain(
      'another caller',
    );
    const t3 = await tokenFor({ name: 'bolt' });
    clock += 61_000;
    expect((await refusal(call({ name: 'bolt', [CONFIRM_ARG]: t3 }))).message).toContain('expired');
    clock -= 61_000;
    const t4 = await tokenFor({ name: 'bolt' });
    const [payload, sig] = t4.split('.') as [string, string];
    // A payload rewritten to bind other arguments no longer matches its MAC.
    const forged = JSON.parse(Buffer.from(payload, 'base64url').toString());
    forged.d = digest({ name: 'nut' });
    const forgedToken = `${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${sig}`;
    expect((await refusal(call({ name: 'nut', [CONFIRM_ARG]: forgedToken }))).message).toContain(
      'not a token the gateway issued',
    );
    for (const junk of ['', 'abc', 'a.b.c', 42, `${payload}.`])
      expect((await refusal(call({ name: 'bolt', [CONFIRM_ARG]: junk }))).code).toBe('CONFIRMATION_INVALID');
  });

  it("refuses a token minted by another gateway's key", async () => {
    const a = await setup({ policy: AGENT_POLICY });
    const b = await setup({ policy: AGENT_POLICY });
    const token = await a.tokenFor({ name: 'bolt' });
    expect((await b.refusal(b.call({ name: 'bolt', [CONFIRM_ARG]: token }))).code).toBe(
      'CONFIRMATION_INVALID',
    );
  });
});

describe('confirm stage: client channels', () => {
  it('asks in-band when the client can elicit, and runs only on an explicit yes', async () => {
    const { call, refusal } = await setup();
    const asked: string[] = [];
    const yes = await call({ name: 'bolt' }, 'alice', {
      confirmation: {
        kind: 'elicit',
        ask: async (m) => {
          asked.push(m);
          return { action: 'accept', content: { confirm: true } };
        },
      },
    });
    expect(yes.confirmed).toEqual({ via: 'elicitation' });
    expect(asked[0]).toContain('Allow createItem');
    for (const answer of [
      { action: 'accept', content: { confirm: false } },
      { action: 'decline' },
      { action: 'cancel' },
    ])
      expect(
        (
          await refusal(
            call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'elicit', ask: async () => answer } }),
          )
        ).code,
      ).toBe('CONFIRMATION_DECLINED');
  });

  it('binds input_required answers to the sealed request state', async () => {
    const { call, refusal } = await setup();
    const first = await refusal(call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'mrtr' } }));
    const state = first.pending!.token;
    const accept = { action: 'accept', content: { confirm: true } };
    // An accept without the state the gateway minted is not a confirmation.
    const noState = await refusal(
      call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'mrtr', answer: accept } }),
    );
    expect(noState.code).toBe('CONFIRMATION_REQUIRED');
    const other = await refusal(
      call({ name: 'nut' }, 'alice', { confirmation: { kind: 'mrtr', state, answer: accept } }),
    );
    expect(other.code).toBe('CONFIRMATION_INVALID');
    const again = await refusal(call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'mrtr' } }));
    const ok = await call({ name: 'bolt' }, 'alice', {
      confirmation: { kind: 'mrtr', state: again.pending!.token, answer: accept },
    });
    expect(ok.confirmed).toEqual({ via: 'input_required' });
  });

  it('leaves tools without confirmation alone', async () => {
    const view = viewOf(await itemsCatalog(), POLICY);
    const confirm = plainConfirm();
    const ctx = resolvedContext(view, { name: 'getPart', arguments: {} });
    ctx.args = {};
    await confirm(ctx);
    expect(ctx.confirmed).toBeUndefined();
  });

  it('returns no promise for a call with nothing to confirm, and one for a call to confirm', async () => {
    const view = viewOf(await itemsCatalog(), POLICY);
    const confirm = plainConfirm();
    // The pipeline awaits only what a stage returns: a read with no rule to confirm costs no turn.
    const read = resolvedContext(view, { name: 'getPart', arguments: {} });
    read.args = {};
    expect(confirm(read)).toBeUndefined();
    expect(read.confirmed).toBeUndefined();
    const write = resolvedContext(view, { name: 'createItem', arguments: { name: 'bolt' } });
    write.args = { name: 'bolt' };
    const pending = confirm(write);
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toMatchObject({ code: 'APPROVAL_PENDING' });
  });

  // What a client may send back instead of an answer: each is refused, none runs the call.
  const GARBAGE: unknown[] = [
    null,
    'yes',
    true,
    42,
    [],
    [{ action: 'accept', content: { confirm: true } }],
    {},
    { action: 'maybe', content: { confirm: true } },
    { action: 'ACCEPT', content: { confirm: true } },
    { action: true },
    { action: 'accept' },
    { action: 'accept', content: null },
    { action: 'accept', content: 'confirm' },
    { action: 'accept', content: [true] },
    { action: 'accept', content: {} },
    { action: 'accept', content: { confirm: 'true' } },
    { action: 'accept', content: { confirm: 1 } },
    { action: 'accept', content: { confirm: null } },
    { action: 'accept', content: { confirm: true, amount: 1_000_000 } },
    { action: 'accept', content: { confirm: true }, approvedBy: 'admin' },
    { action: 'accept', content: { confirm: true }, _meta: 'x' },
    { action: 'decline', content: { confirm: true } },
    JSON.parse('{"action":"accept","content":{"confirm":true,"__proto__":{"confirm":true}}}'),
  ];

  it.each(GARBAGE.map((g) => [JSON.stringify(g), g]))(
    'refuses a malformed in-band answer %s with a clear CONFIRMATION_INVALID',
    async (_shown, garbage) => {
      const { call, refusal } = await setup();
      const e = await refusal(
        call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'elicit', ask: async () => garbage } }),
      );
      expect(e.code).toBe('CONFIRMATION_INVALID');
      expect(e.message).toContain("the client's answer to the confirmation request is malformed");
      expect(e.message).toContain('Nothing was run');
    },
  );

  it.each(GARBAGE.map((g) => [JSON.stringify(g), g]))(
    'refuses a malformed input_required answer %s, even with a genuine request state',
    async (_shown, garbage) => {
      const { call, refusal } = await setup();
      const first = await refusal(call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'mrtr' } }));
      const e = await refusal(
        call({ name: 'bolt' }, 'alice', {
          confirmation: { kind: 'mrtr', state: first.pending!.token, answer: garbage },
        }),
      );
      expect(e.code).toBe('CONFIRMATION_INVALID');
    },
  );

  it('refuses, without an internal error, when the in-band question itself fails', async () => {
    const { call, refusal } = await setup();
    const failing = new Error('Invalid elicitation result: content.confirm: expected boolean');
    const e = await refusal(
      call({ name: 'bolt' }, 'alice', {
        confirmation: {
          kind: 'elicit',
          ask: async () => {
            throw failing;
          },
        },
      }),
    );
    expect(e.code).toBe('CONFIRMATION_INVALID');
    expect(e.message).toContain('no valid answer');
    // The client's own words are not echoed to the agent.
    expect(e.message).not.toContain('expected boolean');
  });

  it('property: only {action: "accept", content: {confirm: true}} (and an object _meta) confirms', async () => {
    const { call } = await setup();
    const part = fc.oneof(
      fc.constantFrom<unknown>('accept', 'decline', 'cancel', true, 'yes', 1, null, undefined, {}, []),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const answer = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        {
          action: part,
          content: fc.oneof(
            fc.record({ confirm: part }, { requiredKeys: [] }),
            fc.dictionary(fc.constantFrom('confirm', 'x', '_meta'), part),
            part,
          ),
          _meta: fc.oneof(fc.constant({}), part),
          extra: part,
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(answer, fc.boolean(), async (raw, inBand) => {
        const approved =
          isObj(raw) &&
          Object.entries(raw as object).every(
            ([k, v]) => k === 'action' || k === 'content' || (k === '_meta' && (v === undefined || isObj(v))),
          ) &&
          (raw as { action: unknown }).action === 'accept' &&
          isObj((raw as { content: unknown }).content) &&
          Object.keys((raw as { content: object }).content).join() === 'confirm' &&
          (raw as { content: { confirm: unknown } }).content.confirm === true;
        let code = 'OK';
        try {
          if (inBand)
            await call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'elicit', ask: async () => raw } });
          else {
            const first = await call({ name: 'bolt' }, 'alice', { confirmation: { kind: 'mrtr' } }).catch(
              (e) => e,
            );
            await call({ name: 'bolt' }, 'alice', {
              confirmation: { kind: 'mrtr', state: first.pending.token, answer: raw },
            });
          }
        } catch (e) {
          code = isWardenError(e) ? e.code : 'NOT_A_WARDEN_ERROR';
        }
        return approved ? code === 'OK' : code === 'CONFIRMATION_INVALID' || code === 'CONFIRMATION_DECLINED';
      }),
      { numRuns: 1500 },
    );
  });
});

const isObj = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A confirm stage with its own secret, replay guard and approvals, and nothing else of a test's. */
function plainConfirm() {
  return createConfirm({
    secret: randomBytes(32),
    ttlSeconds: 60,
    replay: createMemoryReplayGuard(),
    redactor: createRedactor(),
    approvals: testApprovals(memoryAudit()),
    origin: () => 'https://api.example.com/v2',
  });
}
