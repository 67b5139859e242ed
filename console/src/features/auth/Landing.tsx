/**
 * The signed-out page: what the console is, and "Sign in". Right after "Sign out" in this tab it first
 * says so, and what Sign in will do: the provider may have kept its own session ("Stay signed in"), and
 * then signs the person straight back in without asking for a password.
 */
import { useEffect } from 'react';
import { SignInButton } from './SignInButton';

export function Landing({ returnTo, afterSignOut = false }: { readonly returnTo: string; readonly afterSignOut?: boolean }) {
  useEffect(() => {
    document.title = afterSignOut ? 'Signed out · Knouds console' : 'Sign in · Knouds console';
  }, [afterSignOut]);
  return (
    <section className="landing" aria-labelledby="landing-title">
      <h1 id="landing-title" className="page-title">
        Knouds console
      </h1>
      {afterSignOut && (
        <div role="status" className="message message-notice signed-out">
          <p>
            <strong>You are signed out of the Knouds console.</strong>
          </p>
          <p>
            If you chose to stay signed in at your sign-in provider, you are still signed in there: <strong>Sign in</strong> below brings
            you back to the console without asking for your password. To sign out there too (on a shared computer), sign in, press{' '}
            <strong>Sign out</strong> again and choose to sign out at the provider as well.
          </p>
        </div>
      )}
      <p className="lead">Manage how your code reaches the Knouds API.</p>
      <ul className="landing-list">
        <li>Create API keys with just the permissions they need, copy each one once, and see what they are used for.</li>
        <li>Edit, rotate or delete keys when people or services change.</li>
        <li>Reveal and rotate the secret that signs your webhooks.</li>
      </ul>
      <p>Sign in with the account your administrator gave you.</p>
      <SignInButton returnTo={returnTo} />
    </section>
  );
}
