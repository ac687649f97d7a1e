import {
  type CallToolResult,
  CLIENT_INFO_META_KEY,
  type McpRequestContext,
  type McpServerFactory,
  ProtocolError,
  ProtocolErrorCode,
  Server,
} from '@modelcontextprotocol/server';
import type { Catalog, Tool } from '../catalog/types.js';
import { isWardenError } from '../errors.js';
import type { Pipeline } from '../pipeline/index.js';
import { VERSION } from '../version.js';

export interface McpWiring {
  catalog: Catalog;
  pipeline: Pipeline;
  /** Who is calling, given the serving context (stdio: the local principal). */
  principalOf: (ctx: McpRequestContext) => string;
}

interface ListedTool {
  name: string;
  title?: string;
  description: string;
  inputSchema: Tool['inputSchema'];
  outputSchema?: Tool['outputSchema'];
  annotations: Tool['annotations'];
}

/**
 * The MCP surface, kept thin: `tools/list` answers from a list computed once at start-up, and
 * `tools/call` hands everything to the pipeline. The same factory serves both protocol eras; a fresh
 * `Server` per HTTP request (or per stdio connection) holds no state between calls.
 */
export function createServerFactory(w: McpWiring): McpServerFactory {
  const exposed = w.catalog.tools.filter((t) => t.exposure.exposed);
  const listed: ListedTool[] = exposed.map((t) => ({
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    description: t.description,
    inputSchema: t.inputSchema,
    ...(t.outputSchema ? { outputSchema: t.outputSchema } : {}),
    annotations: t.annotations,
  }));
  const outputSchemas = new Map(listed.map((t) => [t.name, t.outputSchema]));
  const instructions =
    `Tools for ${w.catalog.title || 'an HTTP API'}, served through mcp-warden. ` +
    'Every call is validated, rate-limited and audited; tools that are not listed are not available.';

  return (ctx: McpRequestContext) => {
    const server = new Server(
      { name: 'mcp-warden', version: VERSION, title: `mcp-warden: ${w.catalog.title}`.slice(0, 120) },
      { capabilities: { tools: {} }, instructions },
    );
    server.setRequestHandler('tools/list', () => ({ tools: listed }) as never);
    server.setRequestHandler('tools/call', async (req, c) => {
      // 2026-07-28 clients name themselves in each request's _meta; 2025 clients at initialize.
      const info = (c.mcpReq._meta as Record<string, unknown> | undefined)?.[CLIENT_INFO_META_KEY] as
        | { name?: unknown }
        | undefined;
      const declared = typeof info?.name === 'string' ? info.name : server.getClientVersion()?.name;
      const client = declared?.slice(0, 100);
      try {
        const result = await w.pipeline.call({
          name: req.params.name,
          arguments: req.params.arguments,
          principal: w.principalOf(ctx),
          ...(client !== undefined ? { client } : {}),
          signal: c.mcpReq.signal,
        });
        return server.projectCallToolResult(result as CallToolResult, outputSchemas.get(req.params.name));
      } catch (e) {
        // Only protocol-surface codes are thrown by the pipeline; the message is ours and safe.
        if (isWardenError(e))
          throw new ProtocolError(ProtocolErrorCode.InvalidParams, e.message, { code: e.code });
        throw new ProtocolError(ProtocolErrorCode.InternalError, 'internal error');
      }
    });
    return server;
  };
}
