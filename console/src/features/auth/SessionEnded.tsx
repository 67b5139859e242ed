/** The session ran out (or the API refused it): sign in again, back to the same page. */
import { useEffect, useRef } from 'react';
import { SignInButton } from './SignInButton';

export function SessionEnded({ returnTo }: { readonly returnTo: string }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = 'Session ended · Knouds console';
    // It replaced the page whatever had the focus there: the keyboard starts again from its heading.
    heading.current?.focus();
  }, []);
  return (
    <section className="landing" aria-labelledby="ended-title">
      <h1 ref={heading} tabIndex={-1} id="ended-title" className="page-title">
        Session ended
      </h1>
      <p role="alert" className="message message-notice">
        Your session has ended. Sign in again.
      </p>
      <SignInButton returnTo={returnTo} />
    </section>
  );
}
