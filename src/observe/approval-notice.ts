import type { ApprovalRequest } from '../model/approval.js';

/**
 * The dashboard page of one approval request: `<base>/ui/#/approvals/<id>`. The link only shows the
 * page; the page asks for a login, and only a logged-in operator's decision counts.
 */
export function approvalLink(base: string, id: string): string {
  return `${base.replace(/\/+$/, '')}/ui/#/approvals/${encodeURIComponent(id)}`;
}

/**
 * A webhook notice that a call waits for an operator: what, who asked, until when, and where to
 * decide. Like alerts it never carries the arguments (the dashboard shows them, masked, after login).
 */
export function approvalNotice(
  r: ApprovalRequest,
  link: string | undefined,
): { generic: object; slackText: string } {
  const what = `${r.binding.tool} (${r.method} ${r.path})`;
  const two = r.approversNeeded > 1 ? ` It needs ${r.approversNeeded} different operators.` : '';
  const message = `${r.binding.principal} asks to run ${what}; an operator must approve or deny it before ${r.expiresAt}.${two}`;
  const where = link
    ? `<${slack(link)}|Open approval ${slack(r.id)}>`
    : `\`mcp-warden approvals approve ${slack(r.id)} --reason …\``;
  return {
    generic: {
      source: 'mcp-warden',
      event: 'approval.requested',
      message,
      approval: {
        id: r.id,
        tool: r.binding.tool,
        method: r.method,
        path: r.path,
        requester: r.binding.principal,
        requestedAt: r.requestedAt,
        expiresAt: r.expiresAt,
        approversNeeded: r.approversNeeded,
        risk: r.risk,
        dataClasses: r.dataClasses,
      },
      ...(link ? { link } : {}),
    },
    slackText: `:raised_hand: mcp-warden approval needed: ${slack(message)} ${where}`,
  };
}

/** Slack's three control characters, escaped as its message format asks. */
function slack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
