import type { Tool } from '../catalog/types.js';
import { WardenError } from '../errors.js';
import type { CallContext } from './context.js';

export interface ResolveOptions {
  /** Every tool of the catalogue; only those with `exposure.exposed` can be called. */
  tools: readonly Tool[];
}

/**
 * Writes `ctx.tool`. Hidden tools are left out of the lookup table altogether, so an unknown and a
 * hidden name take the same path and produce byte-identical errors: a caller cannot probe what exists.
 */
export function createResolve(options: ResolveOptions) {
  const byName = new Map<string, Tool>();
  for (const t of options.tools) if (t.exposure.exposed) byName.set(t.name, t);

  return function resolve(ctx: CallContext): void {
    const name = ctx.input.name;
    const tool = typeof name === 'string' ? byName.get(name) : undefined;
    if (!tool) throw new WardenError('TOOL_NOT_FOUND', `Unknown tool: ${printableName(name)}`);
    ctx.tool = tool;
  };
}

/** The name echoed back: printable ASCII only and short, so an error cannot carry a payload. */
function printableName(name: unknown): string {
  if (typeof name !== 'string') return '(not a string)';
  const clean = name.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}
