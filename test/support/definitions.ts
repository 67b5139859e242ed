/** Workflow definitions several suites run. */

/** Sleeps `input.ms` (the `sleep` model honours cancellation), then echoes `{done: true}`. */
export const SLEEPY = {
  input_schema: { type: 'object', properties: { ms: { type: 'integer' } } },
  steps: [
    { id: 'nap', model: 'sleep', input: { ms: '$.input.ms' } },
    { id: 'after', model: 'echo', input: { done: true } },
  ],
  output: '$.steps.after.output',
};
