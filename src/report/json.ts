import type { Catalog, RiskClass, Tool } from '../model/catalog.js';
import type { SpecDeviation } from '../openapi/repair.js';

/** Bumped on any breaking change to the shape below (documented in docs/scan-report.md). */
export const REPORT_VERSION = 1;

export interface ReportSpec {
  source: string;
  title: string;
  apiVersion: string;
  specVersion: string;
  servers: string[];
}

export interface ReportSummary {
  operations: number;
  exposed: number;
  hidden: number;
  byRisk: Record<RiskClass, number>;
  unbounded: number;
  withDataClasses: number;
  /** POSTs that only read by their verbs (RPC style); still writes until a policy says `treatAs: read`. */
  readLikePosts: number;
}

export interface ScanReport {
  reportVersion: number;
  generator: { name: 'mcp-warden'; version: string };
  /** The spec; for an API set, the set (`source` and `title` joined with ` + `, no version). */
  spec: ReportSpec;
  summary: ReportSummary;
  /** An API set: one entry per API, in the order given (added within reportVersion 1). */
  apis?: ReportApi[];
  tools: ReportTool[];
  warnings: string[];
  /**
   * Harmless departures from the OpenAPI meta-schema the loader repaired or ignored, one entry per
   * kind (added within reportVersion 1: older readers ignore it); in an API set, per kind and API.
   */
  deviations: ReportDeviation[];
  /**
   * Read-like POSTs (`POST /accounts/get`), in tool order: what `init` proposes to treat as reads
   * (added within reportVersion 1).
   */
  readLike: ReportReadLike[];
}

export interface ReportReadLike {
  name: string;
  api?: string;
  method: string;
  path: string;
  verb: string;
  reason: string;
}

export type ReportDeviation = SpecDeviation & { api?: string };

export interface ReportApi {
  name: string;
  /** What its tool names start with, before `_` (`""`: no prefix). */
  prefix: string;
  spec: ReportSpec;
  summary: ReportSummary;
}

export interface ReportTool {
  name: string;
  /** An API set: the API the tool belongs to (added within reportVersion 1). */
  api?: string;
  method: string;
  path: string;
  operationId: string | null;
  tags: string[];
  exposed: boolean;
  reasons: string[];
  risk: RiskClass[];
  unbounded: boolean;
  findings: Tool['risk']['findings'];
  dataClasses: Tool['dataClasses'];
  dataClassesTruncated: boolean;
  auth: Tool['auth'];
  strippedParams: Tool['strippedParams'];
  pageSize: Tool['pageSize'] | null;
  /** A POST whose verbs say it only reads, or null (added within reportVersion 1). */
  readLike: { verb: string; reason: string } | null;
}

export function toReport(catalog: Catalog, version: string, deviations: SpecDeviation[] = []): ScanReport {
  return {
    reportVersion: REPORT_VERSION,
    generator: { name: 'mcp-warden', version },
    spec: specOf(catalog),
    summary: summaryOf(catalog.tools),
    tools: catalog.tools.map(toolOf),
    warnings: catalog.warnings,
    deviations,
    readLike: readLikeOf(catalog.tools),
  };
}

/** One API of a set as `scan` reads it: its catalogue already prefixed, each tool's `api` set. */
export interface ReportPart {
  name: string;
  prefix: string;
  catalog: Catalog;
  deviations: SpecDeviation[];
}

/**
 * One report for an API set: every API's tools in one list (each with its `api`), a summary over
 * all of them and one per API, warnings and deviations tagged with their API.
 */
export function toSetReport(parts: readonly ReportPart[], version: string): ScanReport {
  const tools = parts.flatMap((p) => p.catalog.tools);
  return {
    reportVersion: REPORT_VERSION,
    generator: { name: 'mcp-warden', version },
    spec: {
      source: parts.map((p) => p.catalog.source).join(' + '),
      title: parts.map((p) => p.name).join(' + '),
      apiVersion: '',
      specVersion: '',
      servers: [...new Set(parts.flatMap((p) => p.catalog.servers.map((x) => x.url)))],
    },
    summary: summaryOf(tools),
    apis: parts.map((p) => ({
      name: p.name,
      prefix: p.prefix,
      spec: specOf(p.catalog),
      summary: summaryOf(p.catalog.tools),
    })),
    tools: tools.map(toolOf),
    warnings: parts.flatMap((p) => p.catalog.warnings.map((w) => `${p.name}: ${w}`)),
    deviations: parts.flatMap((p) => p.deviations.map((d) => ({ ...d, api: p.name }))),
    readLike: readLikeOf(tools),
  };
}

function specOf(catalog: Catalog): ReportSpec {
  return {
    source: catalog.source,
    title: catalog.title,
    apiVersion: catalog.apiVersion,
    specVersion: catalog.specVersion,
    servers: catalog.servers.map((s) => s.url),
  };
}

function summaryOf(tools: readonly Tool[]): ReportSummary {
  const byRisk: Record<RiskClass, number> = {
    read: 0,
    write: 0,
    destructive: 0,
    admin: 0,
    credential: 0,
    'bulk-export': 0,
    'raw-query': 0,
  };
  for (const t of tools) for (const c of t.risk.classes) byRisk[c]++;
  const exposed = tools.filter((t) => t.exposure.exposed).length;
  return {
    operations: tools.length,
    exposed,
    hidden: tools.length - exposed,
    byRisk,
    unbounded: tools.filter((t) => t.risk.unbounded).length,
    withDataClasses: tools.filter((t) => t.dataClasses.length > 0).length,
    readLikePosts: tools.filter((t) => t.risk.readLike).length,
  };
}

function toolOf(t: Tool): ReportTool {
  return {
    name: t.name,
    ...(t.api !== undefined ? { api: t.api } : {}),
    method: t.source.method.toUpperCase(),
    path: t.source.path,
    operationId: t.source.operationId ?? null,
    tags: t.source.tags,
    exposed: t.exposure.exposed,
    reasons: t.exposure.reasons,
    risk: t.risk.classes,
    unbounded: t.risk.unbounded,
    findings: t.risk.findings,
    dataClasses: t.dataClasses,
    dataClassesTruncated: t.dataClassesTruncated,
    auth: t.auth,
    strippedParams: t.strippedParams,
    pageSize: t.pageSize ?? null,
    readLike: t.risk.readLike ?? null,
  };
}

function readLikeOf(tools: readonly Tool[]): ReportReadLike[] {
  return tools.flatMap((t) =>
    t.risk.readLike
      ? [
          {
            name: t.name,
            ...(t.api !== undefined ? { api: t.api } : {}),
            method: t.source.method.toUpperCase(),
            path: t.source.path,
            ...t.risk.readLike,
          },
        ]
      : [],
  );
}
