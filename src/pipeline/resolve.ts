import type { ToolView, ViewEntry } from '../control/view.js';
import { type ErrorCode, WardenError } from '../errors/index.js';
import { nearNames } from '../lib/near-names.js';
import type { CallContext } from './context.js';

export interface ResolveOptions {
  /** The current tool view (it changes with the policy and the runtime switches). */
  view: () => ToolView;
}

/**
 * Writes `ctx.tool` and `ctx.decision`. Only a name the API does not have stops here; whether the
 * caller may use it is decided by the next stages, which answer with the very same error, so a caller
 * cannot probe what exists.
 */
export function createResolve(options: ResolveOptions) {
  // A view and its entries are immutable (a change builds a new view), so the decision a call reads
  // is made once per entry and shared, frozen, by every call that resolves to it.
  const decisions = new WeakMap<ViewEntry, Resolved>();
  return function resolve(ctx: CallContext): void {
    const name = ctx.input.name;
    const view = options.view();
    const entry = typeof name === 'string' ? view.get(name) : undefined;
    if (!entry) throw notFound('TOOL_NOT_FOUND', name);
    ctx.tool = entry.decision.tool;
    let decision = decisions.get(entry);
    if (decision?.policyVersion !== view.policyVersion) {
      decision = resolvedOf(entry, view.policyVersion);
      decisions.set(entry, decision);
    }
    ctx.decision = decision;
  };
}

type Resolved = NonNullable<CallContext['decision']>;

/** The entry with its limits and policy version; `listed` stays the entry's own (built on first read). */
function resolvedOf(entry: ViewEntry, policyVersion: number): Resolved {
  return Object.freeze({
    decision: entry.decision,
    blockers: entry.blockers,
    exposed: entry.exposed,
    get listed() {
      return entry.listed;
    },
    limits: entry.decision.limits,
    policyVersion,
  });
}

/**
 * The one error for "no such tool for you": byte-identical whatever the real reason (the code is
 * audited). With `visible` (the names this caller can see), the closest of them are suggested: drawn
 * from what the caller may see only, so the answer for a hidden name and for an unknown one is made
 * the same way and tells nothing.
 */
export function notFound(
  code: Extract<ErrorCode, 'TOOL_NOT_FOUND' | 'DENIED_SCOPE' | 'DENIED_HIDDEN'>,
  name: unknown,
  visible?: Iterable<string>,
) {
  const near = visible && typeof name === 'string' ? nearNames(name, visible) : [];
  const message = `Unknown tool: ${printableName(name)}`;
  return new WardenError(code, near.length ? `${message}. Did you mean ${near.join(', ')}?` : message);
}

/** The name echoed back: printable ASCII only and short, so an error cannot carry a payload. */
function printableName(name: unknown): string {
  if (typeof name !== 'string') return '(not a string)';
  const clean = name.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}
