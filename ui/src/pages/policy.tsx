import { useEffect, useState } from 'preact/hooks';
import { api, type PolicyVersionInfo } from '../api.js';
import { ConfirmDialog, Diff, ErrorLine, fmtTime, usePoll } from '../components.js';

export function PolicyPage() {
  const { value, error, reload } = usePoll(
    () => api<{ current: number; versions: PolicyVersionInfo[] }>('/policy/versions'),
    10_000,
  );
  const [compare, setCompare] = useState<number | undefined>(undefined);
  const [diff, setDiff] = useState('');
  const [text, setText] = useState('');
  const [rollback, setRollback] = useState<number | undefined>(undefined);
  const [actionError, setActionError] = useState('');
  const [notice, setNotice] = useState('');
  const current = value?.current;

  useEffect(() => {
    if (current === undefined) return;
    api<{ text: string }>(`/policy-version/${current}`).then(
      (v) => setText(v.text),
      () => setText(''),
    );
  }, [current]);

  useEffect(() => {
    if (compare === undefined || current === undefined) return setDiff('');
    api<{ diff: string }>(`/policy/diff?from=${compare}&to=${current}`).then(
      (d) => setDiff(d.diff),
      (e: Error) => setActionError(e.message),
    );
  }, [compare, current]);

  async function doRollback() {
    const v = rollback;
    setRollback(undefined);
    if (v === undefined) return;
    try {
      const r = await api<{ version: number }>('/policy/rollback', { version: v });
      setNotice(`Rolled back to the text of v${v}; it is now v${r.version}.`);
      setActionError('');
      setCompare(undefined);
    } catch (e) {
      setActionError((e as Error).message);
    }
    reload();
  }

  return (
    <section>
      <p aria-live="polite">
        Current version: <strong data-version={current}>{current === undefined ? '…' : `v${current}`}</strong>
      </p>
      {notice && (
        <p role="status" class="ok">
          {notice}
        </p>
      )}
      <ErrorLine error={error || actionError} />
      <table>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">When</th>
            <th scope="col">By</th>
            <th scope="col">From</th>
            <th scope="col">SHA-256</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {[...(value?.versions ?? [])].reverse().map((v) => (
            <tr key={v.version} class={v.version === current ? 'selected' : ''}>
              <th scope="row">v{v.version}</th>
              <td>{fmtTime(v.time)}</td>
              <td>{v.actor}</td>
              <td>{v.source}</td>
              <td>
                <code>{v.sha256.slice(0, 12)}</code>
              </td>
              <td>
                {v.version === current ? (
                  'current'
                ) : (
                  <>
                    <button
                      type="button"
                      class="quiet"
                      aria-label={`Compare v${v.version} with the current version`}
                      onClick={() => setCompare(v.version)}
                    >
                      Diff
                    </button>
                    <button
                      type="button"
                      class="danger"
                      aria-label={`Roll back to v${v.version}`}
                      onClick={() => setRollback(v.version)}
                    >
                      Roll back
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {diff && (
        <>
          <h2>
            v{compare} → v{current}
          </h2>
          <Diff text={diff} />
        </>
      )}
      {text && (
        <details class="policy-text">
          <summary>Current policy text</summary>
          <pre>{text}</pre>
        </details>
      )}
      <ConfirmDialog
        open={rollback !== undefined}
        title={`Roll back to v${rollback ?? ''}?`}
        confirmLabel={`Yes, roll back to v${rollback ?? ''}`}
        onConfirm={doRollback}
        onCancel={() => setRollback(undefined)}
      >
        <p>
          The policy file is rewritten with the text of v{rollback}; it becomes a new version, and the change
          is audited.
        </p>
      </ConfirmDialog>
    </section>
  );
}
