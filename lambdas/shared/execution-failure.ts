/**
 * Why an execution FAILED, for programs (API.md §4 "Executions": `failure: {code, step_id}` beside the
 * human `error`). `step_id` names the step that failed, or is null when the run failed outside any step.
 * New codes may be added: a client treats an unknown code as a failure of the run, like any other.
 */
export const FAILURE_CODES = [
  /** A step's model ran and failed (the `fail` model, a deployment's model returning an error). */
  'MODEL_FAILED',
  /** A step could not run: its resolved input does not fit its model's input schema, or its model is not available. */
  'STEP_FAILED',
  /** A step's resolved input or output, or the execution's output, passed its size (or nesting) limit. */
  'VALUE_TOO_LARGE',
  /** Out of time: a sync run past its budget (run it with ?async=true), an async run past the worker's, or housekeeping's "timed out". */
  'TIMED_OUT',
  /** The attempt running it stopped (a crash, a lost worker) and another found it gone. */
  'INTERRUPTED',
  /** The workflow (its version) was deleted before the queued run started. */
  'WORKFLOW_DELETED',
  /** The platform failed under the run (storage, the worker could not be started); details in its logs. */
  'INTERNAL_ERROR',
] as const;

export type FailureCode = (typeof FAILURE_CODES)[number];

export interface Failure {
  readonly code: FailureCode;
  readonly step_id: string | null;
}

export const failure = (code: FailureCode, stepId: string | null = null): Failure => ({ code, step_id: stepId });

/**
 * The failure of a run that FAILED before failures were recorded (its record has only `error`): from
 * the fixed errors the platform wrote, else a step's (`step 'id': …`), else the run's.
 */
export function legacyFailure(error: string | undefined): Failure {
  const text = error ?? '';
  if (text === 'timed out' || /longer than a synchronous request|outlasted the worker/.test(text)) return failure('TIMED_OUT');
  if (text === 'the run was interrupted' || text === 'cancelled') return failure('INTERRUPTED');
  if (text === 'the workflow version no longer exists') return failure('WORKFLOW_DELETED');
  const step = /^step '([^']+)'/.exec(text)?.[1] ?? null;
  if (/internal error|could not be (stored|started|read)/.test(text)) return failure('INTERNAL_ERROR', step);
  if (/over the limit of|deeper than the limit of/.test(text)) return failure('VALUE_TOO_LARGE', step);
  return failure(step ? 'MODEL_FAILED' : 'INTERNAL_ERROR', step);
}
