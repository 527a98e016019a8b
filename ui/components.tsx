/** Small parts the pages share: the phase badge, copy buttons, confirmation dialogs, ages. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiObject, Condition } from './types';

export function condition(o: ApiObject, type: string): Condition | undefined {
  return o.status?.conditions?.find((c) => c.type === type);
}

/** The phase with the reason it carries (`Stuck (SecretNotFound)`), and the message to show on hover. */
export function phaseOf(o: ApiObject): { phase: string; reason?: string; message?: string; tone: string } {
  const phase = o.status?.phase ?? 'Unknown';
  const stalled = condition(o, 'Stalled');
  const ready = condition(o, 'Ready');
  let reason: string | undefined;
  let message = o.status?.message;
  if (phase === 'Stuck' && stalled?.status === 'True') {
    reason = stalled.reason;
    message = stalled.message;
  } else if (phase !== 'Running' && phase !== 'Suspended' && ready?.status !== 'True' && ready?.reason) {
    reason = ready.reason;
    message = ready.message || message;
  }
  const tone =
    phase === 'Running' ? (ready?.status === 'True' ? 'ok' : 'progress')
    : phase === 'Pending' || phase === 'Terminating' ? 'progress'
    : phase === 'Suspended' || phase === 'Completed' ? 'idle'
    : 'bad';
  return { phase, ...(reason ? { reason } : {}), ...(message ? { message } : {}), tone };
}

export function PhaseBadge({ object }: { object: ApiObject }) {
  const { phase, reason, message, tone } = phaseOf(object);
  const text = reason ? `${phase} (${reason})` : phase;
  return (
    <span class={`badge ${tone}`} title={message} data-testid="phase" aria-label={message ? `${text}: ${message}` : text}>
      {text}
    </span>
  );
}

export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '-';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="small"
      aria-label={label}
      title={label}
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1200);
        });
      }}
    >
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

/** A modal dialog (the platform's <dialog>: focus is trapped, Escape closes it). */
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onClose={onClose} onCancel={onClose}>
      <h2 id="dialog-title">{title}</h2>
      {children}
    </dialog>
  );
}

export function Confirm({ title, body, action, danger, onConfirm, onClose }: { title: string; body: ComponentChildren; action: string; danger?: boolean; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title={title} onClose={onClose}>
      <div class="dialog-body">{body}</div>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="buttons">
        <button type="button" onClick={onClose}>Cancel</button>
        <button
          type="button"
          class={danger ? 'danger' : 'primary'}
          disabled={busy}
          onClick={() => {
            setBusy(true);
            onConfirm().then(onClose, (err: Error) => {
              setBusy(false);
              setError(err.message);
            });
          }}
        >
          {action}
        </button>
      </div>
    </Dialog>
  );
}

export function ErrorNote({ error }: { error: { message: string; hints?: string[] } | undefined }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <p>{error.message}</p>
      {error.hints && error.hints.length > 0 && <pre>{error.hints.join('\n')}</pre>}
    </div>
  );
}

/** A unified diff, each added line green and each removed one red. */
export function DiffView({ text, testid }: { text: string; testid?: string }) {
  const tone = (line: string): string | undefined => (line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : undefined);
  return (
    <pre class="code diff" data-testid={testid}>
      {text.split('\n').map((line, i) => (
        <span key={i} class={tone(line)}>
          {line}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}
