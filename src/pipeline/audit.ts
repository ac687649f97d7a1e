import { createHash } from 'node:crypto';
import { redactArgs } from '../audit/redact.js';
import { CONFIRM_ARG } from '../control/view.js';
import { ERROR_CODES } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import type { AuditRecord, AuditSink } from '../model/audit.js';
import type { Scrubber } from '../observe/scrub.js';
import { detectorFor, type RedactionCounts } from '../protect/detect.js';
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
    const counts: RedactionCounts = { ...(ctx.redactions ?? {}) };
    const mapping = err ? ERROR_CODES[err.code] : undefined;
    const req = ctx.request;
    const res = ctx.response;
    const record: AuditRecord = {
      kind: 'call',
      time: new Date(performance.timeOrigin + ctx.startedAt).toISOString(),
      id: ctx.id,
      tool: ctx.tool?.name ?? AUDIT_DETECTOR.redact(clip(ctx.input.name)),
      decision: mapping?.audit === 'denied' ? 'denied' : 'allowed',
      outcome: err ? 'error' : 'ok',
      ...(err ? { code: err.code } : {}),
      principal: ctx.input.principal,
      ...(ctx.input.client !== undefined ? { client: AUDIT_DETECTOR.redact(clip(ctx.input.client)) } : {}),
      ...detail(ctx, scrubber, counts),
      ...(req
        ? {
            upstream: {
              method: req.method,
              // Path arguments are agent data like any other: redacted by value too.
              path: AUDIT_DETECTOR.redact(scrubber.empty ? req.path : scrubber.scrub(req.path), counts),
              ...(res ? { status: res.status, ms: round(res.ms), bytes: res.body.length } : {}),
            },
          }
        : {}),
      ms: round(performance.now() - ctx.startedAt),
      ...(ctx.decision ? { policyVersion: ctx.decision.policyVersion } : {}),
      ...(ctx.confirmed ? { confirmed: ctx.confirmed.via } : {}),
      ...(Object.keys(counts).length ? { redactions: counts } : {}),
      ...(req?.notes ? { notes: req.notes } : {}),
    };
    sink.write(record);
    return record;
  };
}

const RESPONSE_CHARS = 4096;

/**
 * The arguments and the response at the tool's audit detail: `full` (redacted by the audit's own,
 * all-class detector, the response cut to 4 KiB), `digest` (SHA-256 and size only) or `none`.
 */
function detail(ctx: CallContext, scrubber: Scrubber, counts: RedactionCounts): Partial<AuditRecord> {
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
  const out: Partial<AuditRecord> = { args: redactArgs(rawArgs, scrubber, counts) };
  if (body !== undefined) {
    const clipped = body.length > RESPONSE_CHARS ? body.slice(0, RESPONSE_CHARS) : body;
    const red = AUDIT_DETECTOR.redact(scrubber.empty ? clipped : scrubber.scrub(clipped));
    out.response = body.length > RESPONSE_CHARS ? `${red}…[${body.length} chars]` : red;
  }
  return out;
}

const AUDIT_DETECTOR = detectorFor([]);

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

function clip(s: unknown): string {
  const t = typeof s === 'string' ? s : String(s);
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

/**
 * Writes the write-ahead record (it changes no context field): before a non-read call leaves the
 * gateway, the audit holds what is about to be sent. If it cannot be written the call is refused:
 * a write the audit cannot record does not happen.
 */
export function createAuditIntent(options: AuditOptions) {
  const { sink, scrubber } = options;
  return function auditIntent(ctx: CallContext): void {
    if (ctx.decision?.decision.kind === 'read') return;
    const req = ctx.request!;
    const level = ctx.decision?.decision.audit ?? 'full';
    sink.write({
      kind: 'intent',
      time: new Date().toISOString(),
      id: ctx.id,
      tool: ctx.tool!.name,
      principal: ctx.input.principal,
      ...(level === 'full' ? { args: redactArgs(ctx.args, scrubber) } : {}),
      upstream: {
        method: req.method,
        path: AUDIT_DETECTOR.redact(scrubber.empty ? req.path : scrubber.scrub(req.path)),
      },
      ...(ctx.decision ? { policyVersion: ctx.decision.policyVersion } : {}),
    });
  };
}
