import { hash } from 'node:crypto';
import { CONFIRM_ARG } from '../control/view.js';
import { auditDecision } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import type { AuditRecord, AuditSink } from '../model/audit.js';
import { shownPaths } from '../protect/injection.js';
import type { RedactionCounts, Redactor } from '../protect/redactor.js';
import type { CallContext } from './context.js';

/** The process's time origin never changes: read once (the getter calls into node per read). */
const TIME_ORIGIN = performance.timeOrigin;

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

  /** The call's record, not yet written (the pipeline may append it with others: `writeJoined`). */
  function build(ctx: CallContext): AuditRecord {
    const err = ctx.error;
    const counts: RedactionCounts = ctx.redactions ? { ...ctx.redactions } : {};
    const req = ctx.request;
    const res = ctx.response;
    // Built field by field (no spreads of throw-away objects: this runs for every call), in the
    // order the record has always had.
    const record = {
      kind: 'call',
      time: new Date(TIME_ORIGIN + ctx.startedAt).toISOString(),
      id: ctx.id,
      // Redacted whole, then cut (as every excerpt): a secret the cut runs through is not half-kept.
      tool: ctx.tool?.name ?? redactor.excerpt(String(ctx.input.name), 200),
    } as AuditRecord;
    // From the catalogue, never from the caller: an unknown name has no API.
    if (ctx.tool?.api !== undefined) record.api = ctx.tool.api;
    record.decision = err ? auditDecision(err.code) : 'allowed';
    record.outcome = err ? 'error' : 'ok';
    if (err) record.code = err.code;
    record.principal = ctx.input.principal.id;
    record.auth = ctx.input.principal.via;
    if (ctx.input.client !== undefined) record.client = redactor.excerpt(String(ctx.input.client), 200);
    detail(record, ctx, redactor, counts);
    if (req) {
      record.upstream = {
        method: req.method,
        // Path arguments are agent data like any other: redacted by value too.
        path: redactor.text(req.path, counts),
      };
      if (res) {
        record.upstream.status = res.status;
        record.upstream.ms = round(res.ms);
        record.upstream.bytes = res.body.length;
      }
    }
    record.ms = round(performance.now() - ctx.startedAt);
    if (ctx.decision) record.policyVersion = ctx.decision.policyVersion;
    if (ctx.confirmed?.via) record.confirmed = ctx.confirmed.via;
    if (ctx.confirmed?.approval) record.approval = ctx.confirmed.approval;
    if (ctx.onBehalfOf) record.onBehalfOf = ctx.onBehalfOf;
    if (ctx.taintedBy)
      record.taintedBy = {
        callId: ctx.taintedBy.callId,
        tool: ctx.taintedBy.tool,
        reason: redactor.text(ctx.taintedBy.reason),
      };
    if (ctx.taints) record.taints = ctx.taints;
    if (ctx.budget) record.budget = ctx.budget;
    if (Object.keys(counts).length) record.redactions = counts;
    if (req?.notes) record.notes = req.notes;
    // Paths, never the text: pointer segments are upstream keys, so only plain names and indexes
    // show (else `*`), at most 10, and what is left goes through the redactor anyway.
    if (ctx.untrusted?.flagged.length)
      record.injectionSuspected = shownPaths(ctx.untrusted.flagged).map((p) => redactor.text(p));
    return record;
  }

  return Object.assign(
    function audit(ctx: CallContext): AuditRecord {
      const record = build(ctx);
      sink.write(record);
      return record;
    },
    { build },
  );
}

const RESPONSE_CHARS = 4096;

/**
 * The arguments and the response at the tool's audit detail: `full` (redacted in every class,
 * whatever the tool's masking allows; the response cut to 4 KiB), `digest` (SHA-256 and size only)
 * or `none`.
 */
function detail(out: AuditRecord, ctx: CallContext, redactor: Redactor, counts: RedactionCounts): void {
  const level = ctx.decision?.decision.audit ?? 'full';
  if (level === 'none') return;
  const rawArgs = ctx.args ?? withoutToken(ctx.input.arguments);
  const body = ctx.result?.content[0]?.text;
  if (level === 'digest') {
    const a = canonicalJson(rawArgs);
    out.argsDigest = sha256(a);
    out.argsBytes = Buffer.byteLength(a);
    if (body !== undefined) {
      out.responseDigest = sha256(body);
      out.responseBytes = Buffer.byteLength(body);
    }
    return;
  }
  out.args = redactor.args(rawArgs, counts);
  if (body !== undefined) {
    // Redacted, then cut: a secret the cut runs through must not survive as a prefix. Only the
    // window the cut needs is redacted (`head`): the whole result (up to the result limit, 128 KiB
    // by default) was scanned a second time for the 4 KiB kept.
    const red = redactor.head(body, RESPONSE_CHARS);
    out.response =
      body.length > RESPONSE_CHARS ? `${red.slice(0, RESPONSE_CHARS)}…[${body.length} chars]` : red;
  }
}

function sha256(s: string): string {
  return hash('sha256', s, 'hex');
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
const SAFE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createAuditIntent(options: AuditOptions) {
  const { sink, redactor } = options;
  return function auditIntent(ctx: CallContext): void {
    const req = ctx.request!;
    // Skipped only for safe methods: a POST the policy treats as a read still gets its record.
    if (ctx.decision?.decision.kind === 'read' && SAFE.has(req.method.toUpperCase())) return;
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
