import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { listRotated, tailLines } from './files.js';

export { tailLines };

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
  /** One approval request's story: its `approval` records and the call records that carry its id. */
  approval?: string;
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

/**
 * The lines of a file with the byte offset each starts at, split on raw bytes (a torn line may end
 * inside a UTF-8 sequence); the last line may lack its newline. A missing file has no lines.
 */
export async function* readLinesAt(file: string): AsyncGenerator<{ text: string; offset: number }> {
  let offset = 0;
  let parts: Buffer[] = [];
  const take = (): { text: string; offset: number } => {
    const line = Buffer.concat(parts);
    parts = [];
    const at = offset;
    offset += line.length + 1;
    return { text: line.toString('utf8'), offset: at };
  };
  try {
    for await (const chunk of createReadStream(file)) {
      const buf = chunk as Buffer;
      let from = 0;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, from)) {
        parts.push(buf.subarray(from, nl));
        from = nl + 1;
        yield take();
      }
      if (from < buf.length) parts.push(buf.subarray(from));
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (parts.length) yield take();
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
  if (f.approval && r.approval !== f.approval) return false;
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
  const by = typeof r.operator === 'string' ? `by ${r.operator}` : '';
  const cols = [
    String(r.time ?? '').padEnd(24),
    String(r.kind ?? '').padEnd(10),
    String(r.tool ?? r.action ?? '').padEnd(24),
    String(r.principal ?? r.actor ?? '').padEnd(16),
    // An approval record has an event (requested, approved…) where a call has a decision.
    String(r.decision ?? r.event ?? '').padEnd(8),
    String(r.code ?? (r.outcome === 'ok' ? 'ok' : by)).padEnd(22),
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
