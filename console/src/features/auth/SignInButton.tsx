import { useState } from 'react';
import { ErrorMessage } from '../../components/Messages';
import { signIn } from '../../lib/auth';

/** "Sign in": to the provider, coming back to `returnTo`. */
export function SignInButton({ returnTo }: { readonly returnTo: string }) {
  const [state, setState] = useState<'idle' | 'going' | 'failed'>('idle');
  return (
    <>
      <button
        type="button"
        className="button button-primary"
        disabled={state === 'going'}
        onClick={() => {
          setState('going');
          signIn(returnTo).catch(() => setState('failed'));
        }}
      >
        Sign in
      </button>
      {state === 'failed' && <ErrorMessage>The sign-in service could not be reached. Check your connection, then try again.</ErrorMessage>}
    </>
  );
}
