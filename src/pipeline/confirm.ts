import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CONFIRM_ARG } from '../control/view.js';
import { isWardenError, WardenError } from '../errors/index.js';
import { canonicalJson } from '../lib/canonical.js';
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
 * Writes `ctx.confirmed`. A tool the policy marks `confirm` runs only after the user said yes, through
 * the best channel the client has: `input_required` (2026-07-28), in-band elicitation (2025-11-25), or
 * a two-step token for clients with neither. Every channel ends in the same sealed token — HMAC over
 * principal, tool, argument digest and expiry, single use — so a confirmation cannot be forged,
 * replayed, reused for other arguments or carried to another caller.
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

  return async function confirm(ctx: CallContext): Promise<void> {
    if (!ctx.decision!.decision.confirm) return;
    const tool = ctx.tool!;
    const bind = { p: ctx.input.principal.id, t: tool.name, d: digest(ctx.args!) };
    const raw = (ctx.input.arguments as Record<string, unknown>)[CONFIRM_ARG];
    const channel = ctx.input.confirmation;

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
    const message = preview(ctx, options.redactor);
    const declined = () =>
      new WardenError('CONFIRMATION_DECLINED', `The user did not approve the call to ${tool.name}.`);
    if (channel?.kind === 'mrtr' && channel.state !== undefined) {
      await verify(channel.state, bind);
      // No answer at all: the user was asked and nothing came back with the retry, which is not a yes.
      if (channel.answer === undefined || !readAnswer(channel.answer).approved) throw declined();
      ctx.confirmed = { via: 'input_required' };
      return;
    }
    if (channel?.kind === 'elicit') {
      if (!readAnswer(await ask(channel.ask, message, ctx.input.signal)).approved) throw declined();
      ctx.confirmed = { via: 'elicitation' };
      return;
    }
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
  };
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
