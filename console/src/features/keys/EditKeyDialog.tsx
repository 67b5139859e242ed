/** Edit: a key's name, permissions, workspaces and metadata (PATCH /keys/{key_id}; the metadata map is replaced whole). */
import { useState, type FormEvent } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { ApiProblem, isStale, messageOf } from '../../api/errors';
import { tierName, useAccount } from '../../lib/account';
import { useSubmission } from '../../lib/use-submission';
import { updateKey, type Choices, type Key } from './api';
import { capabilitiesOf, nameProblem, NameField, permissionsOf, PermissionsFieldset, WorkspacesFieldset, workspaceList, workspacesOf, type PermissionsValue, type WorkspacesValue } from './KeyFields';
import { metadataOf, MetadataFieldset, metadataProblem, metadataRows, type MetadataRow } from './MetadataFields';
import { knownWorkspaces } from './useChoices';

export function EditKeyDialog({
  apiKey,
  onClose,
  onSaved,
  onStale,
  choices,
}: {
  readonly apiKey: Key;
  /** The account's workflows and models (null while they load). */
  readonly choices: Choices | null;
  readonly onClose: () => void;
  /** Told the key's name as saved. */
  readonly onSaved: (name: string) => void;
  /** The key changed meanwhile: show the list anew. */
  readonly onStale: () => void;
}) {
  const account = useAccount();
  const [name, setName] = useState(apiKey.name);
  const [permissions, setPermissions] = useState<PermissionsValue>(() => permissionsOf(apiKey.capabilities));
  const [workspaces, setWorkspaces] = useState<WorkspacesValue>(() => workspacesOf(apiKey.workspaces));
  const [rows, setRows] = useState<MetadataRow[]>(() => metadataRows(apiKey.metadata));
  const { busy, problem, setProblem, submit: send, inFlight } = useSubmission<{ message: string; fields: Record<string, string> }>();
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
    const metadata = metadataOf(rows);
    if ('error' in metadata) fields['metadata'] = metadata.error;
    if (Object.keys(fields).length > 0 || 'error' in metadata) {
      setProblem({ message: 'Some fields need your attention.', fields });
      return;
    }
    await send(
      async () => {
        // Only what the person changed: a field left alone keeps whatever another tab or the CLI set meanwhile.
        const changes = changedFields(apiKey, { name: name.trim(), capabilities, workspaces: workspaceList(workspaces), metadata: metadata.metadata });
        if (Object.keys(changes).length > 0) await updateKey(apiKey.key_id, changes);
        onSaved(name.trim());
        onClose();
      },
      (error) => {
        if (isStale(error)) onStale();
        return { message: messageOf(error), fields: error instanceof ApiProblem ? { ...error.fields } : {} };
      },
    );
  };

  return (
    <Dialog title="Edit API key" onClose={onClose} busy={busy} className="dialog-wide">
      <form className="dialog-body" noValidate onSubmit={(e) => void submit(e)}>
        <p className="hint">
          Key <span className="mono">{apiKey.prefix}…</span> ({apiKey.environment}). Changes apply from the key’s next request.
        </p>
        <NameField value={name} onChange={setName} error={problem?.fields['name']} />
        <PermissionsFieldset value={permissions} onChange={setPermissions} limits={limits} choices={choices} error={problem?.fields['capabilities']} />
        <WorkspacesFieldset value={workspaces} onChange={setWorkspaces} known={knownWorkspaces(choices)} error={problem?.fields['workspaces']} />
        <MetadataFieldset rows={rows} onChange={setRows} error={metadataProblem(problem?.fields)} />
        {problem && <ErrorMessage>{problem.message}</ErrorMessage>}
        {busy && <StatusMessage>Saving…</StatusMessage>}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="button button-primary">
            Save changes
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
const sameMap = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  const entries = (m: Readonly<Record<string, string>>) => JSON.stringify(Object.entries(m).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return entries(a) === entries(b);
};

/** The fields of the form that differ from the key as it was read. */
function changedFields(
  key: Key,
  form: { name: string; capabilities: string[]; workspaces: string[]; metadata: Record<string, string> },
): { name?: string; capabilities?: string[]; workspaces?: string[]; metadata?: Record<string, string> } {
  return {
    ...(form.name !== key.name ? { name: form.name } : {}),
    ...(!sameSet(form.capabilities, key.capabilities) ? { capabilities: form.capabilities } : {}),
    ...(!sameSet(form.workspaces, key.workspaces) ? { workspaces: form.workspaces } : {}),
    ...(!sameMap(form.metadata, key.metadata) ? { metadata: form.metadata } : {}),
  };
}
