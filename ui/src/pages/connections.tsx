import { api, type ConnectionRow } from '../api.js';
import { ActionTable, fmtTime, usePoll } from '../components.js';

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
  return (
    <ActionTable<ConnectionRow>
      rows={value?.connections ?? []}
      loaded={value !== undefined}
      error={error}
      reload={reload}
      count={(n) =>
        n ? `${n} connected account${n === 1 ? '' : 's'}.` : 'No one has connected an upstream account.'
      }
      caption="Connected upstream accounts"
      headers={['Who', 'Upstream', 'Scopes', 'Last used', 'Connected']}
      rowKey={(c) => c.id}
      rowData={(c) => ({ 'data-connection': c.id })}
      cells={(c) => (
        <>
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
        </>
      )}
      action={{ label: 'Revoke', danger: true, name: (c) => `Revoke ${c.principal} on ${c.upstream}` }}
      confirm={{
        title: 'Revoke this connection?',
        body: (c) => (
          <p>
            The gateway deletes the tokens <code>{c.principal}</code> connected for <code>{c.upstream}</code>.
            Their next call to it asks them to connect again.
          </p>
        ),
      }}
      act={async (c) => {
        await api(`/connections/${encodeURIComponent(c.id)}`, undefined, 'DELETE');
        return `Revoked ${c.principal} on ${c.upstream}: their next call asks them to connect again.`;
      }}
    />
  );
}
