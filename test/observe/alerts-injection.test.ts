import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type Alert, Alerts } from '../../src/observe/alerts.js';
import type { CallContext } from '../../src/pipeline/context.js';

// The alerts name flagged fields through lib/shown-paths.ts, not the injection screen's module
// (issue 22: a start does not load that one): the names are still only the safe ones.

const silent = pino({ level: 'silent' });

function flaggedCall(tool: string, paths: string[]): CallContext {
  return {
    input: { name: tool, arguments: {}, principal: { id: 'stdio:local', scopes: [], via: 'stdio' } },
    tool: { name: tool },
    untrusted: { flagged: paths.map((path) => ({ path, signals: ['conceal'] })), action: 'annotate' },
  } as unknown as CallContext;
}

describe('the injectionSuspected alert', () => {
  it('fires in the observation, naming only safe paths (at most three), the body as such', () => {
    const fired: Alert[] = [];
    const alerts = new Alerts({ config: undefined, logger: silent, onFire: (a) => fired.push(a) });
    alerts.observe(flaggedCall('getIssue', ['/result/0/body', '/result/1/<script>', '/a', '/b']));
    const first = fired.find((a) => a.rule === 'injectionSuspected')!;
    expect(first.subject).toBe('getIssue');
    expect(first.message).toContain('getIssue returned 4 field(s) that look like instructions');
    expect(first.message).toContain('/result/0/body, /result/1/*, /a, and 1 more');
    expect(first.message).not.toContain('<script>');
    expect(first.message).toContain('annotate) to stdio:local');
    alerts.observe(flaggedCall('getRepo', ['']));
    expect(fired.filter((a) => a.rule === 'injectionSuspected').at(-1)!.message).toContain(
      '(the body; annotate)',
    );
  });
});
