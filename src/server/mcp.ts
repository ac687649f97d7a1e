import {
  acceptedContent,
  type CallToolResult,
  CLIENT_INFO_META_KEY,
  inputRequired,
  inputResponse,
  type McpRequestContext,
  type McpServerFactory,
  ProtocolError,
  ProtocolErrorCode,
  Server,
} from '@modelcontextprotocol/server';
import type { ToolView } from '../control/view.js';
import { CALL_TOOL, META_NAMES, type MetaTools, metaTools, SEARCH_TOOL } from '../discover/meta-tools.js';
import { ERROR_CODES, isWardenError, type WardenError } from '../errors/index.js';
import type { Catalog } from '../model/catalog.js';
import type { Principal } from '../model/principal.js';
import type { CallInput, ConfirmationChannel } from '../pipeline/context.js';
import { errorResult, type Pipeline } from '../pipeline/index.js';
import { VERSION } from '../version.js';

export interface McpWiring {
  catalog: Catalog;
  pipeline: Pick<Pipeline, 'call'>;
  view: () => ToolView;
  /** Who is calling, given the serving context (stdio: the policy's local principal). */
  principalOf: (ctx: McpRequestContext) => Principal;
  /** In-band `elicitation/create` works only on a connection (stdio), not on stateless HTTP. */
  inBandElicitation: boolean;
  /** Told of each server built, so `tools/list_changed` can reach connected (stdio) clients. */
  onServer?: (server: Server) => void;
  /** Dynamic mode: list three meta-tools (search, describe, call) instead of the catalogue. */
  dynamic?: MetaTools;
}

const CONFIRM_KEY = 'confirm';
const CONFIRM_SCHEMA = {
  type: 'object' as const,
  properties: {
    confirm: {
      type: 'boolean' as const,
      title: 'Run this call',
      description: 'Approve the call described above.',
    },
  },
  required: ['confirm'],
};

/**
 * The MCP surface, kept thin: `tools/list` answers from the current view filtered by the caller's
 * scopes, and `tools/call` hands everything to the pipeline. The same factory serves both protocol
 * eras; a fresh `Server` per HTTP request (or per stdio connection) holds no call state.
 */
export function createServerFactory(w: McpWiring): McpServerFactory {
  const instructions =
    `Tools for ${w.catalog.title || 'an HTTP API'}, served through mcp-warden. ` +
    'Every call is checked, audited and may need the user’s confirmation; tools that are not listed are not available.';

  const meta = metaTools(w.catalog.title);

  return (ctx: McpRequestContext) => {
    const server = new Server(
      { name: 'mcp-warden', version: VERSION, title: `mcp-warden: ${w.catalog.title}`.slice(0, 120) },
      { capabilities: { tools: { listChanged: true } }, instructions },
    );
    server.setRequestHandler(
      'tools/list',
      () => ({ tools: w.dynamic ? meta : w.view().listFor(w.principalOf(ctx).scopes) }) as never,
    );
    server.setRequestHandler('tools/call', async (req, c) => {
      let name = req.params.name;
      let args: unknown = req.params.arguments;
      if (w.dynamic && META_NAMES.has(name)) {
        const scopes = w.principalOf(ctx).scopes;
        try {
          if (name === CALL_TOOL) {
            // Unwrapped here, then the very path of a direct call below: one pipeline, every guard.
            const target = w.dynamic.target(args);
            name = target.name;
            args = target.arguments;
          } else {
            const view = w.view();
            const out =
              name === SEARCH_TOOL
                ? w.dynamic.find(view, scopes, args)
                : w.dynamic.describe(view, scopes, args);
            return {
              content: [{ type: 'text', text: JSON.stringify(out) }],
              structuredContent: out as unknown as Record<string, unknown>,
            } as never;
          }
        } catch (e) {
          if (!isWardenError(e)) throw new ProtocolError(ProtocolErrorCode.InternalError, 'internal error');
          if (ERROR_CODES[e.code].mcp === 'protocol') throw asProtocolError(e);
          const { pendingConfirmation: _p, ...result } = errorResult(e);
          return result as never;
        }
      }
      // 2026-07-28 clients name themselves in each request's _meta; 2025 clients at initialize.
      const info = (c.mcpReq._meta as Record<string, unknown> | undefined)?.[CLIENT_INFO_META_KEY] as
        | { name?: unknown }
        | undefined;
      const declared = typeof info?.name === 'string' ? info.name : server.getClientVersion()?.name;
      const client = declared?.slice(0, 100);
      const principal = w.principalOf(ctx);
      const confirmation = channelFor(ctx, server, c, w.inBandElicitation);
      const input: CallInput = {
        name,
        arguments: args,
        principal: principal.id,
        scopes: principal.scopes,
        ...(client !== undefined ? { client } : {}),
        ...(confirmation ? { confirmation } : {}),
        signal: c.mcpReq.signal,
      };
      try {
        const { pendingConfirmation, ...result } = await w.pipeline.call(input);
        if (pendingConfirmation && confirmation?.kind === 'mrtr')
          return inputRequired({
            inputRequests: {
              [CONFIRM_KEY]: inputRequired.elicit({
                message: pendingConfirmation.message,
                requestedSchema: CONFIRM_SCHEMA,
              }),
            },
            requestState: pendingConfirmation.token,
          }) as never;
        // Through call_tool, the result is the called tool's; call_tool itself declares no output schema.
        return server.projectCallToolResult(
          result as CallToolResult,
          name === req.params.name ? w.view().get(name)?.listed.outputSchema : undefined,
        );
      } catch (e) {
        // Only protocol-surface codes are thrown by the pipeline.
        if (isWardenError(e)) throw asProtocolError(e);
        throw new ProtocolError(ProtocolErrorCode.InternalError, 'internal error');
      }
    });
    w.onServer?.(server);
    return server;
  };
}

/** A protocol-surface error; an aliased code shows as what it stands for. */
function asProtocolError(e: WardenError): ProtocolError {
  const code = ERROR_CODES[e.code] as { surfaceAs?: string };
  return new ProtocolError(ProtocolErrorCode.InvalidParams, e.message, { code: code.surfaceAs ?? e.code });
}

/** The best confirmation channel this client offers. */
function channelFor(
  ctx: McpRequestContext,
  server: Server,
  c: { mcpReq: { inputResponses?: Record<string, unknown>; requestState: () => unknown } },
  inBand: boolean,
): ConfirmationChannel | undefined {
  if (ctx.era === 'modern') {
    const state = c.mcpReq.requestState();
    const view = inputResponse(c.mcpReq.inputResponses, CONFIRM_KEY);
    const content = acceptedContent(c.mcpReq.inputResponses, CONFIRM_KEY);
    return {
      kind: 'mrtr',
      ...(typeof state === 'string' ? { state } : {}),
      ...(view.kind === 'elicit'
        ? { answer: { action: view.action, confirmed: content?.confirm === true } }
        : {}),
    };
  }
  if (inBand && server.getClientCapabilities()?.elicitation)
    return {
      kind: 'elicit',
      ask: async (message) => {
        const r = await server.elicitInput({ mode: 'form', message, requestedSchema: CONFIRM_SCHEMA });
        return { action: r.action, confirmed: r.action === 'accept' && r.content?.confirm === true };
      },
    };
  return undefined;
}
