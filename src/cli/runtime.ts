import type { Command } from 'commander';
import { WardenError } from '../errors/index.js';
import { didYouMean } from '../policy/check.js';
import { adminCall, type Io, printTools } from './policy.js';

/** Commands that talk to a running gateway's admin API. */
export function admin(cmd: Command): Command {
  return cmd.option(
    '--admin-url <url>',
    'admin API (default $MCP_WARDEN_ADMIN_URL or http://127.0.0.1:9090)',
  );
}

/**
 * The rows of one API. A name the gateway serves no tool of is a usage error naming those it does
 * (an empty list would read as "that API has no tools").
 */
function ofApi(rows: Array<Record<string, unknown>>, api: string): Array<Record<string, unknown>> {
  const apis = [...new Set(rows.map((r) => r.api).filter((a): a is string => typeof a === 'string'))].sort();
  if (!apis.includes(api))
    throw new WardenError(
      'USAGE',
      apis.length
        ? `no tools of an API named "${api}"${didYouMean(api, apis)}; the gateway serves: ${apis.join(', ')}`
        : `--api "${api}": the gateway serves a single spec, not an API set`,
    );
  return rows.filter((r) => r.api === api);
}

/** `tools …`, `reload-spec`, `mode`: runtime control of a running gateway. */
export function addRuntime(program: Command, io: Io): void {
  const tools = program
    .command('tools')
    .description('See and switch tools on a running gateway (admin API).');
  admin(tools.command('list').description('Every tool: on/off, kind, toggle, scopes or why hidden.'))
    .option('--api <name>', 'only the tools of this API (of an API set)')
    .action(async (opts) => {
      const r = (await adminCall('GET', '/tools', undefined, opts)) as {
        tools: Array<Record<string, unknown>>;
      };
      printTools(opts.api === undefined ? r.tools : ofApi(r.tools, opts.api), io);
    });
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
  )
    .option('--api <name>', 'in an API set: reload only this API (default: each of them)')
    .action(async (opts) => {
      const r = (await adminCall(
        'POST',
        '/spec/reload',
        opts.api !== undefined ? { api: opts.api } : undefined,
        opts,
      )) as {
        tools: number;
        pending: string[];
        apis?: Record<string, { tools: number } | { error: string }>;
      };
      for (const [name, a] of Object.entries(r.apis ?? {}))
        io.stdout(`${name}: ${'error' in a ? `not reloaded: ${a.error}` : `${a.tools} tools`}\n`);
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
