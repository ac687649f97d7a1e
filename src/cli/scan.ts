import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { buildCatalog } from '../catalog/build.js';
import { assignSetNames } from '../catalog/names.js';
import { oneOfWarnings } from '../catalog/one-of.js';
import { WardenError } from '../errors/index.js';
import type { Catalog } from '../model/catalog.js';
import { type LoadedSpec, type LoadOptions, loadSpec } from '../openapi/load.js';
import { createLineLocator } from '../openapi/locate.js';
import { type ReportPart, type ScanReport, toReport, toSetReport } from '../report/json.js';
import { renderSarif, type SarifArtifact } from '../report/sarif.js';
import { renderTable } from '../report/table.js';
import { VERSION } from '../version.js';
import { type ApiArg, apiNameFromTitle, checkUniqueNames, parseApiFlag } from './api-flags.js';

export interface ScanOptions {
  format: 'table' | 'json' | 'sarif';
  output?: string;
  quiet?: boolean;
  remoteRefs?: LoadOptions['remoteRefs'];
  refRoot?: string;
  maxSpecMb?: number;
  /** `--no-spec-cache`: false. */
  specCache?: boolean;
}

export async function runScan(
  sources: string | readonly string[],
  opts: ScanOptions & { api?: string[] },
  io: { stdout: (s: string) => void; stderr: (s: string) => void },
): Promise<void> {
  if (!['table', 'json', 'sarif'].includes(opts.format)) {
    throw new WardenError(
      'USAGE',
      `unknown --format ${JSON.stringify(opts.format)} (use table, json or sarif)`,
    );
  }
  const specs = typeof sources === 'string' ? [sources] : [...sources];
  const named = (opts.api ?? []).map(parseApiFlag);
  if (specs.length === 0 && named.length === 0)
    throw new WardenError('USAGE', 'name a spec to scan, several, or --api name=spec (repeatable)');
  const progress = opts.quiet ? undefined : (m: string) => io.stderr(`mcp-warden: ${m}\n`);
  const read = async (source: string) => {
    const spec = await loadSpec(source, {
      ...(progress ? { onProgress: progress } : {}),
      ...(opts.remoteRefs ? { remoteRefs: opts.remoteRefs } : {}),
      ...(opts.refRoot ? { refRoot: opts.refRoot } : {}),
      ...(opts.maxSpecMb ? { maxBytes: Math.floor(opts.maxSpecMb * 1024 * 1024) } : {}),
      ...(opts.specCache === false ? { specCache: false } : {}),
    });
    const catalog = buildCatalog(
      spec,
      progress && spec.rootText.length > 1024 * 1024 ? { onProgress: progress } : {},
    );
    return { spec, catalog };
  };
  let report: ScanReport;
  // Per API (or `undefined` for a single spec): where its SARIF results point.
  const artifacts = new Map<string | undefined, SarifArtifact>();
  const pointers = new Map<string, string>();
  if (specs.length === 1 && named.length === 0) {
    const { spec, catalog } = await read(specs[0]!);
    report = toReport(catalog, VERSION, spec.deviations);
    artifacts.set(undefined, artifactOf(spec));
    for (const t of catalog.tools) pointers.set(t.name, t.source.pointer.slice(1));
    report.warnings = [...report.warnings, ...oneOfWarnings(catalog.tools)];
  } else {
    const parts = await readSet(specs, named, read);
    report = toSetReport(parts, VERSION);
    for (const p of parts) {
      artifacts.set(p.name, artifactOf(p.spec));
      for (const t of p.catalog.tools) pointers.set(t.name, t.source.pointer.slice(1));
    }
    report.warnings = [...report.warnings, ...oneOfWarnings(parts.flatMap((p) => p.catalog.tools))];
  }
  let text: string;
  if (opts.format === 'json') text = `${JSON.stringify(report, null, 2)}\n`;
  else if (opts.format === 'table') text = renderTable(report, process.stdout.columns ?? 120);
  else
    text = `${JSON.stringify(
      renderSarif(report, pointers, (api) => artifacts.get(api) ?? { uri: undefined, locate: undefined }),
      null,
      2,
    )}\n`;
  if (opts.output) {
    await writeFile(opts.output, text);
    progress?.(`wrote ${opts.output}`);
  } else io.stdout(text);
}

type Read = (source: string) => Promise<{ spec: LoadedSpec; catalog: Catalog }>;

/**
 * Several specs as one API set, named as `serve` names them: `--api name=spec` APIs by their name,
 * bare specs by their title; each API's tools prefixed with its name, collisions settled the same way.
 */
async function readSet(
  specs: readonly string[],
  named: readonly ApiArg[],
  read: Read,
): Promise<Array<ReportPart & { spec: LoadedSpec }>> {
  checkUniqueNames(named);
  const loaded: Array<{ name?: string; spec: LoadedSpec; catalog: Catalog }> = [];
  for (const a of named) loaded.push({ name: a.name, ...(await read(a.spec)) });
  for (const s of specs) loaded.push(await read(s));
  const taken = new Set(named.map((a) => a.name));
  const apis = loaded.map((l) => {
    const name = l.name ?? apiNameFromTitle(l.catalog.title, taken);
    taken.add(name);
    return { ...l, name };
  });
  const names = assignSetNames(
    apis.map((a) => ({
      api: a.name,
      prefix: a.name,
      tools: a.catalog.tools.map((t) => ({ name: t.name, method: t.source.method, path: t.source.path })),
    })),
  );
  return apis.map((a, i) => ({
    name: a.name,
    prefix: a.name,
    spec: a.spec,
    deviations: a.spec.deviations,
    catalog: {
      ...a.catalog,
      tools: a.catalog.tools.map((t, j) => ({ ...t, name: names[i]![j]!, api: a.name })),
    },
  }));
}

/** Where a spec's SARIF results point: lines only for operations in the root file of a local spec. */
function artifactOf(spec: LoadedSpec): SarifArtifact {
  // Deviations are found before a 2.0 spec is converted, so their pointers are into the root file too.
  const rootFile = spec.source.kind === 'file' && spec.files === 1;
  const locateRoot = rootFile ? createLineLocator(spec.rootText) : undefined;
  return {
    uri:
      spec.source.kind === 'file'
        ? relative(process.cwd(), spec.source.location).split('\\').join('/')
        : spec.source.location,
    locate: spec.originalVersion !== '2.0' ? locateRoot : undefined,
    locateDeviation: locateRoot,
  };
}
