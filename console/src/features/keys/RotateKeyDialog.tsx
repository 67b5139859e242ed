/**
 * Rotate: a new key with the same name, permissions and workspaces replaces this one; the old one works
 * for the grace period chosen (none, 1 hour, 24 hours). The new key is shown once, as after Create.
 */
import { useState, type FormEvent } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { ApiProblem, isStale, messageOf } from '../../api/errors';
import { useAccount } from '../../lib/account';
import { rotateKey, type Key } from './api';
import { KeyNamed } from './ConfirmKeyDialog';
import { NewKeySecret } from './NewKeySecret';
import { GracePeriodField } from '../../components/GracePeriodField';
import { useSubmission } from '../../lib/use-submission';
import { useLeaveGuard } from '../../lib/use-leave-guard';

const GRACE = [
  { seconds: 0, label: 'None: the old key stops now' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86_400, label: '24 hours' },
] as const;

export function RotateKeyDialog({
  apiKey,
  onClose,
  onRotated,
  onStale,
}: {
  readonly apiKey: Key;
  readonly onClose: () => void;
  readonly onRotated: () => void;
  /** The key changed meanwhile: show the list anew. */
  readonly onStale: () => void;
}) {
  const account = useAccount();
  const [idempotencyKey] = useState(() => crypto.randomUUID());
  const [grace, setGrace] = useState<number>(0);
  const { busy, problem, submit: send } = useSubmission<string>();
  const [secret, setSecret] = useState<string | null | undefined>(undefined);
  // Leaving while the key is made, or while its secret is shown, would lose it: the page stays (and, once
  // the secret is shown, says so after a try).
  const [stayed, setStayed] = useState(false);
  useLeaveGuard(busy || typeof secret === 'string', () => setStayed(true));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    return send(
      async () => {
        const rotated = await rotateKey(apiKey.key_id, grace, idempotencyKey, { maxKeys: account.maxKeys });
        setSecret(rotated.secret);
        setStayed(false);
        onRotated();
      },
      (error) => {
        if (isStale(error)) onStale();
        const limit = error instanceof ApiProblem && error.code === 'KEY_LIMIT_REACHED';
        return limit ? `${messageOf(error)} Or rotate without a grace period: the new key then takes this key’s place.` : messageOf(error);
      },
    );
  };

  return (
    <Dialog title="Rotate API key" onClose={onClose} busy={busy}>
      {secret !== undefined ? (
        <NewKeySecret secret={secret} made="rotated" stayed={stayed} onDone={onClose} />
      ) : (
        <form className="dialog-body" onSubmit={(e) => void submit(e)}>
          <p>
            A new key with the same name, permissions and workspaces replaces <KeyNamed apiKey={apiKey} />. Update
            the services that use it.
          </p>
          <GracePeriodField options={GRACE} value={grace} onChange={setGrace} hint="How long the old key keeps working, so you can deploy the new one first." />
          {problem && <ErrorMessage>{problem}</ErrorMessage>}
          {busy && <StatusMessage>Rotating…</StatusMessage>}
          <div className="dialog-actions">
            <button type="button" className="button" onClick={onClose} disabled={busy}>
              Cancel
            </button>
            <button type="submit" className="button button-primary">
              Rotate key
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
