import { WardenError } from '../errors/index.js';
import type { CredentialSet } from '../upstream/credentials.js';
import type { CallContext, OutboundRequest } from './context.js';

export interface InjectOptions {
  credentials: Pick<CredentialSet, 'forTool'>;
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
      const pending = cred.wireValue(scopes);
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
