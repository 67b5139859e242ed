/**
 * An example of a deployer's own model (stack prop `models`): it receives `{input}` and returns the
 * model's output; a thrown error fails the step with its message. Deployed only with
 * `-c exampleModel=true` (the tests use it). `sleep_ms` makes it answer late, as a slow model would
 * (the tests use it for the run deadlines).
 */
export const EXAMPLE_MODEL_MAX_SLEEP_MS = 60_000;

export async function handler(event: { input?: { text?: unknown; sleep_ms?: unknown } }): Promise<{ text: string }> {
  const text = event.input?.text;
  if (typeof text !== 'string') throw new Error('reverse needs {"text": "<string>"}');
  const sleepMs = event.input?.sleep_ms;
  if (typeof sleepMs === 'number' && sleepMs > 0) {
    await new Promise((r) => setTimeout(r, Math.min(sleepMs, EXAMPLE_MODEL_MAX_SLEEP_MS)));
  }
  return { text: [...text].reverse().join('') };
}
