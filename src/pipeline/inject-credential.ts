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

  /** One credential's wire value (a promise for a token still to be fetched); says on whose behalf. */
  const wireOf = (ctx: CallContext, held: HeldEntry): string | Promise<string> => {
    const { cred, scopes } = held;
    const pending =
      cred.kind === 'userOAuth' && options.userCredentials
        ? userToken(options.userCredentials, ctx)
        : cred.wireValue(scopes, ctx.input.principal);
    if (cred.kind !== 'service')
      ctx.onBehalfOf = { principal: ctx.input.principal.id, credential: cred.kind };
    return pending;
  };

  /** The rest of the credentials once one of them is a promise: each awaited in turn, as before. */
  async function finish(
    ctx: CallContext,
    creds: readonly HeldEntry[],
    at: number,
    pending: Promise<string>,
    out: Placed,
  ): Promise<void> {
    place(out, creds[at]!.cred.placement, await pending);
    for (let i = at + 1; i < creds.length; i++) {
      const next = wireOf(ctx, creds[i]!);
      place(out, creds[i]!.cred.placement, typeof next === 'string' ? next : await next);
    }
    ctx.outbound = outboundOf(ctx.request!, out);
  }

  // Synchronous while every value is at hand (keys, static tokens): no promise per call. A refusal
  // is still a rejected promise, as from the async stage this was.
  return function injectCredential(ctx: CallContext): Promise<void> | undefined {
    try {
      const tool = ctx.tool!;
      const req = ctx.request!;
      const held = credentials.forTool(tool);
      if (!held)
        throw new WardenError(
          'CREDENTIAL_MISSING',
          `The gateway holds no upstream credential for ${tool.name}; ask its operator to configure one.`,
        );
      // Copied into a fresh literal, not spread: a spread clone's shape takes no cached transition
      // for the header added next (V8 built a new hidden class for it on every call, ~1 µs).
      const out: Placed = { headers: Object.assign({}, req.headers), query: req.query };
      const { creds } = held;
      for (let i = 0; i < creds.length; i++) {
        const value = wireOf(ctx, creds[i]!);
        if (typeof value !== 'string') return finish(ctx, creds, i, value, out);
        place(out, creds[i]!.cred.placement, value);
      }
      ctx.outbound = outboundOf(req, out);
      return undefined;
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

type HeldEntry = NonNullable<ReturnType<CredentialSet['forTool']>>['creds'][number];

/** The request's headers and query as the credentials are placed in them. */
interface Placed {
  headers: Record<string, string>;
  query: string | undefined;
}

/** Puts one credential value where its scheme says. */
function place(out: Placed, where: HeldEntry['cred']['placement'], value: string): void {
  if (where.in === 'header') out.headers[where.name] = value;
  else if (where.in === 'query')
    out.query = `${out.query ? `${out.query}&` : ''}${encodeURIComponent(where.name)}=${encodeURIComponent(value)}`;
  else {
    const pair = `${encodeURIComponent(where.name)}=${encodeURIComponent(value)}`;
    out.headers.cookie = out.headers.cookie ? `${out.headers.cookie}; ${pair}` : pair;
  }
}

function outboundOf(req: NonNullable<CallContext['request']>, out: Placed): OutboundRequest {
  return {
    method: req.method,
    origin: req.origin,
    pathAndQuery: out.query ? `${req.path}?${out.query}` : req.path,
    headers: out.headers,
    ...(req.body !== undefined ? { body: req.body } : {}),
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
