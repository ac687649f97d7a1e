import type { AuthRequirement, OAuthSchemeUrls, ToolAuth } from '../model/catalog.js';

type Schemes = Record<string, unknown>;

/**
 * Reads `components.securitySchemes` and an operation's effective `security` (its own, else the
 * document's) into plain requirement sets. `security: []` — or no security anywhere — is public.
 */
export function operationAuth(schemes: Schemes, opSecurity: unknown, docSecurity: unknown): ToolAuth {
  const security = Array.isArray(opSecurity) ? opSecurity : Array.isArray(docSecurity) ? docSecurity : [];
  const alternatives: AuthRequirement[][] = [];
  let anonymous = security.length === 0;
  for (const req of security) {
    if (!req || typeof req !== 'object') continue;
    const entries = Object.entries(req as Record<string, unknown>);
    // `{}` inside the list means "or no auth at all".
    if (entries.length === 0) {
      anonymous = true;
      continue;
    }
    alternatives.push(entries.map(([name, scopes]) => describeScheme(name, schemes[name], scopes)));
  }
  return { public: anonymous, alternatives };
}

export function describeScheme(name: string, raw: unknown, scopes: unknown): AuthRequirement {
  const s = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const list = Array.isArray(scopes) ? scopes.filter((x): x is string => typeof x === 'string') : [];
  const type = typeof s.type === 'string' ? s.type : 'unknown';
  const base: AuthRequirement = { scheme: name, type: 'unknown', jwt: false, scopes: list };
  switch (type) {
    case 'apiKey': {
      const where = s.in === 'query' || s.in === 'cookie' ? s.in : 'header';
      return { ...base, type: 'apiKey', in: where, paramName: typeof s.name === 'string' ? s.name : '' };
    }
    case 'http': {
      const httpScheme = typeof s.scheme === 'string' ? s.scheme.toLowerCase() : 'bearer';
      const bearerFormat = typeof s.bearerFormat === 'string' ? s.bearerFormat : undefined;
      return {
        ...base,
        type: 'http',
        httpScheme,
        ...(bearerFormat ? { bearerFormat } : {}),
        jwt: httpScheme === 'bearer' && /jwt/i.test(bearerFormat ?? ''),
      };
    }
    case 'oauth2': {
      const flows = s.flows && typeof s.flows === 'object' ? Object.keys(s.flows) : [];
      // OAuth2 access tokens are bearer tokens; JWT-ness is not declared by OpenAPI.
      return { ...base, type: 'oauth2', flows };
    }
    case 'openIdConnect':
      return { ...base, type: 'openIdConnect', jwt: true };
    case 'mutualTLS':
      return { ...base, type: 'mutualTLS' };
    default:
      return base;
  }
}

/**
 * The authorization-server URLs of every OAuth scheme of `components.securitySchemes` that declares
 * any: per-user OAuth's defaults when the policy names none. Only strings of sane length are kept.
 */
export function oauthSchemeUrls(schemes: Schemes): Record<string, OAuthSchemeUrls> {
  const out: Record<string, OAuthSchemeUrls> = {};
  const url = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 2000 ? v : undefined);
  for (const [name, raw] of Object.entries(schemes)) {
    const s = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const found: OAuthSchemeUrls = {};
    if (s.type === 'oauth2') {
      const flows = (s.flows && typeof s.flows === 'object' ? s.flows : {}) as Record<string, unknown>;
      const code = (
        flows.authorizationCode && typeof flows.authorizationCode === 'object' ? flows.authorizationCode : {}
      ) as Record<string, unknown>;
      for (const k of ['authorizationUrl', 'tokenUrl', 'refreshUrl'] as const) {
        const v = url(code[k]);
        if (v !== undefined) found[k] = v;
      }
    } else if (s.type === 'openIdConnect') {
      const v = url(s.openIdConnectUrl);
      if (v !== undefined) found.openIdConnectUrl = v;
    }
    if (Object.keys(found).length) out[name] = found;
  }
  return out;
}

/**
 * Request parameters that a security scheme owns. The gateway injects them; an agent must never
 * supply them, so they are not tool arguments. `Authorization` is always owned: the gateway never
 * forwards a caller-chosen credential.
 */
export function ownedParameters(
  auth: ToolAuth,
): Array<{ in: 'header' | 'query' | 'cookie'; name: string; scheme: string }> {
  const owned: Array<{ in: 'header' | 'query' | 'cookie'; name: string; scheme: string }> = [
    { in: 'header', name: 'authorization', scheme: '(any)' },
  ];
  for (const alt of auth.alternatives) {
    for (const r of alt) {
      if (r.type === 'apiKey' && r.in && r.paramName)
        owned.push({ in: r.in, name: r.paramName, scheme: r.scheme });
    }
  }
  return owned;
}

export function isOwned(
  owned: ReturnType<typeof ownedParameters>,
  where: string,
  name: string,
): { scheme: string } | undefined {
  // Header names are case-insensitive on the wire; query and cookie names are not.
  return owned.find(
    (o) =>
      o.in === where && (where === 'header' ? o.name.toLowerCase() === name.toLowerCase() : o.name === name),
  );
}
