import type { Command } from 'commander';
import { WardenError } from '../errors/index.js';
import { adminCall, type Io, printTools } from './policy.js';

/** Commands that talk to a running gateway's admin API. */
export function admin(cmd: Command): Command {
  return cmd.option(
    '--admin-url <url>',
    'admin API (default $MCP_WARDEN_ADMIN_URL or http://127.0.0.1:9090)',
  );
}

/** `tools …`, `reload-spec`, `mode`: runtime control of a running gateway. */
export function addRuntime(program: Command, io: Io): void {
  const tools = program
    .command('tools')
    .description('See and switch tools on a running gateway (admin API).');
  admin(tools.command('list').description('Every tool: on/off, kind, toggle, scopes or why hidden.')).action(
    async (opts) => {
      const r = (await adminCall('GET', '/tools', undefined, opts)) as {
        tools: Array<Record<string, unknown>>;
      };
      printTools(r.tools, io);
    },
  );
  for (const action of ['enable', 'disable', 'reset'] as const)
    admin(
      tools
        .command(action)
        .description(
          action === 'reset'
            ? 'Drop the runtime toggle: the policy decides again.'
            : `${action === 'enable' ? 'Enable' : 'Disable'} a tool now, without a redeploy (audited).`,
        ),
    )
      .argument('<tool>', 'tool name')
      .action(async (tool: string, opts) => {
        const r = (await adminCall(
          'POST',
          `/tools/${encodeURIComponent(tool)}/${action}`,
          undefined,
          opts,
        )) as Record<string, unknown>;
        printTools([r], io);
      });

  admin(
    tools
      .command('approve')
      .description('Approve the current definition of a new or changed tool (after a spec reload).')
      .argument('[tool]', 'tool name')
      .option('--all', 'approve every tool waiting for approval'),
  ).action(async (tool: string | undefined, opts) => {
    if (!tool && !opts.all) throw new WardenError('USAGE', 'name a tool, or pass --all');
    const r = (await adminCall(
      'POST',
      `/tools/${opts.all ? '*' : encodeURIComponent(tool!)}/approve`,
      undefined,
      opts,
    )) as {
      approved: string[];
      pending: string[];
    };
    io.stdout(
      `approved: ${r.approved.join(', ') || '(none)'}\nstill pending: ${r.pending.join(', ') || '(none)'}\n`,
    );
  });

  admin(
    program
      .command('reload-spec')
      .description('Reload the spec on a running gateway (new or changed tools wait for approval).'),
  ).action(async (opts) => {
    const r = (await adminCall('POST', '/spec/reload', undefined, opts)) as {
      tools: number;
      pending: string[];
    };
    io.stdout(`${r.tools} tools; waiting for approval: ${r.pending.join(', ') || '(none)'}\n`);
  });

  admin(
    program
      .command('mode')
      .description(
        'Kill switch: read-only (writes off), off (all tools off), read-write (back to the policy).',
      )
      .argument('<mode>', 'read-write | read-only | off'),
  ).action(async (mode: string, opts) => {
    const r = (await adminCall('POST', '/mode', { mode }, opts)) as { mode: string };
    io.stdout(`mode: ${r.mode}\n`);
  });
}
