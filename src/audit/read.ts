import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
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

/**
 * The lines of a file, streamed: an audit file can be far larger than a string may be (ten minutes
 * of load wrote more than 512 MB). A missing file has no lines.
 */
export async function* readLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) yield line;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Records of the given files that pass the filter (lines that do not parse are skipped). */
export async function* readRecords(
  files: readonly string[],
  f: AuditFilter = {},
): AsyncGenerator<Record<string, unknown>> {
  for (const file of files)
    for await (const line of readLines(file)) {
      const r = parseRecord(line);
      if (r && matches(r, f)) yield r;
    }
}

/** The last `maxBytes` of a file, as whole lines: a bounded read, for start-up. */
export function tailLines(file: string, maxBytes: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    // The first line may be cut in the middle when the read did not start at the file's start.
    if (len < size) lines.shift();
    return lines.filter((l) => l.length > 0);
  } finally {
    closeSync(fd);
  }
}

export function parseRecord(line: string): Record<string, unknown> | undefined {
  if (!line) return undefined;
  try {
    const r: unknown = JSON.parse(line);
    return r !== null && typeof r === 'object' && !Array.isArray(r)
      ? (r as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
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

/**
 * Principal × tool pairs of allowed calls the audit already holds (`principal\0tool`), so first-use
 * alerts survive a restart. Bounded work at start-up: the last 16 MiB of each of the last three files.
 */
export function allowedPairs(auditFile: string): string[] {
  const out = new Set<string>();
  const wanted = { kind: 'call', decision: 'allowed' } as const;
  for (const file of auditFiles(auditFile).slice(-3))
    for (const line of tailLines(file, 16 * 1024 * 1024)) {
      const r = parseRecord(line);
      if (r && matches(r, wanted) && typeof r.principal === 'string' && typeof r.tool === 'string')
        out.add(`${r.principal}\0${r.tool}`);
    }
  return [...out];
}
