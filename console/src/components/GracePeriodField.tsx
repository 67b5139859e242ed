/** The "Grace period" radio group of the key and webhook-secret rotations, with its hint linked to the group. */
import { useId } from 'react';

export interface GraceOption {
  readonly seconds: number;
  readonly label: string;
}

export function GracePeriodField({
  options,
  value,
  onChange,
  hint,
}: {
  options: readonly GraceOption[];
  value: number;
  onChange: (seconds: number) => void;
  hint: string;
}) {
  const id = useId();
  return (
    <fieldset className="fieldset" aria-describedby={`${id}-hint`}>
      <legend>Grace period</legend>
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      {options.map((g) => (
        <div className="choice" key={g.seconds}>
          <input type="radio" id={`${id}-${g.seconds}`} name={`${id}-grace`} checked={value === g.seconds} onChange={() => onChange(g.seconds)} />
          <label htmlFor={`${id}-${g.seconds}`}>{g.label}</label>
        </div>
      ))}
    </fieldset>
  );
}
