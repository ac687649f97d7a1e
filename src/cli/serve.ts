import { WardenError } from '../errors/index.js';
import type { LoadOptions } from '../openapi/load.js';
import { type ServeOptions, startGateway } from '../server/serve.js';

export interface ServeCliOptions {
  spec: string;
  baseUrl?: string;
  policy?: string;
  env?: 'dev' | 'staging' | 'prod';
  adminPort?: number;
  adminHost?: string;
  watch?: boolean;
  watchSpec?: boolean;
  pins?: string;
  auditFile?: string;
  stdio?: boolean;
  port?: number;
  host?: string;
  allowedHost?: string[];
  timeout?: number;
  maxResponseBytes?: number;
  maxPageSize?: number;
  logLevel?: string;
  remoteRefs?: LoadOptions['remoteRefs'];
  refRoot?: string;
  toolsets?: string;
  dynamic?: boolean;
}

export async function runServe(opts: ServeCliOptions, io: { stderr: (s: string) => void }): Promise<void> {
  if (Boolean(opts.stdio) === (opts.port !== undefined))
    throw new WardenError('USAGE', 'choose one transport: --stdio, or --port <n> for Streamable HTTP');
  const transport: ServeOptions['transport'] = opts.stdio
    ? { kind: 'stdio' }
    : {
        kind: 'http',
        port: opts.port!,
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(opts.allowedHost?.length ? { allowedHosts: opts.allowedHost } : {}),
      };
  const gw = await startGateway({
    spec: opts.spec,
    transport,
    ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}),
    ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
    ...(opts.env !== undefined ? { environment: opts.env } : {}),
    ...(opts.adminPort !== undefined
      ? { admin: { port: opts.adminPort, ...(opts.adminHost ? { host: opts.adminHost } : {}) } }
      : {}),
    ...(opts.watch === false ? { watchPolicy: false } : {}),
    ...(opts.watchSpec ? { watchSpec: true } : {}),
    ...(opts.pins !== undefined ? { pinsFile: opts.pins } : {}),
    ...(opts.auditFile !== undefined ? { auditFile: opts.auditFile } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    ...(opts.maxResponseBytes !== undefined ? { maxResponseBytes: opts.maxResponseBytes } : {}),
    ...(opts.maxPageSize !== undefined ? { maxPageSize: opts.maxPageSize } : {}),
    ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
    ...(opts.toolsets !== undefined ? { toolsets: splitList(opts.toolsets) } : {}),
    ...(opts.dynamic ? { dynamic: true } : {}),
    load: {
      ...(opts.remoteRefs ? { remoteRefs: opts.remoteRefs } : {}),
      ...(opts.refRoot ? { refRoot: opts.refRoot } : {}),
    },
  });
  io.stderr(`mcp-warden: audit file ${gw.auditFile}\n`);
  if (gw.url) io.stderr(`mcp-warden: MCP endpoint ${gw.url}\n`);
  if (gw.adminUrl) io.stderr(`mcp-warden: admin API ${gw.adminUrl}\n`);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void gw.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // stdio: the client closing our stdin ends the session.
  if (opts.stdio) process.stdin.once('end', stop);
}

/** `a,b , c` → [a, b, c]; an empty list is a mistake, not "every toolset". */
function splitList(v: string): string[] {
  const items = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (!items.length) throw new WardenError('USAGE', '--toolsets needs at least one toolset name');
  return items;
}
