/**
 * A new key's plaintext, shown once (after Create and Rotate), with "Copy" and the warning. A session that
 * ends meanwhile leaves it on screen (the leave guard holds the session) and says so.
 */
import { useId } from 'react';
import { SecretField } from '../../components/SecretField';
import { Notice, StatusMessage } from '../../components/Messages';
import { useSession } from '../../lib/auth';

/** What to do when the secret cannot be shown (an answer replayed after a retry): it depends on how the key was made. */
const REPLAYED = {
  created: 'This key was made by an earlier attempt of this request, and its secret can no longer be shown. Delete it from the list and create a new one.',
  rotated:
    'The key was rotated by an earlier attempt of this request, and the new key’s secret can no longer be shown. Rotate the new key (it has the same name, permissions and workspaces) to get a secret you can copy.',
} as const;

export function NewKeySecret({
  secret,
  made,
  stayed = false,
  onDone,
}: {
  readonly secret: string | null;
  readonly made: keyof typeof REPLAYED;
  /** The person tried to leave the page (Back) and it stayed: say why. */
  readonly stayed?: boolean;
  readonly onDone: () => void;
}) {
  const warningId = useId();
  const ended = useSession().status === 'ending';
  return (
    <div className="dialog-body">
      {ended && secret !== null && (
        <p role="alert" className="message message-notice">
          Your session has ended. The key is still shown here: copy it, then choose Done and sign in again.
        </p>
      )}
      {secret === null ? (
        <Notice>{REPLAYED[made]}</Notice>
      ) : (
        <>
          <p id={warningId} className="message message-warning" role="status">
            <strong>Copy this key now.</strong> It cannot be shown again: Knouds keeps only a hash of it. Store it in your secret manager.
          </p>
          <SecretField label="API key" value={secret} describedBy={warningId} autoFocus />
          {stayed && <StatusMessage>You are still on this page: the key is shown only here. Copy it, then choose Done.</StatusMessage>}
        </>
      )}
      <div className="dialog-actions">
        <button type="button" className="button button-primary" onClick={onDone} autoFocus={secret === null}>
          Done
        </button>
      </div>
    </div>
  );
}
