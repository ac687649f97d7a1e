import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/** A modal question with a default of "no": the native <dialog> traps focus and closes on Escape. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="actions">
        <button type="button" class="quiet" autofocus onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Runs `load` now and every `everyMs`; returns its last value, error and a manual reload. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (v) => {
          if (!live) return;
          setValue(v);
          setError('');
        },
        (e: Error) => live && setError(e.message),
      );
    run();
    const timer = everyMs > 0 ? setInterval(run, everyMs) : undefined;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, [tick, ...deps]);
  return { value, error, reload: () => setTick((t) => t + 1) };
}

export function ErrorLine({ error }: { error: string }) {
  return error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;
}

export function Badge({ children, tone }: { children: ComponentChildren; tone?: string }) {
  return <span class={`badge ${tone ?? ''}`}>{children}</span>;
}

/** Audit text with `[REDACTED:kind]` placeholders marked, so a reader sees what was taken out. */
export function Redacted({ text }: { text: string }) {
  const parts = text.split(/(\[REDACTED:[a-z0-9_-]+\])/i);
  return (
    <>
      {parts.map((p, i) =>
        /^\[REDACTED:/i.test(p) ? (
          <mark key={i} class="redacted">
            {p}
          </mark>
        ) : (
          p
        ),
      )}
    </>
  );
}

export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string') return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A unified diff, added lines and removed lines coloured (policy versions, changed tool definitions). */
export function Diff({ text }: { text: string }) {
  return (
    <pre class="diff">
      {text.split('\n').map((line, i) => (
        <span key={i} class={line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : ''}>
          {line}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

/**
 * A polled list of rows with one confirmed action per row (the Connections and Restricted pages):
 * the count line, load and action errors, the outcome line, the table and the confirmation dialog.
 * `act` performs the action and returns the outcome line; the list reloads after it either way.
 */
export function ActionTable<R>(props: {
  rows: R[];
  loaded: boolean;
  error: string;
  reload: () => void;
  /** The line above the table: how many rows there are (called with 0 too). */
  count: (n: number) => string;
  caption: string;
  headers: string[];
  rowKey: (r: R) => string;
  /** Attributes of each row (tests and styles find rows by them). */
  rowData: (r: R) => Record<string, string>;
  /** The row's header cell first, then one cell per remaining header. */
  cells: (r: R) => ComponentChildren;
  action: { label: string; danger?: boolean; name: (r: R) => string };
  confirm: { title: string; body: (r: R) => ComponentChildren };
  act: (r: R) => Promise<string>;
}) {
  const [pending, setPending] = useState<R | undefined>(undefined);
  const [done, setDone] = useState('');
  const [actionError, setActionError] = useState('');

  async function run() {
    const r = pending;
    setPending(undefined);
    if (r === undefined) return;
    try {
      setDone(await props.act(r));
      setActionError('');
    } catch (e) {
      setActionError((e as Error).message);
    }
    props.reload();
  }

  return (
    <section>
      <p aria-live="polite">{props.loaded ? props.count(props.rows.length) : ''}</p>
      <ErrorLine error={props.error} />
      {actionError && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {done && <p role="status">{done}</p>}
      {props.rows.length > 0 && (
        <table>
          <caption class="sr-only">{props.caption}</caption>
          <thead>
            <tr>
              {props.headers.map((h) => (
                <th key={h} scope="col">
                  {h}
                </th>
              ))}
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={props.rowKey(r)} {...props.rowData(r)}>
                {props.cells(r)}
                <td>
                  <button
                    type="button"
                    class={props.action.danger ? 'danger' : undefined}
                    aria-label={props.action.name(r)}
                    onClick={() => setPending(() => r)}
                  >
                    {props.action.label}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={pending !== undefined}
        title={props.confirm.title}
        confirmLabel={props.action.label}
        onConfirm={run}
        onCancel={() => setPending(undefined)}
      >
        {pending !== undefined && props.confirm.body(pending)}
      </ConfirmDialog>
    </section>
  );
}
