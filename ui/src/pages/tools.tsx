import { useState } from 'preact/hooks';
import { type ApiStatus, api, type ToolRow } from '../api.js';
import { Badge, Diff, ErrorLine, usePoll } from '../components.js';

export function ToolsPage() {
  const { value, error, reload } = usePoll(
    () => api<{ policyVersion: number; tools: ToolRow[]; apis?: ApiStatus[] }>('/tools'),
    10_000,
  );
  const [filter, setFilter] = useState('');
  const [actionError, setActionError] = useState('');
  const [shown, setShown] = useState<'all' | 'exposed' | 'hidden' | 'pending'>('all');
  const [apiShown, setApiShown] = useState('');

  async function act(path: string) {
    setActionError('');
    try {
      await api(path, {});
    } catch (e) {
      setActionError((e as Error).message);
    }
    reload();
  }

  // An API set: one group per API, in the order the gateway lists them.
  const apis = [...new Set((value?.tools ?? []).flatMap((t) => (t.api !== undefined ? [t.api] : [])))];
  const tools = (value?.tools ?? []).filter((t) => {
    const f = filter.trim().toLowerCase();
    if (f && !`${t.name} ${t.api ?? ''} ${t.method} ${t.path}`.toLowerCase().includes(f)) return false;
    if (apiShown && t.api !== apiShown) return false;
    if (shown === 'exposed') return t.exposed;
    if (shown === 'hidden') return !t.exposed;
    if (shown === 'pending') return !t.approved;
    return true;
  });
  const pending = (value?.tools ?? []).filter((t) => !t.approved).length;
  const exposed = (value?.tools ?? []).filter((t) => t.exposed).length;

  return (
    <section>
      <p>
        {value ? `${exposed} of ${value.tools.length} tools exposed · policy v${value.policyVersion}` : ''}
        {pending > 0 && (
          <>
            {' · '}
            <strong>{pending} waiting for approval</strong>{' '}
            <button type="button" onClick={() => act('/tools/*/approve')}>
              Approve all pending
            </button>
          </>
        )}
      </p>
      <div class="filters">
        <label>
          Search <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
        <label>
          Show{' '}
          <select value={shown} onChange={(e) => setShown(e.currentTarget.value as typeof shown)}>
            <option value="all">all</option>
            <option value="exposed">exposed</option>
            <option value="hidden">hidden</option>
            <option value="pending">waiting for approval</option>
          </select>
        </label>
        {apis.length > 0 && (
          <label>
            API{' '}
            <select value={apiShown} onChange={(e) => setApiShown(e.currentTarget.value)}>
              <option value="">all</option>
              {apis.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <ErrorLine error={error || actionError} />
      {(value?.apis ?? [])
        .filter((a) => a.state === 'out')
        .map((a) => (
          <p key={a.name} class="error" data-api-out={a.name}>
            API <strong>{a.name}</strong> is out: its spec could not be loaded, its tools are not served
            {a.required ? ' (required: the gateway is not ready)' : ''}. {a.error}
          </p>
        ))}
      <table>
        <caption class="sr-only">Tools, their risk and data classes, and whether callers see them</caption>
        <thead>
          <tr>
            <th scope="col">Tool</th>
            <th scope="col">Risk</th>
            <th scope="col">Data</th>
            <th scope="col">Status</th>
            <th scope="col">Scopes</th>
            <th scope="col">Control</th>
          </tr>
        </thead>
        {groupByApi(tools, apis).map((g) => (
          <tbody key={g.api ?? ''} data-api={g.api}>
            {g.api !== undefined && (
              <tr class="group">
                <th scope="rowgroup" colSpan={6}>
                  {g.api}{' '}
                  <span class="sub">
                    {g.tools.filter((t) => t.exposed).length} of {g.tools.length} exposed
                  </span>
                </th>
              </tr>
            )}
            {g.tools.map((t) => (
              <tr key={t.name} data-tool={t.name}>
                <th scope="row">
                  <code>{t.name}</code>
                  <div class="sub">
                    {t.method} {t.path}
                  </div>
                </th>
                <td>
                  <Badge tone={t.kind}>{t.kind}</Badge>
                  {t.risk
                    .filter((r) => r !== t.kind && r !== 'read' && r !== 'write')
                    .map((r) => (
                      <Badge key={r} tone="risk">
                        {r}
                      </Badge>
                    ))}
                  {t.confirm && <Badge tone="confirm">confirm</Badge>}
                </td>
                <td>
                  {t.dataClasses.map((d) => (
                    <Badge key={d} tone={`data-${d}`}>
                      {d}
                    </Badge>
                  ))}
                </td>
                <td>
                  {t.exposed ? (
                    <Badge tone="ok">exposed</Badge>
                  ) : (
                    <>
                      <Badge tone="off">hidden</Badge>
                      <ul class="reasons">
                        {t.hiddenBecause.map((r) => (
                          <li key={r}>{r}</li>
                        ))}
                      </ul>
                    </>
                  )}
                  {t.toggle !== 'policy' && <div class="sub">runtime: {t.toggle}</div>}
                  {t.change && (
                    <details class="change">
                      <summary>What changed</summary>
                      <Diff text={t.change} />
                    </details>
                  )}
                </td>
                <td>{t.scopes.join(' ')}</td>
                <td class="control">
                  {t.toggle === 'disabled' ? (
                    <button
                      type="button"
                      aria-label={`Enable ${t.name}`}
                      onClick={() => act(`/tools/${encodeURIComponent(t.name)}/enable`)}
                    >
                      Enable
                    </button>
                  ) : (
                    <button
                      type="button"
                      aria-label={`Disable ${t.name}`}
                      onClick={() => act(`/tools/${encodeURIComponent(t.name)}/disable`)}
                    >
                      Disable
                    </button>
                  )}
                  {t.toggle !== 'policy' && (
                    <button
                      type="button"
                      class="quiet"
                      aria-label={`Reset ${t.name} to the policy`}
                      onClick={() => act(`/tools/${encodeURIComponent(t.name)}/reset`)}
                    >
                      Reset
                    </button>
                  )}
                  {!t.approved && (
                    <button
                      type="button"
                      aria-label={`Approve ${t.name}`}
                      onClick={() => act(`/tools/${encodeURIComponent(t.name)}/approve`)}
                    >
                      Approve
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        ))}
      </table>
    </section>
  );
}

/** Rows in one group per API (in `apis` order), or one unnamed group for a single spec. */
function groupByApi(tools: ToolRow[], apis: string[]): Array<{ api?: string; tools: ToolRow[] }> {
  if (apis.length === 0) return [{ tools }];
  return apis
    .map((api) => ({ api, tools: tools.filter((t) => t.api === api) }))
    .filter((g) => g.tools.length > 0);
}
