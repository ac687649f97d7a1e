import type { CallContext } from './context.js';
import { notFound } from './resolve.js';

/**
 * Checks (writes no field) that the caller holds every scope the tool needs. Matching is exact,
 * case-sensitive and token by token: `tools:write` does not satisfy `tools:Write` or `tools`. A
 * caller without them gets the unknown-tool error, so scopes cannot be used to map the API.
 */
export function createAuthorize() {
  return function authorize(ctx: CallContext): void {
    const needed = ctx.decision!.decision.scopes;
    const held = ctx.input.principal.scopes;
    for (const s of needed) if (!held.includes(s)) throw notFound('DENIED_SCOPE', ctx.input.name);
  };
}
