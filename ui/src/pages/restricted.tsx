import { useState } from 'preact/hooks';
import { api, type RestrictedRow } from '../api.js';
import { ConfirmDialog, ErrorLine, fmtTime, usePoll } from '../components.js';

/**
 * Callers a blast-radius budget switched to read-only (docs/budgets.md): who, the budget hit and its
 * numbers, the call that hit it, since when. Lifting (behind a confirmation) serves their writes
 * again on every instance and starts the window of that budget over; it is audited.
 */
export function RestrictedPage() {
  const { value, error, reload } = usePoll(() => api<{ restricted: RestrictedRow[] }>('/restricted'), 5_000);
  const [lifting, setLifting] = useState<RestrictedRow | undefined>(undefined);
  const [done, setDone] = useState('');
  const [actionError, setActionError] = useState('');
  const rows = value?.restricted ?? [];

  async function lift() {
    const r = lifting;
    setLifting(undefined);
    if (!r) return;
    try {
      await api(`/restricted/${encodeURIComponent(r.principal)}/lift`, {});
      setActionError('');
      setDone(`Lifted ${r.principal}: its writes are served again.`);
    } catch (e) {
      setActionError((e as Error).message);
    }
    reload();
  }

  return (
    <section>
      <p aria-live="polite">
        {value
          ? rows.length
            ? `${rows.length} caller${rows.length === 1 ? ' is' : 's are'} read-only after hitting a budget.`
            : 'No caller is restricted.'
          : ''}
      </p>
      <ErrorLine error={error} />
      {actionError && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {done && <p role="status">{done}</p>}
      {rows.length > 0 && (
        <table>
          <caption class="sr-only">Callers restricted to read-only by a budget</caption>
          <thead>
            <tr>
              <th scope="col">Who</th>
              <th scope="col">Budget</th>
              <th scope="col">Hit by</th>
              <th scope="col">Since</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.principal} data-principal={r.principal}>
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
                <td>
                  <button
                    type="button"
                    aria-label={`Lift the restriction of ${r.principal}`}
                    onClick={() => setLifting(r)}
                  >
                    Lift
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={lifting !== undefined}
        title="Lift this restriction?"
        confirmLabel="Lift"
        onConfirm={lift}
        onCancel={() => setLifting(undefined)}
      >
        {lifting && (
          <p>
            <code>{lifting.principal}</code> may write again on every instance, with a fresh window of the
            budget <code>{lifting.budget}</code>.
          </p>
        )}
      </ConfirmDialog>
    </section>
  );
}
