/**
 * /auth/callback: the provider sent the browser back with a code. Exchanges it (oidc-client-ts), then
 * replaces the URL with the page the person came for, so the code leaves the address bar and history.
 */
import { useEffect, useState } from 'react';
import { useLocation } from 'wouter';
import { completeSignIn } from '../../lib/auth';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { SignInButton } from './SignInButton';

export function AuthCallback() {
  const [, navigate] = useLocation();
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    document.title = 'Signing in · Knouds console';
    let current = true;
    completeSignIn().then(
      (returnTo) => {
        if (current) navigate(returnTo, { replace: true });
      },
      () => {
        if (!current) return;
        // Nothing of the answer stays in the address bar.
        window.history.replaceState(null, '', '/auth/callback');
        setFailed(true);
      },
    );
    return () => {
      current = false;
    };
  }, [navigate]);
  return (
    <section className="landing" aria-labelledby="callback-title">
      <h1 id="callback-title" className="page-title">
        Signing in
      </h1>
      {failed ? (
        <>
          <ErrorMessage>The sign-in did not complete (it may have expired, or been opened twice). Sign in again.</ErrorMessage>
          <SignInButton returnTo="/keys" />
        </>
      ) : (
        <StatusMessage>Signing you in…</StatusMessage>
      )}
    </section>
  );
}
