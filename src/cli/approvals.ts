import { type Command, Option } from 'commander';
import type { ApprovalRequest } from '../model/approval.js';
import { adminCall, type Io } from './policy.js';
import { admin } from './runtime.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'executed', 'all'] as const;

/**
 * `approvals list|show|approve|deny`: the operator's side of out-of-band approvals, through the admin
 * API of a running gateway. Who decides is the token in MCP_WARDEN_ADMIN_TOKEN (an operator's own
 * token names them); nothing typed on the command line can stand in for it.
 */
export function addApprovals(program: Command, io: Io): void {
  const approvals = program
    .command('approvals')
    .description('Calls waiting for a human: list them, approve or deny them (admin API).');

  admin(
    approvals
      .command('list')
      .description('Approval requests, newest first (default: the pending ones).')
      .addOption(new Option('--status <status>', 'which ones').choices(STATUSES).default('pending'))
      .addOption(new Option('--format <f>', 'output').choices(['table', 'json']).default('table')),
  ).action(async (opts) => {
    const q = opts.status === 'all' ? '' : `?status=${opts.status}`;
    const r = (await adminCall('GET', `/approvals${q}`, undefined, opts)) as { approvals: ApprovalRequest[] };
    if (opts.format === 'json') return io.stdout(`${JSON.stringify(r.approvals, null, 2)}\n`);
    if (!r.approvals.length)
      return io.stdout(`no ${opts.status === 'all' ? '' : `${opts.status} `}approvals\n`);
    for (const a of r.approvals) io.stdout(`${row(a)}\n`);
  });

  admin(
    approvals
      .command('show')
      .description('One request: the call, who asked, its arguments (masked as audited), decisions.')
      .argument('<id>', 'approval id (apr_…)')
      .addOption(new Option('--format <f>', 'output').choices(['text', 'json']).default('text')),
  ).action(async (id: string, opts) => {
    const a = (await adminCall(
      'GET',
      `/approvals/${encodeURIComponent(id)}`,
      undefined,
      opts,
    )) as ApprovalRequest;
    io.stdout(opts.format === 'json' ? `${JSON.stringify(a, null, 2)}\n` : detail(a));
  });

  for (const verdict of ['approve', 'deny'] as const)
    admin(
      approvals
        .command(verdict)
        .description(
          verdict === 'approve'
            ? "Approve a waiting call: the agent's next identical call runs it, once."
            : 'Deny a waiting call: it never runs; the agent is told your reason.',
        )
        .argument('<id>', 'approval id (apr_…)')
        .requiredOption('--reason <text>', 'why (3 to 500 characters; audited, shown to other operators)'),
    ).action(async (id: string, opts) => {
      const a = (await adminCall(
        'POST',
        `/approvals/${encodeURIComponent(id)}/${verdict}`,
        { reason: opts.reason },
        opts,
      )) as ApprovalRequest;
      io.stdout(`${a.id}: ${outcome(a)}\n`);
    });
}

function row(a: ApprovalRequest): string {
  return [
    a.id.padEnd(28),
    a.status.padEnd(9),
    a.binding.tool.padEnd(24),
    `${a.method} ${a.path}`.padEnd(32),
    a.binding.principal.padEnd(20),
    `${approvals(a)}/${a.approversNeeded}`.padEnd(4),
    a.status === 'pending' || a.status === 'approved' ? `expires ${a.expiresAt}` : '',
  ]
    .join(' ')
    .trimEnd();
}

function detail(a: ApprovalRequest): string {
  const lines = [
    `${a.id}  ${a.status}`,
    `tool:       ${a.binding.tool} (${a.method} ${a.path})`,
    `asked by:   ${a.binding.principal} at ${a.requestedAt}`,
    `expires:    ${a.expiresAt}`,
    `risk:       ${a.risk.join(', ') || '-'}; data: ${a.dataClasses.join(', ') || '-'}`,
    `approvers:  ${approvals(a)} of ${a.approversNeeded}`,
    ...(a.why ? [`why:        ${a.why}`] : []),
    'arguments (as audited):',
    ...JSON.stringify(a.preview ?? null, null, 2)
      .split('\n')
      .map((l) => `  ${l}`),
    ...a.decisions.map(
      (d) => `${d.verdict === 'approve' ? 'approved' : 'denied'} by ${d.operator} at ${d.at}: ${d.reason}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

const approvals = (a: ApprovalRequest) => a.decisions.filter((d) => d.verdict === 'approve').length;

function outcome(a: ApprovalRequest): string {
  if (a.status === 'approved')
    return `approved; the agent's next identical call runs it (until ${a.expiresAt})`;
  if (a.status === 'denied') return 'denied; it will not run';
  if (a.status === 'pending')
    return `approval recorded (${approvals(a)} of ${a.approversNeeded}); another operator must approve too`;
  return a.status;
}
