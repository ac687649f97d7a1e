import type { ViewEntry } from '../control/view.js';
import type { WardenError } from '../errors/index.js';
import type { FormData } from '../lib/undici-parts.js';
import type { OnBehalfOf } from '../model/audit.js';
import type { Tool } from '../model/catalog.js';
import type { ConnectRequest } from '../model/connection.js';
import type { Principal } from '../model/principal.js';
import type { Limits } from '../policy/evaluate.js';

/** What the MCP layer hands the pipeline for one `tools/call`. */
export interface CallInput {
  /** Tool name exactly as the client sent it (untrusted). */
  name: string;
  /** Arguments exactly as the client sent them (untrusted, may be anything). */
  arguments: unknown;
  /** Who is calling, as authentication produced it: the stdio principal, or the HTTP caller (its id, scopes and how it authenticated). */
  principal: Principal;
  /** How this client can be asked to confirm a call; absent: it cannot elicit (operator approval, or the agent's token). */
  confirmation?: ConfirmationChannel;
  /** The client's self-declared name, for the audit only (never trusted). */
  client?: string;
  /** Aborted when the client cancels or disconnects. */
  signal?: AbortSignal;
  /**
   * Told the connect link before a call ends CONNECTION_REQUIRED, for a client that declared URL-mode
   * elicitation (the MCP layer sends it as one). Never fails the call: the result carries the link too.
   */
  onConnect?: (c: ConnectRequest) => Promise<void>;
  /** The caller's trace context and request identity; set by the MCP layer only when tracing is on. */
  trace?: IncomingTrace;
  /**
   * The MCP session the call belongs to, when the transport has one (Streamable HTTP with sessions):
   * the taint guard remembers reads per principal and session. Absent: per principal only.
   */
  session?: string;
}

/**
 * What the call's span is made from, as the client sent it (untrusted): `traceparent`/`tracestate`
 * from the request's `_meta`, else from the HTTP headers. A malformed `traceparent` starts a new trace.
 */
export interface IncomingTrace {
  traceparent?: string;
  tracestate?: string;
  /** The JSON-RPC request id (`jsonrpc.request.id`). */
  requestId?: string | number;
  /** The protocol version of the request (`mcp.protocol.version`). */
  protocolVersion?: string;
  /** The MCP session, when the transport has one (`mcp.session.id`). */
  sessionId?: string;
}

/**
 * Tracing as the pipeline sees it: built once by `observe/tracing.ts`, absent when tracing is off
 * (then the pipeline runs its plain loop and no span exists).
 */
export interface CallTracer {
  /** The call's SERVER span, a child of the incoming trace context when there is a valid one. */
  startCall(ctx: CallContext): CallSpan;
}

/** One call's spans. Stages run one at a time, so "the current stage" is always well defined. */
export interface CallSpan {
  /** Opens the span of the stage about to run (a child of the call's). */
  enterStage(name: string): void;
  /** Closes it; `code`: the error code the stage failed with. */
  exitStage(code?: string): void;
  /** One upstream try: a CLIENT span under the current stage, and the trace headers that name it. */
  upstream(req: UpstreamTry): UpstreamSpan;
  /** Closes the call's span once the call is audited. */
  end(ctx: CallContext): void;
}

/** What the CLIENT span of one upstream try says: the path template, never the filled path or query. */
export interface UpstreamTry {
  method: string;
  origin: string;
  /** The path template (base path included), e.g. `/v1/customers/{customerId}`. */
  template: string;
  /** 0 for the first try, then 1, 2… (`http.request.resend_count`). */
  resend: number;
}

export interface UpstreamSpan {
  /** `traceparent` (and `tracestate`) to send upstream: they name this span. */
  readonly headers: Readonly<Record<string, string>>;
  /** `status`: the upstream's answer; `error`: the code when no answer came. */
  end(outcome: { status?: number; error?: string }): void;
}

/**
 * How a client answers a confirmation. `mrtr`: a 2026-07-28 client retrying with the answer to an
 * `input_required` elicitation (`state` is what the gateway minted); `elicit`: a 2025-11-25 client
 * that declared elicitation, asked in-band. The answer (`answer`, or what `ask` resolves to) is the
 * client's elicitation result exactly as received, untrusted: the confirm stage reads it.
 */
export type ConfirmationChannel =
  | { kind: 'mrtr'; state?: string; answer?: unknown }
  | { kind: 'elicit'; ask: (message: string) => Promise<unknown> };

/** The request the gateway will send, as derived from the arguments: safe to audit. */
export interface UpstreamRequest {
  method: string;
  /** Fixed at start-up: scheme, host and port (and any base path, in `basePath`). */
  origin: string;
  /** Encoded path, base path included: `/v1/customers/c%2F1`. */
  path: string;
  /** Encoded query string without `?`; empty when there is none. */
  query: string;
  /** The path template, base path included (`/v1/customers/{customerId}`): for traces, never filled. */
  template?: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | FormData;
  /** What the gateway changed, told to the agent with the result (e.g. a clamped page size). */
  notes?: string[];
}

/** The request with the upstream credential applied. Holds secrets: never logged or audited. */
export interface OutboundRequest {
  method: string;
  origin: string;
  /** Path and query, ready for the HTTP client. */
  pathAndQuery: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | FormData;
}

export interface UpstreamResponse {
  status: number;
  contentType: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Bytes received before the cap stopped reading (equals `body.length` unless truncated). */
  truncated: boolean;
  ms: number;
}

/** A `tools/call` result, in the MCP shape. */
export interface ToolResult {
  content: Array<{ type: 'text'; text: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  /** Set when the call waits for confirmation: the MCP layer may turn it into `input_required`. */
  pendingConfirmation?: { message: string; token: string };
}

/**
 * One call's state. Each stage writes exactly one field (named in its doc comment), so a reader of
 * the pipeline can tell where anything came from.
 */
export interface CallContext {
  readonly id: string;
  readonly startedAt: number;
  readonly input: CallInput;
  /** resolve → the tool being called. */
  tool?: Tool;
  /** resolve → the current view's entry for it: the policy decision, blockers and limits. */
  decision?: ViewEntry & { limits: Limits; policyVersion: number };
  /**
   * confirm → how the call was confirmed, when it needed to be; `approval`: the out-of-band request
   * it ran under, or (not confirmed) the one it was parked on, refused by or told had expired.
   */
  confirmed?: { via?: 'token' | 'elicitation' | 'input_required' | 'operator'; approval?: string };
  /** validate → the arguments, checked against the tool's input schema. */
  args?: Record<string, unknown>;
  /** build → the request derived from the arguments. */
  request?: UpstreamRequest;
  /** inject → the request with the credential; never leaves the send stage. */
  outbound?: OutboundRequest;
  /** inject (with `outbound`) → whose upstream identity the credential carries, when a person's. */
  onBehalfOf?: OnBehalfOf;
  /** send → what the upstream answered (possibly truncated). */
  response?: UpstreamResponse;
  /** answer → the upstream response as a tool result, before masking and limits. */
  answer?: ToolResult & {
    /** Parsed JSON body (wrapped as `{result}` when the tool's output is), and whether it is structured content. */
    json?: { value: unknown; structured: boolean };
  };
  /**
   * screen → the response's untrusted content: the fields whose text looks like instructions aimed at
   * the agent (`path`: a JSON pointer into the JSON body, `''` the whole body; never the text; its
   * segments are upstream keys, shown and audited only through `safePath`) with the detector's
   * reasons, and what the policy does with them (protect applies it). Set for every response with a
   * body (empty `flagged`: nothing suspicious was read); absent when there was none. The answer
   * stage sets it too, with `withhold`, when an upstream error excerpt was flagged (and withheld).
   */
  untrusted?: {
    flagged: Array<{ path: string; signals: string[]; spans?: Array<[number, number]> }>;
    action: 'annotate' | 'redact' | 'withhold';
  };
  /** protect → the result for the agent: masked, redacted, capped. */
  result?: ToolResult;
  /** protect (and the runner, for error excerpts) → what was masked, dropped or redacted, by kind. */
  redactions?: Record<string, number>;
  /**
   * taint → the earlier read that makes this outward call suspect (src/pipeline/taint.ts): refused
   * (`refuse`), or parked for an operator by the confirm stage (`park`).
   */
  taintedBy?: {
    callId: string;
    tool: string;
    at: string;
    classes: string[];
    reason: string;
    action: 'refuse' | 'park';
  };
  /** taint-record → what this call's result put in the caller's taint: the classes it read in clear. */
  taints?: string[];
  /**
   * budget (the check, before confirm) → the budget of this call nearest its limit, or the one it
   * hit, or (for a caller already read-only) the one that restricted it; spend (just before send)
   * updates `used` once the call's units are counted (docs/budgets.md).
   */
  budget?: { name: string; class?: string; unit: 'calls' | 'records'; used: number; limit: number };
  /** Set by the runner when a stage throws. */
  error?: WardenError;
  /** Set by the runner when tracing is on: the call's spans (send opens the upstream's under it). */
  trace?: CallSpan;
  /** Set by the runner once the call is audited (`performance.now()`): observers, told later, time the call to it. */
  endedAt?: number;
}

/** A stage: compiled once by its `createX(options)`, then a named function of the context. */
export type Stage = (ctx: CallContext) => void | Promise<void>;
