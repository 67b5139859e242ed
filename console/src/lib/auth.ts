/**
 * Sign-in with oidc-client-ts (authorization code + PKCE): the session's tokens live in this tab's
 * session storage only (oidc-client-ts's user store), never in a cookie or, after the callback, in the
 * URL. No silent renew and no refresh tokens (a provider's is not kept): when the access token expires,
 * or the API answers 401, the session ends and the console asks the person to sign in again. While a page
 * holds what cannot be had again (`holdSession`: a new key being made or shown), the session's end waits
 * ('ending': the page stays, and says so) until the page lets go.
 *
 * The session is a small store (useSyncExternalStore) that the API client reads its token from.
 */
import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';
import { useSyncExternalStore } from 'react';
import type { ConsoleConfig } from './config';
import { forgetAccountChoice } from './account-choice';

export type Session =
  | { readonly status: 'checking' }
  /**
   * No session. `afterSignOut`: the page was reached right after "Sign out" in this tab (once; see
   * signOut), so it says the person is signed out of the console, and what Sign in will do.
   */
  | { readonly status: 'signed-out'; readonly afterSignOut?: true }
  | { readonly status: 'signed-in'; readonly accessToken: string; readonly expiresAt: number }
  /**
   * The token expired or the API refused it, while a page holds what cannot be had again (a new key's
   * secret): the page stays until it lets go, then the session is 'ended'. No token is sent meanwhile.
   */
  | { readonly status: 'ending' }
  /** The token expired or the API refused it: sign in again. */
  | { readonly status: 'ended' };

let session: Session = { status: 'checking' };
const listeners = new Set<() => void>();
let manager: UserManager | undefined;
let settings: ConsoleConfig | undefined;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;
/** How many holds keep the page shown past the session's end (see holdSession). */
let holds = 0;

function setSession(next: Session): void {
  session = next;
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useSession(): Session {
  return useSyncExternalStore(subscribe, () => session);
}

/** The access token of the signed-in person, for the API client; null when there is none. */
export function accessToken(): string | null {
  return session.status === 'signed-in' ? session.accessToken : null;
}

function userManager(): UserManager {
  if (!manager) throw new Error('initAuth() first');
  return manager;
}

/**
 * The signed-in user's store: this tab's session storage, without the refresh token. Cognito issues one
 * with every sign-in (it cannot be turned off); the console never uses it, so it is never written where
 * a script in the page could read it later and keep signing in with it after the access token's hour.
 */
class UserStore extends WebStorageStateStore {
  override set(key: string, value: string): Promise<void> {
    const { refresh_token: _unused, ...kept } = JSON.parse(value) as Record<string, unknown>;
    return super.set(key, JSON.stringify(kept));
  }
}

export function initAuth(config: ConsoleConfig): void {
  settings = config;
  const store = new WebStorageStateStore({ store: window.sessionStorage });
  manager = new UserManager({
    authority: config.issuer,
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    post_logout_redirect_uri: config.post_logout_redirect_uri,
    scope: config.scope,
    response_type: 'code',
    // Tokens, and the sign-in's PKCE verifier and state, in this tab's session storage only.
    userStore: new UserStore({ store: window.sessionStorage }),
    stateStore: store,
    automaticSilentRenew: false,
    monitorSession: false,
    loadUserInfo: false,
    ...(config.end_session_endpoint ? { metadataSeed: { end_session_endpoint: config.end_session_endpoint } } : {}),
  });
}

function signedIn(user: User): void {
  const expiresAt = (user.expires_at ?? 0) * 1000;
  clearTimeout(expiryTimer);
  if (expiresAt <= Date.now()) {
    void endSession();
    return;
  }
  // setTimeout holds at most ~24.8 days; tokens live an hour.
  expiryTimer = setTimeout(() => void endSession(), Math.min(expiresAt - Date.now(), 2 ** 31 - 1));
  setSession({ status: 'signed-in', accessToken: user.access_token, expiresAt });
}

/**
 * Set in this tab's session storage by signOut() just before the browser leaves for the provider's
 * sign-out page, and taken (read and removed) at the next start: the page the provider sends the browser
 * back to says "signed out" once, never on a first visit or a reload.
 */
const SIGNED_OUT_FLAG = 'knouds.console.signed-out';

function markSignedOut(): void {
  try {
    window.sessionStorage.setItem(SIGNED_OUT_FLAG, '1');
  } catch {
    // Storage refused (full, or turned off): the landing page just does not say it.
  }
}

/** Whether this tab has just signed out of the console; the mark goes with the first reading. */
function takeSignedOut(): boolean {
  try {
    const marked = window.sessionStorage.getItem(SIGNED_OUT_FLAG) !== null;
    window.sessionStorage.removeItem(SIGNED_OUT_FLAG);
    return marked;
  } catch {
    return false;
  }
}

/** At start: a session kept in this tab (a reload), or none (just signed out of the console, or not). */
export async function restoreSession(): Promise<void> {
  const afterSignOut = takeSignedOut();
  // A session storage entry that cannot be read is no session.
  const user = await userManager()
    .getUser()
    .catch(() => null);
  if (!user) setSession(afterSignOut ? { status: 'signed-out', afterSignOut } : { status: 'signed-out' });
  else if (user.expired) await endSession();
  else signedIn(user);
}

/** Only paths of this console, never another origin (`//host`), are places to come back to. */
function safePath(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/auth/') ? value : '/keys';
}

/** Sends the browser to the provider; back at /auth/callback the console returns to `returnTo`. */
export async function signIn(returnTo: string): Promise<void> {
  await userManager().signinRedirect({ state: { returnTo: safePath(returnTo) } });
}

let callback: Promise<string> | undefined;

/**
 * At /auth/callback: exchanges the code (once, even when React runs the effect twice) and returns the
 * path to go to (the caller replaces the URL, so the code and state leave the address bar and history).
 */
export function completeSignIn(): Promise<string> {
  callback ??= userManager()
    .signinRedirectCallback()
    .then((user) => {
      takeSignedOut();
      signedIn(user);
      return safePath((user.state as { returnTo?: unknown } | undefined)?.returnTo);
    });
  return callback;
}

/**
 * The session is over (the token expired, or the API answered 401): forget it, ask to sign in again; or,
 * while a page holds what cannot be had again, once it lets go ('ending' meanwhile).
 */
export async function endSession(): Promise<void> {
  clearTimeout(expiryTimer);
  if (session.status === 'ended' || session.status === 'ending') return;
  setSession(holds > 0 ? { status: 'ending' } : { status: 'ended' });
  await manager?.removeUser();
}

/**
 * Keeps the page shown if the session ends meanwhile (a new key's secret on screen, or the request that
 * makes it in flight): the session is 'ending' until every hold is let go, then 'ended'. Returns the
 * release (calling it again does nothing).
 */
export function holdSession(): () => void {
  holds += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holds -= 1;
    if (holds === 0 && session.status === 'ending') setSession({ status: 'ended' });
  };
}

/**
 * Forgets the session here and, when the provider has a sign-out page, signs out there too (the browser
 * then comes back to post_logout_redirect_uri). The request names the console by its `client_id`, never
 * by an `id_token_hint`: tokens are never in a URL after sign-in (API.md §6), and that one would carry the
 * ID token, the person's email in it, into the history and the provider's logs. Cognito's /logout (from
 * config.json, as its discovery has none) also needs `logout_uri`. The provider may keep its own session
 * (the local one asks "Sign out" or "Stay signed in"); the page it sends the browser back to says the
 * person is signed out of the console, and that Sign in may not ask for a password.
 */
export async function signOut(): Promise<void> {
  clearTimeout(expiryTimer);
  forgetAccountChoice();
  const m = userManager();
  markSignedOut();
  try {
    const extraQueryParams = settings?.end_session_endpoint ? { logout_uri: settings.post_logout_redirect_uri } : undefined;
    // The user removed first: with no ID token to hint with, oidc-client-ts sends `client_id` instead.
    await m.removeUser();
    await m.signoutRedirect(extraQueryParams ? { extraQueryParams } : {});
  } catch {
    // No sign-out page at the provider (or its discovery is unreachable): signed out of the console.
    await m.removeUser();
    // Said here and now: the mark is not left for a later start.
    takeSignedOut();
    setSession({ status: 'signed-out', afterSignOut: true });
  }
}
