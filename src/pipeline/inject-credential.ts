import { WardenError } from '../errors.js';
import type { CredentialSet } from '../upstream/credentials.js';
import type { CallContext, OutboundRequest } from './context.js';

export interface InjectOptions {
  credentials: CredentialSet;
}

/**
 * Writes `ctx.outbound`. Picks the first of the operation's security alternatives the gateway holds
 * every credential for and puts each where its scheme says. The caller's own token is never
 * forwarded: the request is built from the arguments alone, and the catalogue keeps every place a
 * scheme owns out of the arguments.
 */
export function createInjectCredential(options: InjectOptions) {
  const { byScheme } = options.credentials;

  return function injectCredential(ctx: CallContext): void {
    const tool = ctx.tool!;
    const req = ctx.request!;
    const headers = { ...req.headers };
    let query = req.query;

    const alts = tool.auth.alternatives;
    if (!tool.auth.public && alts.length > 0) {
      // A held credential is used even when an alternative says authentication is optional (`{}`).
      const held = (alt: (typeof alts)[number]) => alt.every((r) => byScheme.has(r.scheme));
      const usable = alts.find((alt) => alt.length > 0 && held(alt)) ?? alts.find((alt) => alt.length === 0);
      if (!usable)
        throw new WardenError(
          'CREDENTIAL_MISSING',
          `The gateway holds no upstream credential for ${tool.name}; ask its operator to configure one.`,
        );
      for (const r of usable) {
        const { place } = byScheme.get(r.scheme)!;
        if (place.in === 'header') headers[place.name] = place.value;
        else if (place.in === 'query')
          query = `${query ? `${query}&` : ''}${encodeURIComponent(place.name)}=${encodeURIComponent(place.value)}`;
        else {
          const pair = `${encodeURIComponent(place.name)}=${encodeURIComponent(place.value)}`;
          headers.cookie = headers.cookie ? `${headers.cookie}; ${pair}` : pair;
        }
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
