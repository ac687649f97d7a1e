import { api, type FiredAlert } from '../api.js';
import { ErrorLine, fmtTime, usePoll } from '../components.js';

export function AlertsPage() {
  const { value, error, reload } = usePoll(() => api<{ alerts: FiredAlert[] }>('/alerts'), 10_000);
  const alerts = value?.alerts ?? [];
  const open = alerts.filter((a) => !a.acknowledged).length;

  async function ack(id: number) {
    await api(`/alerts/${id}/ack`, {}).catch(() => undefined);
    reload();
  }

  return (
    <section>
      <p>
        {alerts.length === 0
          ? 'No alert has fired since this instance started.'
          : `${open} not acknowledged, ${alerts.length} in all (newest first).`}
      </p>
      <ErrorLine error={error} />
      {alerts.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Fired</th>
              <th scope="col">Rule</th>
              <th scope="col">Subject</th>
              <th scope="col">What happened</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.id} class={a.acknowledged ? 'done' : 'open'}>
                <td>{fmtTime(a.time)}</td>
                <td>{a.rule}</td>
                <td>
                  <code>{a.subject}</code>
                </td>
                <td>{a.message}</td>
                <td>
                  {a.acknowledged ? (
                    `acknowledged by ${a.acknowledged.by}, ${fmtTime(a.acknowledged.at)}`
                  ) : (
                    <button type="button" aria-label={`Acknowledge alert ${a.id}`} onClick={() => ack(a.id)}>
                      Acknowledge
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
