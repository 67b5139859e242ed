/**
 * "Disable" / "Enable" from a key's menu: the dialog "Disable API key" (requests with the key are refused
 * from now on; it keeps its slot and can be enabled again) with "Disable key", or "Enable API key" with
 * "Enable key" (PATCH /keys/{key_id} {enabled}).
 */
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { isStale, messageOf } from '../../api/errors';
import { useSubmission } from '../../lib/use-submission';
import { updateKey, type Key } from './api';

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
  const { busy, problem, submit } = useSubmission<string>();

  const confirm = () =>
    submit(
      async () => {
        await updateKey(apiKey.key_id, { enabled: enable });
        onDone();
        onClose();
      },
      (error) => {
        if (isStale(error)) onStale();
        return messageOf(error);
      },
    );

  const what = (
    <>
      <strong>{apiKey.name}</strong> (<span className="mono">{apiKey.prefix}…</span>)
    </>
  );
  return (
    <Dialog title={enable ? 'Enable API key' : 'Disable API key'} onClose={onClose} busy={busy}>
      <div className="dialog-body">
        {enable ? (
          <p>Enable {what}? Requests with this key work again from now on.</p>
        ) : (
          <p>
            Disable {what}? Every request with this key is refused from now on, until you enable it again. The key keeps its place: it still counts towards the
            account’s key limit (delete it to free the place).
          </p>
        )}
        {problem && <ErrorMessage>{problem}</ErrorMessage>}
        {busy && <StatusMessage>{enable ? 'Enabling…' : 'Disabling…'}</StatusMessage>}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className={enable ? 'button button-primary' : 'button button-danger'} onClick={() => void confirm()}>
            {enable ? 'Enable key' : 'Disable key'}
          </button>
        </div>
      </div>
    </Dialog>
  );
}
