import { WardenError } from '../errors/index.js';
import type { ServerInfo, Tool } from '../model/catalog.js';

/** Where a tool's calls go: fixed at start-up, never derived from arguments. */
export interface UpstreamTarget {
  /** `https://api.example.com:8443` */
  origin: string;
  /** Path prefix without a trailing slash: `/v1`, or empty. */
  basePath: string;
}

/**
 * Parses `--base-url` (or a server URL from the spec) into a target. Only http(s); no user info
 * (it would end up in logs), no query or fragment (they would be merged into every call).
 */
export function parseBaseUrl(raw: string, what: string): UpstreamTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new WardenError('CONFIG_INVALID', `${what} is not an absolute URL: ${clip(raw)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new WardenError('CONFIG_INVALID', `${what} must use http or https, not ${clip(u.protocol)}`);
  if (u.username || u.password)
    throw new WardenError(
      'CONFIG_INVALID',
      `${what} must not contain a user name or password; give credentials through MCP_WARDEN_CRED_* variables`,
    );
  if (u.search || u.hash)
    throw new WardenError('CONFIG_INVALID', `${what} must not have a query or a fragment`);
  return { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
}

/**
 * The target of every exposed tool. With `baseUrl` all tools go there. Without it, each tool's first
 * server from the spec is used with every variable at its default (an argument never picks a server
 * variable); a relative server URL is resolved against the spec's own URL when it has one.
 */
export function resolveTargets(
  tools: readonly Tool[],
  opts: { baseUrl?: string; specSource: string; docServers: readonly ServerInfo[] },
): Map<Tool, UpstreamTarget> {
  const out = new Map<Tool, UpstreamTarget>();
  if (opts.baseUrl !== undefined) {
    const t = parseBaseUrl(opts.baseUrl, '--base-url');
    for (const tool of tools) out.set(tool, t);
    return out;
  }
  const cache = new Map<string, UpstreamTarget>();
  for (const tool of tools) {
    const server = tool.source.servers[0] ?? opts.docServers[0];
    if (!server)
      throw new WardenError(
        'CONFIG_INVALID',
        'the spec declares no servers; pass --base-url <url> to say where the API is',
      );
    const url = substitute(server);
    let target = cache.get(url);
    if (!target) {
      let absolute: string;
      try {
        absolute = new URL(url, /^https?:\/\//i.test(opts.specSource) ? opts.specSource : undefined).href;
      } catch {
        throw new WardenError(
          'CONFIG_INVALID',
          `the spec's server URL ${clip(url)} is relative and the spec was read from a file; pass --base-url <url>`,
        );
      }
      target = parseBaseUrl(absolute, `the spec's server URL ${clip(url)}`);
      cache.set(url, target);
    }
    out.set(tool, target);
  }
  return out;
}

function substitute(server: ServerInfo): string {
  return server.url.replace(/\{([^}]+)\}/g, (whole, name: string) => {
    const v = server.variables?.[name];
    return v ? v.default : whole;
  });
}

function clip(s: string): string {
  const c = s.replace(/[^\x20-\x7e]/g, '?');
  return c.length > 200 ? `${c.slice(0, 200)}…` : c;
}
