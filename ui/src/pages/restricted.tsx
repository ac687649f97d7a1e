import { api, type RestrictedRow } from '../api.js';
import { ActionTable, fmtTime, usePoll } from '../components.js';

/**
 * Callers a blast-radius budget switched to read-only (docs/budgets.md): who, the budget hit and its
 * numbers, the call that hit it, since when. Lifting (behind a confirmation) serves their writes
 * again on every instance and starts the window of that budget over; it is audited.
 */
export function RestrictedPage() {
  const { value, error, reload } = usePoll(() => api<{ restricted: RestrictedRow[] }>('/restricted'), 5_000);
  return (
    <ActionTable<RestrictedRow>
      rows={value?.restricted ?? []}
      loaded={value !== undefined}
      error={error}
      reload={reload}
      count={(n) =>
        n
          ? `${n} caller${n === 1 ? ' is' : 's are'} read-only after hitting a budget.`
          : 'No caller is restricted.'
      }
      caption="Callers restricted to read-only by a budget"
      headers={['Who', 'Budget', 'Hit by', 'Since']}
      rowKey={(r) => r.principal}
      rowData={(r) => ({ 'data-principal': r.principal })}
      cells={(r) => (
        <>
          <th scope="row">
            <code>{r.principal}</code>
          </th>
          <td>
            <code>{r.budget}</code>
            <div class="sub">
              {r.used} of {r.limit} {r.unit} per {r.perSeconds} s
            </div>
          </td>
          <td>
            <code>{r.tool}</code>
            <div class="sub">{r.callId}</div>
          </td>
          <td>{fmtTime(r.since)}</td>
        </>
      )}
      action={{ label: 'Lift', name: (r) => `Lift the restriction of ${r.principal}` }}
      confirm={{
        title: 'Lift this restriction?',
        body: (r) => (
          <p>
            <code>{r.principal}</code> may write again on every instance, with a fresh window of the budget{' '}
            <code>{r.budget}</code>.
          </p>
        ),
      }}
      act={async (r) => {
        await api(`/restricted/${encodeURIComponent(r.principal)}/lift`, {});
        return `Lifted ${r.principal}: its writes are served again.`;
      }}
    />
  );
}
