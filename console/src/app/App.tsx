/**
 * The console: sign-in state first (oidc-client-ts), then the person's account (GET /me), then the
 * page of the URL (wouter): /keys (the first page after sign-in), /webhooks, /audit, /auth/callback.
 */
import { useEffect, type ReactNode } from 'react';
import { Redirect, Route, Switch, useLocation } from 'wouter';
import { ErrorMessage, StatusMessage } from '../components/Messages';
import { AuditPage } from '../features/audit/AuditPage';
import { AuthCallback } from '../features/auth/AuthCallback';
import { Landing } from '../features/auth/Landing';
import { SessionEnded } from '../features/auth/SessionEnded';
import { KeysPage } from '../features/keys/KeysPage';
import { WebhooksPage } from '../features/webhooks/WebhooksPage';
import { AccountProvider } from '../lib/account';
import { signOut, useSession } from '../lib/auth';
import { Layout } from './Layout';
import { NotFound } from './NotFound';

/** A page without the signed-in header: the console's name and the content. */
function Bare({ children }: { readonly children: ReactNode }) {
  return (
    <>
      <header className="header">
        <div className="header-inner">
          <p className="brand">Knouds console</p>
        </div>
      </header>
      <main id="main" className="main main-narrow">
        {children}
      </main>
    </>
  );
}

function AccountLoading({ failed, retry }: { readonly failed?: string; readonly retry: () => void }) {
  useEffect(() => {
    document.title = 'Knouds console';
  }, []);
  return (
    <Bare>
      <h1 className="page-title">Knouds console</h1>
      {failed ? (
        <>
          <ErrorMessage>{failed}</ErrorMessage>
          <div className="button-row">
            <button type="button" className="button button-primary" onClick={retry}>
              Try again
            </button>
            <button type="button" className="button" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        </>
      ) : (
        <StatusMessage>Loading your account…</StatusMessage>
      )}
    </Bare>
  );
}

export function App() {
  const session = useSession();
  const [location] = useLocation();

  if (location === '/auth/callback') {
    // Back here when already signed in (history): nothing to exchange.
    if (session.status === 'signed-in' && !new URLSearchParams(window.location.search).has('code')) return <Redirect to="/keys" replace />;
    return (
      <Bare>
        <AuthCallback />
      </Bare>
    );
  }
  // The query too (the Audit log's filters): a link to a filtered page survives the sign-in.
  const returnTo = location === '/' ? '/keys' : `${location}${window.location.search}`;
  switch (session.status) {
    case 'checking':
      return (
        <Bare>
          <StatusMessage>Loading…</StatusMessage>
        </Bare>
      );
    case 'signed-out':
      return (
        <Bare>
          <Landing returnTo={returnTo} afterSignOut={session.afterSignOut === true} />
        </Bare>
      );
    case 'ended':
      return (
        <Bare>
          <SessionEnded returnTo={returnTo} />
        </Bare>
      );
    // Ended while a page holds a new key's secret: that page stays until it lets go.
    case 'ending':
    case 'signed-in':
      return (
        <AccountProvider loading={(state) => <AccountLoading {...state} />}>
          <Layout>
            <Switch>
              <Route path="/">
                <Redirect to="/keys" replace />
              </Route>
              <Route path="/keys" component={KeysPage} />
              <Route path="/webhooks" component={WebhooksPage} />
              <Route path="/audit" component={AuditPage} />
              <Route component={NotFound} />
            </Switch>
          </Layout>
        </AccountProvider>
      );
  }
}
