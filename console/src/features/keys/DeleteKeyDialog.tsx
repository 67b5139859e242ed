/** Delete: asks in the dialog "Delete API key" (access stops immediately), deletes with "Delete key". */
import { useRef } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { isStale, messageOf } from '../../api/errors';
import { useSubmission } from '../../lib/use-submission';
import { deleteKey, type Key } from './api';

export function DeleteKeyDialog({
  apiKey,
  onClose,
  onDeleted,
  onStale,
}: {
  readonly apiKey: Key;
  readonly onClose: () => void;
  readonly onDeleted: () => void;
  /** The key changed meanwhile: show the list anew. */
  readonly onStale: () => void;
}) {
  const { busy, problem, submit } = useSubmission<string>();
  // Once deleted, its row (and the button that opened this) goes: focus the page's heading instead.
  const deleted = useRef(false);

  const confirm = () =>
    submit(
      async () => {
        await deleteKey(apiKey.key_id);
        deleted.current = true;
        onDeleted();
        onClose();
      },
      (error) => {
        if (isStale(error)) onStale();
        return messageOf(error);
      },
    );

  return (
    <Dialog title="Delete API key" onClose={onClose} busy={busy} restoreFocus={() => (deleted.current ? document.querySelector<HTMLElement>('main h1') : null)}>
      <div className="dialog-body">
        <p>
          Delete <strong>{apiKey.name}</strong> (<span className="mono">{apiKey.prefix}…</span>)? Access stops immediately: every request with this key is refused from
          now on. This cannot be undone.
        </p>
        {problem && <ErrorMessage>{problem}</ErrorMessage>}
        {busy && <StatusMessage>Deleting…</StatusMessage>}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className="button button-danger" onClick={() => void confirm()}>
            Delete key
          </button>
        </div>
      </div>
    </Dialog>
  );
}
