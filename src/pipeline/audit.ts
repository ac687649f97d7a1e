import { createHash } from 'node:crypto';
import { CONFIRM_ARG } from '../control/view.js';
import { auditDecision } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import type { AuditRecord, AuditSink } from '../model/audit.js';
import type { RedactionCounts, Redactor } from '../protect/redactor.js';
import type { CallContext } from './context.js';

export interface AuditOptions {
  sink: AuditSink;
  redactor: Redactor;
}

/**
 * Writes the call's audit record (it changes no context field). Runs for every call, whatever stage
 * stopped it. Only the agent-derived request is recorded, never the credentialed one.
 */
export function createAudit(options: AuditOptions) {
  const { sink, redactor } = options;

  return function audit(ctx: CallContext): AuditRecord {
    const err = ctx.error;
    const counts: RedactionCounts = { ...(ctx.redactions ?? {}) };
    const req = ctx.request;
    const res = ctx.response;
    const record: AuditRecord = {
      kind: 'call',
      time: new Date(performance.timeOrigin + ctx.startedAt).toISOString(),
      id: ctx.id,
      // Redacted whole, then cut (as every excerpt): a secret the cut runs through is not half-kept.
      tool: ctx.tool?.name ?? redactor.excerpt(String(ctx.input.name), 200),
      // From the catalogue, never from the caller: an unknown name has no API.
      ...(ctx.tool?.api !== undefined ? { api: ctx.tool.api } : {}),
      decision: err ? auditDecision(err.code) : 'allowed',
      outcome: err ? 'error' : 'ok',
      ...(err ? { code: err.code } : {}),
      principal: ctx.input.principal.id,
      auth: ctx.input.principal.via,
      ...(ctx.input.client !== undefined ? { client: redactor.excerpt(String(ctx.input.client), 200) } : {}),
      ...detail(ctx, redactor, counts),
      ...(req
        ? {
            upstream: {
              method: req.method,
              // Path arguments are agent data like any other: redacted by value too.
              path: redactor.text(req.path, counts),
              ...(res ? { status: res.status, ms: round(res.ms), bytes: res.body.length } : {}),
            },
          }
        : {}),
      ms: round(performance.now() - ctx.startedAt),
      ...(ctx.decision ? { policyVersion: ctx.decision.policyVersion } : {}),
      ...(ctx.confirmed?.via ? { confirmed: ctx.confirmed.via } : {}),
      ...(ctx.confirmed?.approval ? { approval: ctx.confirmed.approval } : {}),
      ...(ctx.onBehalfOf ? { onBehalfOf: ctx.onBehalfOf } : {}),
      ...(Object.keys(counts).length ? { redactions: counts } : {}),
      ...(req?.notes ? { notes: req.notes } : {}),
    };
    sink.write(record);
    return record;
  };
}

const RESPONSE_CHARS = 4096;

/**
 * The arguments and the response at the tool's audit detail: `full` (redacted in every class,
 * whatever the tool's masking allows; the response cut to 4 KiB), `digest` (SHA-256 and size only)
 * or `none`.
 */
function detail(ctx: CallContext, redactor: Redactor, counts: RedactionCounts): Partial<AuditRecord> {
  const level = ctx.decision?.decision.audit ?? 'full';
  if (level === 'none') return {};
  const rawArgs = ctx.args ?? withoutToken(ctx.input.arguments);
  const body = ctx.result?.content[0]?.text;
  if (level === 'digest') {
    const a = canonicalJson(rawArgs);
    return {
      argsDigest: sha256(a),
      argsBytes: Buffer.byteLength(a),
      ...(body !== undefined ? { responseDigest: sha256(body), responseBytes: Buffer.byteLength(body) } : {}),
    };
  }
  const out: Partial<AuditRecord> = { args: redactor.args(rawArgs, counts) };
  if (body !== undefined) {
    // Redacted whole, then cut: a secret the cut runs through must not survive as a prefix.
    const red = redactor.text(body);
    out.response =
      body.length > RESPONSE_CHARS ? `${red.slice(0, RESPONSE_CHARS)}…[${body.length} chars]` : red;
  }
  return out;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** A confirmation token is a capability: the audit says one was sent, never what it was. */
function withoutToken(args: unknown): unknown {
  if (args === null || typeof args !== 'object' || !(CONFIRM_ARG in args)) return args;
  return { ...(args as Record<string, unknown>), [CONFIRM_ARG]: '[REDACTED:confirmation]' };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Writes the write-ahead record (it changes no context field): before a non-read call leaves the
 * gateway, the audit holds what is about to be sent. If it cannot be written the call is refused:
 * a write the audit cannot record does not happen.
 */
export function createAuditIntent(options: AuditOptions) {
  const { sink, redactor } = options;
  return function auditIntent(ctx: CallContext): void {
    if (ctx.decision?.decision.kind === 'read') return;
    const req = ctx.request!;
    const level = ctx.decision?.decision.audit ?? 'full';
    sink.write({
      kind: 'intent',
      time: new Date().toISOString(),
      id: ctx.id,
      tool: ctx.tool!.name,
      ...(ctx.tool!.api !== undefined ? { api: ctx.tool!.api } : {}),
      principal: ctx.input.principal.id,
      ...(level === 'full' ? { args: redactor.args(ctx.args) } : {}),
      upstream: {
        method: req.method,
        path: redactor.text(req.path),
      },
      ...(ctx.decision ? { policyVersion: ctx.decision.policyVersion } : {}),
    });
  };
}
