/**
 * Webhooks: the secret that signs the account's webhooks (Standard Webhooks), hidden until "Reveal",
 * with "Copy"; "Rotate secret" asks first (with a grace period during which the old secret signs too)
 * and then shows the new one. A viewer may reveal and copy (keys:read) but not rotate (keys:write).
 */
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, Notice, StatusMessage } from '../../components/Messages';
import { Page } from '../../components/Page';
import { SecretField } from '../../components/SecretField';
import { ApiProblem, messageOf } from '../../api/errors';
import { useAccount } from '../../lib/account';
import { getSecret, rotateSecret, type WebhookSecret } from './api';
import { GracePeriodField } from '../../components/GracePeriodField';
import { useSubmission } from '../../lib/use-submission';

const GRACE = [
  { seconds: 0, label: 'None: the old secret stops signing now' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86_400, label: '24 hours' },
  { seconds: 604_800, label: '7 days' },
] as const;

const formatTime = (iso: string) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));

function RotateSecretDialog({ onClose, onRotated }: { readonly onClose: () => void; readonly onRotated: () => void }) {
  const id = useId();
  const [grace, setGrace] = useState<number>(0);
  const { busy, problem, submit: send } = useSubmission<string>();
  const [rotated, setRotated] = useState<WebhookSecret | null>(null);
  const [idempotencyKey] = useState(() => crypto.randomUUID());

  const submit = (event: FormEvent) => {
    event.preventDefault();
    return send(
      async () => {
        setRotated(await rotateSecret(grace, idempotencyKey));
        onRotated();
      },
      (error) => messageOf(error),
    );
  };

  return (
    <Dialog title="Rotate signing secret" onClose={onClose} busy={busy}>
      {rotated ? (
        <div className="dialog-body">
          <p className="message message-warning" role="status" id={`${id}-done`}>
            The secret was rotated.{' '}
            {rotated.previous_secret_expires_at
              ? `The old secret also signs until ${formatTime(rotated.previous_secret_expires_at)}: give your receivers the new one before then.`
              : 'Webhooks are signed with the new secret only from now on: give it to your receivers.'}
          </p>
          <SecretField label="Signing secret" value={rotated.secret} describedBy={`${id}-done`} autoFocus />
          <div className="dialog-actions">
            <button type="button" className="button button-primary" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form className="dialog-body" onSubmit={(e) => void submit(e)}>
          <p>A new secret will sign the account’s webhooks. Receivers that check signatures with the old secret fail once it stops signing.</p>
          <GracePeriodField
            options={GRACE}
            value={grace}
            onChange={setGrace}
            hint="How long the old secret keeps signing too (both signatures are sent), so you can update your receivers first."
          />
          {problem && <ErrorMessage>{problem}</ErrorMessage>}
          {busy && <StatusMessage>Rotating…</StatusMessage>}
          <div className="dialog-actions">
            <button type="button" className="button" onClick={onClose} disabled={busy}>
              Cancel
            </button>
            <button type="submit" className="button button-danger">
              Rotate
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

export function WebhooksPage() {
  const account = useAccount();
  const [secret, setSecret] = useState<WebhookSecret | null>(null);
  const [loading, setLoading] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const [rotating, setRotating] = useState(false);
  const canRead = account.capabilities.includes('keys:read');
  const canRotate = account.capabilities.includes('keys:write');
  // "Hide" removes itself: the focus goes to "Reveal", which takes its place.
  const revealButton = useRef<HTMLButtonElement>(null);
  const [hiddenByHide, setHiddenByHide] = useState(false);
  useEffect(() => {
    if (hiddenByHide && !secret) {
      revealButton.current?.focus();
      setHiddenByHide(false);
    }
  }, [hiddenByHide, secret]);

  const reveal = async () => {
    if (loading) return;
    setLoading(true);
    setProblem(null);
    setCopied(null);
    try {
      setSecret(await getSecret());
    } catch (error) {
      setProblem(messageOf(error));
    } finally {
      setLoading(false);
    }
  };

  /** Copies the secret without showing it. */
  const copyHidden = async () => {
    if (loading) return;
    setCopied(null);
    setProblem(null);
    setLoading(true);
    try {
      await navigator.clipboard.writeText((await getSecret()).secret);
      setCopied('Copied');
    } catch (error) {
      if (error instanceof ApiProblem) setProblem(messageOf(error));
      else setCopied('Could not copy: reveal the secret and copy it yourself.');
    } finally {
      setLoading(false);
    }
  };

  // A tier is changed by whoever manages the account's Knouds subscription (the operator), not by its admins.
  const upgrade =
    account.role === 'admin' ? 'To use them, have the account upgraded: ask whoever manages your Knouds subscription.' : 'Ask an admin of the account to have it upgraded.';

  return (
    <Page title="Webhooks">
      <p>
        When an async run ends, Knouds sends its result to the run’s <span className="mono">webhook_url</span>, signed with this account’s secret as the Standard Webhooks
        specification describes (headers <span className="mono">webhook-id</span>, <span className="mono">webhook-timestamp</span> and{' '}
        <span className="mono">webhook-signature</span>). Check the signature with this secret before trusting a webhook.
      </p>
      <section className="card" aria-labelledby="secret-title">
        <h2 id="secret-title">Signing secret</h2>
        {!canRead ? (
          <Notice>
            {account.tier === 'free'
              ? `Webhooks need the Pro tier or higher, and this account is on the Free tier. ${upgrade}`
              : 'You cannot see the signing secret in this account: it needs the keys:read permission. Ask an admin of the account.'}
          </Notice>
        ) : secret ? (
          <>
            {/* Shown by "Reveal", which it replaces: it takes the focus. */}
            <SecretField label="Signing secret" value={secret.secret} autoFocus />
            {secret.previous_secret_expires_at && (
              <p className="hint">The previous secret also signs until {formatTime(secret.previous_secret_expires_at)}.</p>
            )}
            <div className="button-row">
              <button
                type="button"
                className="button"
                onClick={() => {
                  setSecret(null);
                  setHiddenByHide(true);
                }}
              >
                Hide
              </button>
            </div>
          </>
        ) : (
          <>
            <p className="secret-hidden">
              <span aria-hidden="true">whsec_••••••••••••••••••••••••</span>
              <span className="visually-hidden">The signing secret is hidden.</span>
            </p>
            <div className="button-row">
              {/* aria-disabled, not disabled: a button that disables itself under the keyboard's focus drops it. */}
              <button ref={revealButton} type="button" className="button" onClick={() => void reveal()} aria-disabled={loading}>
                Reveal
              </button>
              <button type="button" className="button" onClick={() => void copyHidden()} aria-disabled={loading}>
                Copy
              </button>
            </div>
            <p role="status" className="live-hint">
              {loading ? 'Loading the secret…' : (copied ?? '')}
            </p>
          </>
        )}
        {problem && <ErrorMessage>{problem}</ErrorMessage>}
      </section>
      <section className="card" aria-labelledby="rotate-title">
        <h2 id="rotate-title">Rotate the secret</h2>
        {account.tier === 'free' && !canRotate ? (
          <Notice>Rotating the secret needs the Pro tier or higher.</Notice>
        ) : canRotate ? (
          <>
            <p>Rotate it if it may have leaked, or on a schedule. You choose how long the old secret keeps signing.</p>
            <button type="button" className="button button-danger" onClick={() => setRotating(true)}>
              Rotate secret
            </button>
          </>
        ) : (
          <Notice>
            {account.role === 'viewer'
              ? 'You cannot rotate the secret: your role in this account is viewer. Ask an admin of the account.'
              : 'You cannot rotate the secret in this account.'}
          </Notice>
        )}
      </section>
      {rotating && <RotateSecretDialog onClose={() => setRotating(false)} onRotated={() => setSecret(null)} />}
    </Page>
  );
}
