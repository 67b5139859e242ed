/**
 * "Create key" → the dialog "Create API key": Name, Permissions, Workspaces, Expiration (a number of
 * days, "Custom date" with an "Expiration date", or Never), Environment, Metadata, "Create". One Idempotency-Key per opening, so a double click or a retry after a lost answer makes one
 * key. Then the key is shown once; closing the dialog unmounts it, and its plaintext with it.
 */
import { useId, useState, type FormEvent } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { ApiProblem, messageOf } from '../../api/errors';
import { tierName, useAccount } from '../../lib/account';
import { useSubmission } from '../../lib/use-submission';
import { useLeaveGuard } from '../../lib/use-leave-guard';
import { endOfDay, localDay } from '../../lib/days';
import { createKey, type Choices, type CreateKeyBody } from './api';
import { capabilitiesOf, nameProblem, DEFAULT_PERMISSIONS, NameField, PermissionsFieldset, WorkspacesFieldset, ALL_WORKSPACES, workspaceList, type PermissionsValue, type WorkspacesValue } from './KeyFields';
import { metadataOf, MetadataFieldset, metadataProblem, type MetadataRow } from './MetadataFields';
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
  { value: 'custom', label: 'Custom date', days: null },
  { value: 'never', label: 'Never', days: null },
];

const DAY = 86_400_000;
/** The API takes an expiry at most 365 days ahead; a day is chosen whole, so the last one allowed is a day before. */
const MAX_CUSTOM_DAYS = 364;

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
  const [customDay, setCustomDay] = useState('');
  const [metadataRows, setMetadataRows] = useState<MetadataRow[]>([]);
  const [environment, setEnvironment] = useState<'live' | 'test'>('live');
  // A second click before React re-renders finds the request running (the Idempotency-Key would catch it too).
  const { busy, problem, setProblem, submit: send, inFlight } = useSubmission<{ message: string; fields: Record<string, string> }>();
  // The plaintext, once: `undefined` until the key exists (null when a replay could not show it).
  const [secret, setSecret] = useState<string | null | undefined>(undefined);
  // Leaving while the key is made, or while its secret is shown, would lose it: the page stays (and, once
  // the secret is shown, says so after a try).
  const [stayed, setStayed] = useState(false);
  useLeaveGuard(busy || typeof secret === 'string', () => setStayed(true));

  const limits = { tierName: tierName(account.tier), ceiling: account.ceiling, own: account.capabilities };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (inFlight()) return;
    const fields: Record<string, string> = {};
    const badName = nameProblem(name);
    if (badName) fields['name'] = badName;
    const capabilities = capabilitiesOf(permissions);
    if (capabilities.length === 0) fields['capabilities'] = 'Choose at least one permission.';
    if (!workspaces.all && workspaces.chosen.length === 0) fields['workspaces'] = 'Choose at least one workspace, or All workspaces.';
    const custom = expiration === 'custom' ? endOfDay(customDay) : null;
    if (expiration === 'custom' && (!custom || custom.getTime() <= Date.now() || custom.getTime() > Date.now() + 365 * DAY)) {
      fields['expires_at'] = `Choose a day from tomorrow to ${new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(new Date(Date.now() + MAX_CUSTOM_DAYS * DAY))}.`;
    }
    const metadata = metadataOf(metadataRows);
    if ('error' in metadata) fields['metadata'] = metadata.error;
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
      ...(custom ? { expires_at: custom.toISOString() } : {}),
      ...('metadata' in metadata && Object.keys(metadata.metadata).length > 0 ? { metadata: metadata.metadata } : {}),
    };
    await send(
      async () => {
        const created = await createKey(body, idempotencyKey, { maxKeys: account.maxKeys });
        setSecret(created.secret);
        setStayed(false);
        onCreated();
      },
      (error) => {
        if (error instanceof ApiProblem && error.code === 'KEY_LIMIT_REACHED') account.refresh();
        return { message: messageOf(error), fields: error instanceof ApiProblem ? { ...error.fields } : {} };
      },
    );
  };

  const expiresOn = (() => {
    const days = EXPIRATIONS.find((e) => e.value === expiration)?.days;
    const at = expiration === 'custom' ? endOfDay(customDay) : days ? new Date(Date.now() + days * DAY) : null;
    if (expiration === 'custom' && !at) return 'Choose the day after which the key stops working.';
    return at ? `The key stops working ${expiration === 'custom' ? 'at the end of' : 'on'} ${new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(at)}.` : null;
  })();
  const fieldError = (name: string) => problem?.fields[name];

  return (
    <Dialog title="Create API key" onClose={onClose} busy={busy} className="dialog-wide">
      {secret !== undefined ? (
        <NewKeySecret secret={secret} made="created" stayed={stayed} onDone={onClose} />
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
              aria-invalid={fieldError('expires_in_days') ? 'true' : undefined}
              aria-describedby={fieldError('expires_in_days') ? `${id}-expiration-hint ${id}-expiration-error` : `${id}-expiration-hint`}
              onChange={(e) => setExpiration(e.target.value)}
            >
              {EXPIRATIONS.map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
            <p id={`${id}-expiration-hint`} className="hint">
              {expiresOn ?? 'The key works until it is deleted.'}
            </p>
            {fieldError('expires_in_days') && (
              <p id={`${id}-expiration-error`} className="field-error">
                {fieldError('expires_in_days')}
              </p>
            )}
          </div>
          {expiration === 'custom' && (
            <div className="field">
              <label htmlFor={`${id}-expiration-date`}>Expiration date</label>
              <input
                id={`${id}-expiration-date`}
                type="date"
                className="input"
                value={customDay}
                min={localDay(new Date(Date.now() + DAY))}
                max={localDay(new Date(Date.now() + MAX_CUSTOM_DAYS * DAY))}
                aria-invalid={fieldError('expires_at') ? 'true' : undefined}
                aria-describedby={fieldError('expires_at') ? `${id}-expiration-date-error` : undefined}
                onChange={(e) => setCustomDay(e.target.value)}
              />
              {fieldError('expires_at') && (
                <p id={`${id}-expiration-date-error`} className="field-error">
                  {fieldError('expires_at')}
                </p>
              )}
            </div>
          )}
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
          <MetadataFieldset rows={metadataRows} onChange={setMetadataRows} error={metadataProblem(problem?.fields)} />
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
