import { RISK_RULES } from '../classify/risk.js';
import type { DeviationKind } from '../openapi/repair.js';
import type { ScanReport } from './json.js';

type Locate = (pointer: string) => { line: number; column: number } | undefined;

/** Where one spec's results point: its file (none for a URL) and line finders for it. */
export interface SarifArtifact {
  uri: string | undefined;
  /** Lines of operations (by JSON pointer into the document read). */
  locate: Locate | undefined;
  /** Lines of deviations (pointers into the file as written; default: `locate`). */
  locateDeviation?: Locate | undefined;
}

const LEVEL: Record<string, 'error' | 'warning' | 'note'> = {
  admin: 'warning',
  credential: 'warning',
  'raw-query': 'warning',
  'bulk-export': 'warning',
  destructive: 'warning',
  write: 'note',
  unbounded: 'note',
};

/**
 * SARIF 2.1.0: one result per risk finding that hides a tool (and per unbounded list), each at the
 * operation's line in the spec when the spec is a local file. Rules are the classification table.
 * An API set is one run: each result points into its own API's spec (`artifactOf(api)`), and its
 * fingerprint carries the API's name, so two APIs with the same path are two alerts.
 */
export function renderSarif(
  r: ScanReport,
  pointers: Map<string, string>,
  artifactOf: (api: string | undefined) => SarifArtifact,
): object {
  const rules = RISK_RULES.filter((x) => LEVEL[x.class] !== undefined);
  const index = new Map(rules.map((x, i) => [x.id, i]));
  const results: object[] = [];
  for (const t of r.tools) {
    const { uri: artifactUri, locate } = artifactOf(t.api);
    const pointer = pointers.get(t.name);
    const pos = pointer && locate ? locate(pointer) : undefined;
    for (const f of t.findings) {
      const level = LEVEL[f.class];
      if (!level || !index.has(f.rule)) continue;
      results.push({
        ruleId: f.rule,
        ruleIndex: index.get(f.rule),
        level,
        message: {
          text: `${t.method} ${t.path} (tool ${t.name}) is ${f.class}: ${f.reason}.${
            f.class === 'unbounded'
              ? ' The gateway clamps its page size.'
              : ' Hidden unless a policy allows it.'
          }`,
        },
        locations: [
          {
            ...physicalLocation(artifactUri, pos),
            logicalLocations: [
              { name: t.name, fullyQualifiedName: `${t.method} ${t.path}`, kind: 'function' },
            ],
          },
        ],
        partialFingerprints: {
          operation: `${t.api !== undefined ? `${t.api}:` : ''}${t.method} ${t.path}#${f.rule}`,
        },
      });
    }
  }
  const deviations = deviationResults(r, rules.length, artifactOf);
  results.push(...deviations.results);
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'mcp-warden',
            version: r.generator.version,
            rules: [
              ...rules.map((x) => ({
                id: x.id,
                name: pascal(x.id),
                shortDescription: { text: `${x.class}: ${x.description}` },
                defaultConfiguration: { level: LEVEL[x.class] },
                properties: { riskClass: x.class },
              })),
              ...deviations.rules,
            ],
          },
        },
        results,
      },
    ],
  };
}

/** `method-delete` → `MethodDelete`: SARIF rule names. */
const pascal = (id: string): string =>
  id.replace(/(^|[-.])([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());

/** The rule id of a spec deviation kind (the loader repaired or ignored it: a note, never a failure). */
export const deviationRuleId = (kind: DeviationKind): string => `spec-deviation-${kind}`;

/**
 * One rule per deviation kind found, one `note` result per listed place (the list is capped; the
 * message gives the full count), at the place's line in the root file when known.
 */
function deviationResults(
  r: ScanReport,
  firstIndex: number,
  artifactOf: (api: string | undefined) => SarifArtifact,
): { rules: object[]; results: object[] } {
  // One rule per kind, even when several APIs of a set have it.
  const kinds = [...new Map(r.deviations.map((d) => [d.kind, d])).values()];
  const rules = kinds.map((d) => ({
    id: deviationRuleId(d.kind),
    name: pascal(deviationRuleId(d.kind)),
    shortDescription: { text: `spec deviation (${d.action}): ${d.message}` },
    defaultConfiguration: { level: 'note' },
    properties: { deviation: d.kind, action: d.action },
  }));
  const ruleIndex = new Map(kinds.map((d, i) => [d.kind, firstIndex + i]));
  const results = r.deviations.flatMap((d) => {
    const where = artifactOf(d.api);
    const locate = 'locateDeviation' in where ? where.locateDeviation : where.locate;
    const api = d.api !== undefined ? `${d.api}:` : '';
    return d.where.map((pointer) => {
      const pos = locate?.(pointer);
      return {
        ruleId: deviationRuleId(d.kind),
        ruleIndex: ruleIndex.get(d.kind),
        level: 'note',
        message: {
          text: `${d.api !== undefined ? `API ${d.api}: ` : ''}${d.message} (${d.action}; ${d.count} place(s) in all), here at ${pointer}.`,
        },
        locations: [
          {
            ...physicalLocation(where.uri, pos),
            logicalLocations: [{ fullyQualifiedName: `${api}${pointer}`, kind: 'member' }],
          },
        ],
        partialFingerprints: { deviation: `${api}${d.kind}#${pointer}` },
      };
    });
  });
  return { rules, results };
}

/** Where in the spec file a result points, when the file is known (a URL-loaded spec has none). */
function physicalLocation(
  artifactUri: string | undefined,
  pos: { line: number; column: number } | undefined,
) {
  if (!artifactUri) return {};
  return {
    physicalLocation: {
      artifactLocation: { uri: artifactUri },
      ...(pos ? { region: { startLine: pos.line, startColumn: pos.column } } : {}),
    },
  };
}
