import type { request } from 'undici';
import { WardenError } from '../errors/index.js';
import { readSecretRef } from '../lib/secret-ref.js';
import { loadUndici } from '../lib/undici.js';
import { watchedFile } from '../lib/watched-file.js';
import type { AuthRequirement, Tool } from '../model/catalog.js';
import type { Principal } from '../model/principal.js';
import type {
  CredentialDef,
  CredentialKind,
  CredentialSource,
  Environment,
  UserOAuthSource,
} from '../policy/schema.js';
import { createTokenExchanger } from './token-exchange.js';

/** How a value is presented on the wire, from the security scheme. */
export interface Placement {
  kind: 'raw' | 'bearer' | 'basic';
  in: 'header' | 'query' | 'cookie';
  name: string;
}

/**
 * One upstream credential the gateway holds for one security scheme. `label` (the policy entry or the
 * environment variable) is safe to log; the value never is.
 */
export interface HeldCredential {
  label: string;
  scheme: string;
  placement: Placement;
  /**
   * Whose upstream identity the call uses: `service` (the gateway's own secret or client
   * credentials), `tokenExchange` (the caller's, minted by its identity provider) or `userOAuth` (the
   * caller's connected account: served by the per-user OAuth service, not by `wireValue`).
   */
  kind: CredentialKind;
  /** userOAuth only: the policy's settings for the flow (ids and secrets as references). */
  userOAuth?: UserOAuthSource;
  /**
   * The value as it goes on the wire (`Bearer …`, `Basic …` or raw). OAuth2 tokens are async; a
   * token exchange needs the caller.
   */
  wireValue(scopes: readonly string[], caller?: Principal): string | Promise<string>;
}

export interface CredentialSet {
  /**
   * The credentials for a tool: `public` when it needs none, or the first security alternative whose
   * every scheme is held. Undefined when the tool cannot be authenticated upstream.
   */
  forTool(tool: Tool): { creds: Array<{ cred: HeldCredential; scopes: string[] }> } | undefined;
  /** Tools with no usable credential, with the reason, for the start-up warning and hiding. */
  missing: Map<string, string>;
  /** Every secret known at start-up (later ones are reported through `onSecret`). */
  secrets: string[];
  close(): void;
}

export interface LoadCredentialsOptions {
  /** The tools to serve, each with the `credentials` entry its rules name (if any). */
  tools: ReadonlyArray<{ tool: Tool; credential?: string }>;
  defs?: Record<string, CredentialDef>;
  /**
   * In an API set: each API's own `credentials`. A tool of an API (`tool.api`) is given only its
   * API's entries and `MCP_WARDEN_CRED_<API>_<SCHEME>`, never `defs` nor another API's.
   */
  apiDefs?: Record<string, Record<string, CredentialDef> | undefined>;
  environment?: Environment;
  env: NodeJS.ProcessEnv;
  /** Told every new secret value (a re-read file, a fresh token) so logs and results scrub it. */
  onSecret?: (values: string[]) => void;
  warn?: (message: string) => void;
}

/** `clinicKey` → `MCP_WARDEN_CRED_CLINICKEY`: upper-cased, every non-alphanumeric as `_`. */
export function credentialEnvVar(scheme: string, api?: string): string {
  const part = (s: string) => s.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return `MCP_WARDEN_CRED_${api !== undefined ? `${part(api)}_` : ''}${part(scheme)}`;
}

/**
 * Resolves where each tool's upstream credential comes from. In order: the `credentials` entry a rule
 * names for the tool; else the first entry for the scheme; else `MCP_WARDEN_CRED_<SCHEME>`. A value
 * that could split a header (CR, LF, NUL, other controls) is a start-up error naming the reference,
 * never the value. Nothing here is ever taken from a caller, except that token exchange trades the
 * caller's verified token at its identity provider (src/upstream/token-exchange.ts) — never upstream.
 */
export function loadCredentials(o: LoadCredentialsOptions): CredentialSet {
  const environment = o.environment ?? 'dev';
  const defs = o.defs ?? {};
  // Which APIs of a set would read each credential variable (a name clash is refused, see obtain).
  const claimed = new Map<string, Set<string>>();
  for (const { tool } of o.tools) {
    if (tool.api === undefined) continue;
    for (const alt of tool.auth.alternatives)
      for (const req of alt) {
        const v = credentialEnvVar(req.scheme, tool.api);
        claimed.set(v, (claimed.get(v) ?? new Set()).add(tool.api));
      }
  }
  const held = new Map<string, HeldCredential | string>();
  const secrets = new Set<string>();
  const addSecrets = (raw: string, placement: Placement, startup: boolean) => {
    const forms = secretForms(raw, placement);
    if (startup) for (const f of forms) secrets.add(f);
    else o.onSecret?.(forms);
  };

  /**
   * Builds (once) the credential for a scheme from a named entry, or from the environment variable.
   * The API is part of the key: two APIs of a set never share a held credential.
   */
  const obtain = (
    req: AuthRequirement,
    defName: string | undefined,
    api: string | undefined,
  ): HeldCredential | string => {
    const key = `${api ?? ''}\0${defName ?? ''}\0${req.scheme}`;
    const cached = held.get(key);
    if (cached !== undefined) return cached;
    const placement = placementOf(req);
    let result: HeldCredential | string;
    if (typeof placement === 'string') result = placement;
    else if (defName !== undefined) {
      const def = defsOf(api)[defName]!;
      const source = def[environment];
      const entry = api !== undefined ? `apis.${api}.credentials.${defName}` : `credentials.${defName}`;
      result =
        source === undefined
          ? `${entry} has no source for environment ${environment}`
          : fromSource(entry, req.scheme, placement, source);
    } else {
      const envVar = credentialEnvVar(req.scheme, api);
      const raw = o.env[envVar];
      const claimants = claimed.get(envVar);
      // Two APIs whose names and schemes spell the same variable (`a-b` + `c`, `a` + `b_c`): either
      // could be handed the other's secret, so neither gets it (a named entry is unambiguous).
      if (api !== undefined && claimants !== undefined && claimants.size > 1)
        result = `${envVar} would serve APIs ${[...claimants].sort().join(' and ')} alike: name the credential under apis.<name>.credentials instead`;
      else if (raw === undefined || raw === '') result = `${envVar} is not set`;
      else {
        checkValue(raw, envVar);
        addSecrets(raw, placement, true);
        const wire = toWire(raw, placement);
        result = { label: envVar, scheme: req.scheme, placement, kind: 'service', wireValue: () => wire };
      }
    }
    held.set(key, result);
    return result;
  };

  const fromSource = (
    name: string,
    scheme: string,
    placement: Placement,
    source: CredentialSource,
  ): HeldCredential | string => {
    const label = `${name}.${environment}`;
    const bearer: Placement = { ...placement, kind: 'bearer', in: 'header', name: 'authorization' };
    if (typeof source !== 'string' && source.tokenExchange) {
      const ex = createTokenExchanger(source.tokenExchange, label, o.env, (values) => {
        for (const v of values) addSecrets(v, bearer, false);
      });
      if (typeof ex === 'string') return ex;
      return {
        label,
        scheme,
        placement: bearer,
        kind: 'tokenExchange',
        wireValue: async (scopes, caller) => {
          if (!caller)
            throw new WardenError('TOKEN_EXCHANGE_REFUSED', `${label}: token exchange needs the caller.`);
          return `Bearer ${await ex.tokenFor(caller, scopes)}`;
        },
      };
    }
    if (typeof source !== 'string' && source.userOAuth) {
      // The per-user OAuth service (src/upstream/user-oauth.ts) serves these; wireValue is its guard.
      return {
        label,
        scheme,
        placement: bearer,
        kind: 'userOAuth',
        userOAuth: source.userOAuth,
        wireValue: () => {
          throw new WardenError(
            'CREDENTIAL_MISSING',
            `${label} is per-user OAuth, which this gateway is not set up to serve.`,
          );
        },
      };
    }
    if (typeof source !== 'string') {
      // The schema lets exactly one kind through; the last one left is client credentials.
      const token = oauth2Source(source.oauth2!, label, o.env, (t) => addSecrets(t, placement, false));
      if (typeof token === 'string') return token;
      return {
        label,
        scheme,
        placement: bearer,
        kind: 'service',
        wireValue: async (scopes) => `Bearer ${await token(scopes)}`,
      };
    }
    const raw = readSecretRef(source, o.env);
    if (raw === undefined) return `${label}: ${source} is not set or is empty`;
    checkValue(raw, `${label} (${source})`);
    addSecrets(raw, placement, true);
    const wire = toWire(raw, placement);
    if (source.startsWith('file:')) {
      // Rotated secrets (mounted files) take effect without a restart; a bad new value keeps the old.
      const path = source.slice(5);
      const current = watchedFile(
        path,
        (text) => {
          const next = text.replace(/\r?\n$/, '');
          if (next === '' || !/^[\x20-\x7e]+$/.test(next)) throw new Error('empty or not a usable value');
          addSecrets(next, placement, false);
          return toWire(next, placement);
        },
        () =>
          o.warn?.(
            `${label}: the new contents of ${path} are empty or not a usable value; keeping the previous one`,
          ),
        wire,
      );
      return { label, scheme, placement, kind: 'service', wireValue: current };
    }
    return { label, scheme, placement, kind: 'service', wireValue: () => wire };
  };

  const defsOf = (api: string | undefined): Record<string, CredentialDef> =>
    api !== undefined ? (o.apiDefs?.[api] ?? {}) : defs;
  const missing = new Map<string, string>();
  const perTool = new Map<string, Array<{ cred: HeldCredential; scopes: string[] }> | 'public'>();
  // The API each name was resolved for: a tool object of another API (a name taken over by a reload
  // while its call was in flight) gets nothing rather than that API's credential.
  const apiOf = new Map<string, string | undefined>();
  for (const { tool, credential } of o.tools) {
    apiOf.set(tool.name, tool.api);
    const alts = tool.auth.alternatives;
    if (tool.auth.public || alts.length === 0) {
      perTool.set(tool.name, 'public');
      continue;
    }
    const reasons: string[] = [];
    let chosen: Array<{ cred: HeldCredential; scopes: string[] }> | undefined;
    // A held credential is used even when an alternative says authentication is optional (`{}`).
    for (const alt of alts) {
      if (alt.length === 0) continue;
      const creds: Array<{ cred: HeldCredential; scopes: string[] }> = [];
      const own = defsOf(tool.api);
      for (const req of alt) {
        const named =
          credential !== undefined && own[credential]?.scheme === req.scheme
            ? credential
            : Object.keys(own).find((k) => own[k]!.scheme === req.scheme);
        const c = obtain(req, named, tool.api);
        if (typeof c === 'string') reasons.push(c);
        else creds.push({ cred: c, scopes: req.scopes });
      }
      if (creds.length === alt.length) {
        chosen = creds;
        break;
      }
    }
    if (chosen) perTool.set(tool.name, chosen);
    else if (alts.some((a) => a.length === 0)) perTool.set(tool.name, 'public');
    else missing.set(tool.name, [...new Set(reasons)].join('; '));
  }

  return {
    forTool(tool) {
      const c = perTool.get(tool.name);
      if (c === undefined || apiOf.get(tool.name) !== tool.api) return undefined;
      return { creds: c === 'public' ? [] : c };
    },
    missing,
    secrets: [...secrets].filter((s) => s.length >= 4),
    close() {
      // Nothing to release: files are checked when used, not watched.
    },
  };
}

function checkValue(raw: string, where: string): void {
  if (!/^[\x20-\x7e]+$/.test(raw))
    throw new WardenError(
      'CONFIG_INVALID',
      `${where} contains a line break, control or non-ASCII character; it cannot be sent in a request`,
    );
}

function toWire(raw: string, p: Placement): string {
  if (p.kind === 'bearer') return `Bearer ${raw}`;
  if (p.kind === 'basic') {
    if (!raw.includes(':'))
      throw new WardenError('CONFIG_INVALID', 'an HTTP basic credential must be user:password');
    return `Basic ${Buffer.from(raw).toString('base64')}`;
  }
  return raw;
}

/**
 * The forms a secret takes when a server writes it back transformed: the `user:secret` pair and the
 * secret alone for basic auth, then base64 and base64url (whole, and the part that is the same at
 * each of the three alignments inside a longer encoded text), and hex. Escaped forms (percent-encoding
 * in any variant, JSON and HTML escapes) are not listed: the redactor matches every known form under
 * those escapes itself.
 */
export function secretForms(raw: string, p: Pick<Placement, 'kind'>): string[] {
  const forms = new Set([raw]);
  if (p.kind === 'basic') forms.add(raw.slice(raw.indexOf(':') + 1));
  for (const s of [...forms]) {
    for (const f of base64Forms(s)) forms.add(f);
    // Hex only where it is long enough to be unmistakable.
    if (s.length >= MIN_ENCODED) {
      const hex = Buffer.from(s).toString('hex');
      forms.add(hex);
      forms.add(hex.toUpperCase());
    }
  }
  // Very short values would make scrubbing replace ordinary text; they are still never logged raw.
  return [...forms].filter((s) => s.length >= 4);
}

/** Secrets shorter than this get no partial encoded forms: a short fragment could occur by chance. */
const MIN_ENCODED = 8;

/**
 * base64 and base64url of `s`: whole (with and without padding), and, for each of the 3 byte
 * alignments it can have inside a longer encoded text, the characters that depend on `s` alone.
 */
function base64Forms(s: string): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(s);
  const whole = bytes.toString('base64');
  out.push(whole, whole.replace(/=+$/, ''));
  if (s.length >= MIN_ENCODED)
    for (let o = 0; o < 3; o++) {
      const enc = Buffer.concat([Buffer.alloc(o), bytes]).toString('base64');
      out.push(enc.slice(Math.ceil((4 * o) / 3), Math.floor((4 * (o + bytes.length)) / 3)));
    }
  return [...out, ...out.map((f) => f.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''))];
}

/**
 * OAuth2 client credentials: one token per distinct scope set (the operation's own scopes, so a
 * token never carries more than the call needs), cached until shortly before it expires. Concurrent
 * calls share one in-flight fetch.
 */
function oauth2Source(
  cfg: { tokenUrl: string; clientId: string; clientSecret: string; scopes?: string[] | undefined },
  label: string,
  env: NodeJS.ProcessEnv,
  onToken: (t: string) => void,
): ((scopes: readonly string[]) => Promise<string>) | string {
  const clientId = readSecretRef(cfg.clientId, env);
  const clientSecret = readSecretRef(cfg.clientSecret, env);
  if (clientId === undefined) return `${label}: ${cfg.clientId} is not set`;
  if (clientSecret === undefined) return `${label}: ${cfg.clientSecret} is not set`;
  onToken(clientSecret);
  // The token request's basic header: its pair (and the pair's encodings) are as secret as the secret.
  onToken(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`);
  const cache = new Map<string, { token: Promise<string>; expires: number }>();
  return (opScopes) => {
    const scopes = [...new Set(cfg.scopes ?? opScopes)].sort();
    const key = scopes.join(' ');
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.token;
    const entry = { token: fetchToken(), expires: Date.now() + 30_000 };
    cache.set(key, entry);
    entry.token.catch(() => cache.delete(key));
    return entry.token;

    async function fetchToken(): Promise<string> {
      const body = new URLSearchParams({ grant_type: 'client_credentials' });
      if (scopes.length) body.set('scope', key);
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await (await loadUndici()).request(cfg.tokenUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
            authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId!)}:${encodeURIComponent(clientSecret!)}`).toString('base64')}`,
          },
          body: body.toString(),
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
      } catch {
        throw new WardenError('CREDENTIAL_MISSING', 'The upstream token endpoint could not be reached.');
      }
      const text = (await res.body.text()).slice(0, 64 * 1024);
      let json: { access_token?: unknown; expires_in?: unknown } = {};
      try {
        json = JSON.parse(text) as typeof json;
      } catch {
        /* handled below */
      }
      if (
        res.statusCode !== 200 ||
        typeof json.access_token !== 'string' ||
        !/^[\x21-\x7e]+$/.test(json.access_token)
      )
        throw new WardenError(
          'CREDENTIAL_MISSING',
          `The upstream token endpoint refused the gateway's client credentials (HTTP ${res.statusCode}).`,
        );
      onToken(json.access_token);
      const ttl = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 300;
      entry.expires = Date.now() + Math.max(5, ttl - 30) * 1000;
      return json.access_token;
    }
  };
}

function placementOf(req: AuthRequirement): Placement | string {
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
    // The gateway holds a token (configured or obtained by client credentials) and sends it as bearer.
    case 'oauth2':
    case 'openIdConnect':
      return { kind: 'bearer', in: 'header', name: 'authorization' };
    default:
      return `${req.type} authentication is not supported`;
  }
}
