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
