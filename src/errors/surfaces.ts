import type { ServerResponse } from 'node:http';
import { ProtocolError } from '@modelcontextprotocol/server';
import { type ErrorCode, mappingOf } from './codes.js';
import { toWardenError, WardenError } from './error.js';

/**
 * Every way an error leaves the gateway, one function per surface: the MCP tool result, the MCP
 * protocol error, the HTTP reply (MCP endpoint and admin port), the audit decision and the CLI exit
 * code. Each reads the table in `codes.ts`; nothing else picks a status or a JSON-RPC number.
 */

/** The code a client sees: an aliased code shows as what it stands for (the audit keeps the real one). */
export function surfacedCode(code: ErrorCode): ErrorCode {
  return mappingOf(code).surfaceAs ?? code;
}

/** What a client is told: an internal error's own message may hold paths or secrets. */
function clientMessage(e: WardenError): string {
  return e.code === 'INTERNAL' ? 'internal error' : e.message;
}

/** A failed `tools/call` as an `isError` result (assignable to the pipeline's `ToolResult`). */
export interface ToolErrorResult {
  content: Array<{ type: 'text'; text: string }>;
  isError: true;
  /** CONFIRMATION_REQUIRED: the MCP layer may turn it into `input_required`. */
  pendingConfirmation?: { message: string; token: string };
}

/** MCP tool result: the code first (models and tests key on it), then what to do about it. */
export function toolErrorResult(e: WardenError): ToolErrorResult {
  const code = surfacedCode(e.code);
  const lines = [`[${code}] ${code === 'INTERNAL' ? 'The gateway failed to complete the call.' : e.message}`];
  for (const d of e.details) lines.push(`- ${d}`);
  const content: ToolErrorResult['content'] = [{ type: 'text', text: lines.join('\n') }];
  if (e.text) content.push({ type: 'text', text: e.text });
  return { content, isError: true, ...(e.pending ? { pendingConfirmation: e.pending } : {}) };
}

/** Whether a call's error is thrown as a JSON-RPC error (true) or returned as an `isError` result. */
export function isProtocolSurface(code: ErrorCode): boolean {
  return mappingOf(code).mcp === 'protocol';
}

/**
 * The one decision for a failed call: the `isError` result to return, or — for a protocol-surface
 * code — the error itself is thrown, for the MCP layer to answer with `toProtocolError`.
 */
export function settleCallError(e: WardenError): ToolErrorResult {
  if (isProtocolSurface(e.code)) throw e;
  return toolErrorResult(e);
}

/**
 * MCP protocol error: anything thrown out of an MCP request handler, as the JSON-RPC error the client
 * receives: the table's number, and the (surfaced) code in `data`. Whatever is not ours is INTERNAL.
 */
export function toProtocolError(e: unknown): ProtocolError {
  const err = toWardenError(e);
  const code = surfacedCode(err.code);
  return new ProtocolError(mappingOf(code).rpc, clientMessage(err), { code });
}

/** The HTTP status a code answers with. */
export function httpStatus(code: ErrorCode): number {
  return mappingOf(surfacedCode(code)).http;
}

/** How an HTTP error body is wrapped: the MCP endpoint speaks JSON-RPC; the admin port `{ error, message }`. */
export type HttpEnvelope = 'json-rpc' | 'admin';

export interface HttpError {
  code: ErrorCode;
  message: string;
  details?: readonly string[];
}

/**
 * HTTP reply: the status from the table and a JSON body. On the MCP endpoint a JSON-RPC error with
 * `id: null` (the request was never dispatched); on the admin port `{ error, message }`. The message
 * is the gateway's own: nothing from the request is echoed.
 */
export function replyHttpError(
  res: ServerResponse,
  envelope: HttpEnvelope,
  e: HttpError,
  headers: Record<string, string> = {},
): void {
  const code = surfacedCode(e.code);
  // A thrown internal error's message may name paths or values: the client gets a fixed one.
  const hidden = code === 'INTERNAL' && e instanceof WardenError;
  const message = hidden ? 'Internal error.' : e.message;
  const details = hidden ? undefined : e.details;
  const body =
    envelope === 'json-rpc'
      ? jsonRpcError({ code, message }, null)
      : { error: code, message, ...(details ? { details } : {}) };
  res.writeHead(httpStatus(code), { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * A transport refusal as a JSON-RPC error message: the table's number and the (surfaced) code in
 * `data`. The HTTP reply wraps it (`id: null`: never dispatched); stdio frames answer their own id.
 */
export function jsonRpcError(e: HttpError, id: string | number | null) {
  const code = surfacedCode(e.code);
  return {
    jsonrpc: '2.0' as const,
    error: { code: mappingOf(code).rpc, message: e.message, data: { code } },
    id,
  };
}

/** Audit decision: a call that ended in this error was refused before the upstream, or allowed and failed. */
export function auditDecision(code: ErrorCode): 'allowed' | 'denied' {
  return mappingOf(code).audit === 'denied' ? 'denied' : 'allowed';
}

/** CLI exit code for an error that ends a command. */
export function exitCode(code: ErrorCode): number {
  return mappingOf(code).exit;
}
