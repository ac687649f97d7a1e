import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CONFIRM_ARG } from '../control/view.js';
import { WardenError } from '../errors/index.js';
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
    if (channel?.kind === 'mrtr' && channel.state !== undefined) {
      await verify(channel.state, bind);
      if (channel.answer?.action !== 'accept' || !channel.answer.confirmed)
        throw new WardenError('CONFIRMATION_DECLINED', `The user did not approve the call to ${tool.name}.`);
      ctx.confirmed = { via: 'input_required' };
      return;
    }
    if (channel?.kind === 'elicit') {
      const answer = await channel.ask(message);
      if (answer.action !== 'accept' || !answer.confirmed)
        throw new WardenError('CONFIRMATION_DECLINED', `The user did not approve the call to ${tool.name}.`);
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
