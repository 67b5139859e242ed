/**
 * A dialog that asks before one change to a key (delete, disable, enable): what the change does, "Cancel",
 * and the button that makes it. While the request is in flight it says so and Escape does not close it;
 * a refusal is shown in words, and a key that changed meanwhile also refreshes the list (`onStale`).
 */
import type { ReactNode } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { isStale, messageOf } from '../../api/errors';
import { useSubmission } from '../../lib/use-submission';
import type { Key } from './api';

/** A key as the dialogs name it: its name, then its prefix. */
export function KeyNamed({ apiKey }: { readonly apiKey: Key }) {
  return (
    <>
      <strong>{apiKey.name}</strong> (<span className="mono">{apiKey.prefix}…</span>)
    </>
  );
}

export function ConfirmKeyDialog(props: {
  readonly title: string;
  /** What the change does, in words. */
  readonly children: ReactNode;
  /** Shown while the request is in flight ("Deleting…"). */
  readonly busyText: string;
  /** The button that makes the change. */
  readonly confirmLabel: string;
  /** A change that stops the key working: a danger button. */
  readonly danger: boolean;
  /** The change; the dialog closes once it has resolved. */
  readonly action: () => Promise<void>;
  readonly onClose: () => void;
  /** The key changed meanwhile: show the list anew. */
  readonly onStale: () => void;
  /** Where focus goes on close instead of the control that opened the dialog (see Dialog). */
  readonly restoreFocus?: () => HTMLElement | null;
}) {
  const { title, children, busyText, confirmLabel, danger, action, onClose, onStale, restoreFocus } = props;
  const { busy, problem, submit } = useSubmission<string>();

  const confirm = () =>
    submit(
      async () => {
        await action();
        onClose();
      },
      (error) => {
        if (isStale(error)) onStale();
        return messageOf(error);
      },
    );

  return (
    <Dialog title={title} onClose={onClose} busy={busy} restoreFocus={restoreFocus}>
      <div className="dialog-body">
        {children}
        {problem && <ErrorMessage>{problem}</ErrorMessage>}
        {busy && <StatusMessage>{busyText}</StatusMessage>}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className={danger ? 'button button-danger' : 'button button-primary'} onClick={() => void confirm()}>
            {confirmLabel}
          </button>
        </div>
      </div>
    </Dialog>
  );
}
