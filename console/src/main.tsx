/**
 * The console's start: its settings (GET /config.json), the origin it signs in on, the sign-in
 * (oidc-client-ts), the one API client (openapi-fetch with the generated types), then the application.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createApi } from './api/client';
import { App } from './app/App';
import { accountChoice } from './lib/account-choice';
import { accessToken, endSession, initAuth, restoreSession } from './lib/auth';
import { loadConfig } from './lib/config';
import './styles.css';

const root = createRoot(document.getElementById('root')!);

/** The origin of the console's `redirect_uri`, where the provider sends the browser back after sign-in. */
function signInOrigin(redirectUri: string): string | undefined {
  try {
    return new URL(redirectUri).origin;
  } catch {
    return undefined;
  }
}

/**
 * The console opened on another origin than the one it signs in on (`http://127.0.0.1:3000/` while its
 * redirect_uri is on `http://localhost:3000`): a sign-in begun here would come back there, where this
 * origin's storage (the sign-in's state and PKCE verifier, then the tokens) is not. The browser goes to
 * the same page there before anything else; this says where, should it not go.
 */
function OtherOrigin({ home }: { readonly home: string }) {
  return (
    <main className="main main-narrow">
      <h1 className="page-title">Knouds console</h1>
      <p role="status" className="message message-notice">
        This console signs in at {home}: opening it there… If nothing happens, open the console at <a href={`${home}/`}>{home}/</a>.
      </p>
    </main>
  );
}

async function start(): Promise<void> {
  const config = await loadConfig();
  const home = signInOrigin(config.redirect_uri);
  if (home && home !== window.location.origin) {
    root.render(<OtherOrigin home={home} />);
    const { pathname, search, hash } = window.location;
    window.location.replace(`${home}${pathname}${search}${hash}`);
    return;
  }
  initAuth(config);
  createApi(config.api_url, { accessToken, account: accountChoice, unauthorized: () => void endSession() });
  root.render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
  if (window.location.pathname !== '/auth/callback') await restoreSession();
}

start().catch(() => {
  root.render(
    <main className="main main-narrow">
      <h1 className="page-title">Knouds console</h1>
      <p role="alert" className="message message-error">
        The console could not load its settings. Reload the page; if it keeps happening, tell whoever runs this Knouds stack.
      </p>
    </main>,
  );
});
