import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, extname, posix, resolve as resolvePath, win32 } from 'node:path';
import { fileURLToPath } from 'node:url';
// Not the errors barrel: it pulls in the MCP SDK, and the spec cache (src/openapi/cache.ts) reads
// specCacheDir below on the spec-loading worker thread too.
import { WardenError } from '../errors/error.js';

/**
 * Where mcp-warden keeps a spec's files when no path is given: a per-user state directory, one
 * folder per spec, never the working directory (MCP clients start stdio servers in `/` or wherever
 * they like). docs/files.md is the user's side of this.
 */

/** The audit's name inside a spec's folder (its `.head` anchor and rotated segments sit beside it). */
export const AUDIT_FILE_NAME = 'audit.jsonl';

export interface StateDirOptions {
  /** `--state-dir`: the root to use instead of the per-user one (relative: against the cwd). */
  stateDir?: string;
  /** Where XDG_STATE_HOME, HOME and LOCALAPPDATA are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default: this machine's (a parameter so that the Windows layout can be tested anywhere). */
  platform?: NodeJS.Platform;
}

/**
 * The roots a spec's folder may go under, in order: `--state-dir` alone when given; otherwise
 * `$XDG_STATE_HOME/mcp-warden` (an absolute one: the XDG spec says to ignore a relative one), then
 * `$HOME/.local/state/mcp-warden` — on Windows `%LOCALAPPDATA%\mcp-warden\state` instead.
 */
export function stateRoots(o: StateDirOptions = {}): string[] {
  if (o.stateDir !== undefined) return [resolvePath(o.stateDir)];
  const env = o.env ?? process.env;
  const windows = (o.platform ?? process.platform) === 'win32';
  const p = windows ? win32 : posix;
  const roots: string[] = [];
  const xdg = env.XDG_STATE_HOME;
  if (xdg && p.isAbsolute(xdg)) roots.push(p.join(xdg, 'mcp-warden'));
  if (windows) {
    const local = env.LOCALAPPDATA || (home(env) && p.join(home(env)!, 'AppData', 'Local'));
    if (local && p.isAbsolute(local)) roots.push(p.join(local, 'mcp-warden', 'state'));
  } else {
    const h = home(env);
    if (h && p.isAbsolute(h)) roots.push(p.join(h, '.local', 'state', 'mcp-warden'));
  }
  return [...new Set(roots)];
}

/**
 * The spec cache's directory (src/openapi/cache.ts): `$MCP_WARDEN_CACHE_DIR` when set (relative:
 * against the cwd), else `$XDG_CACHE_HOME/mcp-warden/specs` (an absolute one only, as above), else
 * `$HOME/.cache/mcp-warden/specs` — on Windows `%LOCALAPPDATA%\mcp-warden\cache\specs`. Only from
 * the environment, never the account's passwd entry: a process started with a bare environment (an
 * MCP client's explicit `env`, the test suite's CLI runs) gets no cache rather than one in a home
 * nobody named. Undefined when there is no absolute place (no cache then).
 */
export function specCacheDir(o: Omit<StateDirOptions, 'stateDir'> = {}): string | undefined {
  const env = o.env ?? process.env;
  if (env.MCP_WARDEN_CACHE_DIR) return resolvePath(env.MCP_WARDEN_CACHE_DIR);
  const windows = (o.platform ?? process.platform) === 'win32';
  const p = windows ? win32 : posix;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && p.isAbsolute(xdg)) return p.join(xdg, 'mcp-warden', 'specs');
  const h = home(env, false);
  if (windows) {
    const local = env.LOCALAPPDATA || (h && p.join(h, 'AppData', 'Local'));
    return local && p.isAbsolute(local) ? p.join(local, 'mcp-warden', 'cache', 'specs') : undefined;
  }
  return h && p.isAbsolute(h) ? p.join(h, '.cache', 'mcp-warden', 'specs') : undefined;
}

/**
 * The code cache's directory (src/lib/code-cache.ts): `$MCP_WARDEN_CODE_CACHE_DIR` when set (relative:
 * against the cwd), else `code` beside the spec cache's default place (`$XDG_CACHE_HOME/mcp-warden/code`,
 * `$HOME/.cache/mcp-warden/code`, on Windows `%LOCALAPPDATA%\mcp-warden\cache\code`) — not under
 * `$MCP_WARDEN_CACHE_DIR`, which names the spec cache alone. Undefined (no code cache) with
 * `MCP_WARDEN_CODE_CACHE=off` or without an absolute place, as specCacheDir.
 */
export function codeCacheDir(o: Omit<StateDirOptions, 'stateDir'> = {}): string | undefined {
  const env = o.env ?? process.env;
  if (env.MCP_WARDEN_CODE_CACHE === 'off') return undefined;
  if (env.MCP_WARDEN_CODE_CACHE_DIR) return resolvePath(env.MCP_WARDEN_CODE_CACHE_DIR);
  const specs = specCacheDir({ ...o, env: { ...env, MCP_WARDEN_CACHE_DIR: '' } });
  const p = (o.platform ?? process.platform) === 'win32' ? win32 : posix;
  return specs === undefined ? undefined : p.join(p.dirname(specs), 'code');
}

/**
 * $HOME (USERPROFILE on Windows), else (unless `passwd` is false) the account's home directory;
 * undefined when there is none.
 */
function home(env: NodeJS.ProcessEnv, passwd = true): string | undefined {
  const h = env.HOME || env.USERPROFILE;
  if (h || !passwd) return h || undefined;
  try {
    return homedir() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A spec's folder name: a readable slug of its file name without extension (for a URL, its host and
 * last path segment), then 8 hex digits of the SHA-256 of its absolute location, so that two
 * `openapi.yaml` in different projects never share an audit chain. `./openapi.yaml` → `openapi-1a2b3c4d`.
 */
export function specDirName(spec: string): string {
  let location: string;
  let stem: string;
  if (/^https?:\/\//i.test(spec)) {
    // Origin and path only: a query may carry a token, and a rotated token must not move the audit.
    const u = new URL(spec);
    location = `${u.origin}${u.pathname}`;
    const last = u.pathname.split('/').filter(Boolean).at(-1) ?? '';
    stem = `${u.hostname}-${basename(last, extname(last))}`;
  } else {
    location = /^file:\/\//i.test(spec) ? fileURLToPath(spec) : resolvePath(spec);
    stem = basename(location, extname(location));
  }
  const slug =
    stem
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 48)
      .replace(/[-.]+$/, '') || 'spec';
  const hash = createHash('sha256').update(location).digest('hex').slice(0, 8);
  return `${slug}-${hash}`;
}

/**
 * The default audit file of a spec: `<root>/<spec folder>/audit.jsonl` under the first root where
 * the folder can be created (mode 0700) and a probe file written in it — a real write, since root
 * ignores modes and a read-only mount ignores them too. None writable: CONFIG_INVALID naming the
 * flags that choose another place.
 */
export function defaultAuditFile(spec: string, o: StateDirOptions = {}): string {
  const name = specDirName(spec);
  const roots = stateRoots(o);
  const tried: string[] = [];
  for (const root of roots) {
    const dir = resolvePath(root, name);
    const why = writableDir(dir);
    if (why === undefined) return resolvePath(dir, AUDIT_FILE_NAME);
    tried.push(`${dir} (${why})`);
  }
  const where = tried.length
    ? `no writable state directory for the audit: tried ${tried.join(', ')}`
    : 'no state directory for the audit: neither XDG_STATE_HOME nor HOME is set to an absolute path';
  throw new WardenError(
    'CONFIG_INVALID',
    `${where}; choose the file with --audit-file <path> or a writable root with --state-dir <dir>`,
  );
}

/** Undefined when `dir` exists or could be made (0700) and takes a file; else the errno code that stopped it. */
function writableDir(dir: string): string | undefined {
  const probe = resolvePath(dir, `.write-probe-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(probe, '', { mode: 0o600 });
    rmSync(probe, { force: true });
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'not writable';
  }
}

/** The default audit files that exist under the roots (one per spec that was served), sorted. */
export function findDefaultAudits(o: StateDirOptions = {}): string[] {
  const found: string[] = [];
  for (const root of stateRoots(o)) {
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch {
      continue;
    }
    for (const e of entries) {
      for (let n = 1; n <= MAX_NUMBERED; n++) {
        const file = numberedAuditFile(resolvePath(root, e, AUDIT_FILE_NAME), n);
        if (existsSync(file)) found.push(file);
        else if (n > 1) break;
      }
    }
  }
  return [...new Set(found)].sort();
}

const MAX_NUMBERED = 16;

/**
 * The n-th default audit of one spec folder: `audit.jsonl`, then `audit-2.jsonl`, … — used when
 * another gateway for the same spec holds the first (two MCP clients configured alike).
 */
export function numberedAuditFile(file: string, n: number): string {
  return n === 1 ? file : file.replace(/\.jsonl$/, `-${n}.jsonl`);
}
