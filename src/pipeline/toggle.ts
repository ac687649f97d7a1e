import type { CallContext } from './context.js';
import { notFound } from './resolve.js';

/**
 * Checks (writes no field) that the tool is exposed right now: policy defaults and rules, missing
 * upstream credentials, runtime toggles and the kill switch are all folded into the view's blockers,
 * read afresh for every call, so a switch flipped a moment ago applies to this call.
 */
export function createToggle() {
  return function toggle(ctx: CallContext): void {
    if (!ctx.decision!.exposed) throw notFound('DENIED_HIDDEN', ctx.input.name);
  };
}
