import { WardenError } from '../errors/index.js';
import type { ConnectRequest, UserCredentials } from '../model/connection.js';
import type { CredentialSet } from '../upstream/credentials.js';
import type { CallContext, OutboundRequest } from './context.js';

export interface InjectOptions {
  credentials: Pick<CredentialSet, 'forTool'>;
  /** Per-user OAuth (src/upstream/user-oauth.ts); absent: `userOAuth` credentials are not served. */
  userCredentials?: Pick<UserCredentials, 'tokenFor'>;
}

/**
 * Writes `ctx.outbound`. Puts each credential of the tool's security alternative where its scheme
 * says, after the request is built, so no argument can overwrite or read it. The caller's own token
 * is never forwarded: the request is built from the arguments alone, and the catalogue keeps every
 * place a scheme owns out of the arguments.
 */
export function createInjectCredential(options: InjectOptions) {
  const { credentials } = options;

  return async function injectCredential(ctx: CallContext): Promise<void> {
    const tool = ctx.tool!;
    const req = ctx.request!;
    const held = credentials.forTool(tool);
    if (!held)
      throw new WardenError(
        'CREDENTIAL_MISSING',
        `The gateway holds no upstream credential for ${tool.name}; ask its operator to configure one.`,
      );
    const headers = { ...req.headers };
    let query = req.query;
    for (const { cred, scopes } of held.creds) {
      const pending =
        cred.kind === 'userOAuth' && options.userCredentials
          ? userToken(options.userCredentials, ctx)
          : cred.wireValue(scopes, ctx.input.principal);
      if (cred.kind !== 'service')
        ctx.onBehalfOf = { principal: ctx.input.principal.id, credential: cred.kind };
      const value = typeof pending === 'string' ? pending : await pending;
      const { placement: place } = cred;
      if (place.in === 'header') headers[place.name] = value;
      else if (place.in === 'query')
        query = `${query ? `${query}&` : ''}${encodeURIComponent(place.name)}=${encodeURIComponent(value)}`;
      else {
        const pair = `${encodeURIComponent(place.name)}=${encodeURIComponent(value)}`;
        headers.cookie = headers.cookie ? `${headers.cookie}; ${pair}` : pair;
      }
    }
    const outbound: OutboundRequest = {
      method: req.method,
      origin: req.origin,
      pathAndQuery: query ? `${req.path}?${query}` : req.path,
      headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
    };
    ctx.outbound = outbound;
  };
}

/** The caller's own upstream token as a bearer value, or CONNECTION_REQUIRED with the link to connect. */
async function userToken(users: Pick<UserCredentials, 'tokenFor'>, ctx: CallContext): Promise<string> {
  const caller = {
    principal: ctx.input.principal,
    ...(ctx.input.client !== undefined ? { client: ctx.input.client } : {}),
  };
  const outcome = await users.tokenFor(caller, ctx.tool!);
  if ('token' in outcome) return `Bearer ${outcome.token}`;
  await ctx.input.onConnect?.(outcome.connect);
  throw connectionRequired(ctx.tool!.name, outcome.connect);
}

/** What the agent can act on: the link for its user, what it is for, and that the call can be retried. */
function connectionRequired(tool: string, c: ConnectRequest): WardenError {
  return new WardenError(
    'CONNECTION_REQUIRED',
    `${tool} acts upstream as the user's own account, which is not connected yet (or lacks the scopes this tool needs). Nothing was run.`,
    {
      details: [
        `Ask the user to open this link and approve access: ${c.url}`,
        `It asks for the scopes: ${c.scopes.join(' ') || '(none)'}; it works once, until ${new Date(c.expiresAt).toISOString()}.`,
        'Once they have connected, retry the same call.',
      ],
    },
  );
}
