/**
 * One request at a time from a dialog or form: `busy` while it is in flight, and the problem to show
 * when it failed. A second click or Enter before React re-renders finds the request running (a ref, not
 * state) and does nothing.
 */
import { useRef, useState } from 'react';

export function useSubmission<Problem>() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const inFlight = useRef(false);

  /**
   * Runs `action` unless a request is in flight; when it throws, `failed` turns the error into the
   * problem shown (and may react to it: reload a stale list, refresh the account).
   */
  const submit = async (action: () => Promise<void>, failed: (error: unknown) => Problem): Promise<void> => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setProblem(null);
    try {
      await action();
    } catch (error) {
      setProblem(failed(error));
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };

  return { busy, problem, setProblem, submit, inFlight: () => inFlight.current };
}
