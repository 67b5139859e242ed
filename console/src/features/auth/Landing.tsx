/** The signed-out page: what the console is, and "Sign in". */
import { useEffect } from 'react';
import { SignInButton } from './SignInButton';

export function Landing({ returnTo }: { readonly returnTo: string }) {
  useEffect(() => {
    document.title = 'Sign in · Knouds console';
  }, []);
  return (
    <section className="landing" aria-labelledby="landing-title">
      <h1 id="landing-title" className="page-title">
        Knouds console
      </h1>
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
