/** Delete: asks in the dialog "Delete API key" (access stops immediately), deletes with "Delete key". */
import { useRef } from 'react';
import { pageHeading } from '../../components/Page';
import { deleteKey, type Key } from './api';
import { ConfirmKeyDialog, KeyNamed } from './ConfirmKeyDialog';

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
  // Once deleted, its row (and the button that opened this) goes: focus the page's heading instead.
  const deleted = useRef(false);
  return (
    <ConfirmKeyDialog
      title="Delete API key"
      busyText="Deleting…"
      confirmLabel="Delete key"
      danger
      action={async () => {
        await deleteKey(apiKey.key_id);
        deleted.current = true;
        onDeleted();
      }}
      onClose={onClose}
      onStale={onStale}
      restoreFocus={() => (deleted.current ? pageHeading() : null)}
    >
      <p>
        Delete <KeyNamed apiKey={apiKey} />? Access stops immediately: every request with this key is refused from now on. This cannot be undone.
      </p>
    </ConfirmKeyDialog>
  );
}
