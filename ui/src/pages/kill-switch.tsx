import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ConfirmDialog, ErrorLine, usePoll } from '../components.js';

const MODES = [
  { id: 'read-write', label: 'Normal', text: 'The policy decides: writes run where it enables them.' },
  {
    id: 'read-only',
    label: 'Read-only',
    text: 'Every write, update and delete is refused at once, for every caller.',
  },
  { id: 'off', label: 'All off', text: 'Every tool is refused, reads included. Callers see no tools.' },
] as const;

export function KillSwitchPage() {
  const { value, error, reload } = usePoll(() => api<{ mode: string; policyMode: string }>('/mode'), 5_000);
  const [asking, setAsking] = useState<(typeof MODES)[number] | undefined>(undefined);
  const [actionError, setActionError] = useState('');

  async function apply() {
    const m = asking;
    setAsking(undefined);
    if (!m) return;
    try {
      await api('/mode', { mode: m.id });
      setActionError('');
    } catch (e) {
      setActionError((e as Error).message);
    }
    reload();
  }

  const current = value?.mode;
  return (
    <section>
      <p class="mode-now" aria-live="polite">
        Now: <strong data-mode={current}>{current ?? '…'}</strong>
        {value && (
          <span class="sub"> (the policy's mode is {value.policyMode}; the switch can only narrow it)</span>
        )}
      </p>
      <ErrorLine error={error || actionError} />
      <div class="modes">
        {MODES.map((m) => (
          <div key={m.id} class={`mode ${current === m.id ? 'current' : ''}`}>
            <h2>{m.label}</h2>
            <p>{m.text}</p>
            <button
              type="button"
              class={m.id === 'read-write' ? '' : 'danger'}
              disabled={current === m.id || (m.id === 'read-write' && current === value?.policyMode)}
              onClick={() => setAsking(m)}
            >
              Switch to {m.label.toLowerCase()}
            </button>
          </div>
        ))}
      </div>
      <ConfirmDialog
        open={asking !== undefined}
        title={`Switch to ${asking?.label.toLowerCase() ?? ''}?`}
        confirmLabel={`Yes, switch to ${asking?.label.toLowerCase() ?? ''}`}
        onConfirm={apply}
        onCancel={() => setAsking(undefined)}
      >
        <p>{asking?.text}</p>
        <p>It applies to every instance sharing this gateway's state, and it is recorded in the audit.</p>
      </ConfirmDialog>
    </section>
  );
}
