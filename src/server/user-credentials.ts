import { basename, dirname, join } from 'node:path';
import { oauthSchemeUrls } from '../classify/auth.js';
import { WardenError } from '../errors/index.js';
import { readSecretRef, urlOrRef } from '../lib/secret-ref.js';
import type { OAuthSchemeUrls, Tool } from '../model/catalog.js';
import {
  OAUTH_CALLBACK_PATH,
  type SharedFlows,
  type TokenVault,
  type UpstreamKey,
  upstreamKey,
} from '../model/connection.js';
import type { Logger } from '../observe/log.js';
import type { PolicyDoc, UserOAuthSource } from '../policy/schema.js';
import type { RedisState } from '../state/redis.js';
import { createRedisCompletions } from '../state/redis-completions.js';
import { FileVault, keyringFromRefs } from '../state/vault.js';
import type { CredentialSet } from '../upstream/credentials.js';
import { UserOAuth, type UserOAuthUpstream } from '../upstream/user-oauth.js';
import { ElicitationCompletions } from './elicitation-complete.js';
import type { LoadedSet } from './served-api.js';
import { isLoopback } from './transport.js';

/** Per-user OAuth as the gateway runs it: the flow service and the vault it closes with. */
export interface OpenedUserCredentials {
  oauth: UserOAuth;
  /** URL elicitations sent to this instance's clients, told when their flow completes. */
  completions: ElicitationCompletions;
  close(): Promise<void>;
}

/** A scheme's URLs as the spec declares them, and the base URL a relative one resolves against. */
export interface SpecSchemeUrls {
  urls: OAuthSchemeUrls;
  /** The API's base URL (its upstream target), with a trailing slash. */
  base: string;
}

/**
 * The per-API scheme table: each served API's OAuth scheme URLs from its spec, keyed like the
 * vault (`<api>/<scheme>`). Read from the specs as loaded, beside the catalogue, so no tool's
 * definition (and pin) depends on them.
 */
export function specSchemeTable(set: Pick<LoadedSet, 'parts'>): Map<UpstreamKey, SpecSchemeUrls> {
  const table = new Map<UpstreamKey, SpecSchemeUrls>();
  for (const part of set.parts) {
    const served = part.served;
    if (!served) continue;
    const target = served.targets.values().next().value;
    if (!target) continue;
    const components = served.spec.doc.components;
    const raw =
      components && typeof components === 'object'
        ? (components as Record<string, unknown>).securitySchemes
        : undefined;
    const schemes = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
    for (const [scheme, urls] of Object.entries(oauthSchemeUrls(schemes)))
      table.set(upstreamKey(part.member.name, scheme), {
        urls,
        base: `${target.origin}${target.basePath}/`,
      });
  }
  return table;
}

/**
 * Builds per-user OAuth from the `userOAuth` credentials the tools are served with at start-up (a
 * policy reload that adds or changes one applies at the next start). None held: undefined, and
 * nothing is opened. The vault is `vault.json` beside the audit file, or the audit's PostgreSQL
 * database with `vault.store: postgres`.
 */
export async function openUserCredentials(p: {
  doc: PolicyDoc;
  env: NodeJS.ProcessEnv;
  tools: readonly Tool[];
  credentials: CredentialSet;
  auditFile: string;
  /** --audit-db, which overrides `audit.postgres`. */
  auditDb?: string;
  stdio: boolean;
  /** Pending flows shared by instances (Redis state), so a callback may land on any of them. */
  shared?: SharedFlows;
  /** The APIs as loaded: their specs' OAuth URLs are the defaults (specSchemeTable). */
  set?: Pick<LoadedSet, 'parts'>;
  /** The shared Redis, when there is one: completed flows are announced to every instance. */
  redis?: RedisState;
  onSecret: (values: string[], until?: number) => void;
  logger: Logger;
}): Promise<OpenedUserCredentials | undefined> {
  const upstreams = heldUpstreams(p.tools, p.credentials, p.env, p.set ? specSchemeTable(p.set) : new Map());
  if (upstreams.length === 0) return undefined;
  const { label } = upstreams[0]!;
  const cfg = p.doc.vault;
  if (!cfg)
    throw new WardenError(
      'CONFIG_INVALID',
      `${label} is userOAuth, which needs \`vault.keys\` in the policy (the key that encrypts each caller's upstream tokens)`,
    );
  const keyring = keyringFromRefs(cfg.keys, p.env);
  const defs = upstreams.map((u) => u.def);
  p.onSecret(defs.flatMap((d) => (d.clientSecret !== undefined ? [d.clientSecret] : [])));
  const vault = await openVault(cfg.store, p, keyring);
  if (p.stdio)
    p.logger.warn(
      `per-user OAuth over stdio: the browser must reach ${OAUTH_CALLBACK_PATH}, which only the HTTP transport serves; callers cannot connect until a gateway serving HTTP at the redirect URL completes their flow`,
    );
  const completions = new ElicitationCompletions(
    p.redis
      ? {
          bus: await createRedisCompletions({
            client: p.redis.client,
            prefix: p.doc.state?.prefix ?? 'mcp-warden',
          }).catch(async (e: unknown) => {
            await vault.close();
            throw e;
          }),
        }
      : {},
  );
  const oauth = new UserOAuth({
    upstreams: defs,
    vault,
    ...(p.shared ? { shared: p.shared } : {}),
    onSecret: p.onSecret,
    // Plain HTTP only to an authorization server on this machine (a local one); checked per URL below.
    allowInsecure: defs.some((d) => authorizationUrls(d).some((u) => u.protocol === 'http:')),
    onConnected: (id, principal) => void completions.completed({ id, principal }),
  });
  return {
    oauth,
    completions,
    close: async () => {
      await completions.close();
      await vault.close();
    },
  };
}

async function openVault(
  store: 'embedded' | 'postgres',
  p: {
    doc: PolicyDoc;
    env: NodeJS.ProcessEnv;
    auditFile: string;
    auditDb?: string;
    onSecret: (values: string[]) => void;
  },
  keyring: ReturnType<typeof keyringFromRefs>,
): Promise<TokenVault> {
  const { onSecret } = p;
  if (store === 'embedded')
    return Promise.resolve(
      FileVault.open({
        file: vaultFileOf(p.auditFile),
        keyring,
        onSecret,
      }),
    );
  const ref = p.auditDb ?? p.doc.audit?.postgres;
  if (ref === undefined)
    throw new WardenError(
      'CONFIG_INVALID',
      '`vault.store: postgres` keeps tokens in the audit database: set `audit.postgres` or --audit-db',
    );
  // pg is loaded only for a vault in PostgreSQL (issue 22: start-up).
  const { PgVault } = await import('../state/pg-vault.js');
  return PgVault.open({
    url: urlOrRef(ref, p.env, 'audit.postgres'),
    keyring,
    onSecret,
  });
}

/** One flow per (API, scheme): the first `userOAuth` entry a tool is served with for it. */
function heldUpstreams(
  tools: readonly Tool[],
  credentials: CredentialSet,
  env: NodeJS.ProcessEnv,
  specUrls: ReadonlyMap<UpstreamKey, SpecSchemeUrls>,
): Array<{ label: string; def: UserOAuthUpstream }> {
  const found = new Map<string, { label: string; def: UserOAuthUpstream }>();
  for (const tool of tools)
    for (const { cred } of credentials.forTool(tool)?.creds ?? []) {
      const src = cred.kind === 'userOAuth' ? cred.userOAuth : undefined;
      const key = upstreamKey(tool.api, cred.scheme);
      if (!src || found.has(key)) continue;
      const what = `${cred.label}.userOAuth`;
      const clientId = readSecretRef(src.clientId, env);
      const clientSecret = readSecretRef(src.clientSecret, env);
      if (clientId === undefined || clientSecret === undefined)
        throw new WardenError(
          'CONFIG_INVALID',
          `${what}: ${clientId === undefined ? `clientId (${src.clientId})` : `clientSecret (${src.clientSecret})`} is not set`,
        );
      const def: UserOAuthUpstream = {
        scheme: cred.scheme,
        clientId,
        clientSecret,
        redirectUri: src.redirectUrl,
        ...(tool.api !== undefined ? { api: tool.api } : {}),
        ...authorizationServer(src, specUrls.get(key), what, cred.scheme),
        ...(src.scopes !== undefined ? { scopes: [...src.scopes] } : {}),
      };
      checkDef(def, what);
      found.set(key, { label: cred.label, def });
    }
  return [...found.values()];
}

/** The suffix OpenID Connect Discovery puts after the issuer; `openIdConnectUrl` names the whole URL. */
const OIDC_DISCOVERY = '/.well-known/openid-configuration';

/**
 * Where the authorization server is, first found wins: the policy's `authorizationUrl` and
 * `tokenUrl`; the policy's `issuer` (discovery); the spec's `authorizationCode` flow (a URL the
 * policy gives replaces the spec's); the spec's `openIdConnectUrl` (discovery). None: the gateway
 * does not start, and the error names the credential and what to add.
 */
export function authorizationServer(
  src: Pick<UserOAuthSource, 'issuer' | 'authorizationUrl' | 'tokenUrl'>,
  spec: SpecSchemeUrls | undefined,
  what: string,
  scheme: string,
): Pick<UserOAuthUpstream, 'issuer' | 'authorizationUrl' | 'tokenUrl' | 'refreshUrl'> {
  if (src.authorizationUrl !== undefined && src.tokenUrl !== undefined)
    return { authorizationUrl: src.authorizationUrl, tokenUrl: src.tokenUrl };
  if (src.issuer !== undefined) return { issuer: src.issuer };
  const resolve = (u: string | undefined, key: string) => {
    if (u === undefined || !spec) return undefined;
    try {
      return new URL(u, spec.base).href;
    } catch {
      throw new WardenError(
        'CONFIG_INVALID',
        `${what}: the spec's ${key} of scheme ${scheme} is not a URL; give it in the policy`,
      );
    }
  };
  const authorizationUrl = src.authorizationUrl ?? resolve(spec?.urls.authorizationUrl, 'authorizationUrl');
  const tokenUrl = src.tokenUrl ?? resolve(spec?.urls.tokenUrl, 'tokenUrl');
  if (authorizationUrl !== undefined && tokenUrl !== undefined) {
    const refreshUrl = resolve(spec?.urls.refreshUrl, 'refreshUrl');
    return { authorizationUrl, tokenUrl, ...(refreshUrl !== undefined ? { refreshUrl } : {}) };
  }
  const discovery = resolve(spec?.urls.openIdConnectUrl, 'openIdConnectUrl');
  if (discovery !== undefined) {
    const u = new URL(discovery);
    if (!u.pathname.endsWith(OIDC_DISCOVERY) || u.search || u.hash)
      throw new WardenError(
        'CONFIG_INVALID',
        `${what}: the spec's openIdConnectUrl of scheme ${scheme} is not at <issuer>${OIDC_DISCOVERY}; add \`issuer\` to ${what}`,
      );
    u.pathname = u.pathname.slice(0, -OIDC_DISCOVERY.length);
    return { issuer: u.href.replace(/\/$/, '') };
  }
  throw new WardenError(
    'CONFIG_INVALID',
    `${what}: the spec's scheme ${scheme} declares no authorizationCode flow URLs nor openIdConnectUrl; add \`issuer\` (discovery), or \`authorizationUrl\` and \`tokenUrl\`, to ${what}`,
  );
}

function authorizationUrls(d: UserOAuthUpstream): URL[] {
  return [d.issuer, d.authorizationUrl, d.tokenUrl, d.refreshUrl].flatMap((u) =>
    u !== undefined ? [new URL(u)] : [],
  );
}

function checkDef(d: UserOAuthUpstream, what: string): void {
  // Codes and tokens travel to these URLs: in the clear only to this machine.
  for (const u of authorizationUrls(d))
    if (u.protocol === 'http:' && !isLoopback(u.hostname))
      throw new WardenError('CONFIG_INVALID', `${what}: ${u.origin} must use https (http only on loopback)`);
  if (new URL(d.redirectUri).pathname !== OAUTH_CALLBACK_PATH)
    throw new WardenError(
      'CONFIG_INVALID',
      `${what}: redirectUrl must end in ${OAUTH_CALLBACK_PATH}, the path the gateway answers the callback on`,
    );
}

/**
 * The embedded vault beside its audit file, one per audit: `audit.jsonl` → `vault.json`,
 * `audit-2.jsonl` → `vault-2.json` (a second gateway for the same spec), any other `x.jsonl` →
 * `x.vault.json`. The audit's lock (audit/lock.ts) keeps one gateway per audit file, so no two
 * processes ever write one vault file.
 */
export function vaultFileOf(auditFile: string): string {
  const stem = basename(auditFile).replace(/\.jsonl$/, '');
  const name = /^audit(-\d+)?$/.test(stem) ? `vault${stem.slice('audit'.length)}.json` : `${stem}.vault.json`;
  return join(dirname(auditFile), name);
}
