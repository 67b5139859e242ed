/**
 * "Create key" → the dialog "Create API key": Name, Permissions, Workspaces, Expiration, Environment,
 * "Create". One Idempotency-Key per opening, so a double click or a retry after a lost answer makes one
 * key. Then the key is shown once; closing the dialog unmounts it, and its plaintext with it.
 */
import { useId, useRef, useState, type FormEvent } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { ApiProblem, messageOf } from '../../api/errors';
import { tierName, useAccount } from '../../lib/account';
import { createKey, type Choices, type CreateKeyBody } from './api';
import { capabilitiesOf, DEFAULT_PERMISSIONS, NameField, PermissionsFieldset, WorkspacesFieldset, ALL_WORKSPACES, workspaceList, type PermissionsValue, type WorkspacesValue } from './KeyFields';
import { NewKeySecret } from './NewKeySecret';
import { knownWorkspaces } from './useChoices';

type Days = NonNullable<CreateKeyBody['expires_in_days']>;
const EXPIRATIONS: readonly { readonly value: string; readonly label: string; readonly days: Days | null }[] = [
  { value: '7', label: '7 days', days: 7 },
  { value: '30', label: '30 days', days: 30 },
  { value: '60', label: '60 days', days: 60 },
  { value: '90', label: '90 days', days: 90 },
  { value: '180', label: '180 days', days: 180 },
  { value: '365', label: '1 year', days: 365 },
  { value: 'never', label: 'Never', days: null },
];

export interface CreateKeyDialogProps {
  readonly onClose: () => void;
  /** A key was made: refresh the list and the count. */
  readonly onCreated: () => void;
  /** The account's workflows and models (null while they load). */
  readonly choices: Choices | null;
}

export function CreateKeyDialog({ onClose, onCreated, choices }: CreateKeyDialogProps) {
  const account = useAccount();
  const id = useId();
  const [idempotencyKey] = useState(() => crypto.randomUUID());
  const [name, setName] = useState('');
  const [permissions, setPermissions] = useState<PermissionsValue>(DEFAULT_PERMISSIONS);
  const [workspaces, setWorkspaces] = useState<WorkspacesValue>(ALL_WORKSPACES);
  // As the API: a key without an expiry unless one is chosen.
  const [expiration, setExpiration] = useState('never');
  const [environment, setEnvironment] = useState<'live' | 'test'>('live');
  const [busy, setBusy] = useState(false);
  // A second click before React re-renders finds this set (the Idempotency-Key would catch it too).
  const inFlight = useRef(false);
  const [problem, setProblem] = useState<{ message: string; fields: Record<string, string> } | null>(null);
  // The plaintext, once: `undefined` until the key exists (null when a replay could not show it).
  const [secret, setSecret] = useState<string | null | undefined>(undefined);

  const limits = { tierName: tierName(account.tier), ceiling: account.ceiling, own: account.capabilities };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (inFlight.current) return;
    const fields: Record<string, string> = {};
    if (!name.trim()) fields['name'] = 'Enter a name.';
    const capabilities = capabilitiesOf(permissions);
    if (capabilities.length === 0) fields['capabilities'] = 'Choose at least one permission.';
    if (!workspaces.all && workspaces.chosen.length === 0) fields['workspaces'] = 'Choose at least one workspace, or All workspaces.';
    if (Object.keys(fields).length > 0) {
      setProblem({ message: 'Some fields need your attention.', fields });
      return;
    }
    const days = EXPIRATIONS.find((e) => e.value === expiration)?.days ?? null;
    const body: CreateKeyBody = {
      name: name.trim(),
      ...(permissions.mode === 'custom' ? { capabilities } : { preset: permissions.mode }),
      workspaces: workspaceList(workspaces),
      environment,
      ...(days !== null ? { expires_in_days: days } : {}),
    };
    inFlight.current = true;
    setBusy(true);
    setProblem(null);
    try {
      const created = await createKey(body, idempotencyKey, { maxKeys: account.maxKeys });
      setSecret(created.secret);
      onCreated();
    } catch (error) {
      setProblem({ message: messageOf(error), fields: error instanceof ApiProblem ? { ...error.fields } : {} });
      if (error instanceof ApiProblem && error.code === 'KEY_LIMIT_REACHED') account.refresh();
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };

  const expiresOn = (() => {
    const days = EXPIRATIONS.find((e) => e.value === expiration)?.days;
    return days ? new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(new Date(Date.now() + days * 86_400_000)) : null;
  })();
  const fieldError = (name: string) => problem?.fields[name];

  return (
    <Dialog title="Create API key" onClose={onClose} busy={busy} className="dialog-wide">
      {secret !== undefined ? (
        <NewKeySecret secret={secret} onDone={onClose} />
      ) : (
        <form className="dialog-body" noValidate onSubmit={(e) => void submit(e)}>
          <NameField value={name} onChange={setName} error={fieldError('name')} />
          <PermissionsFieldset
            value={permissions}
            onChange={setPermissions}
            limits={limits}
            choices={choices}
            error={fieldError('capabilities') ?? fieldError('preset') ?? fieldError('scope')}
          />
          <WorkspacesFieldset value={workspaces} onChange={setWorkspaces} known={knownWorkspaces(choices)} error={fieldError('workspaces')} />
          <div className="field">
            <label htmlFor={`${id}-expiration`}>Expiration</label>
            <select
              id={`${id}-expiration`}
              className="input"
              value={expiration}
              aria-describedby={`${id}-expiration-hint`}
              onChange={(e) => setExpiration(e.target.value)}
            >
              {EXPIRATIONS.map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
            <p id={`${id}-expiration-hint`} className="hint">
              {expiresOn ? `The key stops working on ${expiresOn}.` : 'The key works until it is deleted.'}
            </p>
            {fieldError('expires_in_days') && <p className="field-error">{fieldError('expires_in_days')}</p>}
          </div>
          <fieldset className="fieldset">
            <legend>Environment</legend>
            <div className="choice">
              <input type="radio" id={`${id}-live`} name={`${id}-env`} checked={environment === 'live'} onChange={() => setEnvironment('live')} aria-describedby={`${id}-live-hint`} />
              <label htmlFor={`${id}-live`}>Live</label>
              <p id={`${id}-live-hint`} className="hint">
                For production: the tier’s full rate limit.
              </p>
            </div>
            <div className="choice">
              <input type="radio" id={`${id}-test`} name={`${id}-env`} checked={environment === 'test'} onChange={() => setEnvironment('test')} aria-describedby={`${id}-test-hint`} />
              <label htmlFor={`${id}-test`}>Test</label>
              <p id={`${id}-test-hint`} className="hint">
                For development: a low rate limit, and it can manage only test keys.
              </p>
            </div>
          </fieldset>
          {problem && <ErrorMessage>{problem.message}</ErrorMessage>}
          {busy && <StatusMessage>Creating the key…</StatusMessage>}
          <div className="dialog-actions">
            <button type="button" className="button" onClick={onClose} disabled={busy}>
              Cancel
            </button>
            <button type="submit" className="button button-primary" aria-disabled={busy ? 'true' : undefined}>
              Create
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
