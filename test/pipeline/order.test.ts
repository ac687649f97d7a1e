import { beforeAll, describe, expect, it } from 'vitest';
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
      'confirm',
      'build',
      'intent',
      'inject',
      'send',
      'answer',
      'protect',
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

  it('confirms before it builds the request', () => {
    expectBefore('confirm', 'build', 'the user approves exactly what will be sent, before it exists');
  });

  it('builds the request before it injects the credential', () => {
    expectBefore('build', 'inject', 'the credential is placed last, so no argument can overwrite or read it');
  });

  it('writes the intent (write-ahead audit) before it sends', () => {
    expectBefore('intent', 'send', 'no write may leave the gateway without a record on disk first');
  });

  it('protects last before the audit', () => {
    expect(
      stages.at(-2),
      'protect must be the last stage before audit: masking, redaction and size cuts apply to everything the agent receives',
    ).toBe('protect');
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
});
