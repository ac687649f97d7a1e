import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Approvals } from '../control/approvals.js';
import { CONFIRM_ARG } from '../control/view.js';
import { isWardenError, WardenError } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
import type { Admission, ApprovalMode, ApprovalRequest } from '../model/approval.js';
import type { Tool } from '../model/catalog.js';
import type { ReplayGuard } from '../model/state.js';
import type { Redactor } from '../protect/redactor.js';
import type { CallContext } from './context.js';

export interface ConfirmOptions {
  /** HMAC key; shared by instances that must accept each other's tokens. */
  secret: Buffer;
  ttlSeconds: number;
  replay: ReplayGuard;
  /** For the preview: the user sees the arguments as the audit records them. */
  redactor: Redactor;
  now?: () => number;
  /** Out-of-band approvals (`approval: operator`, and `auto` for clients that cannot elicit). */
  approvals: Pick<Approvals, 'admit'>;
  /** The upstream origin and base path of a tool (part of what an approval is bound to). */
  origin: (tool: Tool) => string;
  /**
   * sha256 of the policy being served (part of what an approval is bound to). A digest, not the
   * version number: instances sharing Redis count their reloads separately, but serve the same text.
   */
  policyDigest?: () => string;
}

interface Sealed {
  v: 1;
  /** Random id, consumed on use: a token works once. */
  n: string;
  p: string;
  t: string;
  /** sha256 of the canonical arguments: other arguments, other token. */
  d: string;
  e: number;
}

/**
 * Writes `ctx.confirmed`. A tool the policy marks `confirm` runs only once approved, the way its rule's
 * `approval` says:
 * - `elicit`: the user, through the client: `input_required` (2026-07-28 clients that declared
 *   elicitation) or in-band elicitation (2025-11-25 over stdio). A client that cannot be asked is
 *   refused (CONFIRMATION_UNSUPPORTED), never silently given a weaker mode.
 * - `operator`: a human, out of band. The call is parked (APPROVAL_PENDING) until an operator decides;
 *   the agent's identical call then runs it, once. Tokens and elicitation answers count for nothing.
 * - `auto` (the default): `elicit` where the client can, otherwise `operator`.
 * - `agent`: as before approvals existed: the client is asked where it can be, otherwise the two-step
 *   token in the tool result, which the agent repeats on purpose (no human need be involved).
 * Elicitation and tokens end in the same sealed token — HMAC over principal, tool, argument digest and
 * expiry, single use — so a confirmation cannot be forged, replayed, reused for other arguments or
 * carried to another caller.
 */
export function createConfirm(options: ConfirmOptions) {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlSeconds * 1000;

  const mac = (payload: string) => createHmac('sha256', options.secret).update(payload).digest();
  const mint = (bind: Omit<Sealed, 'v' | 'n' | 'e'>): string => {
    const sealed: Sealed = { v: 1, n: randomBytes(16).toString('base64url'), ...bind, e: now() + ttlMs };
    const payload = Buffer.from(JSON.stringify(sealed)).toString('base64url');
    return `${payload}.${mac(payload).toString('base64url')}`;
  };
  const verify = async (token: string, bind: Omit<Sealed, 'v' | 'n' | 'e'>): Promise<void> => {
    const invalid = (why: string) =>
      new WardenError(
        'CONFIRMATION_INVALID',
        `The confirmation was refused: ${why}. Call again without it to get a new one.`,
      );
    if (token.length > 2048) throw invalid('it is not a token the gateway issued');
    const [payload, sig, extra] = token.split('.');
    if (!payload || !sig || extra !== undefined) throw invalid('it is not a token the gateway issued');
    const given = Buffer.from(sig, 'base64url');
    const expected = mac(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw invalid('it is not a token the gateway issued');
    let sealed: Sealed;
    try {
      sealed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Sealed;
    } catch {
      throw invalid('it is not a token the gateway issued');
    }
    if (sealed.v !== 1 || sealed.p !== bind.p || sealed.t !== bind.t)
      throw invalid('it was issued for another caller or tool');
    if (sealed.d !== bind.d) throw invalid('the arguments differ from those that were confirmed');
    if (!(sealed.e > now())) throw invalid('it has expired');
    if (!(await options.replay.consume(sealed.n, sealed.e))) throw invalid('it has already been used');
  };

  const declined = (tool: string) =>
    new WardenError('CONFIRMATION_DECLINED', `The user did not approve the call to ${tool}.`);

  /**
   * `agent` (the flow before out-of-band approvals, unchanged): a token in the arguments; else the
   * client is asked where it can be; else a preview and a new token in the result, which the agent
   * repeats on purpose.
   */
  async function byToken(ctx: CallContext, bind: Omit<Sealed, 'v' | 'n' | 'e'>): Promise<void> {
    const tool = ctx.tool!;
    const raw = (ctx.input.arguments as Record<string, unknown>)[CONFIRM_ARG];
    if (raw !== undefined) {
      if (typeof raw !== 'string')
        throw new WardenError(
          'CONFIRMATION_INVALID',
          `The confirmation was refused: ${CONFIRM_ARG} must be a string.`,
        );
      await verify(raw, bind);
      ctx.confirmed = { via: 'token' };
      return;
    }
    const channel = ctx.input.confirmation;
    if (channel) return byElicitation(ctx, bind, channel);
    const message = preview(ctx, options.redactor);
    const token = mint(bind);
    throw new WardenError(
      'CONFIRMATION_REQUIRED',
      `${tool.name} needs the user's confirmation before it runs.`,
      {
        details: [
          'Show the user the preview below and ask whether to go ahead.',
          `Only if they agree, call ${tool.name} again with the same arguments plus "${CONFIRM_ARG}": "<the token below>".`,
          `The token works once, for these arguments only, and expires in ${options.ttlSeconds} s.`,
        ],
        text: `${message}\n\n${CONFIRM_ARG}: ${token}`,
        pending: { message, token },
      },
    );
  }

  /** `elicit`: the client asks the user (a token in the arguments is not the user's answer). */
  async function byElicitation(
    ctx: CallContext,
    bind: Omit<Sealed, 'v' | 'n' | 'e'>,
    channel: NonNullable<CallContext['input']['confirmation']>,
  ): Promise<void> {
    const tool = ctx.tool!;
    const message = preview(ctx, options.redactor);
    if (channel.kind === 'elicit') {
      if (!readAnswer(await ask(channel.ask, message, ctx.input.signal)).approved) throw declined(tool.name);
      ctx.confirmed = { via: 'elicitation' };
      return;
    }
    if (channel.state !== undefined) {
      await verify(channel.state, bind);
      // No answer at all: the user was asked and nothing came back with the retry, which is not a yes.
      if (channel.answer === undefined || !readAnswer(channel.answer).approved) throw declined(tool.name);
      ctx.confirmed = { via: 'input_required' };
      return;
    }
    const token = mint(bind);
    // The MCP layer turns this into `input_required`; the state it carries is the sealed token.
    throw new WardenError(
      'CONFIRMATION_REQUIRED',
      `${tool.name} needs the user's confirmation before it runs.`,
      { text: message, pending: { message, token } },
    );
  }

  /** `operator`: parked until a human decides; nothing the client or the agent sends counts. */
  async function byOperator(ctx: CallContext): Promise<void> {
    const tool = ctx.tool!;
    const d = ctx.decision!;
    const method = tool.source.method.toUpperCase();
    const a = await options.approvals.admit({
      callId: ctx.id,
      binding: {
        tool: tool.name,
        argsDigest: digest(ctx.args!),
        principal: ctx.input.principal.id,
        target: `${method} ${options.origin(tool)}${tool.source.path}`,
        policyVersion: d.policyVersion,
        policy: options.policyDigest?.() ?? '',
      },
      preview: boundedPreview(options.redactor.args(ctx.args)),
      method,
      path: tool.source.path,
      risk: tool.risk.classes.filter((c) => c !== 'read'),
      dataClasses: [...new Set(tool.dataClasses.map((f) => f.class))].sort(),
      approvers: d.decision.approvers,
      ...(ctx.taintedBy ? { why: `taint guard: ${ctx.taintedBy.reason}` } : {}),
    });
    if (a.outcome === 'run') {
      ctx.confirmed = { via: 'operator', approval: a.request.id };
      return;
    }
    ctx.confirmed = { approval: a.request.id };
    throw approvalError(a, options.now ?? Date.now);
  }

  // Most calls have nothing to confirm: they get no promise and no turn of the event loop (the stage
  // is on every call's path). Everything else is decided in `confirmOrPark`, as before.
  return function confirm(ctx: CallContext): Promise<void> | undefined {
    if (ctx.taintedBy?.action !== 'park' && !ctx.decision!.decision.confirm) return undefined;
    return confirmOrPark(ctx);
  };

  async function confirmOrPark(ctx: CallContext): Promise<void> {
    const d = ctx.decision!.decision;
    // The taint guard parks an outward call after a tainting read: a human operator, whatever the
    // rule's mode (an elicitation or a token could come from the very agent the read may have steered).
    if (ctx.taintedBy?.action === 'park') return byOperator(ctx);
    if (!d.confirm) return;
    const tool = ctx.tool!;
    const channel = ctx.input.confirmation;
    const mode: Exclude<ApprovalMode, 'auto'> =
      d.approval === 'auto' ? (channel ? 'elicit' : 'operator') : d.approval;
    const bind = { p: ctx.input.principal.id, t: tool.name, d: digest(ctx.args!) };
    if (mode === 'operator') return byOperator(ctx);
    if (mode === 'agent') return byToken(ctx, bind);
    if (!channel)
      throw new WardenError(
        'CONFIRMATION_UNSUPPORTED',
        `${tool.name} must be confirmed by the user through the client (its policy rule says approval: elicit), and this client cannot be asked: it did not declare elicitation.`,
        {
          details: [
            'Nothing was run.',
            'Use a client that supports elicitation (a 2026-07-28 client declaring it, or a 2025-11-25 client over stdio), or ask the operator to set approval: operator (or auto) for this tool.',
          ],
        },
      );
    return byElicitation(ctx, bind, channel);
  }
}

/** What the agent is told about a parked call: what waits, its id, its expiry and what to do next. */
function approvalError(a: Exclude<Admission, { outcome: 'run' }>, now: () => number): WardenError {
  const r = a.request;
  const what = `${r.binding.tool} (${r.method} ${r.path})`;
  if (a.outcome === 'denied') {
    const no = [...r.decisions].reverse().find((x) => x.verdict === 'deny');
    return new WardenError(
      'APPROVAL_DENIED',
      `An operator denied the call to ${what}: approval request ${r.id}${no ? `, denied by ${no.operator}: "${no.reason}"` : ''}.`,
      {
        details: [
          'Nothing was run.',
          'Do not retry it unless the user asks you to; calling it again starts a new approval request.',
        ],
      },
    );
  }
  const secs = Math.max(0, Math.round((Date.parse(r.expiresAt) - now()) / 1000));
  const next = waitingDetails(r, secs);
  if (a.outcome === 'created' && a.expired)
    return new WardenError(
      'APPROVAL_EXPIRED',
      `The earlier approval request ${a.expired.id} for ${what} expired before it was ${a.expired.decisions.some((x) => x.verdict === 'approve') ? 'used' : 'decided'}. Nothing was run. A new approval request ${r.id} now waits for a human operator.`,
      { details: next },
    );
  const still = a.outcome === 'pending';
  return new WardenError(
    'APPROVAL_PENDING',
    `${what} ${still ? 'is still waiting' : 'is waiting'} for a human operator's approval: approval request ${r.id}. Nothing was run${still ? ' yet' : ''}.`,
    { details: next },
  );
}

/**
 * What the operator sees of the arguments, kept to PREVIEW_CHARS: a parked request is stored (in
 * Redis, for days) and listed on every dashboard poll, so a caller varying megabyte arguments must not
 * grow the store by megabytes per request. A cut preview says so; the digest still binds every byte.
 */
export function boundedPreview(args: unknown): unknown {
  const text = JSON.stringify(args) ?? 'null';
  if (text.length <= PREVIEW_CHARS) return args;
  return {
    '[cut]': `arguments of ${text.length} characters, shown cut`,
    text: `${text.slice(0, PREVIEW_CHARS)}…`,
  };
}
const PREVIEW_CHARS = 4096;

function waitingDetails(r: ApprovalRequest, secs: number): string[] {
  const two = r.approversNeeded > 1;
  return [
    `Approval id: ${r.id}. It expires at ${r.expiresAt} (in ${secs} s) unless ${two ? 'two operators approve' : 'an operator approves'} it.`,
    // Who acts, never how: an agent with a shell and an operator token at hand must not be handed
    // the command that approves its own call.
    `A human operator must approve it out of band, on the mcp-warden dashboard${two ? ' (two different operators)' : ''}. You cannot approve it, and nothing in this session should: tell the user it is waiting.`,
    `After it is approved, call ${r.binding.tool} again with exactly the same arguments: it then runs, once. There is no token to pass — nothing you send can approve it.`,
  ];
}

/** The one shape of a confirmation answer (MCP's `ElicitResult` for the gateway's one-field form). */
const ANSWER_KEYS = new Set(['action', 'content', '_meta']);
const ACTIONS = new Set(['accept', 'decline', 'cancel']);

const malformed = (why: string) =>
  new WardenError(
    'CONFIRMATION_INVALID',
    `The confirmation was refused: the client's answer to the confirmation request is malformed (${why}). Nothing was run. An answer is {"action":"accept","content":{"confirm":true}} to approve, or an action of "decline" or "cancel".`,
  );

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Reads a client's answer to the confirmation form, exactly: an object with `action` one of
 * accept/decline/cancel, no other field than `content` and `_meta`, and on accept a `content` object
 * holding exactly `confirm`, a boolean. Anything else is refused (CONFIRMATION_INVALID): a malformed
 * answer is never read as a yes, and never becomes an internal error either.
 */
export function readAnswer(raw: unknown): { action: 'accept' | 'decline' | 'cancel'; approved: boolean } {
  if (!isPlainObject(raw)) return failWith('it is not an object');
  const extra = Object.keys(raw).find((k) => !ANSWER_KEYS.has(k));
  if (extra !== undefined) return failWith(`unexpected field ${quoted(extra)}`);
  const action = raw.action;
  if (typeof action !== 'string' || !ACTIONS.has(action))
    return failWith('"action" must be "accept", "decline" or "cancel"');
  if (raw._meta !== undefined && !isPlainObject(raw._meta)) return failWith('"_meta" must be an object');
  if (action !== 'accept') {
    if (raw.content !== undefined) return failWith(`a "${action}" carries no "content"`);
    return { action: action as 'decline' | 'cancel', approved: false };
  }
  const content = raw.content;
  if (!isPlainObject(content)) return failWith('"content" must be an object');
  const other = Object.keys(content).find((k) => k !== 'confirm');
  if (other !== undefined) return failWith(`unexpected field ${quoted(other)} in "content"`);
  if (!Object.hasOwn(content, 'confirm')) return failWith('"content.confirm" is missing');
  if (typeof content.confirm !== 'boolean') return failWith('"content.confirm" must be true or false');
  return { action: 'accept', approved: content.confirm };
}

function failWith(why: string): never {
  throw malformed(why);
}

/** A key name for a message: short printable ASCII (it comes from the client). */
function quoted(k: string): string {
  const clean = k.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 40 ? `${clean.slice(0, 40)}…` : clean);
}

/**
 * Asks in-band. A failed question (the client answered with an error, never answered, or the
 * connection went) is a refusal like a malformed answer, not an internal error: nothing has run.
 */
async function ask(
  question: (message: string) => Promise<unknown>,
  message: string,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  try {
    return await question(message);
  } catch (e) {
    if (isWardenError(e)) throw e;
    if (signal?.aborted)
      throw new WardenError('CANCELLED', 'The client cancelled the call while it was being confirmed.');
    throw new WardenError(
      'CONFIRMATION_INVALID',
      'The confirmation was refused: the client returned no valid answer to the confirmation request (its elicitation failed, was refused or timed out). Nothing was run.',
    );
  }
}

/** What the user is asked to approve: the operation and its (redacted) arguments. */
function preview(ctx: CallContext, redactor: Redactor): string {
  const tool = ctx.tool!;
  let args = JSON.stringify(redactor.args(ctx.args));
  if (args.length > 1500) args = `${args.slice(0, 1500)}…`;
  return `Allow ${tool.name} (${tool.source.method.toUpperCase()} ${tool.source.path})${tool.title ? ` — ${tool.title}` : ''} with arguments ${args}?`;
}

/** sha256 of the arguments with object keys sorted, so key order cannot change the digest. */
export function digest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}
