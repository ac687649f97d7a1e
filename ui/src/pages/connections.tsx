import { useState } from 'preact/hooks';
import { api, type ConnectionRow } from '../api.js';
import { ConfirmDialog, ErrorLine, fmtTime, usePoll } from '../components.js';

/**
 * Connected accounts (per-user OAuth): who connected which upstream, with which scopes, last used
 * when. Revoking (behind a confirmation) deletes the stored tokens: that person's next call asks them
 * to connect again. No token is ever sent to this page.
 */
export function ConnectionsPage() {
  const { value, error, reload } = usePoll(
    () => api<{ connections: ConnectionRow[] }>('/connections'),
    10_000,
  );
  const [revoking, setRevoking] = useState<ConnectionRow | undefined>(undefined);
  const [done, setDone] = useState('');
  const [actionError, setActionError] = useState('');
  const rows = value?.connections ?? [];

  async function revoke() {
    const c = revoking;
    setRevoking(undefined);
    if (!c) return;
    try {
      await api(`/connections/${encodeURIComponent(c.id)}`, undefined, 'DELETE');
      setActionError('');
      setDone(`Revoked ${c.principal} on ${c.upstream}: their next call asks them to connect again.`);
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
            ? `${rows.length} connected account${rows.length === 1 ? '' : 's'}.`
            : 'No one has connected an upstream account.'
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
          <caption class="sr-only">Connected upstream accounts</caption>
          <thead>
            <tr>
              <th scope="col">Who</th>
              <th scope="col">Upstream</th>
              <th scope="col">Scopes</th>
              <th scope="col">Last used</th>
              <th scope="col">Connected</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.id} data-connection={c.id}>
                <th scope="row">
                  <code>{c.principal}</code>
                </th>
                <td>
                  <code>{c.upstream}</code>
                  <div class="sub">{c.issuer}</div>
                </td>
                <td>{c.scopes.length ? c.scopes.map((s) => <code key={s}>{s} </code>) : '-'}</td>
                <td>{c.lastUsedAt ? fmtTime(c.lastUsedAt) : 'never'}</td>
                <td>{fmtTime(c.createdAt)}</td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke ${c.principal} on ${c.upstream}`}
                    onClick={() => setRevoking(c)}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={revoking !== undefined}
        title="Revoke this connection?"
        confirmLabel="Revoke"
        onConfirm={revoke}
        onCancel={() => setRevoking(undefined)}
      >
        {revoking && (
          <p>
            The gateway deletes the tokens <code>{revoking.principal}</code> connected for{' '}
            <code>{revoking.upstream}</code>. Their next call to it asks them to connect again.
          </p>
        )}
      </ConfirmDialog>
    </section>
  );
}
