import type { ReportSpec, ReportSummary, ScanReport } from './json.js';

/**
 * A terminal report: summary, one row per tool, then why each hidden tool is hidden. An API set has
 * a summary over all its APIs, then each API's heading and rows, in the order the APIs were given.
 */
export function renderTable(r: ScanReport, width = 120): string {
  const out: string[] = [];
  if (r.apis) {
    out.push(`API set: ${r.spec.title}  (${r.apis.length} APIs)`);
    out.push(summaryLine(r.summary));
  } else {
    out.push(specLine(r.spec));
    out.push(summaryLine(r.summary));
  }
  out.push('');
  const rows = r.tools.map((t) => {
    const data = countBy(t.dataClasses.map((d) => d.class));
    return [
      t.exposed ? 'exposed' : 'hidden',
      t.name,
      `${t.method} ${t.path}`,
      t.risk.join(',') + (t.unbounded ? ',unbounded' : ''),
      Object.entries(data)
        .map(([c, n]) => `${c}:${n}`)
        .join(' ') || '-',
    ];
  });
  const head = ['EXPOSURE', 'TOOL', 'OPERATION', 'RISK', 'DATA'];
  const caps = [8, 40, Math.max(36, width - 8 - 40 - 22 - 14 - 8), 22, 14];
  const cols = head.map((h, i) =>
    Math.min(caps[i]!, Math.max(h.length, ...rows.map((row) => row[i]!.length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => pad(c, cols[i]!))
      .join('  ')
      .trimEnd();
  out.push(line(head));
  if (r.apis) {
    for (const api of r.apis) {
      out.push('', `${api.name}: ${specLine(api.spec)}`, `  ${summaryLine(api.summary)}`);
      r.tools.forEach((t, i) => {
        if (t.api === api.name) out.push(line(rows[i]!));
      });
    }
  } else for (const row of rows) out.push(line(row));
  const hidden = r.tools.filter((t) => !t.exposed);
  if (hidden.length) {
    out.push('', 'Why hidden:');
    for (const t of hidden) out.push(`  ${t.name}: ${t.reasons.join(' | ')}`);
  }
  if (r.readLike.length) {
    out.push(
      '',
      `Read-like POSTs (${r.readLike.length}): hidden as writes; \`mcp-warden init\` proposes a \`treatAs: read\` rule for each:`,
    );
    for (const x of r.readLike) out.push(`  ${x.name}  ${x.method} ${x.path} — ${x.reason}`);
  }
  if (r.deviations.length) {
    // Also among the warnings; here as a count per kind, which is what a reader scans for.
    out.push('', `Spec deviations repaired or ignored (${r.deviations.length} kinds):`);
    for (const d of r.deviations)
      out.push(
        `  ${d.api !== undefined ? `${d.api}: ` : ''}${d.kind}: ${d.count}× ${d.action} — ${d.message} (first at ${d.where[0]})`,
      );
  }
  if (r.warnings.length) {
    out.push('', `Warnings (${r.warnings.length}):`);
    for (const w of r.warnings.slice(0, 20)) out.push(`  ${w}`);
    if (r.warnings.length > 20) out.push(`  …and ${r.warnings.length - 20} more (see --format json)`);
  }
  return `${out.join('\n')}\n`;
}

function specLine(spec: ReportSpec): string {
  return `${spec.title} ${spec.apiVersion}  (${spec.source}, ${spec.specVersion === '2.0' ? 'Swagger' : 'OpenAPI'} ${spec.specVersion})`;
}

function summaryLine(s: ReportSummary): string {
  return (
    `${s.operations} operations: ${s.exposed} exposed by default, ${s.hidden} hidden; ` +
    Object.entries(s.byRisk)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ') +
    (s.unbounded ? `; ${s.unbounded} unbounded lists` : '') +
    (s.readLikePosts ? `; ${s.readLikePosts} read-like POSTs` : '') +
    `; ${s.withDataClasses} return classified data`
  );
}

function pad(s: string, w: number): string {
  return s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w);
}

function countBy(xs: string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}
