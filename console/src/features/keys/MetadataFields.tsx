/**
 * A key's metadata in the create and edit dialogs: rows of key and value ("Metadata key 1", "Metadata
 * value 1", "Remove metadata entry 1"), "Add metadata" for another row (up to the API's 20). Checked as
 * the API checks it (keys 1–40 characters and distinct, values up to 500) before anything is sent.
 */
import { useId } from 'react';

export const MAX_ENTRIES = 20;
export const MAX_KEY_LENGTH = 40;
export const MAX_VALUE_LENGTH = 500;

export interface MetadataRow {
  /** Stable across edits, so React keeps each row's inputs (and focus) in place. */
  readonly id: number;
  readonly key: string;
  readonly value: string;
}

let nextRowId = 0;
const row = (key = '', value = ''): MetadataRow => ({ id: nextRowId++, key, value });

/** The rows for a key's map (in its order). */
export function metadataRows(metadata: Readonly<Record<string, string>>): MetadataRow[] {
  return Object.entries(metadata).map(([key, value]) => row(key, value));
}

/**
 * The map the rows stand for, or the first problem in words. A row left wholly empty is ignored (so an
 * "Add metadata" clicked by mistake does no harm).
 */
export function metadataOf(rows: readonly MetadataRow[]): { readonly metadata: Record<string, string> } | { readonly error: string } {
  // A Map, not an object: keys such as "constructor" or "__proto__" are keys like any other.
  const metadata = new Map<string, string>();
  const filled = rows.filter((r) => r.key !== '' || r.value !== '');
  if (filled.length > MAX_ENTRIES) return { error: `A key holds at most ${MAX_ENTRIES} metadata entries.` };
  for (const [i, r] of filled.entries()) {
    // Kept as typed (the API keeps keys as given); lengths in characters, as the API counts them.
    const key = r.key;
    if (key === '') return { error: `Metadata entry ${i + 1} has a value but no key: give it a key, or remove it.` };
    if (characters(key) > MAX_KEY_LENGTH) return { error: `Metadata key “${key}” is longer than ${MAX_KEY_LENGTH} characters.` };
    if (characters(r.value) > MAX_VALUE_LENGTH) return { error: `The value of “${key}” is longer than ${MAX_VALUE_LENGTH} characters.` };
    if (metadata.has(key)) return { error: `Metadata key “${key}” is given twice: keep one.` };
    metadata.set(key, r.value);
  }
  return { metadata: Object.fromEntries(metadata) };
}

/** A string's length in characters (code points), as the API's JSON Schema counts it: "😀" is 1, not 2. */
const characters = (text: string): number => [...text].length;

/** The API's field errors about metadata (`metadata`, `metadata.<key>`), as one sentence; a local problem (`metadata`) as it is. */
export function metadataProblem(fields: Readonly<Record<string, string>> | undefined): string | undefined {
  const entry = Object.entries(fields ?? {}).find(([field]) => field === 'metadata' || field.startsWith('metadata.'));
  if (!entry) return undefined;
  const [field, message] = entry;
  return field === 'metadata' ? message : `The value of “${field.slice('metadata.'.length)}” ${message}.`;
}

export function MetadataFieldset({
  rows,
  onChange,
  error,
}: {
  readonly rows: readonly MetadataRow[];
  readonly onChange: (rows: MetadataRow[]) => void;
  readonly error: string | undefined;
}) {
  const id = useId();
  const set = (at: number, change: Partial<Pick<MetadataRow, 'key' | 'value'>>) => onChange(rows.map((r, i) => (i === at ? { ...r, ...change } : r)));
  const add = () => {
    onChange([...rows, row()]);
    // The new row's key field, once it is on the page.
    requestAnimationFrame(() => document.getElementById(`${id}-key-${rows.length}`)?.focus());
  };
  const remove = (at: number) => {
    onChange(rows.filter((_, i) => i !== at));
    // Focus stays in the fieldset: the row that took its place, else "Add metadata".
    requestAnimationFrame(() => (document.getElementById(`${id}-key-${Math.min(at, rows.length - 2)}`) ?? document.getElementById(`${id}-add`))?.focus());
  };
  return (
    <fieldset className="fieldset" aria-describedby={`${id}-hint${error ? ` ${id}-error` : ''}`}>
      <legend>Metadata</legend>
      <p id={`${id}-hint`} className="hint">
        Optional notes for your own use, e.g. owner or ticket: up to {MAX_ENTRIES} entries, keys up to {MAX_KEY_LENGTH} characters, values up to {MAX_VALUE_LENGTH}. Returned with
        the key; not secret.
      </p>
      {rows.map((r, i) => (
        <div key={r.id} className="inline-row fieldset-inner">
          <label htmlFor={`${id}-key-${i}`} className="visually-hidden">
            Metadata key {i + 1}
          </label>
          <input
            id={`${id}-key-${i}`}
            className="input"
            placeholder="key"
            value={r.key}
            autoComplete="off"
            onChange={(e) => set(i, { key: e.target.value })}
          />
          <label htmlFor={`${id}-value-${i}`} className="visually-hidden">
            Metadata value {i + 1}
          </label>
          <input
            id={`${id}-value-${i}`}
            className="input"
            placeholder="value"
            value={r.value}
            autoComplete="off"
            onChange={(e) => set(i, { value: e.target.value })}
          />
          <button type="button" className="button button-quiet" onClick={() => remove(i)}>
            Remove<span className="visually-hidden"> metadata entry {i + 1}</span>
          </button>
        </div>
      ))}
      <div className="button-row">
        <button id={`${id}-add`} type="button" className="button button-quiet" onClick={add} disabled={rows.length >= MAX_ENTRIES}>
          Add metadata
        </button>
      </div>
      {error && (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      )}
    </fieldset>
  );
}
