import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineOptions } from '../../src/pipeline/index.js';
import { codeOf, itemsCatalog, memoryAudit, pipelineFor } from '../support/pipeline.js';

/**
 * The order of the guard pipeline is the gateway's security argument (src/pipeline/index.ts). Each
 * rule below fails with the reason it exists, so whoever moves a stage reads what they break.
 */
let stages: readonly string[];
beforeAll(async () => {
  stages = pipelineFor(await itemsCatalog()).stages;
});

/** Asserts that stage `a` runs before stage `b`, failing with `why`. */
function expectBefore(a: string, b: string, why: string): void {
  const [i, j] = [stages.indexOf(a), stages.indexOf(b)];
  expect(i, `no stage named ${a}`).toBeGreaterThanOrEqual(0);
  expect(j, `no stage named ${b}`).toBeGreaterThanOrEqual(0);
  expect(i < j, `${a} must run before ${b}: ${why} (order: ${stages.join(' → ')})`).toBe(true);
}

describe('the pipeline order', () => {
  it('is exactly this, audit last', () => {
    expect(stages).toEqual([
      'resolve',
      'authorize',
      'toggle',
      'limit',
      'validate',
      'budget',
      'taint',
      'confirm',
      'build',
      'intent',
      'inject',
      'spend',
      'send',
      'answer',
      'screen',
      'protect',
      'taint-record',
      'audit',
    ]);
  });

  it('resolves the tool first', () => {
    expect(
      stages[0],
      'resolve must be first: a name the API does not have stops before any work is done on its arguments',
    ).toBe('resolve');
  });

  it('authorizes before it looks at toggles', () => {
    expectBefore(
      'authorize',
      'toggle',
      'a caller without the scopes learns nothing, not even that a tool is switched off',
    );
  });

  it('limits before it validates', () => {
    expectBefore(
      'limit',
      'validate',
      'a caller over its limit costs almost nothing: no schema check is spent on its arguments',
    );
  });

  it('validates before it confirms and before it builds the request', () => {
    expectBefore('validate', 'confirm', 'the user is asked to approve checked arguments only');
    expectBefore('validate', 'build', 'nothing unchecked may reach the upstream request');
  });

  it('checks budgets on checked arguments, before anyone is asked to confirm', () => {
    expectBefore('validate', 'budget', "a bulk call's records are counted from checked arguments only");
    expectBefore('budget', 'confirm', 'a caller over its budget (or read-only) is not asked to confirm');
  });

  it('counts budgets last before send', () => {
    expect(
      stages[stages.indexOf('send') - 1],
      'spend must run right before send: only calls that go out are counted (a parked, declined or unbuildable call costs nothing)',
    ).toBe('spend');
  });

  it('checks the taint before confirm, and records it once the result is final', () => {
    expectBefore('validate', 'taint', 'the approval a tainted call is parked on binds checked arguments');
    expectBefore(
      'taint',
      'confirm',
      "a tainted outward call is parked by confirm's operator flow, or refused before anyone is asked",
    );
    expectBefore(
      'protect',
      'taint-record',
      'only what reached the caller in clear (after masking) taints it',
    );
    expectBefore('screen', 'taint-record', "the injection screen's flags are part of what taints");
  });

  it('confirms before it builds the request', () => {
    expectBefore('confirm', 'build', 'the user approves exactly what will be sent, before it exists');
  });

  it('builds the request before it injects the credential', () => {
    expectBefore('build', 'inject', 'the credential is placed last, so no argument can overwrite or read it');
  });

  it('writes the intent (write-ahead audit) before it sends', () => {
    expectBefore('intent', 'send', 'no write may leave the gateway without a record on disk first');
  });

  it('protects last before the audit (only recording stages, which change no result, come after it)', () => {
    // Stages that only remember what the call did (they write no result): the taint guard's record.
    const RECORD_ONLY = new Set(['taint-record']);
    const after = stages.slice(stages.indexOf('protect') + 1, -1);
    expect(
      after.filter((s) => !RECORD_ONLY.has(s)),
      'protect must be the last stage before audit that touches the result: masking, redaction and size cuts apply to everything the agent receives',
    ).toEqual([]);
  });

  it('audits last: a call stopped at any stage is still recorded, once, with the code that stopped it', async () => {
    expect(stages.at(-1), 'audit must be last: every call is recorded, whatever stage stopped it').toBe(
      'audit',
    );
    const audit = memoryAudit();
    // The upstream is a closed port: a call that gets as far as sending fails there.
    const pipeline = pipelineFor(await itemsCatalog(), { audit });
    const principal = { id: 'tester', scopes: ['tools:read'], via: 'api-key' as const };
    const stoppedAt = {
      resolve: await pipeline.call({ name: 'noSuchTool', arguments: {}, principal }).catch((e) => e),
      validate: await pipeline.call({ name: 'getPart', arguments: { part: 'x' }, principal }),
      send: await pipeline.call({ name: 'getPart', arguments: { id: 'a', part: 1 }, principal }),
    };
    expect(stoppedAt.resolve.code).toBeDefined();
    expect([codeOf(stoppedAt.validate), codeOf(stoppedAt.send)]).toEqual([
      'INVALID_ARGUMENT',
      'UPSTREAM_UNAVAILABLE',
    ]);
    const calls = audit.records.filter((r) => r.kind === 'call');
    expect(
      calls.map((r) => 'code' in r && r.code),
      'every call is audited once, whatever stopped it',
    ).toEqual(['TOOL_NOT_FOUND', 'INVALID_ARGUMENT', 'UPSTREAM_UNAVAILABLE']);
    await pipeline.close();
  });

  it('tells the observers of every call once it is audited, after its answer, timed to the audit', async () => {
    const audit = memoryAudit();
    const told: Array<{ code: string | undefined; audited: number; ms: number }> = [];
    const errors: unknown[] = [];
    const logger = { error: (...a: unknown[]) => errors.push(a) } as unknown as PipelineOptions['logger'];
    let throwOnce = true;
    const pipeline = pipelineFor(await itemsCatalog(), {
      audit,
      logger,
      onCall: (ctx, record) => {
        told.push({
          code: ctx.error?.code,
          audited: audit.records.filter((r) => r.kind === 'call' && r.id === record?.id).length,
          ms: ctx.endedAt! - ctx.startedAt,
        });
        if (throwOnce) {
          throwOnce = false;
          throw new Error('observer down');
        }
      },
    });
    const principal = { id: 'tester', scopes: ['tools:read'], via: 'api-key' as const };
    const first = await pipeline.call({ name: 'getPart', arguments: { part: 'x' }, principal });
    // The answer is handed back before any observer runs; none is skipped.
    expect(codeOf(first)).toBe('INVALID_ARGUMENT');
    expect(told).toEqual([]);
    await pipeline.call({ name: 'getPart', arguments: { part: 'y' }, principal });
    await new Promise((r) => setImmediate(r));
    expect(told.map((t) => [t.code, t.audited])).toEqual([
      ['INVALID_ARGUMENT', 1],
      ['INVALID_ARGUMENT', 1],
    ]);
    expect(told.every((t) => t.ms >= 0)).toBe(true);
    // An observer that throws is logged: the next calls are still told.
    expect(errors).toHaveLength(1);
    // What is left to tell at close is told then.
    await pipeline.call({ name: 'getPart', arguments: { part: 'z' }, principal });
    await pipeline.close();
    expect(told).toHaveLength(3);
  });
});
