import {
  type AuthInfo,
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  inputRequired,
  type McpRequestContext,
  PROTOCOL_VERSION_META_KEY,
  Server,
  type StandardSchemaV1,
  SUPPORTED_PROTOCOL_VERSIONS,
  TRACEPARENT_META_KEY,
  TRACESTATE_META_KEY,
} from '@modelcontextprotocol/server';
import type { ListedTool, ToolView } from '../control/view.js';
import { CALL_TOOL, META_NAMES, type MetaTools, metaTools, SEARCH_TOOL } from '../discover/meta-tools.js';
import { isWardenError, settleCallError, type ToolErrorResult, toProtocolError } from '../errors/index.js';
import type { Catalog } from '../model/catalog.js';
import type { ConnectRequest } from '../model/connection.js';
import { type Principal, tokenClientOf } from '../model/principal.js';
import type { CallInput, ConfirmationChannel, IncomingTrace } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/index.js';
import { VERSION } from '../version.js';
import { carriedPrincipal, idPart } from './callers.js';
import { directRequests } from './direct-requests.js';
import { LANE_REQUEST_ID, MODERN_REVISIONS, type SharedServerFactory } from './fast-lane.js';

export interface McpWiring {
  /** Only its title is used (server info, instructions): it can be known before the catalogue is. */
  catalog: Pick<Catalog, 'title'>;
  pipeline: Pick<Pipeline, 'call'>;
  view: () => ToolView;
  /** Stdio: the policy's local principal. Absent (HTTP): each request carries its authenticated caller. */
  stdioPrincipal?: Principal;
  /** In-band `elicitation/create` works only on a connection (stdio), not on stateless HTTP. */
  inBandElicitation: boolean;
  /**
   * Told of each server built, so `tools/list_changed` can reach connected (stdio) clients; HTTP
   * clients hear through their notification streams instead (list-changes.ts).
   */
  onServer?: (server: Server) => void;
  /** Dynamic mode: list three meta-tools (search, describe, call) instead of the catalogue. */
  dynamic?: MetaTools;
  /**
   * Whether `tools/list` carries each tool's `outputSchema` (the policy's `toolsList.outputSchemas`,
   * asked per request so a policy reload applies). Absent or false: left out, and results are
   * projected as for a tool without one; they are still checked and masked against it.
   */
  listOutputSchemas?: () => boolean;
  /** Tracing is on: each call carries the client's trace context and request identity. */
  tracing?: boolean;
  /**
   * Told of each connect link sent in-band as a URL elicitation, with how to send its
   * `notifications/elicitation/complete` once the flow's callback stores the connection.
   */
  completions?: {
    expect(id: string, principal: string, expiresAt: number, notify: () => Promise<void>): void;
  };
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
export function createServerFactory(w: McpWiring): SharedServerFactory & { modernShared: () => Server } {
  const instructions =
    `Tools for ${w.catalog.title || 'an HTTP API'}, served through mcp-warden. ` +
    'Every call is checked, audited and may need the user’s confirmation; tools that are not listed are not available.';

  const meta = metaTools(w.catalog.title);
  // An HTTP request of the 2026-07-28 era: the server lists that revision, so that connecting it to
  // its per-request transport binds it (the fast lane, fast-lane.ts). The SDK's own handler adds the
  // same revisions (and `server/discover`) to such an instance; 2025-era servers never list them.
  const modernVersions = [...SUPPORTED_PROTOCOL_VERSIONS, ...MODERN_REVISIONS];

  // `shared`: the one server the fast lane serves every 2026-07-28 HTTP request with (fast-lane.ts);
  // it reads the caller and the HTTP request from each request's context, never from `ctx`.
  const build = (ctx: McpRequestContext, shared: boolean) => {
    // Requests skip the router's two failing response parses (direct-requests.ts).
    const server = directRequests(
      new Server(
        { name: 'mcp-warden', version: VERSION, title: `mcp-warden: ${w.catalog.title}`.slice(0, 120) },
        {
          capabilities: { tools: { listChanged: true } },
          instructions,
          ...(shared || (ctx.era === 'modern' && ctx.requestInfo)
            ? { supportedProtocolVersions: modernVersions }
            : {}),
        },
      ),
    );
    // The caller authentication produced, for this request (HTTP) or connection (stdio).
    const fixed = shared ? undefined : (w.stdioPrincipal ?? carriedPrincipal(ctx.authInfo));
    const principalOf = (c: { http?: { authInfo?: AuthInfo } }): Principal =>
      fixed ?? carriedPrincipal(c.http?.authInfo);
    server.setRequestHandler('tools/list', (_req, c) => {
      if (w.dynamic) return { tools: meta } as never;
      // Output schemas are built only when listed (control/view.ts: half of a big spec's first list).
      const withOutput = w.listOutputSchemas?.() === true;
      const listed = w.view().listFor(principalOf(c).scopes, withOutput);
      return { tools: withOutput ? listed : withoutOutputSchemas(listed) } as never;
    });
    server.setRequestHandler('tools/call', async (req, c) => {
      const principal = principalOf(c);
      try {
        let name = req.params.name;
        let args: unknown = req.params.arguments;
        if (w.dynamic && META_NAMES.has(name)) {
          const answer = metaCall(w.dynamic, w.view(), principal.scopes, name, args);
          if ('result' in answer) return answer.result as never;
          // call_tool, unwrapped: then the very path of a direct call below — one pipeline, every guard.
          ({ name, arguments: args } = answer.target);
        }
        const client = clientOf(principal, c.mcpReq, server);
        const confirmation = channelFor(ctx, server, c, w.inBandElicitation);
        const connect = connectChannelFor(ctx, server, c, w.inBandElicitation, (r, notify) =>
          w.completions?.expect(r.id, principal.id, r.expiresAt, notify),
        );
        const input: CallInput = {
          name,
          arguments: args,
          principal,
          ...(client !== undefined ? { client } : {}),
          ...(confirmation ? { confirmation } : {}),
          ...(connect ? { onConnect: connect.onConnect } : {}),
          signal: c.mcpReq.signal,
          // The transport's session (Streamable HTTP with sessions): the taint guard's scope.
          ...(c.sessionId !== undefined ? { session: c.sessionId } : {}),
          ...(w.tracing ? { trace: incomingTrace(ctx, server, c) } : {}),
        };
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
        const link = connect?.asked();
        if (link)
          return inputRequired({
            inputRequests: {
              [CONNECT_KEY]: inputRequired.elicitUrl({ message: connectMessage(link), url: link.url }),
            },
          }) as never;
        // The projection follows what was listed: through call_tool the result is the called tool's
        // (call_tool declares no output schema), and an output schema left out of the list is none.
        return server.projectCallToolResult(
          result as CallToolResult,
          name === req.params.name && w.listOutputSchemas?.()
            ? w.view().get(name)?.listed.outputSchema
            : undefined,
        );
      } catch (e) {
        // Whatever is thrown leaves as a JSON-RPC error: ours with the table's number, anything else INTERNAL.
        throw toProtocolError(e);
      }
    });
    if (!shared) w.onServer?.(server);
    return server;
  };
  const factory = (ctx: McpRequestContext) => build(ctx, false);
  return Object.assign(factory, { modernShared: () => build({ era: 'modern' }, true) });
}

/** Each list (cached per view and scope set) stripped of output schemas once, not per request. */
const stripped = new WeakMap<readonly ListedTool[], ListedTool[]>();
function withoutOutputSchemas(tools: readonly ListedTool[]): ListedTool[] {
  let out = stripped.get(tools);
  if (!out) {
    out = tools.map((t) => {
      if (t.outputSchema === undefined) return t;
      const { outputSchema: _left, ...rest } = t;
      return rest;
    });
    stripped.set(tools, out);
  }
  return out;
}

/**
 * A meta-tool (dynamic mode): search and describe answer here; call_tool names the tool to run. A
 * failure is settled like a pipeline's: a tool result, or thrown as a protocol error.
 */
function metaCall(
  dynamic: MetaTools,
  view: ToolView,
  scopes: readonly string[],
  name: string,
  args: unknown,
):
  | { result: Omit<ToolErrorResult, 'pendingConfirmation'> | CallToolResult }
  | { target: { name: string; arguments: unknown } } {
  try {
    if (name === CALL_TOOL) return { target: dynamic.target(args) };
    const out =
      name === SEARCH_TOOL ? dynamic.find(view, scopes, args) : dynamic.describe(view, scopes, args);
    return {
      result: {
        content: [{ type: 'text', text: JSON.stringify(out) }],
        structuredContent: out as unknown as Record<string, unknown>,
      },
    };
  } catch (e) {
    // A bug is not the caller's mistake: it leaves as a protocol error (INTERNAL), never as a result.
    if (!isWardenError(e)) throw e;
    const { pendingConfirmation: _p, ...result } = settleCallError(e);
    return { result };
  }
}

/**
 * The MCP client a call comes through, as per-client consent and the audit name it: the OAuth client
 * id of the caller's verified token where it carries one (`oauth:<id>`: vouched for by the identity
 * provider, so a client cannot pass for another by its name), else the name the client declares.
 */
function clientOf(
  principal: Principal,
  req: { _meta?: unknown; envelope?: Record<string, unknown> },
  server: Server,
): string | undefined {
  const vouched = tokenClientOf(principal);
  if (vouched !== undefined) return `oauth:${idPart(vouched.slice(0, 200))}`;
  return clientName(req, server);
}

/** The client's self-declared name: 2026-07-28 clients give it in each request's _meta; 2025 clients at initialize. */
function clientName(
  req: { _meta?: unknown; envelope?: Record<string, unknown> },
  server: Server,
): string | undefined {
  // The fast lane hands the envelope over separately; the SDK's handler leaves it in `_meta`.
  const info = (req.envelope?.[CLIENT_INFO_META_KEY] ??
    (req._meta as Record<string, unknown> | undefined)?.[CLIENT_INFO_META_KEY]) as
    | { name?: unknown }
    | undefined;
  const declared = typeof info?.name === 'string' ? info.name : server.getClientVersion()?.name;
  // Self-declared and shown to people (audit, the connect page): escaped as principal ids are, so
  // bidi and zero-width characters cannot make one client look like another.
  return declared === undefined ? undefined : escapedClientName(declared);
}

/**
 * `idPart` of a declared client name, remembered for the names already seen (a client sends the
 * same one with every 2026-07-28 request). Only names of up to 100 characters (what is kept of any
 * name) and at most 256 of them, so that what clients declare cannot grow it: others are escaped each time.
 */
const escapedNames = new Map<string, string>();
function escapedClientName(declared: string): string {
  if (declared.length > 100) return idPart(declared.slice(0, 100));
  let escaped = escapedNames.get(declared);
  if (escaped === undefined) {
    escaped = idPart(declared);
    if (escapedNames.size < 256) escapedNames.set(declared, escaped);
  }
  return escaped;
}

/**
 * The client's trace context: `_meta.traceparent` (with its `tracestate`) when the request has one,
 * else the HTTP request's headers — never a mix of the two. Values are untrusted and only ever parsed
 * by the tracer's W3C propagator (malformed: a new trace). The rest names the request in the span.
 */
function incomingTrace(
  ctx: McpRequestContext,
  server: Server,
  c: {
    sessionId?: string;
    mcpReq: { id: string | number; _meta?: unknown; envelope?: Record<string, unknown> };
    http?: { req?: Request };
  },
): IncomingTrace {
  const meta = c.mcpReq._meta as Record<string, unknown> | undefined;
  // The lane's shared server gets the HTTP request (and the client's own id) with each request.
  const http = c.http?.req as (Request & { [LANE_REQUEST_ID]?: string | number }) | undefined;
  const headers = http?.headers ?? ctx.requestInfo?.headers;
  const fromMeta = typeof meta?.[TRACEPARENT_META_KEY] === 'string';
  const parent = fromMeta ? meta?.[TRACEPARENT_META_KEY] : headers?.get('traceparent');
  const state = fromMeta ? meta?.[TRACESTATE_META_KEY] : headers?.get('tracestate');
  const version =
    c.mcpReq.envelope?.[PROTOCOL_VERSION_META_KEY] ??
    server.getNegotiatedProtocolVersion() ??
    headers?.get('mcp-protocol-version');
  return {
    ...(typeof parent === 'string' ? { traceparent: parent } : {}),
    ...(typeof state === 'string' ? { tracestate: state } : {}),
    requestId: http?.[LANE_REQUEST_ID] ?? c.mcpReq.id,
    ...(typeof version === 'string' ? { protocolVersion: version } : {}),
    ...(c.sessionId !== undefined ? { sessionId: c.sessionId } : {}),
  };
}

/**
 * The result schema of the in-band question: whatever the client answers, as it answered it. The
 * confirm stage reads it strictly, so a malformed answer is a refusal there (audited, nothing run),
 * never an SDK validation error here, which would end the call as an internal error.
 */
const AS_RECEIVED: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'mcp-warden', validate: (value) => ({ value }) },
};

/** Stands for an answer the SDK dropped as not being a result object: the confirm stage refuses it. */
const NOT_A_RESULT = 'not an elicitation result';

/** The best confirmation channel this client offers, its answers untouched (see `AS_RECEIVED`). */
function channelFor(
  ctx: McpRequestContext,
  server: Server,
  c: {
    mcpReq: {
      inputResponses?: Record<string, unknown>;
      droppedInputResponseKeys?: string[];
      requestState: () => unknown;
      signal: AbortSignal;
      envelope?: Record<string, unknown>;
    };
  },
  inBand: boolean,
): ConfirmationChannel | undefined {
  if (ctx.era === 'modern') {
    // Only a client that declared form elicitation (in this request's capabilities) can answer
    // `input_required`; asking any other one fails the call (-32021), so it has no channel: its
    // confirmations go to an operator (approval: auto) or are refused (approval: elicit).
    if (!canElicitForm(c.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY])) return undefined;
    const state = c.mcpReq.requestState();
    // The SDK drops an entry that is not a bare result object (a string, an array, a wrapped
    // `{method, result}`); one was sent under our key, so the answer is malformed, not missing.
    const dropped = c.mcpReq.droppedInputResponseKeys?.includes(CONFIRM_KEY);
    const responses = c.mcpReq.inputResponses;
    return {
      kind: 'mrtr',
      ...(typeof state === 'string' ? { state } : {}),
      answer: dropped
        ? NOT_A_RESULT
        : responses && Object.hasOwn(responses, CONFIRM_KEY)
          ? responses[CONFIRM_KEY]
          : undefined,
    };
  }
  if (inBand && canElicitForm(server.getClientCapabilities()))
    return {
      kind: 'elicit',
      ask: (message) =>
        server.request(
          {
            method: 'elicitation/create',
            params: { mode: 'form', message, requestedSchema: CONFIRM_SCHEMA },
          },
          AS_RECEIVED,
          { signal: c.mcpReq.signal },
        ),
    };
  return undefined;
}

const CONNECT_KEY = 'connect';

const connectMessage = (c: ConnectRequest): string =>
  `Connect your account at ${c.upstream} so this call can act as you upstream (scopes: ${c.scopes.join(' ') || 'none'}). Retry the call once connected.`;

/**
 * The connect link as a URL-mode elicitation, for a client that declared `elicitation.url`: in-band
 * over stdio (2025-11-25, its `elicitationId` the flow's id), or a 2026-07-28 client's
 * `input_required` (`asked()` is the link to return, once: the retry that answers it gets the result,
 * whose text carries the link for every client). The user may decline; the result still says what to do.
 */
function connectChannelFor(
  ctx: McpRequestContext,
  server: Server,
  c: {
    mcpReq: {
      inputResponses?: Record<string, unknown>;
      droppedInputResponseKeys?: string[];
      signal: AbortSignal;
      envelope?: Record<string, unknown>;
    };
  },
  inBand: boolean,
  sent?: (r: ConnectRequest, notify: () => Promise<void>) => void,
): { onConnect: (r: ConnectRequest) => Promise<void>; asked: () => ConnectRequest | undefined } | undefined {
  if (ctx.era === 'modern') {
    if (!canElicitUrl(c.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY])) return undefined;
    const answered =
      (c.mcpReq.inputResponses !== undefined && Object.hasOwn(c.mcpReq.inputResponses, CONNECT_KEY)) ||
      c.mcpReq.droppedInputResponseKeys?.includes(CONNECT_KEY) === true;
    if (answered) return undefined;
    let link: ConnectRequest | undefined;
    return {
      onConnect: async (r) => {
        link = r;
      },
      asked: () => link,
    };
  }
  if (!inBand || !canElicitUrl(server.getClientCapabilities())) return undefined;
  return {
    onConnect: async (r) => {
      // Before asking: the user may finish the flow before the client answers the elicitation.
      if (sent) sent(r, () => server.createElicitationCompletionNotifier(r.id)());
      try {
        await server.elicitInput(
          { mode: 'url', message: connectMessage(r), url: r.url, elicitationId: r.id },
          { signal: c.mcpReq.signal },
        );
      } catch {
        // Declined, failed or cancelled: the result below carries the link either way.
      }
    },
    asked: () => undefined,
  };
}

/** Whether declared client capabilities include URL-mode elicitation (`elicitation.url`). */
function canElicitUrl(capabilities: unknown): boolean {
  const e = (capabilities as { elicitation?: unknown } | undefined)?.elicitation;
  return (
    e !== null && typeof e === 'object' && !Array.isArray(e) && (e as { url?: unknown }).url !== undefined
  );
}

/**
 * Whether declared client capabilities include form elicitation: `elicitation.form`, or a bare
 * `elicitation: {}` (2025-06-18 style, no mode named), as the SDK reads them. URL-only does not.
 */
function canElicitForm(capabilities: unknown): boolean {
  const e = (capabilities as { elicitation?: unknown } | undefined)?.elicitation;
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return false;
  const modes = e as Record<string, unknown>;
  return modes.form !== undefined || modes.url === undefined;
}
