import type { ErrorCode } from './codes.js';

export interface ErrorLocation {
  /** File path or URL the problem is in. */
  file?: string;
  /** JSON pointer inside that file (RFC 6901), e.g. `/paths/~1pets/get`. */
  pointer?: string;
  line?: number;
  column?: number;
}

/**
 * One error class for the whole gateway. Every failure carries a `code` from the table in `codes.ts`;
 * how it reaches anyone (exit code, MCP answer, HTTP reply, audit) is decided in `surfaces.ts`.
 */
export class WardenError extends Error {
  override readonly name = 'WardenError';
  readonly code: ErrorCode;
  readonly location: ErrorLocation | undefined;
  /** Further short, safe lines shown under the message (e.g. more validation errors). */
  readonly details: string[];
  /** For tool-surface errors: data the agent may still use (a capped, scrubbed upstream body). */
  readonly text: string | undefined;
  /** CONFIRMATION_REQUIRED: what to ask the user and the sealed token that answers it. */
  readonly pending: { message: string; token: string } | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: {
      location?: ErrorLocation;
      details?: string[];
      cause?: unknown;
      text?: string;
      pending?: { message: string; token: string };
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.location = opts.location;
    this.details = opts.details ?? [];
    this.text = opts.text;
    this.pending = opts.pending;
  }
}

export function isWardenError(e: unknown): e is WardenError {
  return e instanceof WardenError;
}

/** `file:line:col (pointer)` — whichever parts are known. */
export function formatLocation(loc: ErrorLocation | undefined): string {
  if (!loc) return '';
  let where = loc.file ?? '';
  if (loc.line !== undefined) where += `:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}`;
  if (loc.pointer !== undefined) where += `${where ? ' ' : ''}at ${loc.pointer === '' ? '/' : loc.pointer}`;
  return where;
}

/** A one-screen, stack-free rendering for terminals. */
export function formatError(e: WardenError): string {
  const where = formatLocation(e.location);
  const lines = [`error ${e.code}: ${e.message}${where ? `\n  ${where}` : ''}`];
  for (const d of e.details) lines.push(`  - ${d}`);
  return lines.join('\n');
}

/** Anything thrown that is not ours becomes INTERNAL, without its message (it may hold secrets or paths). */
export function toWardenError(e: unknown): WardenError {
  if (isWardenError(e)) return e;
  return new WardenError('INTERNAL', 'internal error', { cause: e });
}
