/**
 * The fields a key's create and edit dialogs share: Name, Permissions (the presets as radio buttons, or
 * Custom: one checkbox per capability, "Run one workflow" and "Run one model"), and Workspaces. What
 * the tier or the person's own role does not allow is disabled, with the reason beside it (linked by
 * aria-describedby). Only adding is limited: a permission the key holds that is no longer allowed (the
 * tier was lowered) stays enabled so that it can be removed; once removed it cannot be chosen again, and
 * its control stays focusable (aria-disabled) so that the keyboard keeps its place.
 */
import { useId, useState } from 'react';
import type { Choices } from './api';
import { CAPABILITIES, PRESETS, modelRun, presetOf, specificTarget, whyUnavailable, workflowRun, type Limits } from './permissions';

type PresetName = (typeof PRESETS)[number]['name'];

export interface PermissionsValue {
  readonly mode: PresetName | 'custom';
  /** Custom: the fixed capabilities ticked. */
  readonly fixed: readonly string[];
  /** Custom: the slug for "Run one workflow" ('' for none). */
  readonly workflow: string;
  /** Custom: the model id for "Run one model" ('' for none). */
  readonly model: string;
  /** Custom: other one-workflow or one-model capabilities the key already holds (kept unless unticked). */
  readonly extra: readonly string[];
}

export const DEFAULT_PERMISSIONS: PermissionsValue = { mode: 'read-only', fixed: [], workflow: '', model: '', extra: [] };

/** The dialog's value for a key's capabilities: its preset, else Custom with them ticked. */
export function permissionsOf(capabilities: readonly string[]): PermissionsValue {
  const preset = presetOf(capabilities);
  if (preset) return { ...DEFAULT_PERMISSIONS, mode: preset.name };
  const fixed = capabilities.filter((c) => CAPABILITIES.some(([name]) => name === c));
  const specific = capabilities.filter((c) => !fixed.includes(c));
  const workflow = specific.find((c) => specificTarget(c, 'workflow') !== null);
  const model = specific.find((c) => specificTarget(c, 'model') !== null);
  return {
    mode: 'custom',
    fixed,
    workflow: workflow ? (specificTarget(workflow, 'workflow') ?? '') : '',
    model: model ? (specificTarget(model, 'model') ?? '') : '',
    extra: specific.filter((c) => c !== workflow && c !== model),
  };
}

/** Said under "Run one workflow" or "Run one model" when its list could not be read. */
const UNAVAILABLE = (list: 'workflows' | 'models') => `The ${list} could not be loaded. Close this dialog and open it again to try again.`;

/** The capabilities a value stands for (a preset's, or the custom choices). */
export function capabilitiesOf(value: PermissionsValue): string[] {
  if (value.mode !== 'custom') return [...(PRESETS.find((p) => p.name === value.mode)?.capabilities ?? [])];
  return [...new Set([...value.fixed, ...(value.workflow ? [workflowRun(value.workflow)] : []), ...(value.model ? [modelRun(value.model)] : []), ...value.extra])];
}

/** The longest name the API takes: 100 characters, as its JSON schema counts them (code points, not UTF-16 units). */
export const MAX_NAME_LENGTH = 100;

/**
 * What is wrong with a key's name, or undefined. No `maxLength` on the field: the browser counts UTF-16
 * units and would silently cut a name of emoji short; what is typed stays, and this says what to change.
 */
export function nameProblem(name: string): string | undefined {
  const trimmed = name.trim();
  if (!trimmed) return 'Enter a name.';
  const length = [...trimmed].length;
  if (length > MAX_NAME_LENGTH) return `A name can have at most ${MAX_NAME_LENGTH} characters; this one has ${length}. Shorten it.`;
  return undefined;
}

function FieldError({ id, message }: { readonly id: string; readonly message: string | undefined }) {
  return message ? (
    <p id={id} className="field-error">
      {message}
    </p>
  ) : null;
}

export function NameField({ value, onChange, error }: { readonly value: string; readonly onChange: (v: string) => void; readonly error: string | undefined }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>Name</label>
      <input
        id={id}
        name="name"
        className="input"
        value={value}
        autoComplete="off"
        required
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={`${id}-hint${error ? ` ${id}-error` : ''}`}
        onChange={(e) => onChange(e.target.value)}
      />
      <p id={`${id}-hint`} className="hint">
        What or who uses the key, e.g. “billing-service, production”.
      </p>
      <FieldError id={`${id}-error`} message={error} />
    </div>
  );
}

export interface PermissionsFieldsetProps {
  readonly value: PermissionsValue;
  readonly onChange: (value: PermissionsValue) => void;
  readonly limits: Limits;
  /** Workflows and models to offer; null while they load. */
  readonly choices: Choices | null;
  readonly error: string | undefined;
}

export function PermissionsFieldset({ value, onChange, limits, choices, error }: PermissionsFieldsetProps) {
  const id = useId();
  const set = (patch: Partial<PermissionsValue>) => onChange({ ...value, ...patch });
  const firstReason = (capabilities: readonly string[]) => capabilities.map((c) => whyUnavailable(c, limits)).find((r) => r !== null) ?? null;
  const workflowReason = whyUnavailable(workflowRun('any'), limits);
  const modelReason = whyUnavailable(modelRun('any'), limits);
  // Held permissions that are not allowed any more and were removed in this dialog ('workflow' and
  // 'model' for the two selects): they cannot be chosen again, but keep the focus they had.
  const [removed, setRemoved] = useState<ReadonlySet<string>>(() => new Set());
  const remove = (what: string) => setRemoved((r) => (r.has(what) ? r : new Set(r).add(what)));
  /** disabled, or aria-disabled once removed here, for a choice not allowed and not held. */
  const unavailable = (reason: string | null, held: boolean, what: string) => {
    const blocked = reason !== null && !held;
    return { disabled: blocked && !removed.has(what), 'aria-disabled': blocked && removed.has(what) ? ('true' as const) : undefined };
  };
  const REMOVABLE = ' The key holds it: you can remove it, but not add it back.';

  return (
    <fieldset className="fieldset" aria-describedby={error ? `${id}-error` : undefined}>
      <legend>Permissions</legend>
      {PRESETS.map((preset) => {
        const reason = firstReason(preset.capabilities);
        return (
          <div className="choice" key={preset.name}>
            <input
              type="radio"
              id={`${id}-${preset.name}`}
              name={`${id}-mode`}
              checked={value.mode === preset.name}
              disabled={reason !== null}
              aria-describedby={`${id}-${preset.name}-hint`}
              onChange={() => set({ mode: preset.name })}
            />
            <label htmlFor={`${id}-${preset.name}`}>{preset.label}</label>
            <p id={`${id}-${preset.name}-hint`} className="hint">
              {preset.description} <span className="capability-list">{preset.capabilities.join(', ')}</span>
              {reason && <span className="reason"> {reason}</span>}
            </p>
          </div>
        );
      })}
      <div className="choice">
        <input type="radio" id={`${id}-custom`} name={`${id}-mode`} checked={value.mode === 'custom'} aria-describedby={`${id}-custom-hint`} onChange={() => set({ mode: 'custom' })} />
        <label htmlFor={`${id}-custom`}>Custom</label>
        <p id={`${id}-custom-hint`} className="hint">
          Choose each permission.
        </p>
      </div>
      {value.mode === 'custom' && (
        <div className="custom">
          <fieldset className="fieldset fieldset-inner">
            <legend>Capabilities</legend>
            {CAPABILITIES.map(([capability, text]) => {
              const reason = whyUnavailable(capability, limits);
              const checkboxId = `${id}-cap-${capability}`;
              const held = value.fixed.includes(capability);
              return (
                <div className="choice" key={capability}>
                  <input
                    type="checkbox"
                    id={checkboxId}
                    checked={held}
                    {...unavailable(reason, held, capability)}
                    aria-describedby={`${checkboxId}-hint`}
                    onChange={(e) => {
                      if (!e.target.checked) {
                        if (reason !== null) remove(capability);
                        set({ fixed: value.fixed.filter((c) => c !== capability) });
                      } else if (reason === null) set({ fixed: [...value.fixed, capability] });
                    }}
                  />
                  <label htmlFor={checkboxId} className="mono">
                    {capability}
                  </label>
                  <p id={`${checkboxId}-hint`} className="hint">
                    {text}.
                    {reason && (
                      <span className="reason">
                        {' '}
                        {reason}
                        {held && REMOVABLE}
                      </span>
                    )}
                  </p>
                </div>
              );
            })}
            {value.extra.map((capability) => (
              <div className="choice" key={capability}>
                <input
                  type="checkbox"
                  id={`${id}-extra-${capability}`}
                  checked
                  onChange={() => set({ extra: value.extra.filter((c) => c !== capability) })}
                />
                <label htmlFor={`${id}-extra-${capability}`} className="mono">
                  {capability}
                </label>
              </div>
            ))}
          </fieldset>
          <div className="field">
            <label htmlFor={`${id}-workflow`}>Run one workflow</label>
            <select
              id={`${id}-workflow`}
              className="input"
              value={value.workflow}
              {...unavailable(workflowReason, value.workflow !== '', 'workflow')}
              aria-describedby={`${id}-workflow-hint`}
              onChange={(e) => {
                if (workflowReason === null) set({ workflow: e.target.value });
                else if (e.target.value === '') {
                  remove('workflow');
                  set({ workflow: '' });
                }
              }}
            >
              <option value="">None</option>
              {value.workflow && (workflowReason !== null || !choices?.workflows.some((w) => w.slug === value.workflow)) && <option value={value.workflow}>{value.workflow}</option>}
              {workflowReason === null &&
                choices?.workflows.map((w) => (
                  <option key={w.slug} value={w.slug}>
                    {w.name === w.slug ? w.slug : `${w.name} (${w.slug})`}
                  </option>
                ))}
            </select>
            <p id={`${id}-workflow-hint`} className="hint">
              {(workflowReason && `${workflowReason}${value.workflow ? REMOVABLE : ''}`) ??
                (choices === null
                  ? 'Loading workflows…'
                  : choices.unavailable.includes('workflows')
                    ? UNAVAILABLE('workflows')
                    : choices.workflows.length === 0
                      ? 'No workflows to choose from yet.'
                      : 'Gives workflow:<slug>:run for that workflow only.')}
            </p>
          </div>
          <div className="field">
            <label htmlFor={`${id}-model`}>Run one model</label>
            <select
              id={`${id}-model`}
              className="input"
              value={value.model}
              {...unavailable(modelReason, value.model !== '', 'model')}
              aria-describedby={`${id}-model-hint`}
              onChange={(e) => {
                if (modelReason === null) set({ model: e.target.value });
                else if (e.target.value === '') {
                  remove('model');
                  set({ model: '' });
                }
              }}
            >
              <option value="">None</option>
              {value.model && (modelReason !== null || !choices?.models.some((m) => m.id === value.model)) && <option value={value.model}>{value.model}</option>}
              {modelReason === null &&
                choices?.models.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.id}
                  </option>
                ))}
            </select>
            <p id={`${id}-model-hint`} className="hint">
              {(modelReason && `${modelReason}${value.model ? REMOVABLE : ''}`) ??
                (choices === null ? 'Loading models…' : choices.unavailable.includes('models') ? UNAVAILABLE('models') : 'Gives model:<id>:run for that model only.')}
            </p>
          </div>
        </div>
      )}
      <FieldError id={`${id}-error`} message={error} />
    </fieldset>
  );
}

export interface WorkspacesValue {
  readonly all: boolean;
  readonly chosen: readonly string[];
}

export const ALL_WORKSPACES: WorkspacesValue = { all: true, chosen: [] };

export function workspacesOf(workspaces: readonly string[]): WorkspacesValue {
  return workspaces.includes('*') ? ALL_WORKSPACES : { all: false, chosen: workspaces };
}

export function workspaceList(value: WorkspacesValue): string[] {
  return value.all ? ['*'] : [...value.chosen];
}

const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface WorkspacesFieldsetProps {
  readonly value: WorkspacesValue;
  readonly onChange: (value: WorkspacesValue) => void;
  /** Workspace ids seen in the account (its workflows'), offered as checkboxes. */
  readonly known: readonly string[];
  readonly error: string | undefined;
}

export function WorkspacesFieldset({ value, onChange, known, error }: WorkspacesFieldsetProps) {
  const id = useId();
  const [draft, setDraft] = useState('');
  const [draftError, setDraftError] = useState<string | undefined>();
  const offered = [...new Set([...known, ...value.chosen])].sort();
  const add = () => {
    const workspace = draft.trim();
    if (!WORKSPACE_ID.test(workspace)) {
      setDraftError('A workspace id is 1 to 64 letters, digits, “-” or “_”, starting with a letter or digit.');
      return;
    }
    setDraftError(undefined);
    setDraft('');
    if (!value.chosen.includes(workspace)) onChange({ all: false, chosen: [...value.chosen, workspace] });
  };
  return (
    <fieldset className="fieldset" aria-describedby={error ? `${id}-error` : undefined}>
      <legend>Workspaces</legend>
      <div className="choice">
        <input type="radio" id={`${id}-all`} name={`${id}-ws`} checked={value.all} onChange={() => onChange({ ...value, all: true })} />
        <label htmlFor={`${id}-all`}>All workspaces</label>
      </div>
      <div className="choice">
        <input type="radio" id={`${id}-some`} name={`${id}-ws`} checked={!value.all} onChange={() => onChange({ ...value, all: false })} />
        <label htmlFor={`${id}-some`}>Specific workspaces</label>
      </div>
      {!value.all && (
        <div className="custom">
          {offered.map((workspace) => (
            <div className="choice" key={workspace}>
              <input
                type="checkbox"
                id={`${id}-ws-${workspace}`}
                checked={value.chosen.includes(workspace)}
                onChange={(e) => onChange({ all: false, chosen: e.target.checked ? [...value.chosen, workspace] : value.chosen.filter((w) => w !== workspace) })}
              />
              <label htmlFor={`${id}-ws-${workspace}`} className="mono">
                {workspace}
              </label>
            </div>
          ))}
          <div className="field">
            <label htmlFor={`${id}-add`}>Add a workspace</label>
            <div className="inline-row">
              <input
                id={`${id}-add`}
                className="input"
                value={draft}
                autoComplete="off"
                aria-invalid={draftError ? 'true' : undefined}
                aria-describedby={draftError ? `${id}-add-error` : undefined}
                onChange={(e) => setDraft(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') {
                    e.preventDefault();
                    add();
                  }
                }}
              />
              <button type="button" className="button" onClick={add}>
                Add
              </button>
            </div>
            <FieldError id={`${id}-add-error`} message={draftError} />
          </div>
        </div>
      )}
      <FieldError id={`${id}-error`} message={error} />
    </fieldset>
  );
}
