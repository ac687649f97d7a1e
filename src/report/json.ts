import type { Catalog, RiskClass, Tool } from '../model/catalog.js';
import type { SpecDeviation } from '../openapi/repair.js';

/** Bumped on any breaking change to the shape below (documented in docs/scan-report.md). */
export const REPORT_VERSION = 1;

export interface ScanReport {
  reportVersion: number;
  generator: { name: 'mcp-warden'; version: string };
  spec: { source: string; title: string; apiVersion: string; specVersion: string; servers: string[] };
  summary: {
    operations: number;
    exposed: number;
    hidden: number;
    byRisk: Record<RiskClass, number>;
    unbounded: number;
    withDataClasses: number;
  };
  tools: ReportTool[];
  warnings: string[];
  /**
   * Harmless departures from the OpenAPI meta-schema the loader repaired or ignored, one entry per
   * kind (added within reportVersion 1: older readers ignore it).
   */
  deviations: SpecDeviation[];
}

export interface ReportTool {
  name: string;
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
}

export function toReport(catalog: Catalog, version: string, deviations: SpecDeviation[] = []): ScanReport {
  const byRisk: Record<RiskClass, number> = {
    read: 0,
    write: 0,
    destructive: 0,
    admin: 0,
    credential: 0,
    'bulk-export': 0,
    'raw-query': 0,
  };
  for (const t of catalog.tools) for (const c of t.risk.classes) byRisk[c]++;
  const exposed = catalog.tools.filter((t) => t.exposure.exposed).length;
  return {
    reportVersion: REPORT_VERSION,
    generator: { name: 'mcp-warden', version },
    spec: {
      source: catalog.source,
      title: catalog.title,
      apiVersion: catalog.apiVersion,
      specVersion: catalog.specVersion,
      servers: catalog.servers.map((s) => s.url),
    },
    summary: {
      operations: catalog.tools.length,
      exposed,
      hidden: catalog.tools.length - exposed,
      byRisk,
      unbounded: catalog.tools.filter((t) => t.risk.unbounded).length,
      withDataClasses: catalog.tools.filter((t) => t.dataClasses.length > 0).length,
    },
    tools: catalog.tools.map((t) => ({
      name: t.name,
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
    })),
    warnings: catalog.warnings,
    deviations,
  };
}
