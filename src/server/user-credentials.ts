import { basename, dirname, join } from 'node:path';
import { WardenError } from '../errors/index.js';
import { readSecretRef, urlOrRef } from '../lib/secret-ref.js';
import type { Tool } from '../model/catalog.js';
import { type SharedFlows, type TokenVault, upstreamKey } from '../model/connection.js';
import type { Logger } from '../observe/log.js';
import type { PolicyDoc } from '../policy/schema.js';
import { PgVault } from '../state/pg-vault.js';
import { FileVault, keyringFromRefs } from '../state/vault.js';
import type { CredentialSet } from '../upstream/credentials.js';
import { UserOAuth, type UserOAuthUpstream } from '../upstream/user-oauth.js';
import { OAUTH_CALLBACK_PATH } from './http.js';
import { isLoopback } from './transport.js';

/** Per-user OAuth as the gateway runs it: the flow service and the vault it closes with. */
export interface OpenedUserCredentials {
  oauth: UserOAuth;
  close(): Promise<void>;
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
  onSecret: (values: string[]) => void;
  logger: Logger;
}): Promise<OpenedUserCredentials | undefined> {
  const upstreams = heldUpstreams(p.tools, p.credentials, p.env);
  if (upstreams.length === 0) return undefined;
  const { label } = upstreams[0]!;
  const cfg = p.doc.vault;
  if (!cfg)
    throw new WardenError(
      'CONFIG_INVALID',
      `credentials.${label} is userOAuth, which needs \`vault.keys\` in the policy (the key that encrypts each caller's upstream tokens)`,
    );
  const keyring = keyringFromRefs(cfg.keys, p.env);
  const defs = upstreams.map((u) => u.def);
  p.onSecret(defs.flatMap((d) => (d.clientSecret !== undefined ? [d.clientSecret] : [])));
  const vault = await openVault(cfg.store, p, keyring);
  if (p.stdio)
    p.logger.warn(
      `per-user OAuth over stdio: the browser must reach ${OAUTH_CALLBACK_PATH}, which only the HTTP transport serves; callers cannot connect until a gateway serving HTTP at the redirect URL completes their flow`,
    );
  const oauth = new UserOAuth({
    upstreams: defs,
    vault,
    ...(p.shared ? { shared: p.shared } : {}),
    onSecret: p.onSecret,
    // Plain HTTP only to an authorization server on this machine (a local one); checked per URL below.
    allowInsecure: defs.some((d) => authorizationUrls(d).some((u) => u.protocol === 'http:')),
  });
  return { oauth, close: () => vault.close() };
}

function openVault(
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
): Array<{ label: string; def: UserOAuthUpstream }> {
  const found = new Map<string, { label: string; def: UserOAuthUpstream }>();
  for (const tool of tools)
    for (const { cred } of credentials.forTool(tool)?.creds ?? []) {
      const src = cred.kind === 'userOAuth' ? cred.userOAuth : undefined;
      const key = upstreamKey(tool.api, cred.scheme);
      if (!src || found.has(key)) continue;
      const what = `credentials.${cred.label}.userOAuth`;
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
        ...(src.issuer !== undefined ? { issuer: src.issuer } : {}),
        ...(src.authorizationUrl !== undefined ? { authorizationUrl: src.authorizationUrl } : {}),
        ...(src.tokenUrl !== undefined ? { tokenUrl: src.tokenUrl } : {}),
      };
      checkDef(def, what);
      found.set(key, { label: cred.label, def });
    }
  return [...found.values()];
}

function authorizationUrls(d: UserOAuthUpstream): URL[] {
  return [d.issuer, d.authorizationUrl, d.tokenUrl].flatMap((u) => (u !== undefined ? [new URL(u)] : []));
}

function checkDef(d: UserOAuthUpstream, what: string): void {
  if (d.issuer === undefined && (d.authorizationUrl === undefined || d.tokenUrl === undefined))
    throw new WardenError(
      'CONFIG_INVALID',
      `${what}: give \`issuer\` (discovery) or both \`authorizationUrl\` and \`tokenUrl\``,
    );
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
