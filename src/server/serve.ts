import { resolve as resolvePath } from 'node:path';
import type { McpRequestContext } from '@modelcontextprotocol/server';
import { openJsonlAudit } from '../audit/jsonl.js';
import { buildCatalog } from '../catalog/build.js';
import type { Catalog } from '../catalog/types.js';
import { createLogger, type Logger } from '../observe/log.js';
import { Scrubber } from '../observe/scrub.js';
import { createPipeline, type Pipeline } from '../pipeline/index.js';
import { type LoadOptions, loadSpec } from '../spec/load.js';
import { resolveTargets } from '../upstream/base-url.js';
import { loadCredentials } from '../upstream/credentials.js';
import { startHttp } from './http.js';
import { createServerFactory } from './mcp.js';

export interface ServeOptions {
  spec: string;
  baseUrl?: string;
  auditFile?: string;
  transport: { kind: 'stdio' } | { kind: 'http'; port: number; host?: string; allowedHosts?: string[] };
  timeoutMs?: number;
  maxResponseBytes?: number;
  maxPageSize?: number;
  maxBodyBytes?: number;
  logLevel?: string;
  load?: LoadOptions;
  env?: NodeJS.ProcessEnv;
}

export interface Gateway {
  catalog: Catalog;
  pipeline: Pipeline;
  logger: Logger;
  auditFile: string;
  /** The MCP endpoint when serving HTTP. */
  url?: string;
  close(): Promise<void>;
}

export const DEFAULT_AUDIT_FILE = 'mcp-warden-audit.jsonl';

/**
 * Everything `mcp-warden serve` does, in order: load and check the spec, build the catalogue, fix each
 * tool's upstream target, read credentials, open the audit, assemble the pipeline, then listen.
 * Anything wrong is reported before the first client can connect.
 */
export async function startGateway(o: ServeOptions): Promise<Gateway> {
  const env = o.env ?? process.env;
  const spec = await loadSpec(o.spec, o.load ?? {});
  const catalog = buildCatalog(spec);
  const exposed = catalog.tools.filter((t) => t.exposure.exposed);
  const targets = resolveTargets(exposed, {
    ...(o.baseUrl !== undefined ? { baseUrl: o.baseUrl } : {}),
    specSource: spec.source.location,
    docServers: catalog.servers,
  });
  const credentials = loadCredentials(exposed, env);
  const scrubber = new Scrubber(credentials.secrets);
  const logger = createLogger({ ...(o.logLevel ? { level: o.logLevel } : {}), scrubber });
  const auditFile = resolvePath(o.auditFile ?? DEFAULT_AUDIT_FILE);
  const audit = await openJsonlAudit(auditFile);
  const pipeline = createPipeline({
    catalog,
    targets,
    credentials,
    scrubber,
    audit,
    logger,
    send: {
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.maxResponseBytes !== undefined ? { maxResponseBytes: o.maxResponseBytes } : {}),
    },
    ...(o.maxPageSize !== undefined ? { maxPageSize: o.maxPageSize } : {}),
  });

  const upstreams = [...new Set([...targets.values()].map((t) => t.origin + t.basePath))];
  logger.info(
    {
      spec: spec.source.location,
      tools: catalog.tools.length,
      exposed: exposed.length,
      hidden: catalog.tools.length - exposed.length,
      upstream: upstreams.slice(0, 5),
      audit: auditFile,
    },
    `serving ${exposed.length} of ${catalog.tools.length} tools (read-only defaults)`,
  );
  for (const m of credentials.missing)
    logger.warn(
      { scheme: m.scheme, variable: m.envVar, tools: m.tools },
      `no upstream credential for scheme ${m.scheme}: ${m.why}; its tools answer CREDENTIAL_MISSING`,
    );
  for (const w of spec.warnings.slice(0, 20)) logger.warn({ spec: true }, w);

  const principal = o.transport.kind === 'stdio' ? 'local' : 'anonymous';
  const factory = createServerFactory({
    catalog,
    pipeline,
    principalOf: (_ctx: McpRequestContext) => principal,
  });

  let closeTransport: () => Promise<void>;
  let url: string | undefined;
  if (o.transport.kind === 'http') {
    const http = await startHttp({
      factory,
      logger,
      port: o.transport.port,
      ...(o.transport.host !== undefined ? { host: o.transport.host } : {}),
      ...(o.transport.allowedHosts ? { allowedHosts: o.transport.allowedHosts } : {}),
      ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
    });
    url = http.url;
    closeTransport = http.close;
    logger.info({ url }, `MCP endpoint (Streamable HTTP, 2025-11-25 and 2026-07-28): ${url}`);
  } else {
    const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
    const handle = serveStdio(factory, {
      legacy: 'serve',
      onerror: (e) => logger.debug({ err: e.message }, 'stdio message rejected'),
    });
    closeTransport = () => handle.close();
    logger.info('MCP over stdio (2025-11-25 and 2026-07-28)');
  }

  return {
    catalog,
    pipeline,
    logger,
    auditFile,
    ...(url ? { url } : {}),
    async close() {
      await closeTransport();
      await pipeline.close();
      await audit.close();
      logger.flush();
    },
  };
}
