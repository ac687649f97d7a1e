import { type CapLimits, DEFAULT_MAX_ITEMS } from '../protect/caps.js';
import {
  type InjectionFlag,
  type ScreenLimits,
  screenBody,
  screenValue,
  type UntrustedAction,
} from '../protect/injection.js';
import type { CallContext } from './context.js';

export interface ScreenOptions {
  /** The action when neither the policy's `defaults` nor a rule sets `untrusted` (default annotate). */
  action?: UntrustedAction;
  /** Work per call; a budget exceeded flags the whole body (fail closed). */
  limits?: ScreenLimits;
  /** The gateway-wide result limits protect applies (the policy's override them per tool). */
  defaults?: Partial<CapLimits>;
}

/**
 * Writes `ctx.untrusted`. Every response with a body is untrusted content: its strings and keys (each
 * field, each key, and each record's fields together) are screened for instruction-like text aimed at the agent, on
 * the body as the upstream sent it, before masking can break a sentence up. What is done with a
 * flagged field (annotate, redact, withhold) is the policy's, applied by protect.
 */
export function createScreen(options: ScreenOptions = {}) {
  const fallback: UntrustedAction = options.action ?? 'annotate';
  return function screen(ctx: CallContext): void {
    const answer = ctx.answer;
    // No body (a 204, an empty answer): the only text is the gateway's own.
    if (!answer || !ctx.response?.body.length) return;
    // Only the array items the result can keep: protect cuts arrays to the item limit (at least 16
    // kept, as it does) before masking, by index, so the items kept are the ones screened. A text
    // body is screened whole: protect redacts it before cutting it to the byte limit, and a long
    // value redacted to a short marker pulls later text into the part kept (the budget bounds it).
    const limits = ctx.decision?.limits;
    const work: ScreenLimits = {
      ...options.limits,
      keepItems: Math.max(limits?.maxItems ?? options.defaults?.maxItems ?? DEFAULT_MAX_ITEMS, 16),
    };
    let flagged: InjectionFlag[];
    if (answer.json) flagged = screenValue(answer.json.value, work);
    else flagged = screenBody(answer.content[0]?.text ?? '', work);
    ctx.untrusted = { flagged, action: ctx.decision?.limits.untrusted ?? fallback };
  };
}
