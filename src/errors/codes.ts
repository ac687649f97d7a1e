import { ProtocolErrorCode } from '@modelcontextprotocol/server';

/**
 * Every failure the gateway reports, by code. Declared here once; the table below must map each one
 * (`satisfies Record<ErrorCode, …>`: the compiler rejects a code without a mapping, or a mapping
 * without a code), so no failure can fall through to a raw message or a status picked by hand.
 */
export type ErrorCode =
  // Start-up and CLI.
  | 'SPEC_NOT_FOUND'
  | 'SPEC_PARSE'
  | 'SPEC_INVALID'
  | 'SPEC_UNSUPPORTED'
  | 'SPEC_TOO_LARGE'
  | 'SPEC_TOO_DEEP'
  | 'SPEC_REF_DENIED'
  | 'SPEC_REF_UNRESOLVED'
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'AUDIT_BROKEN'
  // A tool call.
  | 'TOOL_NOT_FOUND'
  | 'DENIED_SCOPE'
  | 'DENIED_HIDDEN'
  | 'CONFIRMATION_REQUIRED'
  | 'CONFIRMATION_INVALID'
  | 'CONFIRMATION_DECLINED'
  | 'CONFIRMATION_UNSUPPORTED'
  | 'APPROVAL_PENDING'
  | 'APPROVAL_DENIED'
  | 'APPROVAL_EXPIRED'
  | 'TAINT_BLOCKED'
  | 'INVALID_ARGUMENT'
  | 'CREDENTIAL_MISSING'
  | 'CONNECTION_REQUIRED'
  | 'TOKEN_EXCHANGE_REFUSED'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_REDIRECT'
  | 'UPSTREAM_STATUS'
  | 'UPSTREAM_TOO_LARGE'
  | 'UPSTREAM_SCHEMA_MISMATCH'
  | 'CANCELLED'
  | 'RATE_LIMITED'
  | 'BUDGET_EXCEEDED'
  | 'CALLER_READ_ONLY'
  | 'CONCURRENCY_LIMITED'
  | 'BREAKER_OPEN'
  | 'STATE_UNAVAILABLE'
  | 'AUDIT_UNAVAILABLE'
  // The MCP endpoint's HTTP transport.
  | 'HTTP_NOT_FOUND'
  | 'HTTP_FORBIDDEN_HOST'
  | 'HTTP_BODY_TOO_LARGE'
  | 'HTTP_PARSE_ERROR'
  | 'HTTP_BAD_REQUEST'
  | 'HTTP_TOO_MANY_STREAMS'
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'AUTH_INSUFFICIENT_SCOPE'
  // The admin port (control API and dashboard).
  | 'ADMIN_DENIED'
  | 'ADMIN_ORIGIN'
  | 'ADMIN_CSRF'
  | 'ADMIN_NOT_FOUND'
  | 'ADMIN_THROTTLED'
  | 'ADMIN_NOT_BUILT'
  // Deciding an approval (admin API, CLI, dashboard).
  | 'APPROVAL_NOT_FOUND'
  | 'APPROVAL_NOT_PENDING'
  | 'APPROVAL_SELF'
  | 'APPROVAL_SAME_OPERATOR'
  | 'APPROVAL_NOT_OPERATOR'
  | 'INTERNAL';

/** How one error code surfaces: process exit, MCP answer, HTTP status, JSON-RPC number and audit decision. */
export interface ErrorMapping {
  exit: number;
  summary: string;
  /** `protocol`: a JSON-RPC error; `tool`: a `CallToolResult` with `isError`; `none`: not a call. */
  mcp: 'protocol' | 'tool' | 'none';
  /** The HTTP status when this code answers an HTTP request (the MCP endpoint or the admin port). */
  http: number;
  /** The JSON-RPC error number when this code answers as a JSON-RPC error (protocol and transport). */
  rpc: number;
  /** `denied`: refused before the upstream; `failed`: allowed but did not succeed; `none`: not audited. */
  audit: 'denied' | 'failed' | 'none';
  /** The code (and message) the client sees instead, so that it cannot tell this case apart. */
  surfaceAs?: 'TOOL_NOT_FOUND';
}

// Codes that never answer as a JSON-RPC error carry InternalError: were one to, it is the gateway's bug.
const NOT_RPC = ProtocolErrorCode.InternalError;
// The JSON-RPC "server error" range's first number: transport refusals without a standard number.
const SERVER_ERROR = -32000;
// MCP's number for a failed authentication (the SDK's bearer-auth helpers answer it too).
const UNAUTHORIZED = -32001;

export const ERROR_CODES = {
  // Start-up and CLI: the process reports and exits. On the admin port (a policy rollback, a spec
  // reload) a wrong request is 400 and a configuration that cannot be applied is 422.
  SPEC_NOT_FOUND: startup('the spec file or URL could not be read'),
  SPEC_PARSE: startup('the spec is not valid JSON or YAML'),
  SPEC_INVALID: startup('the spec does not conform to Swagger 2.0 / OpenAPI 3.x'),
  SPEC_UNSUPPORTED: startup('the spec uses a version or feature mcp-warden does not support'),
  SPEC_TOO_LARGE: startup('the spec exceeds a size limit'),
  SPEC_TOO_DEEP: startup('the spec nests deeper than the limit'),
  SPEC_REF_DENIED: startup('a $ref points somewhere mcp-warden may not read'),
  SPEC_REF_UNRESOLVED: startup('a $ref points to nothing'),
  CONFIG_INVALID: startup('the serving configuration (policy, base URL, credentials, options) is invalid'),
  USAGE: startup('the command line (or an admin request) is wrong', 400),
  // `audit rightsize`: nothing is concluded from an audit whose hash chain does not verify.
  AUDIT_BROKEN: {
    exit: 1,
    summary:
      "the audit's hash chain does not verify (records altered, removed or cut): nothing is concluded from it",
    mcp: 'none',
    http: 422,
    rpc: NOT_RPC,
    audit: 'none',
  },

  // A tool call: surfaces as a JSON-RPC error (`protocol`) or an `isError` tool result (`tool`).
  // Unknown and hidden tools share one code so that a caller cannot tell them apart.
  TOOL_NOT_FOUND: notFound('unknown tool'),
  // Known but not for this caller: surfaced exactly as TOOL_NOT_FOUND, audited with the real reason.
  DENIED_SCOPE: alias('TOOL_NOT_FOUND', "the caller's scopes do not include every scope the tool needs"),
  DENIED_HIDDEN: alias(
    'TOOL_NOT_FOUND',
    'the tool is hidden by the policy, a runtime toggle or the kill switch',
  ),
  CONFIRMATION_REQUIRED: call(428, 'denied', "the call needs the user's confirmation first"),
  CONFIRMATION_INVALID: call(
    403,
    'denied',
    'the confirmation is forged, replayed, expired or for other arguments',
  ),
  CONFIRMATION_DECLINED: call(403, 'denied', 'the user declined the call'),
  CONFIRMATION_UNSUPPORTED: call(
    403,
    'denied',
    "the tool's rule asks the user through the client (approval: elicit) and this client cannot be asked",
  ),
  // Out-of-band approvals: the agent gets a result it can act on (what waits, its id, what to do next).
  APPROVAL_PENDING: call(428, 'denied', 'the call waits for a human operator to approve it'),
  APPROVAL_DENIED: call(403, 'denied', 'an operator denied the call'),
  APPROVAL_EXPIRED: call(
    428,
    'denied',
    'the approval ran out of time before it was decided or used; a new one was requested',
  ),
  // The taint guard: the caller read private data or untrusted content, and this tool can send data out.
  TAINT_BLOCKED: call(
    403,
    'denied',
    'the caller read private data or untrusted content, and this tool can send data out (taint guard)',
  ),
  INVALID_ARGUMENT: call(400, 'denied', 'an argument is missing, of the wrong type or not allowed'),
  CREDENTIAL_MISSING: call(503, 'failed', 'no upstream credential is configured for this tool'),
  // Per-user OAuth: the agent gets the link to send its user to, and retries the call once connected.
  CONNECTION_REQUIRED: call(
    401,
    'denied',
    "the caller has not connected their own upstream account (or it lacks this tool's scopes): a link to connect is returned",
  ),
  TOKEN_EXCHANGE_REFUSED: call(
    403,
    'denied',
    "the caller's token could not be exchanged for one the upstream accepts (refused, unreachable, or the caller has no token)",
  ),
  UPSTREAM_TIMEOUT: call(504, 'failed', 'the upstream API did not answer in time'),
  UPSTREAM_UNAVAILABLE: call(502, 'failed', 'the upstream API could not be reached'),
  UPSTREAM_REDIRECT: call(502, 'failed', 'the upstream API answered with a redirect, which is not followed'),
  UPSTREAM_STATUS: call(502, 'failed', 'the upstream API answered with an error status'),
  UPSTREAM_TOO_LARGE: call(502, 'failed', 'the upstream response exceeded the size cap and was cut short'),
  UPSTREAM_SCHEMA_MISMATCH: call(
    502,
    'failed',
    "the upstream response does not match the API's declared schema",
  ),
  CANCELLED: call(499, 'failed', 'the client cancelled the call'),
  RATE_LIMITED: call(429, 'denied', 'a rate limit for this tool or caller is reached; retry later'),
  // Blast-radius budgets (docs/budgets.md): not "retry later" — an operator has to lift the restriction.
  BUDGET_EXCEEDED: call(
    429,
    'denied',
    "the call would pass a caller's budget (calls or records per window); the caller is now read-only",
  ),
  CALLER_READ_ONLY: call(
    403,
    'denied',
    'this caller hit a budget and is read-only until an operator lifts it; reads are still served',
  ),
  CONCURRENCY_LIMITED: call(503, 'denied', 'too many calls to this tool are in flight; retry shortly'),
  BREAKER_OPEN: call(503, 'denied', 'the upstream is failing; calls are refused until it recovers'),
  STATE_UNAVAILABLE: call(503, 'denied', 'the shared state (Redis) is unreachable; writes fail closed'),
  AUDIT_UNAVAILABLE: call(503, 'denied', 'the audit cannot be written, so the call is refused (fail closed)'),

  // The MCP endpoint's HTTP transport, before any JSON-RPC message is dispatched.
  HTTP_NOT_FOUND: http(404, SERVER_ERROR, 'no such endpoint'),
  HTTP_FORBIDDEN_HOST: http(403, SERVER_ERROR, 'the Host or Origin header is not allowed'),
  HTTP_BODY_TOO_LARGE: http(413, SERVER_ERROR, 'the request body is larger than the limit'),
  HTTP_PARSE_ERROR: http(400, ProtocolErrorCode.ParseError, 'the request body is not valid JSON'),
  HTTP_BAD_REQUEST: http(
    400,
    ProtocolErrorCode.InvalidRequest,
    'the request body is a JSON-RPC batch or nests deeper than the limit',
  ),
  HTTP_TOO_MANY_STREAMS: http(
    429,
    SERVER_ERROR,
    'too many notification streams (GET or subscriptions/listen) are open for this caller or this server',
  ),
  AUTH_REQUIRED: http(401, UNAUTHORIZED, 'the request carries no credential'),
  AUTH_INVALID: http(401, UNAUTHORIZED, 'the credential is invalid, expired or not for this server'),
  AUTH_INSUFFICIENT_SCOPE: http(403, UNAUTHORIZED, 'the credential lacks a scope the endpoint requires'),

  // The admin port: `{ error, message }` bodies, never JSON-RPC.
  ADMIN_DENIED: http(401, NOT_RPC, 'the admin token or dashboard session is missing or wrong'),
  ADMIN_ORIGIN: http(403, NOT_RPC, 'a dashboard login that is not a JSON request from the dashboard page'),
  ADMIN_CSRF: http(
    403,
    NOT_RPC,
    "a dashboard change without the session's CSRF token or from another origin",
  ),
  ADMIN_NOT_FOUND: http(404, NOT_RPC, 'no such admin endpoint, file, tool or alert'),
  ADMIN_THROTTLED: http(429, NOT_RPC, 'too many wrong admin tokens from this address; retry later'),
  ADMIN_NOT_BUILT: http(503, NOT_RPC, 'the dashboard is not built'),
  APPROVAL_NOT_FOUND: http(404, NOT_RPC, 'no such approval request'),
  APPROVAL_NOT_PENDING: http(409, NOT_RPC, 'the approval request is already decided, executed or expired'),
  APPROVAL_SELF: http(403, NOT_RPC, 'an operator cannot approve a call they requested'),
  APPROVAL_SAME_OPERATOR: http(
    403,
    NOT_RPC,
    'a two-person rule needs another operator: this one already approved the request',
  ),
  APPROVAL_NOT_OPERATOR: http(
    403,
    NOT_RPC,
    'with named operators configured, only an operator token approves: the shared admin token names nobody',
  ),

  INTERNAL: {
    exit: 1,
    summary: 'an unexpected internal error',
    mcp: 'tool',
    http: 500,
    rpc: ProtocolErrorCode.InternalError,
    audit: 'failed',
  },
} as const satisfies Record<ErrorCode, ErrorMapping>;

/** The mapping of one code, as the interface (the table's entries are literal types). */
export function mappingOf(code: ErrorCode): ErrorMapping {
  return ERROR_CODES[code];
}

function startup(summary: string, status = 422) {
  return { exit: 2, summary, mcp: 'none', http: status, rpc: NOT_RPC, audit: 'none' } as const;
}
function call(status: number, audit: 'denied' | 'failed', summary: string) {
  return { exit: 1, summary, mcp: 'tool', http: status, rpc: NOT_RPC, audit } as const;
}
// InvalidParams: what clients have always seen for an unknown tool (and what the SDK answers for one).
function notFound(summary: string) {
  return {
    exit: 1,
    summary,
    mcp: 'protocol',
    http: 404,
    rpc: ProtocolErrorCode.InvalidParams,
    audit: 'denied',
  } as const;
}
function alias(surfaceAs: 'TOOL_NOT_FOUND', summary: string) {
  return { ...notFound(summary), surfaceAs } as const;
}
function http(status: number, rpc: number, summary: string) {
  return { exit: 1, summary, mcp: 'none', http: status, rpc, audit: 'none' } as const;
}
