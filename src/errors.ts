/**
 * One error class for the whole gateway. Every failure carries a string `code`; the table below maps
 * each code to how it surfaces. `satisfies Record<ErrorCode, …>` makes the compiler reject a code
 * without a mapping, so no failure can fall through to a raw message.
 */
export const ERROR_CODES = {
  SPEC_NOT_FOUND: { exit: 2, summary: 'the spec file or URL could not be read' },
  SPEC_PARSE: { exit: 2, summary: 'the spec is not valid JSON or YAML' },
  SPEC_INVALID: { exit: 2, summary: 'the spec does not conform to Swagger 2.0 / OpenAPI 3.x' },
  SPEC_UNSUPPORTED: { exit: 2, summary: 'the spec uses a version or feature mcp-warden does not support' },
  SPEC_TOO_LARGE: { exit: 2, summary: 'the spec exceeds a size limit' },
  SPEC_TOO_DEEP: { exit: 2, summary: 'the spec nests deeper than the limit' },
  SPEC_REF_DENIED: { exit: 2, summary: 'a $ref points somewhere mcp-warden may not read' },
  SPEC_REF_UNRESOLVED: { exit: 2, summary: 'a $ref points to nothing' },
  USAGE: { exit: 2, summary: 'the command line is wrong' },
  INTERNAL: { exit: 1, summary: 'an unexpected internal error' },
} as const satisfies Record<string, { exit: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorLocation {
  /** File path or URL the problem is in. */
  file?: string;
  /** JSON pointer inside that file (RFC 6901), e.g. `/paths/~1pets/get`. */
  pointer?: string;
  line?: number;
  column?: number;
}

export class WardenError extends Error {
  override readonly name = 'WardenError';
  readonly code: ErrorCode;
  readonly location: ErrorLocation | undefined;
  /** Further short, safe lines shown under the message (e.g. more validation errors). */
  readonly details: string[];

  constructor(
    code: ErrorCode,
    message: string,
    opts: { location?: ErrorLocation; details?: string[]; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.location = opts.location;
    this.details = opts.details ?? [];
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
