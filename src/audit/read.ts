import { readFileSync } from 'node:fs';
import { listRotated } from './jsonl.js';

/** Every file of an audit path, oldest first: its rotated segments, then the live file. */
export function auditFiles(path: string): string[] {
  return [...listRotated(path), path];
}

export interface AuditFilter {
  tool?: string;
  principal?: string;
  decision?: 'allowed' | 'denied';
  kind?: string;
  since?: number;
  until?: number;
}

/** Records of the given files that pass the filter (lines that do not parse are skipped). */
export function* readRecords(
  files: readonly string[],
  f: AuditFilter = {},
): Generator<Record<string, unknown>> {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (matches(r, f)) yield r;
    }
  }
}

export function matches(r: Record<string, unknown>, f: AuditFilter): boolean {
  if (f.kind && r.kind !== f.kind) return false;
  if (f.tool && r.tool !== f.tool) return false;
  if (f.principal && r.principal !== f.principal) return false;
  if (f.decision && r.decision !== f.decision) return false;
  if (f.since !== undefined || f.until !== undefined) {
    const t = typeof r.time === 'string' ? Date.parse(r.time) : Number.NaN;
    if (Number.isNaN(t)) return false;
    if (f.since !== undefined && t < f.since) return false;
    if (f.until !== undefined && t > f.until) return false;
  }
  return true;
}

/** One line per record for a terminal. */
export function tableLine(r: Record<string, unknown>): string {
  const up = r.upstream as { method?: string; path?: string; status?: number } | undefined;
  const cols = [
    String(r.time ?? '').padEnd(24),
    String(r.kind ?? '').padEnd(10),
    String(r.tool ?? r.action ?? '').padEnd(24),
    String(r.principal ?? r.actor ?? '').padEnd(16),
    String(r.decision ?? '').padEnd(8),
    String(r.code ?? (r.outcome === 'ok' ? 'ok' : '')).padEnd(22),
    up ? `${up.method ?? ''} ${up.path ?? ''} ${up.status ?? ''}`.trim() : '',
  ];
  return cols.join(' ').trimEnd();
}
