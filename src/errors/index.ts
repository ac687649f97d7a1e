/**
 * One error class for the whole gateway. Every failure carries a string `code`; the table below maps
 * each code to how it surfaces. `satisfies Record<ErrorCode, …>` makes the compiler reject a code
 * without a mapping, so no failure can fall through to a raw message.
 */
export const ERROR_CODES = {
  // Start-up and CLI: the process reports and exits.
  SPEC_NOT_FOUND: startup(2, 'the spec file or URL could not be read'),
  SPEC_PARSE: startup(2, 'the spec is not valid JSON or YAML'),
  SPEC_INVALID: startup(2, 'the spec does not conform to Swagger 2.0 / OpenAPI 3.x'),
  SPEC_UNSUPPORTED: startup(2, 'the spec uses a version or feature mcp-warden does not support'),
  SPEC_TOO_LARGE: startup(2, 'the spec exceeds a size limit'),
  SPEC_TOO_DEEP: startup(2, 'the spec nests deeper than the limit'),
  SPEC_REF_DENIED: startup(2, 'a $ref points somewhere mcp-warden may not read'),
  SPEC_REF_UNRESOLVED: startup(2, 'a $ref points to nothing'),
  CONFIG_INVALID: startup(2, 'the serving configuration (policy, base URL, credentials, options) is invalid'),
  USAGE: startup(2, 'the command line is wrong'),

  // A tool call: surfaces as a JSON-RPC error (`protocol`) or an `isError` tool result (`tool`).
  // Unknown and hidden tools share one code so that a caller cannot tell them apart.
  TOOL_NOT_FOUND: call('protocol', 404, 'denied', 'unknown tool'),
  // Known but not for this caller: surfaced exactly as TOOL_NOT_FOUND, audited with the real reason.
  DENIED_SCOPE: alias('TOOL_NOT_FOUND', "the caller's scopes do not include every scope the tool needs"),
  DENIED_HIDDEN: alias(
    'TOOL_NOT_FOUND',
    'the tool is hidden by the policy, a runtime toggle or the kill switch',
  ),
  CONFIRMATION_REQUIRED: call('tool', 428, 'denied', "the call needs the user's confirmation first"),
  CONFIRMATION_INVALID: call(
    'tool',
    403,
    'denied',
    'the confirmation is forged, replayed, expired or for other arguments',
  ),
  CONFIRMATION_DECLINED: call('tool', 403, 'denied', 'the user declined the call'),
  INVALID_ARGUMENT: call('tool', 400, 'denied', 'an argument is missing, of the wrong type or not allowed'),
  CREDENTIAL_MISSING: call('tool', 503, 'failed', 'no upstream credential is configured for this tool'),
  UPSTREAM_TIMEOUT: call('tool', 504, 'failed', 'the upstream API did not answer in time'),
  UPSTREAM_UNAVAILABLE: call('tool', 502, 'failed', 'the upstream API could not be reached'),
  UPSTREAM_REDIRECT: call(
    'tool',
    502,
    'failed',
    'the upstream API answered with a redirect, which is not followed',
  ),
  UPSTREAM_STATUS: call('tool', 502, 'failed', 'the upstream API answered with an error status'),
  UPSTREAM_TOO_LARGE: call(
    'tool',
    502,
    'failed',
    'the upstream response exceeded the size cap and was cut short',
  ),
  UPSTREAM_SCHEMA_MISMATCH: call(
    'tool',
    502,
    'failed',
    "the upstream response does not match the API's declared schema",
  ),
  CANCELLED: call('tool', 499, 'failed', 'the client cancelled the call'),
  RATE_LIMITED: call('tool', 429, 'denied', 'a rate limit for this tool or caller is reached; retry later'),
  CONCURRENCY_LIMITED: call(
    'tool',
    503,
    'denied',
    'too many calls to this tool are in flight; retry shortly',
  ),
  BREAKER_OPEN: call('tool', 503, 'denied', 'the upstream is failing; calls are refused until it recovers'),
  STATE_UNAVAILABLE: call(
    'tool',
    503,
    'denied',
    'the shared state (Redis) is unreachable; writes fail closed',
  ),
  AUDIT_UNAVAILABLE: call(
    'tool',
    503,
    'denied',
    'the audit cannot be written, so the call is refused (fail closed)',
  ),

  // The HTTP transport, before any JSON-RPC message is dispatched.
  HTTP_NOT_FOUND: http(404, 'no such endpoint'),
  HTTP_FORBIDDEN_HOST: http(403, 'the Host or Origin header is not allowed'),
  HTTP_BODY_TOO_LARGE: http(413, 'the request body is larger than the limit'),
  HTTP_BAD_REQUEST: http(400, 'the request body is not acceptable JSON'),
  AUTH_REQUIRED: http(401, 'the request carries no credential'),
  AUTH_INVALID: http(401, 'the credential is invalid, expired or not for this server'),
  AUTH_INSUFFICIENT_SCOPE: http(403, 'the credential lacks a scope the endpoint requires'),
  ADMIN_DENIED: http(401, 'the admin token is missing or wrong'),

  INTERNAL: { exit: 1, summary: 'an unexpected internal error', mcp: 'tool', http: 500, audit: 'failed' },
} as const satisfies Record<string, ErrorMapping>;

/** How one error code surfaces: process exit, MCP answer, HTTP status and audit decision. */
export interface ErrorMapping {
  exit: number;
  summary: string;
  /** `protocol`: a JSON-RPC error; `tool`: a `CallToolResult` with `isError`; `none`: not a call. */
  mcp: 'protocol' | 'tool' | 'none';
  http: number;
  /** `denied`: refused before the upstream; `failed`: allowed but did not succeed; `none`: not audited. */
  audit: 'denied' | 'failed' | 'none';
  /** The code (and message) the client sees instead, so that it cannot tell this case apart. */
  surfaceAs?: 'TOOL_NOT_FOUND';
}

function startup(exit: number, summary: string) {
  return { exit, summary, mcp: 'none', http: 500, audit: 'none' } as const;
}
function call<M extends 'protocol' | 'tool', H extends number, A extends 'denied' | 'failed'>(
  mcp: M,
  httpStatus: H,
  audit: A,
  summary: string,
) {
  return { exit: 1, summary, mcp, http: httpStatus, audit } as const;
}
function alias(surfaceAs: 'TOOL_NOT_FOUND', summary: string) {
  return { exit: 1, summary, mcp: 'protocol', http: 404, audit: 'denied', surfaceAs } as const;
}
function http<H extends number>(status: H, summary: string) {
  return { exit: 1, summary, mcp: 'none', http: status, audit: 'none' } as const;
}

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
