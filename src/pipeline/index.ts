import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { JoiningAuditSink } from '../audit/jsonl.js';
import type { ToolView } from '../control/view.js';
import {
  type ErrorCode,
  settleCallError,
  surfacedCode,
  toWardenError,
  WardenError,
} from '../errors/index.js';
import type { AuditRecord } from '../model/audit.js';
import type { Catalog } from '../model/catalog.js';
import type { Redactor } from '../protect/redactor.js';
import { createMemoryBudgets } from '../state/budgets.js';
import { createMemoryTaint, type TaintStore } from '../state/taint.js';
import type { UpstreamTarget } from '../upstream/base-url.js';
import type { CredentialSet } from '../upstream/credentials.js';
import { createAnswer } from './answer.js';
import { createAudit, createAuditIntent } from './audit.js';
import { createAuthorize } from './authorize.js';
import { type BudgetOptions, createBudget, createSpend } from './budget.js';
import { createBuildRequest } from './build-request.js';
import { type ConfirmOptions, createConfirm } from './confirm.js';
import type { CallContext, CallInput, CallSpan, CallTracer, Stage, ToolResult } from './context.js';
import { createInjectCredential, type InjectOptions } from './inject-credential.js';
import { createLimit, type LimitOptions } from './limit.js';
import { createProtect } from './protect.js';
import { createResolve, notFound } from './resolve.js';
import { createScreen } from './screen.js';
import { createSend, type SendOptions } from './send.js';
import { createTaint, createTaintRecord } from './taint.js';
import { createToggle } from './toggle.js';
import { createValidate } from './validate.js';

export interface PipelineOptions {
  catalog: Catalog;
  targets: ReadonlyMap<Catalog['tools'][number], UpstreamTarget>;
  /** What is served right now, and with which credentials (both change while running). */
  control: { view(): ToolView; credentials(): CredentialSet };
  /** Tokens, elicitation and out-of-band approvals (the origin of each tool comes from `targets`). */
  confirm: Omit<ConfirmOptions, 'redactor' | 'origin'>;
  /** Results, error excerpts, the audit: everything that leaves goes through it. */
  redactor: Redactor;
  audit: JoiningAuditSink;
  logger: Logger;
  send?: SendOptions;
  maxPageSize?: number;
  /** Rate limits: their options, or a limit stage shared with other pipelines (an API set's). */
  limit?: LimitOptions | ReturnType<typeof createLimit>;
  /** When the audit cannot be written: reads fail closed (default) or are answered anyway. */
  failReads?: 'closed' | 'open';
  /** Told of every call once it is audited (metrics, alerts), after its answer is handed back. */
  onCall?: (ctx: CallContext, record: AuditRecord | undefined) => void;
  onAuditFailure?: () => void;
  /** Defaults for what reaches the agent (items per array, bytes); the policy refines them per tool. */
  resultLimits?: { maxItems?: number; maxResultBytes?: number };
  /** Spans per call, stage and upstream try (observe/tracing.ts); absent: tracing is off. */
  tracer?: CallTracer;
  /** Blast-radius budgets (shared by an API set's pipelines, in Redis across instances); default: in memory. */
  budgets?: BudgetOptions;
  /** Per-user OAuth (src/upstream/user-oauth.ts); absent: `userOAuth` credentials are not served. */
  userCredentials?: InjectOptions['userCredentials'];
  /** What callers have read, for the taint guard (shared by an API set's pipelines); default: in memory. */
  taint?: TaintStore;
}

export interface Pipeline {
  /** Runs one `tools/call`. Resolves with the result (errors included) or throws a protocol-level WardenError. */
  call(input: CallInput): Promise<ToolResult>;
  /** The stage names in the order they run, `audit` last (tests pin this order). */
  readonly stages: readonly string[];
  close(): Promise<void>;
}

/**
 * The guard pipeline. The order is the security argument, so it is written here and nowhere else.
 */
export function createPipeline(o: PipelineOptions): Pipeline {
  const send = createSend(o.send);
  const budgets = o.budgets ?? { store: createMemoryBudgets() };
  const taintStore = o.taint ?? createMemoryTaint();
  const stages: ReadonlyArray<readonly [string, Stage]> = [
    // First: a name the API does not have stops here, before any work is done on its arguments.
    ['resolve', createResolve({ view: () => o.control.view() })],
    // Who may call it, before whether it is on: a caller without the scopes learns nothing more.
    ['authorize', createAuthorize()],
    // Read per call, so a toggle or the kill switch applies to the very next call.
    ['toggle', createToggle()],
    // Before any work on the arguments is spent: a caller over its limit costs almost nothing.
    ['limit', typeof o.limit === 'function' ? o.limit : createLimit(o.limit ?? {})],
    // Before anything is derived from the arguments: nothing unchecked reaches the request.
    ['validate', createValidate({ catalog: o.catalog })],
    // Before confirm, on checked arguments (a bulk call's records): a caller over budget is not asked to confirm.
    ['budget', createBudget(budgets)],
    // Before confirm: a tainted outward call is refused, or parked by confirm's operator approval flow.
    ['taint', createTaint({ store: taintStore })],
    // On checked arguments, before the request exists: the user approves exactly what will be sent.
    [
      'confirm',
      createConfirm({
        ...o.confirm,
        redactor: o.redactor,
        origin: (t) => {
          const target = o.targets.get(t);
          return target ? `${target.origin}${target.basePath}` : '';
        },
      }),
    ],
    // From checked arguments only; fixed origin and path template, one encoded segment per placeholder.
    [
      'build',
      createBuildRequest({
        targets: o.targets,
        ...(o.maxPageSize !== undefined ? { maxPageSize: o.maxPageSize } : {}),
      }),
    ],
    // Write-ahead, once the request is known and before anything leaves: no unrecorded write.
    ['intent', createAuditIntent({ sink: o.audit, redactor: o.redactor })],
    // After build: the credential is placed last, so no argument can overwrite or read it.
    [
      'inject',
      createInjectCredential({
        credentials: { forTool: (t) => o.control.credentials().forTool(t) },
        ...(o.userCredentials ? { userCredentials: o.userCredentials } : {}),
      }),
    ],
    // Last before send: only calls that go out are counted, atomically across instances.
    ['spend', createSpend(budgets)],
    // The only stage that talks to the network: timeout, size cap, no redirects.
    ['send', send],
    // Turns the upstream response into a result: schema-checked structure, safe error excerpts.
    ['answer', createAnswer({ catalog: o.catalog, redactor: o.redactor })],
    // On the body as the upstream sent it, before masking breaks its sentences: what protect marks.
    ['screen', createScreen(o.resultLimits ? { defaults: o.resultLimits } : {})],
    // Last before the agent: mask by schema, redact by value, cut to the context limits.
    [
      'protect',
      createProtect({ redactor: o.redactor, ...(o.resultLimits ? { limits: o.resultLimits } : {}) }),
    ],
    // Once the result is final (after protect): only what the caller received in clear taints it.
    ['taint-record', createTaintRecord({ store: taintStore, redactor: o.redactor })],
  ];
  // Last, for every call whatever stopped it: allowed, denied and failed calls are all recorded.
  const audit = createAudit({ sink: o.audit, redactor: o.redactor });

  // The stage functions alone, for the plain loop (no tuple to take apart per stage and call).
  const run: readonly Stage[] = stages.map(([, stage]) => stage);
  // Calls of this pipeline under way. While others are, a call's record is appended together with
  // the records of the calls that end in the same turn of the event loop (one write for all of them,
  // still before any of them is answered); a call on its own writes at once, as before.
  let inflight = 0;
  const joined = typeof o.audit.writeJoined === 'function' ? o.audit.writeJoined.bind(o.audit) : undefined;
  async function call(input: CallInput): Promise<ToolResult> {
    const ctx = newContext(input);
    inflight++;
    try {
      try {
        for (let i = 0; i < run.length; i++) {
          const pending = run[i]!(ctx);
          if (pending) await pending;
        }
      } catch (e) {
        failed(ctx, e);
      }
      if (joined && inflight > 1) await recordJoined(ctx, joined);
      else record(ctx);
    } finally {
      inflight--;
    }
    return settle(ctx);
  }

  // The same loop with a span around each stage. Chosen once, here: with tracing off the plain loop
  // above runs, untouched.
  const tracer = o.tracer;
  async function tracedCall(input: CallInput): Promise<ToolResult> {
    const ctx = newContext(input);
    const span: CallSpan = tracer!.startCall(ctx);
    ctx.trace = span;
    try {
      for (const [name, stage] of stages) {
        span.enterStage(name);
        const pending = stage(ctx);
        if (pending) await pending;
        span.exitStage();
      }
    } catch (e) {
      failed(ctx, e);
      span.exitStage(ctx.error!.code);
    }
    span.enterStage('audit');
    span.exitStage(record(ctx));
    span.end(ctx);
    return settle(ctx);
  }

  function failed(ctx: CallContext, e: unknown): void {
    ctx.error = redactError(toWardenError(e), ctx, o.redactor);
    if (ctx.error.code === 'INTERNAL') logInternal(o.logger, ctx, e);
  }

  /** The audit record, whatever stopped the call, then the observers; the code when it failed. */
  function record(ctx: CallContext): string | undefined {
    let record: AuditRecord | undefined;
    let failure: string | undefined;
    try {
      record = audit(ctx);
    } catch (e) {
      failure = auditFailed(ctx, e);
    }
    recorded(ctx, record);
    return failure;
  }

  /** `record`, with the record appended together with those of the calls ending in the same turn. */
  async function recordJoined(
    ctx: CallContext,
    write: (record: AuditRecord) => Promise<unknown>,
  ): Promise<void> {
    let record: AuditRecord | undefined;
    try {
      const made = audit.build(ctx);
      await write(made);
      record = made;
    } catch (e) {
      auditFailed(ctx, e);
    }
    recorded(ctx, record);
  }

  /** A record that could not be written: logged, reported, and the call failed closed; its code. */
  function auditFailed(ctx: CallContext, e: unknown): string {
    const failure = toWardenError(e).code;
    o.logger.error({ id: ctx.id, code: failure }, 'audit record could not be written');
    o.onAuditFailure?.();
    // A write already went out (its intent record is on disk). A read's data is withheld unless
    // the operator chose availability for reads.
    const kind = ctx.decision?.decision.kind;
    if (!ctx.error && kind === 'read' && o.failReads !== 'open') ctx.error = toWardenError(e);
    return failure;
  }

  function recorded(ctx: CallContext, record: AuditRecord | undefined): void {
    ctx.endedAt = performance.now();
    if (o.onCall) {
      told.push(ctx, record);
      scheduled ??= setImmediate(tell);
    }
  }

  // The observers (metrics, the dashboard's series, alerts) are told once the call is audited, after
  // its answer is handed back: nothing in the answer waits for them, and the calls of one turn of the
  // event loop are told together. Flat pairs (context, record): no array per call.
  let told: Array<CallContext | AuditRecord | undefined> = [];
  let scheduled: NodeJS.Immediate | undefined;
  function tell(): void {
    scheduled = undefined;
    const batch = told;
    told = [];
    for (let i = 0; i < batch.length; i += 2) {
      const ctx = batch[i] as CallContext;
      try {
        o.onCall!(ctx, batch[i + 1] as AuditRecord | undefined);
      } catch (e) {
        // Off the call's path now: an observer that fails is logged, never a crash of the process.
        o.logger.error(
          { id: ctx.id, err: e instanceof Error ? e.message : String(e) },
          'a call observer failed',
        );
      }
    }
  }

  function settle(ctx: CallContext): ToolResult {
    if (!ctx.error) return ctx.result!;
    // Unknown or not for this caller (one answer for both): the closest names it may see are
    // suggested, after the audit recorded the real reason.
    const e = ctx.error;
    if (surfacedCode(e.code) === 'TOOL_NOT_FOUND' && isNotFoundCode(e.code))
      return settleCallError(
        notFound(e.code, ctx.input.name, o.control.view().visibleTo(ctx.input.principal.scopes)),
      );
    // A tool result, or thrown as a protocol error (unknown and hidden tools): decided in errors/.
    return settleCallError(e);
  }

  return {
    call: tracer ? tracedCall : call,
    stages: [...stages.map(([name]) => name), 'audit'],
    close: async () => {
      if (scheduled) {
        clearImmediate(scheduled);
        tell();
      }
      await send.close();
    },
  };
}

/**
 * A call's context with every field it can get declared at once: every call's context has the same
 * shape from the start, and a stage's write fills a slot in place instead of growing the object.
 */
function newContext(input: CallInput): CallContext {
  return {
    id: randomUUID(),
    startedAt: performance.now(),
    input,
    tool: undefined,
    decision: undefined,
    confirmed: undefined,
    args: undefined,
    request: undefined,
    outbound: undefined,
    onBehalfOf: undefined,
    response: undefined,
    answer: undefined,
    untrusted: undefined,
    result: undefined,
    redactions: undefined,
    taintedBy: undefined,
    taints: undefined,
    budget: undefined,
    error: undefined,
    trace: undefined,
    endedAt: undefined,
  };
}

/**
 * Error texts carry upstream excerpts (an error body may hold anything): they are redacted by value
 * like any result, whatever the tool's masking allows, and counted with the call's redactions.
 */
function redactError(e: WardenError, ctx: CallContext, redactor: Redactor): WardenError {
  if (!e.text) return e;
  const counts: Record<string, number> = { ...(ctx.redactions ?? {}) };
  const text = redactor.text(e.text, counts);
  if (text === e.text) return e;
  ctx.redactions = counts;
  return new WardenError(e.code, e.message, {
    details: e.details,
    text,
    ...(e.location ? { location: e.location } : {}),
    ...(e.pending ? { pending: e.pending } : {}),
  });
}

function logInternal(logger: Logger, ctx: CallContext, e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  logger.error(
    { id: ctx.id, tool: ctx.tool?.name, err: { type: err.name, message: err.message, stack: err.stack } },
    'internal error in a tool call',
  );
}

const NOT_FOUND_CODES: ReadonlySet<ErrorCode> = new Set(['TOOL_NOT_FOUND', 'DENIED_SCOPE', 'DENIED_HIDDEN']);
function isNotFoundCode(code: ErrorCode): code is 'TOOL_NOT_FOUND' | 'DENIED_SCOPE' | 'DENIED_HIDDEN' {
  return NOT_FOUND_CODES.has(code);
}
