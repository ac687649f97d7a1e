import { createHash, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/server';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
  type KeyObject,
} from 'jose';
import { parse as parseYaml } from 'yaml';
import { type ErrorCode, WardenError } from '../errors/index.js';
import { watchedFile } from '../lib/watched-file.js';
import { holdSubjectToken, holdTokenClient, type Principal } from '../model/principal.js';
import {
  type ApiKeyDef,
  apiKeysFileSchema,
  type CallersDoc,
  DEFAULT_SCOPES,
  type Environment,
} from '../policy/schema.js';

type AuthCode = Extract<ErrorCode, 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_INSUFFICIENT_SCOPE'>;

/** The caller (how it authenticated included), or why not: the code decides the HTTP status. */
export type AuthOutcome =
  | { ok: true; principal: Principal }
  | { ok: false; code: AuthCode; challenge: string; message: string };

export interface CallerOptions {
  callers: CallersDoc | undefined;
  environment: Environment;
  /** This server's canonical MCP URL (RFC 8707 resource indicator). */
  resource: string;
  /** Bound to loopback only: with no callers configured, local anonymous reads are allowed. */
  loopback: boolean;
  /** Every scope some tool needs right now (for the metadata document). */
  scopesInUse: () => readonly string[];
  warn: (msg: string) => void;
}

/** Where the authenticated Principal rides in the SDK's AuthInfo (which only carries it to the server factory). */
const CARRIED = 'principal';

/** The caller as the SDK's `AuthInfo`: the Principal itself in `extra`; the caller's token is not kept. */
export function carryPrincipal(p: Principal): AuthInfo {
  return { token: '', clientId: p.id, scopes: [...p.scopes], extra: { [CARRIED]: p } };
}

/**
 * The Principal back from the SDK's `AuthInfo`: the one place it is read. Without one (nothing on
 * the HTTP path skips authentication) the caller is nobody, with no scopes.
 */
export function carriedPrincipal(auth: AuthInfo | undefined): Principal {
  const p = auth?.extra?.[CARRIED] as Principal | undefined;
  return p ?? { id: 'unauthenticated', scopes: [], via: 'none' };
}

/**
 * Principal ids, namespaced by how the caller authenticated, so that no two methods can name the
 * same principal (a JWT whose `sub` is an API key's id is another caller): every place that keys on
 * `principal.id` (confirmations, rate limits, alerts, the audit) gets the namespace from here.
 */
export const principalIds = {
  key: (id: string): string => `key:${idPart(id)}`,
  /** `iss` as verified (the trusted issuer), then `sub`: `#` is escaped inside both, so the split is unambiguous. */
  jwt: (issuer: string, sub: string): string => `jwt:${idPart(issuer)}#${idPart(sub)}`,
  stdio: (name: string): string => `stdio:${idPart(name)}`,
  anonymous: (): string => 'anonymous',
};

/** Longest part of a principal id (escaped); a longer one is cut and ends in a digest of the whole. */
export const MAX_ID_PART = 200;
/**
 * Escaped in a part: `%` (the escape), `#` (the JWT separator), and characters that are invisible or
 * break a line in a log or a terminal: controls, format characters (bidi, zero-width), lone
 * surrogates, line/paragraph separators and every space but U+0020.
 */
const UNSAFE = /[%#\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu;
/** Marks a cut part: `%` followed by `~` never occurs in an escaped part, so a cut id never equals an uncut one. */
const CUT = '%~';

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

/** `%XX` below U+0100, `%uXXXX` per UTF-16 unit above: reversible, since `%` itself is escaped. */
function escapeUnits(ch: string): string {
  let out = '';
  for (let i = 0; i < ch.length; i++) {
    const u = ch.charCodeAt(i);
    out += u < 0x100 ? `%${hex(u, 2)}` : `%u${hex(u, 4)}`;
  }
  return out;
}

/**
 * One part of a principal id, printable and bounded, without losing distinctness: the escaping is
 * reversible and a cut part keeps a 128-bit digest of the whole escaped part.
 */
export function idPart(raw: string): string {
  const escaped = raw.replace(UNSAFE, escapeUnits);
  if (escaped.length <= MAX_ID_PART) return escaped;
  const digest = createHash('sha256').update(escaped).digest('hex').slice(0, 32);
  let head = escaped.slice(0, MAX_ID_PART - CUT.length - digest.length);
  // Never end inside an escape or between the two halves of a surrogate pair.
  const pct = head.lastIndexOf('%');
  if (pct >= 0 && pct + (head[pct + 1] === 'u' ? 6 : 3) > head.length) head = head.slice(0, pct);
  if (/[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  return `${head}${CUT}${digest}`;
}

/** Prefix of keys made by `mcp-warden keys create`: recognisable in a secret scanner's rules. */
export const API_KEY_PREFIX = 'mwk_';

export function newApiKey(): { key: string; hash: string } {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Where the RFC 9728 metadata for a resource lives: the well-known prefix before the resource's path. */
export function metadataUrl(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname === '/' ? '' : u.pathname;
  return `${u.origin}/.well-known/oauth-protected-resource${path}`;
}

/**
 * Authenticates HTTP callers as an OAuth 2.1 resource server (MCP authorization spec): API keys
 * (stored as hashes) and JWT bearer tokens verified against a JWKS or key with issuer, audience (this
 * server: RFC 8707), an algorithm allow-list and clock skew. A caller's credential authenticates it
 * to the gateway only; it is never forwarded upstream.
 */
export class Callers {
  private keysNow: () => readonly ApiKeyDef[];
  private readonly jwks: JWTVerifyGetKey | KeyObject | undefined;
  readonly metadataUrl: string;
  readonly configured: boolean;

  constructor(private readonly o: CallerOptions) {
    const c = o.callers;
    this.metadataUrl = metadataUrl(o.resource);
    const inline = [...(c?.apiKeys ?? [])];
    this.keysNow = () => inline;
    if (c?.apiKeysFile) this.watchKeysFile(c.apiKeysFile);
    if (c?.jwt)
      this.jwks = c.jwt.jwksUrl
        ? createRemoteJWKSet(new URL(c.jwt.jwksUrl), { timeoutDuration: 5000 })
        : loadKey(c.jwt.publicKeyFile!);
    this.configured = Boolean(c?.apiKeys?.length || c?.apiKeysFile || c?.jwt || c?.anonymous);
    // serve checks this before anything starts; kept here so no other caller of Callers can skip it.
    if (!this.configured && !o.loopback)
      throw new WardenError(
        'CONFIG_INVALID',
        'serving HTTP beyond loopback needs callers: API keys, JWT or an explicit `callers.anonymous` with a reason',
      );
  }

  /** The RFC 9728 protected-resource metadata document. */
  metadata(): Record<string, unknown> {
    const c = this.o.callers;
    return {
      resource: this.o.resource,
      ...(c?.authorizationServers?.length
        ? { authorization_servers: c.authorizationServers }
        : c?.jwt
          ? { authorization_servers: [c.jwt.issuer] }
          : {}),
      bearer_methods_supported: ['header'],
      scopes_supported: [...new Set([...(c?.requiredScopes ?? []), ...this.o.scopesInUse()])].sort(),
      resource_name: 'mcp-warden',
    };
  }

  /**
   * The caller, or why not. Synchronous unless a JWT has to be verified (jose is asynchronous, and a
   * remote key set may be fetched): an anonymous or API-key caller costs the HTTP path no promise.
   */
  authenticate(headers: IncomingHttpHeaders): AuthOutcome | Promise<AuthOutcome> {
    const c = this.o.callers;
    const token = bearerOf(headers);
    if (token === undefined) {
      const id = principalIds.anonymous();
      if (c?.anonymous)
        return this.scoped({ ok: true, principal: { id, scopes: c.anonymous.scopes, via: 'anonymous' } });
      if (!this.configured)
        return this.scoped({
          ok: true,
          principal: { id, scopes: c?.stdio?.scopes ?? DEFAULT_SCOPES.read, via: 'anonymous' },
        });
      return this.challenge(
        'AUTH_REQUIRED',
        'Authentication required: send Authorization: Bearer <token or API key>.',
      );
    }
    if (!token.startsWith(API_KEY_PREFIX) && c?.jwt) return this.byJwt(token).then((o) => this.scoped(o));
    return this.scoped(this.byKey(token));
  }

  /** The outcome, refused when the caller lacks a scope the endpoint requires (`requiredScopes`). */
  private scoped(outcome: AuthOutcome): AuthOutcome {
    if (!outcome.ok) return outcome;
    const missing = (this.o.callers?.requiredScopes ?? []).filter(
      (s) => !outcome.principal.scopes.includes(s),
    );
    if (missing.length)
      return this.challenge(
        'AUTH_INSUFFICIENT_SCOPE',
        `Insufficient scope: this endpoint needs ${missing.join(' ')}.`,
        missing,
      );
    return outcome;
  }

  close(): void {
    // Nothing to release: the keys file is checked when used, not watched.
  }

  private byKey(token: string): AuthOutcome {
    const given = Buffer.from(hashKey(token));
    const now = Date.now();
    for (const k of this.keysNow()) {
      const want = Buffer.from(k.hash);
      if (want.length !== given.length || !timingSafeEqual(want, given)) continue;
      if (k.expires && Date.parse(k.expires) <= now) return this.invalid('the API key has expired');
      if (k.environment && k.environment !== this.o.environment)
        return this.invalid('the API key is for another environment');
      return { ok: true, principal: { id: principalIds.key(k.id), scopes: k.scopes, via: 'api-key' } };
    }
    return this.invalid('unknown API key');
  }

  private async byJwt(token: string): Promise<AuthOutcome> {
    const jwt = this.o.callers!.jwt!;
    try {
      const { payload } = await jwtVerify(token, this.jwks as JWTVerifyGetKey, {
        issuer: jwt.issuer,
        audience: jwt.audience ?? this.o.resource,
        algorithms: jwt.algorithms,
        clockTolerance: jwt.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      });
      const raw = payload[jwt.scopeClaim];
      const scopes =
        typeof raw === 'string'
          ? raw.split(' ').filter(Boolean)
          : Array.isArray(raw)
            ? raw.filter((s): s is string => typeof s === 'string')
            : [];
      // jose checks that `sub` is present, not its type: a list or an object would stringify into
      // another caller's name.
      if (typeof payload.sub !== 'string' || payload.sub === '' || typeof payload.iss !== 'string')
        return this.invalid("the token's sub claim is invalid");
      const principal: Principal = { id: principalIds.jwt(payload.iss, payload.sub), scopes, via: 'jwt' };
      // Kept aside for token exchange only (RFC 8693); never forwarded, never on the Principal itself.
      holdSubjectToken(principal, token, (payload.exp as number) * 1000);
      // The client the identity provider issued the token to (RFC 9068 `client_id`, else OIDC `azp`).
      const clientId =
        typeof payload.client_id === 'string' && payload.client_id !== ''
          ? payload.client_id
          : typeof payload.azp === 'string' && payload.azp !== ''
            ? payload.azp
            : undefined;
      if (clientId !== undefined) holdTokenClient(principal, clientId);
      return { ok: true, principal };
    } catch (e) {
      // The reason in words for the caller; jose's own message never (it may quote the token's claims).
      return this.invalid(jwtReason(e));
    }
  }

  private invalid(why: string): AuthOutcome {
    return this.challenge('AUTH_INVALID', `Invalid credential: ${why}.`, undefined, why);
  }

  private challenge(code: AuthCode, message: string, scopes?: string[], why?: string): AuthOutcome {
    const parts = [`resource_metadata="${this.metadataUrl}"`];
    if (code === 'AUTH_INVALID')
      parts.unshift(`error="invalid_token"`, `error_description="${why ?? 'invalid token'}"`);
    if (code === 'AUTH_INSUFFICIENT_SCOPE')
      parts.unshift(`error="insufficient_scope"`, `scope="${(scopes ?? []).join(' ')}"`);
    return { ok: false, code, challenge: `Bearer ${parts.join(', ')}`, message };
  }

  /** The keys file is re-read when it changes (checked at most once a second, when a key is used). */
  private watchKeysFile(file: string): void {
    const parse = (text: string): ApiKeyDef[] => {
      const parsed = apiKeysFileSchema.safeParse(parseYaml(text));
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
      return [...(this.o.callers?.apiKeys ?? []), ...parsed.data.keys];
    };
    let initial: ApiKeyDef[];
    try {
      initial = parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new WardenError(
        'CONFIG_INVALID',
        `the API keys file ${file} is unreadable or invalid (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    const current = watchedFile(
      file,
      parse,
      (e) =>
        this.o.warn(
          `the API keys file ${file} is invalid (${(e as Error).message}); keeping the previous keys`,
        ),
      initial,
    );
    this.keysNow = current;
  }
}

function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const key = headers['x-api-key'];
  return typeof key === 'string' && key ? key.trim() : undefined;
}

function loadKey(file: string): JWTVerifyGetKey | KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot read the JWT key file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  try {
    if (text.trimStart().startsWith('{')) return createLocalJWKSet(JSON.parse(text));
    return createPublicKey(text);
  } catch {
    throw new WardenError(
      'CONFIG_INVALID',
      `the JWT key file ${file} is neither a PEM public key nor a JWKS`,
    );
  }
}

function jwtReason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'the token was not issued for this server (audience)';
    if (e.claim === 'iss') return 'the token is from an untrusted issuer';
    if (e.claim === 'nbf') return 'the token is not valid yet';
    return `the token's ${e.claim} claim is invalid`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed)
    return 'the token is signed with an algorithm that is not allowed';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'no trusted key matches the token';
  if (
    e instanceof joseErrors.JWKSTimeout ||
    (e instanceof joseErrors.JOSEError && e.code === 'ERR_JWKS_INVALID')
  )
    return 'the key set could not be fetched';
  return 'the token is malformed or cannot be verified';
}
