import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type Alert, Alerts } from '../../src/observe/alerts.js';
import type { CallContext } from '../../src/pipeline/context.js';
import { waitFor } from '../support/wait.js';

// In a file of its own: the injection screen's module is loaded by the first call Alerts observes
// (issue 22: not with the gateway), so this file's first observation is one made before it is.

const silent = pino({ level: 'silent' });

function flaggedCall(tool: string, paths: string[]): CallContext {
  return {
    input: { name: tool, arguments: {}, principal: { id: 'stdio:local', scopes: [], via: 'stdio' } },
    tool: { name: tool },
    untrusted: { flagged: paths.map((path) => ({ path, signals: ['conceal'] })), action: 'annotate' },
  } as unknown as CallContext;
}

describe('the injectionSuspected alert', () => {
  it('fires on the first call observed (its module loaded then) and at once later, naming safe paths', async () => {
    const fired: Alert[] = [];
    const alerts = new Alerts({ config: undefined, logger: silent, onFire: (a) => fired.push(a) });
    alerts.observe(flaggedCall('getIssue', ['/result/0/body', '/result/1/<script>']));
    await waitFor(() => fired.some((a) => a.rule === 'injectionSuspected'), { what: 'the first alert' });
    const first = fired.find((a) => a.rule === 'injectionSuspected')!;
    expect(first.subject).toBe('getIssue');
    expect(first.message).toContain('getIssue returned 2 field(s) that look like instructions');
    expect(first.message).toContain('/result/0/body');
    // A path segment that is not plain is not echoed into the alert as it came.
    expect(first.message).not.toContain('<script>');
    expect(first.message).toContain('annotate) to stdio:local');
    // Once loaded, the alert is raised in the observation itself.
    alerts.observe(flaggedCall('getRepo', ['']));
    const second = fired.filter((a) => a.rule === 'injectionSuspected');
    expect(second.map((a) => a.subject)).toEqual(['getIssue', 'getRepo']);
    expect(second[1]!.message).toContain('(the body; annotate)');
    // Once per tool per cooldown.
    alerts.observe(flaggedCall('getIssue', ['/result/0/body']));
    await new Promise((r) => setImmediate(r));
    expect(fired.filter((a) => a.rule === 'injectionSuspected')).toHaveLength(2);
  });
});
