import { useEffect, useRef, useState } from 'preact/hooks';
import { type ApprovalRequest, api } from '../api.js';
import { Badge, ConfirmDialog, ErrorLine, fmtTime, Redacted, usePoll } from '../components.js';

/** `#/approvals/<id>` opens one request (the link a notification carries); `#/approvals` the list. */
function idFromHash(): string | undefined {
  const [page, id] = location.hash.replace(/^#\/?/, '').split('/');
  return page === 'approvals' && id ? decodeURIComponent(id) : undefined;
}

export function ApprovalsPage() {
  const [id, setId] = useState(idFromHash);
  useEffect(() => {
    const onHash = () => setId(idFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return id ? <ApprovalDetail id={id} /> : <ApprovalList />;
}

/** Seconds until `iso`, ticking once a second while mounted. */
function useCountdown(iso: string | undefined): number | undefined {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  if (!iso) return undefined;
  return Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
}

function fmtLeft(s: number): string {
  if (s <= 0) return 'now';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

const live = (a: ApprovalRequest) => a.status === 'pending' || a.status === 'approved';
const approvedBy = (a: ApprovalRequest) => a.decisions.filter((d) => d.verdict === 'approve').length;

function Status({ a }: { a: ApprovalRequest }) {
  const tone = { pending: 'confirm', approved: 'ok', executed: 'ok', denied: 'off', expired: 'off' }[
    a.status
  ];
  return <Badge tone={tone}>{a.status}</Badge>;
}

function Expiry({ a }: { a: ApprovalRequest }) {
  const left = useCountdown(a.expiresAt);
  if (!live(a) || left === undefined) return <>{fmtTime(a.expiresAt)}</>;
  return (
    <>
      {a.status === 'pending' ? 'decide within ' : 'run within '}
      <span data-countdown>{fmtLeft(left)}</span>
    </>
  );
}

function ApprovalList() {
  const { value, error } = usePoll(
    () => api<{ approvals: ApprovalRequest[] }>('/approvals?limit=200'),
    5_000,
  );
  const all = value?.approvals ?? [];
  const waiting = all.filter((a) => a.status === 'pending');
  const decided = all.filter((a) => a.status !== 'pending');
  return (
    <section>
      <p aria-live="polite">
        {value
          ? waiting.length
            ? `${waiting.length} call${waiting.length === 1 ? '' : 's'} waiting for an operator.`
            : 'No call is waiting for an operator.'
          : ''}
      </p>
      <ErrorLine error={error} />
      <ApprovalTable caption="Waiting for a decision" rows={waiting} />
      {decided.length > 0 && (
        <>
          <h2>Decided</h2>
          <ApprovalTable caption="Decided, expired or executed requests" rows={decided} />
        </>
      )}
    </section>
  );
}

function ApprovalTable({ caption, rows }: { caption: string; rows: ApprovalRequest[] }) {
  if (!rows.length) return null;
  return (
    <table>
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Request</th>
          <th scope="col">Call</th>
          <th scope="col">Asked by</th>
          <th scope="col">Asked</th>
          <th scope="col">Status</th>
          <th scope="col">Expires</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((a) => (
          <tr key={a.id} data-approval={a.id}>
            <th scope="row">
              <a href={`#/approvals/${encodeURIComponent(a.id)}`}>{a.id}</a>
            </th>
            <td>
              <code>{a.binding.tool}</code>
              <div class="sub">
                {a.method} {a.path}
              </div>
            </td>
            <td>
              <code>{a.binding.principal}</code>
            </td>
            <td>{fmtTime(a.requestedAt)}</td>
            <td>
              <Status a={a} />
              {a.approversNeeded > 1 && (
                <div class="sub">
                  {approvedBy(a)} of {a.approversNeeded} approvals
                </div>
              )}
            </td>
            <td>
              <Expiry a={a} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ApprovalDetail({ id }: { id: string }) {
  const {
    value: a,
    error,
    reload,
  } = usePoll(() => api<ApprovalRequest>(`/approvals/${encodeURIComponent(id)}`), 5_000, [id]);
  const [reason, setReason] = useState('');
  const [asking, setAsking] = useState<'approve' | 'deny' | undefined>(undefined);
  const [actionError, setActionError] = useState('');
  const [done, setDone] = useState('');
  const reasonRef = useRef<HTMLTextAreaElement>(null);

  function ask(verdict: 'approve' | 'deny') {
    setDone('');
    const r = reason.trim();
    if (r.length < 3 || r.length > 500) {
      setActionError('Give a reason first (3 to 500 characters): it goes to the audit.');
      reasonRef.current?.focus();
      return;
    }
    setActionError('');
    setAsking(verdict);
  }

  async function decide() {
    const verdict = asking;
    setAsking(undefined);
    if (!verdict) return;
    try {
      const now = await api<ApprovalRequest>(`/approvals/${encodeURIComponent(id)}/${verdict}`, {
        reason: reason.trim(),
      });
      setReason('');
      setDone(
        now.status === 'approved'
          ? "Approved: the agent's next identical call runs it, once."
          : now.status === 'denied'
            ? 'Denied: the call will not run.'
            : `Your approval is recorded (${approvedBy(now)} of ${now.approversNeeded}); another operator must approve too.`,
      );
    } catch (e) {
      setActionError((e as Error).message);
    }
    reload();
  }

  return (
    <section class="approval">
      <p>
        <a href="#/approvals">← All approvals</a>
      </p>
      <ErrorLine error={error} />
      {a && (
        <>
          <h2>
            <code>{a.binding.tool}</code> <Status a={a} />
          </h2>
          <dl class="facts">
            <dt>Request</dt>
            <dd>
              <code>{a.id}</code>
            </dd>
            <dt>Call</dt>
            <dd>
              <code>
                {a.method} {a.path}
              </code>
            </dd>
            <dt>Asked by</dt>
            <dd>
              <code>{a.binding.principal}</code>
            </dd>
            <dt>Asked</dt>
            <dd>{fmtTime(a.requestedAt)}</dd>
            <dt>
              {a.status === 'pending' ? 'Decide before' : a.status === 'approved' ? 'Run before' : 'Expiry'}
            </dt>
            <dd>
              {fmtTime(a.expiresAt)}
              {live(a) && (
                <>
                  {' '}
                  (<Expiry a={a} />)
                </>
              )}
            </dd>
            <dt>Risk</dt>
            <dd>
              {a.risk.map((r) => (
                <Badge key={r} tone={r === 'destructive' ? 'risk' : r}>
                  {r}
                </Badge>
              ))}
            </dd>
            <dt>Data</dt>
            <dd>
              {a.dataClasses.length
                ? a.dataClasses.map((d) => (
                    <Badge key={d} tone={`data-${d}`}>
                      {d}
                    </Badge>
                  ))
                : 'none detected'}
            </dd>
            <dt>Approvers</dt>
            <dd>
              {approvedBy(a)} of {a.approversNeeded}
              {a.approversNeeded > 1 ? ' (two different operators)' : ''}
            </dd>
          </dl>
          <h3>Arguments</h3>
          <p class="sub">As the audit records them: masked and redacted.</p>
          <pre class="preview">
            <Redacted text={JSON.stringify(a.preview ?? null, null, 2)} />
          </pre>
          <h3>Decisions</h3>
          {a.decisions.length ? (
            <ul class="decisions">
              {a.decisions.map((d) => (
                <li key={`${d.operator}-${d.at}`}>
                  <strong>{d.verdict === 'approve' ? 'Approved' : 'Denied'}</strong> by{' '}
                  <code>{d.operator}</code>, {fmtTime(d.at)}: {d.reason}
                </li>
              ))}
            </ul>
          ) : (
            <p>None yet.</p>
          )}
          {a.status === 'pending' && (
            <form class="decide" onSubmit={(e) => e.preventDefault()}>
              <label for="reason">Reason (required, recorded in the audit)</label>
              <textarea
                id="reason"
                ref={reasonRef}
                rows={3}
                minLength={3}
                maxLength={500}
                required
                aria-describedby="reason-hint"
                value={reason}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
              <p id="reason-hint" class="sub">
                Approving lets the agent's next identical call run once; denying tells the agent your reason.
              </p>
              <div class="actions">
                <button type="button" onClick={() => ask('approve')}>
                  Approve…
                </button>
                <button type="button" class="danger" onClick={() => ask('deny')}>
                  Deny…
                </button>
              </div>
            </form>
          )}
          <ErrorLine error={actionError} />
          {done && (
            <p role="status" class="ok">
              {done}
            </p>
          )}
          <ConfirmDialog
            open={asking !== undefined}
            title={asking === 'approve' ? `Approve ${a.binding.tool}?` : `Deny ${a.binding.tool}?`}
            confirmLabel={asking === 'approve' ? 'Yes, approve' : 'Yes, deny'}
            onConfirm={decide}
            onCancel={() => setAsking(undefined)}
          >
            <p>
              <code>
                {a.method} {a.path}
              </code>{' '}
              asked by <code>{a.binding.principal}</code>.
            </p>
            <p>
              {asking === 'approve'
                ? 'The call runs once, when the agent repeats it with the same arguments.'
                : 'The call will not run; the agent is told it was denied.'}{' '}
              Your decision and reason are recorded in the audit under your name.
            </p>
          </ConfirmDialog>
        </>
      )}
    </section>
  );
}
