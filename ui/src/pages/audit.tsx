import { useEffect, useRef, useState } from 'preact/hooks';
import { type AuditRecord, api } from '../api.js';
import { ErrorLine, fmtTime, Redacted } from '../components.js';

interface Filters {
  tool: string;
  principal: string;
  decision: string;
  kind: string;
  since: string;
  until: string;
}

const EMPTY: Filters = { tool: '', principal: '', decision: '', kind: '', since: '', until: '' };
const MAX_ROWS = 500;

function query(f: Filters, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  for (const k of ['tool', 'principal', 'decision', 'kind'] as const) if (f[k]) q.set(k, f[k]);
  // datetime-local is the reader's local time; the API takes instants.
  if (f.since) q.set('since', new Date(f.since).toISOString());
  if (f.until) q.set('until', new Date(f.until).toISOString());
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q.toString();
}

export function AuditPage() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [rows, setRows] = useState<AuditRecord[]>([]);
  const [live, setLive] = useState(true);
  const [error, setError] = useState('');
  const [selected, setSelected] = useState<AuditRecord | undefined>(undefined);
  const lastSeq = useRef(0);

  useEffect(() => {
    let stop = false;
    setSelected(undefined);
    api<{ records: AuditRecord[]; lastSeq: number }>(`/audit?${query(filters)}`).then(
      (r) => {
        if (stop) return;
        setRows(r.records);
        lastSeq.current = r.lastSeq;
        setError('');
      },
      (e: Error) => !stop && setError(e.message),
    );
    return () => {
      stop = true;
    };
  }, [filters]);

  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => {
      api<{ records: AuditRecord[]; lastSeq: number }>(
        `/audit?${query(filters, { after: String(lastSeq.current) })}`,
      ).then(
        (r) => {
          lastSeq.current = r.lastSeq;
          if (r.records.length) setRows((old) => [...r.records, ...old].slice(0, MAX_ROWS));
        },
        (e: Error) => setError(e.message),
      );
    }, 2000);
    return () => clearInterval(timer);
  }, [live, filters]);

  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });

  return (
    <section class="audit">
      <form
        class="filters"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...draft });
        }}
      >
        <label>
          Tool <input name="tool" {...field('tool')} />
        </label>
        <label>
          Principal <input name="principal" {...field('principal')} />
        </label>
        <label>
          Decision
          <select
            name="decision"
            value={draft.decision}
            onChange={(e) => setDraft({ ...draft, decision: e.currentTarget.value })}
          >
            <option value="">any</option>
            <option value="allowed">allowed</option>
            <option value="denied">denied</option>
          </select>
        </label>
        <label>
          Kind
          <select
            name="kind"
            value={draft.kind}
            onChange={(e) => setDraft({ ...draft, kind: e.currentTarget.value })}
          >
            <option value="">any</option>
            <option value="call">call</option>
            <option value="intent">intent</option>
            <option value="control">control</option>
            <option value="checkpoint">checkpoint</option>
          </select>
        </label>
        <label>
          From <input type="datetime-local" name="since" {...field('since')} />
        </label>
        <label>
          To <input type="datetime-local" name="until" {...field('until')} />
        </label>
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="quiet"
          onClick={() => {
            setDraft(EMPTY);
            setFilters(EMPTY);
          }}
        >
          Clear
        </button>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live
          tail
        </label>
      </form>
      <ErrorLine error={error} />
      <p class="sub" aria-live="polite">
        {rows.length} record{rows.length === 1 ? '' : 's'} shown, newest first
      </p>
      <div class="split">
        <table class="records">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Kind</th>
              <th scope="col">Tool / action</th>
              <th scope="col">Principal</th>
              <th scope="col">Decision</th>
              <th scope="col">Code</th>
              <th scope="col">ms</th>
              <th scope="col">
                <span class="sr-only">Details</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr
                key={String(r.seq ?? r.id)}
                class={`${r.decision ?? ''} ${selected === r ? 'selected' : ''}`}
              >
                <td>{fmtTime(r.time)}</td>
                <td>{String(r.kind ?? '')}</td>
                <td>
                  <code>{String(r.tool ?? r.action ?? '')}</code>
                </td>
                <td>{String(r.principal ?? r.actor ?? '')}</td>
                <td>{String(r.decision ?? '')}</td>
                <td>{String(r.code ?? '')}</td>
                <td>{typeof r.ms === 'number' ? r.ms : ''}</td>
                <td>
                  <button
                    type="button"
                    class="quiet"
                    aria-label={`Details of record ${r.seq}`}
                    onClick={() => setSelected(r)}
                  >
                    Details
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {selected && (
          <aside class="detail" aria-label="Record detail">
            <h2>Record {String(selected.seq ?? '')}</h2>
            {selected.redactions !== undefined && (
              <p>
                Redacted:{' '}
                {Object.entries(selected.redactions as Record<string, number>)
                  .map(([k, n]) => `${k} × ${n}`)
                  .join(', ') || 'nothing'}
              </p>
            )}
            <pre>
              <Redacted text={JSON.stringify(readable(selected), null, 2)} />
            </pre>
            <button type="button" class="quiet" onClick={() => setSelected(undefined)}>
              Close
            </button>
          </aside>
        )}
      </div>
    </section>
  );
}

/** The response is stored as the text the agent saw; shown parsed when it is JSON, so it reads as data. */
function readable(r: AuditRecord): AuditRecord {
  if (typeof r.response !== 'string') return r;
  try {
    return { ...r, response: JSON.parse(r.response) };
  } catch {
    return r;
  }
}
