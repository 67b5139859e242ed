/**
 * "Disable" / "Enable" from a key's menu: the dialog "Disable API key" (requests with the key are refused
 * from now on; it keeps its slot and can be enabled again) with "Disable key", or "Enable API key" with
 * "Enable key" (PATCH /keys/{key_id} {enabled}).
 */
import { updateKey, type Key } from './api';
import { ConfirmKeyDialog, KeyNamed } from './ConfirmKeyDialog';

export function EnableKeyDialog({
  apiKey,
  enable,
  onClose,
  onDone,
  onStale,
}: {
  readonly apiKey: Key;
  /** true: enable the key; false: disable it. */
  readonly enable: boolean;
  readonly onClose: () => void;
  readonly onDone: () => void;
  /** The key changed meanwhile: show the list anew. */
  readonly onStale: () => void;
}) {
  return (
    <ConfirmKeyDialog
      title={enable ? 'Enable API key' : 'Disable API key'}
      busyText={enable ? 'Enabling…' : 'Disabling…'}
      confirmLabel={enable ? 'Enable key' : 'Disable key'}
      danger={!enable}
      action={async () => {
        await updateKey(apiKey.key_id, { enabled: enable });
        onDone();
      }}
      onClose={onClose}
      onStale={onStale}
    >
      {enable ? (
        <p>
          Enable <KeyNamed apiKey={apiKey} />? Requests with this key work again from now on.
        </p>
      ) : (
        <p>
          Disable <KeyNamed apiKey={apiKey} />? Every request with this key is refused from now on, until you enable it again. The key keeps its place: it still
          counts towards the account’s key limit (delete it to free the place).
        </p>
      )}
    </ConfirmKeyDialog>
  );
}
