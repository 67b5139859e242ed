/**
 * An example of a deployer's own model (stack prop `models`): it receives `{input}` and returns the
 * model's output; a thrown error fails the step with its message. Deployed only with
 * `-c exampleModel=true` (the tests use it).
 */
export async function handler(event: { input?: { text?: unknown } }): Promise<{ text: string }> {
  const text = event.input?.text;
  if (typeof text !== 'string') throw new Error('reverse needs {"text": "<string>"}');
  return { text: [...text].reverse().join('') };
}
