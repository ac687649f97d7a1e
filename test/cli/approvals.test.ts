import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { codeOf, startShopGateway, textOf, useFixture } from '../support/gateway.js';
import { ALICE_TOKEN, approvalIdOf, BOB_TOKEN, OPERATOR_LINES } from '../support/operators.js';
import { ADMIN_TOKEN, shopPolicy } from '../support/shop.js';
import { cliEnv, runCliAsync } from '../support/stdio.js';
import { expectAudited } from '../support/wait.js';

/** The error code a client's tool result starts with, or OK. */
const code = (r: { content: unknown }) => codeOf(r as Parameters<typeof codeOf>[0]);
/** `mcp-warden approvals …` and `audit query --approval` against a running gateway (the built CLI). */
const POLICY = shopPolicy(
  [
    ...OPERATOR_LINES,
    'callers:',
    '  anonymous: { scopes: [tools:read, tools:write, tools:delete], reason: loopback test }',
  ],
  ['  - match: { name: deleteCustomer }', '    enabled: true', '    approval: operator'],
);

describe('mcp-warden approvals', () => {
  const env = useFixture(() =>
    startShopGateway({ policy: POLICY, admin: true, env: { ALICE_TOKEN, BOB_TOKEN } }),
  );
  const cli = (token: string, ...args: string[]) =>
    runCliAsync(args, cliEnv({ MCP_WARDEN_ADMIN_TOKEN: token, MCP_WARDEN_ADMIN_URL: env().gw.adminUrl! }));
  /** A failing run: its exit code and stderr (execFile rejects). */
  const fails = (token: string, ...args: string[]) =>
    cli(token, ...args).then(
      () => {
        throw new Error(`expected ${args.join(' ')} to fail`);
      },
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );

  async function parkDelete(customerId: string) {
    const client = await env().connect({ name: 'cli-approvals' });
    const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId } });
    const first = await call();
    expect(code(first)).toBe('APPROVAL_PENDING');
    return { id: approvalIdOf(textOf(first)), call };
  }

  it('lists, shows and approves a parked call; the repeat runs once; the audit tells the story', async () => {
    const { id, call } = await parkDelete('c_1011');
    const list = await cli(ALICE_TOKEN, 'approvals', 'list');
    expect(list.stdout).toMatch(
      new RegExp(
        `^${id} +pending +deleteCustomer +DELETE /customers/\\{customerId\\} +anonymous +0/1 +expires `,
        'm',
      ),
    );
    const json = JSON.parse((await cli(ALICE_TOKEN, 'approvals', 'list', '--format', 'json')).stdout);
    expect(json).toContainEqual(expect.objectContaining({ id, status: 'pending' }));
    const show = await cli(ALICE_TOKEN, 'approvals', 'show', id);
    expect(show.stdout).toContain('tool:       deleteCustomer (DELETE /customers/{customerId})');
    expect(show.stdout).toContain('asked by:   anonymous');
    expect(show.stdout).toContain('"c_1011"');

    // A reason is required: commander refuses the command before anything is sent.
    const noReason = await fails(ALICE_TOKEN, 'approvals', 'approve', id);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/--reason/);
    const ok = await cli(ALICE_TOKEN, 'approvals', 'approve', id, '--reason', 'ticket 4711: customer asked');
    expect(ok.stdout).toMatch(new RegExp(`^${id}: approved; the agent's next identical call runs it`));

    const deletes = () => env().shop.requests.filter((r) => r.method === 'DELETE').length;
    const before = deletes();
    expect(code(await call())).toBe('OK');
    expect(deletes()).toBe(before + 1);
    // Once: the same call again parks a new request instead of running.
    const again = await call();
    expect(code(again)).toBe('APPROVAL_PENDING');
    expect(textOf(again)).not.toContain(id);
    expect(deletes()).toBe(before + 1);
    await expectAudited(env().auditFile, { kind: 'approval', event: 'executed', approval: id });

    const executed = await cli(ALICE_TOKEN, 'approvals', 'list', '--status', 'executed');
    expect(executed.stdout).toContain(id);

    // `audit query --approval`: requested → approved → executed, and the call that ran, in order.
    await env().gw.flushAudit();
    const story = JSON.parse(
      `[${(
        await cli(ALICE_TOKEN, 'audit', 'query', env().auditFile, '--approval', id, '--format', 'json')
      ).stdout
        .trim()
        .split('\n')
        .join(',')}]`,
    ) as Array<Record<string, unknown>>;
    const steps = story.map((r) => (r.kind === 'approval' ? r.event : r.kind));
    expect(steps.filter((s) => s !== 'call')).toEqual(['requested', 'approved', 'executed']);
    expect(story.every((r) => r.approval === id)).toBe(true);
    const ran = story.find((r) => r.kind === 'call' && r.outcome === 'ok');
    expect(ran).toMatchObject({
      tool: 'deleteCustomer',
      confirmed: 'operator',
      upstream: { method: 'DELETE' },
    });
    expect(story.indexOf(ran!)).toBeGreaterThan(steps.indexOf('approved'));
    expect(story.find((r) => r.event === 'approved')).toMatchObject({
      operator: 'alice',
      reason: 'ticket 4711: customer asked',
    });
    const table = await cli(ALICE_TOKEN, 'audit', 'query', env().auditFile, '--approval', id);
    expect(table.stdout).toMatch(/approval +deleteCustomer +anonymous +approved +by alice/);
  });

  it('denies with a reason; refusals come back as clear errors with the usage exit code', async () => {
    const { id, call } = await parkDelete('c_1012');
    const denied = await cli(BOB_TOKEN, 'approvals', 'deny', id, '--reason', 'no ticket for this');
    expect(denied.stdout).toBe(`${id}: denied; it will not run\n`);
    const back = await call();
    expect(code(back)).toBe('APPROVAL_DENIED');
    const late = await fails(ALICE_TOKEN, 'approvals', 'approve', id, '--reason', 'changed my mind');
    expect(late.code).toBe(2);
    expect(late.stderr).toContain(`${id} is denied`);
    expect(late.stderr).not.toMatch(/\n\s+at /);
    const missing = await fails(ADMIN_TOKEN, 'approvals', 'show', 'apr_nope');
    expect(missing.stderr).toMatch(/No approval request/);
    const wrong = await fails('not-a-token', 'approvals', 'list');
    expect(wrong.stderr).toMatch(/admin token/);
    const status = await fails(ADMIN_TOKEN, 'approvals', 'list', '--status', 'maybe');
    expect(status.code).toBe(2);
  });
});

const PG_URL = process.env.MCP_WARDEN_TEST_PG ?? 'postgres://root@127.0.0.1:5432/test';

describe('audit query --approval --db-env (the PostgreSQL mirror)', () => {
  it('tells one approval story from the database, in order', async () => {
    const instance = `test-approvals-${randomBytes(4).toString('hex')}`;
    const fx = await startShopGateway({
      policy: POLICY.replace(
        'version: 1\n',
        `version: 1\naudit:\n  postgres: env:PG_URL\n  instance: ${instance}\n`,
      ),
      admin: true,
      env: { ALICE_TOKEN, BOB_TOKEN, PG_URL },
    });
    let closed = false;
    try {
      const client = await fx.connect({ name: 'pg-approvals' });
      const call = () => client.callTool({ name: 'deleteCustomer', arguments: { customerId: 'c_1013' } });
      const id = approvalIdOf(textOf(await call()));
      await runCliAsync(
        ['approvals', 'approve', id, '--reason', 'mirrored story'],
        cliEnv({ MCP_WARDEN_ADMIN_TOKEN: ALICE_TOKEN, MCP_WARDEN_ADMIN_URL: fx.gw.adminUrl! }),
      );
      expect(code(await call())).toBe('OK');
      // Closing flushes the mirror.
      await fx.close();
      closed = true;
      const out = await runCliAsync(
        ['audit', 'query', '--approval', id, '--db-env', 'PG_URL', '--format', 'json'],
        cliEnv({ PG_URL }),
      );
      const story = out.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(story.every((r) => r.approval === id && r.instance === instance)).toBe(true);
      expect(story.filter((r) => r.kind === 'approval').map((r) => r.event)).toEqual([
        'requested',
        'approved',
        'executed',
      ]);
      expect(story.some((r) => r.kind === 'call' && r.outcome === 'ok')).toBe(true);
    } finally {
      if (!closed) await fx.close();
      const pool = new pg.Pool({ connectionString: PG_URL });
      await pool.query('DELETE FROM mcp_warden_audit WHERE instance = $1', [instance]);
      await pool.end();
    }
  }, 60_000);
});
