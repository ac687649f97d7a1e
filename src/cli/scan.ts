import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { buildCatalog } from '../catalog/build.js';
import { WardenError } from '../errors/index.js';
import { type LoadOptions, loadSpec } from '../openapi/load.js';
import { createLineLocator } from '../openapi/parse.js';
import { toReport } from '../report/json.js';
import { renderSarif } from '../report/sarif.js';
import { renderTable } from '../report/table.js';
import { VERSION } from '../version.js';

export interface ScanOptions {
  format: 'table' | 'json' | 'sarif';
  output?: string;
  quiet?: boolean;
  remoteRefs?: LoadOptions['remoteRefs'];
  refRoot?: string;
  maxSpecMb?: number;
}

export async function runScan(
  source: string,
  opts: ScanOptions,
  io: { stdout: (s: string) => void; stderr: (s: string) => void },
): Promise<void> {
  if (!['table', 'json', 'sarif'].includes(opts.format)) {
    throw new WardenError(
      'USAGE',
      `unknown --format ${JSON.stringify(opts.format)} (use table, json or sarif)`,
    );
  }
  const progress = opts.quiet ? undefined : (m: string) => io.stderr(`mcp-warden: ${m}\n`);
  const spec = await loadSpec(source, {
    ...(progress ? { onProgress: progress } : {}),
    ...(opts.remoteRefs ? { remoteRefs: opts.remoteRefs } : {}),
    ...(opts.refRoot ? { refRoot: opts.refRoot } : {}),
    ...(opts.maxSpecMb ? { maxBytes: Math.floor(opts.maxSpecMb * 1024 * 1024) } : {}),
  });
  const catalog = buildCatalog(
    spec,
    progress && spec.rootText.length > 1024 * 1024 ? { onProgress: progress } : {},
  );
  const report = toReport(catalog, VERSION, spec.deviations);
  let text: string;
  if (opts.format === 'json') text = `${JSON.stringify(report, null, 2)}\n`;
  else if (opts.format === 'table') text = renderTable(report, process.stdout.columns ?? 120);
  else {
    // Lines are only meaningful for operations that live in the root file.
    // Deviations are found before a 2.0 spec is converted, so their pointers are into the root file too.
    const rootFile = spec.source.kind === 'file' && spec.files === 1;
    const locateRoot = rootFile ? createLineLocator(spec.rootText) : undefined;
    const locate = spec.originalVersion !== '2.0' ? locateRoot : undefined;
    const pointers = new Map(catalog.tools.map((t) => [t.name, t.source.pointer.slice(1)]));
    const uri =
      spec.source.kind === 'file'
        ? relative(process.cwd(), spec.source.location).split('\\').join('/')
        : spec.source.location;
    text = `${JSON.stringify(renderSarif(report, pointers, uri, locate, locateRoot), null, 2)}\n`;
  }
  if (opts.output) {
    await writeFile(opts.output, text);
    progress?.(`wrote ${opts.output}`);
  } else io.stdout(text);
}
