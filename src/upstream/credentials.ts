import type { AuthRequirement, Tool } from '../catalog/types.js';
import { WardenError } from '../errors.js';

/** One upstream credential, bound to the security scheme it satisfies. */
export interface Credential {
  scheme: string;
  envVar: string;
  /** Where the value goes; the agent's arguments can never name this place (the catalogue strips it). */
  place: { in: 'header' | 'query' | 'cookie'; name: string; value: string };
}

export interface CredentialSet {
  byScheme: ReadonlyMap<string, Credential>;
  /** Every secret string derived from the credentials, for scrubbing logs, audit and results. */
  secrets: readonly string[];
  /** Schemes used by exposed tools with no usable credential, with the variable that would supply it. */
  missing: Array<{ scheme: string; envVar: string; tools: number; why: string }>;
}

/** `clinicKey` → `MCP_WARDEN_CRED_CLINICKEY`: upper-cased, every non-alphanumeric as `_`. */
export function credentialEnvVar(scheme: string): string {
  return `MCP_WARDEN_CRED_${scheme.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Reads the credential for every security scheme the given tools use from the environment. A value
 * that could split a header (CR, LF, NUL, other controls) is a start-up error; the message names
 * the variable, never the value.
 */
export function loadCredentials(tools: readonly Tool[], env: NodeJS.ProcessEnv): CredentialSet {
  const byScheme = new Map<string, Credential>();
  const secrets = new Set<string>();
  const usage = new Map<string, { req: AuthRequirement; tools: number }>();
  for (const t of tools)
    for (const alt of t.auth.alternatives)
      for (const req of alt) {
        const u = usage.get(req.scheme);
        if (u) u.tools++;
        else usage.set(req.scheme, { req, tools: 1 });
      }

  const missing: CredentialSet['missing'] = [];
  for (const [scheme, { req, tools: count }] of usage) {
    const envVar = credentialEnvVar(scheme);
    const raw = env[envVar];
    const placeOf = placement(req);
    if (typeof placeOf === 'string') {
      missing.push({ scheme, envVar, tools: count, why: placeOf });
      continue;
    }
    if (raw === undefined || raw === '') {
      missing.push({ scheme, envVar, tools: count, why: `${envVar} is not set` });
      continue;
    }
    if (!/^[\x20-\x7e]+$/.test(raw))
      throw new WardenError(
        'CONFIG_INVALID',
        `${envVar} contains a line break, control or non-ASCII character; it cannot be sent in a request`,
      );
    let value = raw;
    if (placeOf.kind === 'basic') {
      if (!raw.includes(':'))
        throw new WardenError(
          'CONFIG_INVALID',
          `${envVar} must be user:password for HTTP basic scheme ${scheme}`,
        );
      const i = raw.indexOf(':');
      value = `Basic ${Buffer.from(raw).toString('base64')}`;
      secrets.add(raw.slice(i + 1));
      secrets.add(Buffer.from(raw).toString('base64'));
    } else if (placeOf.kind === 'bearer') {
      value = `Bearer ${raw}`;
    }
    secrets.add(raw);
    byScheme.set(scheme, { scheme, envVar, place: { in: placeOf.in, name: placeOf.name, value } });
  }
  // The forms a value takes on the wire and in JSON are scrubbed as well as the value itself.
  for (const s of [...secrets]) {
    secrets.add(encodeURIComponent(s));
    secrets.add(JSON.stringify(s).slice(1, -1));
  }
  // Very short values would make scrubbing replace ordinary text; they are still never logged raw.
  return { byScheme, secrets: [...secrets].filter((s) => s.length >= 4), missing };
}

function placement(
  req: AuthRequirement,
): { kind: 'raw' | 'bearer' | 'basic'; in: 'header' | 'query' | 'cookie'; name: string } | string {
  switch (req.type) {
    case 'apiKey':
      if (!req.in || !req.paramName) return 'the apiKey scheme does not say where the key goes';
      return {
        kind: 'raw',
        in: req.in,
        name: req.in === 'header' ? req.paramName.toLowerCase() : req.paramName,
      };
    case 'http': {
      const s = (req.httpScheme ?? '').toLowerCase();
      if (s === 'bearer') return { kind: 'bearer', in: 'header', name: 'authorization' };
      if (s === 'basic') return { kind: 'basic', in: 'header', name: 'authorization' };
      return `HTTP ${req.httpScheme ?? '(none)'} authentication is not supported`;
    }
    // The gateway holds a token obtained out of band; it sends it as a bearer token.
    case 'oauth2':
    case 'openIdConnect':
      return { kind: 'bearer', in: 'header', name: 'authorization' };
    default:
      return `${req.type} authentication is not supported`;
  }
}
