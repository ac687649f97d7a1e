import type { AuditRecord, AuditSink } from '../audit/jsonl.js';
import { redactArgs } from '../audit/redact.js';
import { CONFIRM_ARG } from '../control/view.js';
import { ERROR_CODES } from '../errors.js';
import type { Scrubber } from '../observe/scrub.js';
import type { CallContext } from './context.js';

export interface AuditOptions {
  sink: AuditSink;
  scrubber: Scrubber;
}

/**
 * Writes the call's audit record (it changes no context field). Runs for every call, whatever stage
 * stopped it. Only the agent-derived request is recorded, never the credentialed one.
 */
export function createAudit(options: AuditOptions) {
  const { sink, scrubber } = options;

  return function audit(ctx: CallContext): AuditRecord {
    const err = ctx.error;
    const mapping = err ? ERROR_CODES[err.code] : undefined;
    const req = ctx.request;
    const res = ctx.response;
    const record: AuditRecord = {
      kind: 'call',
      time: new Date(performance.timeOrigin + ctx.startedAt).toISOString(),
      id: ctx.id,
      tool: ctx.tool?.name ?? clip(ctx.input.name),
      decision: mapping?.audit === 'denied' ? 'denied' : 'allowed',
      outcome: err ? 'error' : 'ok',
      ...(err ? { code: err.code } : {}),
      principal: ctx.input.principal,
      ...(ctx.input.client !== undefined ? { client: clip(ctx.input.client) } : {}),
      args: redactArgs(ctx.args ?? withoutToken(ctx.input.arguments), scrubber),
      ...(req
        ? {
            upstream: {
              method: req.method,
              path: scrubber.empty ? req.path : scrubber.scrub(req.path),
              ...(res ? { status: res.status, ms: round(res.ms), bytes: res.body.length } : {}),
            },
          }
        : {}),
      ms: round(performance.now() - ctx.startedAt),
      ...(ctx.decision ? { policyVersion: ctx.decision.policyVersion } : {}),
      ...(ctx.confirmed ? { confirmed: ctx.confirmed.via } : {}),
      ...(req?.notes ? { notes: req.notes } : {}),
    };
    sink.write(record);
    return record;
  };
}

/** A confirmation token is a capability: the audit says one was sent, never what it was. */
function withoutToken(args: unknown): unknown {
  if (args === null || typeof args !== 'object' || !(CONFIRM_ARG in args)) return args;
  return { ...(args as Record<string, unknown>), [CONFIRM_ARG]: '[REDACTED:confirmation]' };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function clip(s: unknown): string {
  const t = typeof s === 'string' ? s : String(s);
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
