/**
 * The console's start: its settings (GET /config.json), the sign-in (oidc-client-ts), the one API
 * client (openapi-fetch with the generated types), then the application.
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

async function start(): Promise<void> {
  const config = await loadConfig();
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
