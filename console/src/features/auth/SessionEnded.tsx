/** The session ran out (or the API refused it): sign in again, back to the same page. */
import { useEffect } from 'react';
import { SignInButton } from './SignInButton';

export function SessionEnded({ returnTo }: { readonly returnTo: string }) {
  useEffect(() => {
    document.title = 'Session ended · Knouds console';
  }, []);
  return (
    <section className="landing" aria-labelledby="ended-title">
      <h1 id="ended-title" className="page-title">
        Session ended
      </h1>
      <p role="alert" className="message message-notice">
        Your session has ended. Sign in again.
      </p>
      <SignInButton returnTo={returnTo} />
    </section>
  );
}
