/**
 * A secret in a read-only textbox with a "Copy" button (navigator.clipboard), which says "Copied".
 * It keeps nothing: the value comes from the parent, and goes when the parent drops it.
 */
import { useEffect, useId, useRef, useState } from 'react';

export interface SecretFieldProps {
  readonly label: string;
  readonly value: string;
  /** The id of a text that describes the field (e.g. the warning that it is shown once). */
  readonly describedBy?: string;
  /** Takes focus when shown (it replaced the form that had it). */
  readonly autoFocus?: boolean;
}

export function SecretField({ label, value, describedBy, autoFocus = false }: SecretFieldProps) {
  const id = useId();
  const statusId = useId();
  const [copy, setCopy] = useState<'idle' | 'copied' | 'failed'>('idle');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setCopy('idle'), [value]);
  useEffect(() => {
    if (autoFocus) input.current?.focus();
  }, [autoFocus]);

  const onCopy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopy('copied');
    } catch {
      setCopy('failed');
    }
  };

  return (
    <div className="field secret-field">
      <label htmlFor={id}>{label}</label>
      <div className="secret-row">
        <input
          ref={input}
          id={id}
          type="text"
          readOnly
          value={value}
          className="input input-mono"
          spellCheck={false}
          autoComplete="off"
          aria-describedby={describedBy}
          onFocus={(event) => event.currentTarget.select()}
        />
        <button type="button" className="button" onClick={() => void onCopy()}>
          Copy
        </button>
      </div>
      <p role="status" id={statusId} className="live-hint">
        {copy === 'copied' ? 'Copied' : copy === 'failed' ? 'Could not copy: select the text and copy it yourself.' : ''}
      </p>
    </div>
  );
}
