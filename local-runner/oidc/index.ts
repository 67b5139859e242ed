/**
 * The local OpenID Connect provider of `npm start`, mounted at `/oidc` on the runner's own server (one
 * origin for the console, the API and the provider). Built on oidc-provider; this module adds only what
 * the library leaves to its user: the people and their passwords, the sign-in page (the library's
 * interaction API), the signing keys' storage and the admin endpoint for the CLI.
 *
 *   const oidc = await startLocalOidc({ origin: 'http://localhost:3000', persistDir });
 *   server.on('request', (req, res) => isLocalOidcPath(req.url) ? oidc.handler(req, res) : api(req, res));
 *   await oidc.seedDemoPerson(); // → {subject, email, password}
 */
import type * as ProviderModule from './provider.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type Provider from 'oidc-provider';
import { ADMIN_PATH, createAdminHandler, readBody } from './admin.js';
import type { LocalOidcState } from './admin-client.js';
import { loginPage, messagePage, sendPage } from './pages.js';
import { PeopleStore } from './people.js';
import {
  DEMO_PERSON_EMAIL,
  LOCAL_OIDC_PATH,
  localApiIdentifier,
  localAuthorizerSettings,
  localConsoleClient,
  localIssuer,
  type AuthorizerOidcSettings,
  type ConsoleClientSettings,
} from './settings.js';
import { loadOrCreateSigningKeys } from './signing-keys.js';

export * from './settings.js';
export type { AddedPerson, PasswordReset, PeopleDirectory, Person } from './people.js';
export { LocalOidcAdminClient, LocalOidcAdminError, type LocalOidcState } from './admin-client.js';

export interface LocalOidcOptions {
  /** The runner's origin, `http://localhost:<port>`; the issuer is `<origin>/oidc`. */
  readonly origin: string;
  /** Keep people and signing keys in `<persistDir>/oidc/`. @default memory only, new keys at each start */
  readonly persistDir?: string;
  /** The API's identifier (the access tokens' `aud`). @default `<origin>/v1` */
  readonly audience?: string;
  /** An unexpected failure while serving a request (the request gets a 500 page). @default console.error */
  readonly onError?: (error: unknown) => void;
}

export interface LocalOidc {
  readonly issuer: string;
  /** What the API's authorizer needs: issuer, JWKS URL, audience, client id, algorithms. */
  readonly authorizerSettings: AuthorizerOidcSettings;
  /** The console's client (id, redirect URI, post-logout URI), for its /config.json. */
  readonly consoleClient: ConsoleClientSettings;
  /** The people (in-process); the CLI reaches the same operations over the admin endpoint. */
  readonly people: PeopleStore;
  /** For the state file: where and with which token the admin CLI manages people. */
  readonly adminState: LocalOidcState;
  /** Folder of the people and keys files, when persisted. */
  readonly dataDir?: string;
  /** Serves `/oidc` and everything under it (use isLocalOidcPath to route). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** `demo@knouds.local` with a fresh password (its subject kept when it was known). */
  seedDemoPerson(): Promise<{ subject: string; email: string; password: string }>;
}

/** Whether the runner should hand this request URL to the provider. */
export function isLocalOidcPath(url: string | undefined): boolean {
  if (!url) return false;
  return url === LOCAL_OIDC_PATH || url.startsWith(`${LOCAL_OIDC_PATH}/`) || url.startsWith(`${LOCAL_OIDC_PATH}?`);
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login)?$/;
const MAX_FORM_BYTES = 8192;

/**
 * oidc-provider warns once, when imported, that Node 20 is not a runtime it supports (it wants 22+). The
 * project supports Node 20 locally (Lambda runs 22+) and says so itself: that one line is dropped, so it
 * does not land in every `npm start` and between test results. Any other warning passes.
 */
async function importWithoutRuntimeWarning(): Promise<typeof ProviderModule> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!(typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime'))) warn(...args);
  };
  try {
    return await import('./provider.js');
  } finally {
    console.warn = warn;
  }
}

export async function startLocalOidc(options: LocalOidcOptions): Promise<LocalOidc> {
  const { origin } = options;
  const issuer = localIssuer(origin);
  const audience = options.audience ?? localApiIdentifier(origin);
  const consoleClient = localConsoleClient(origin);
  const dataDir = options.persistDir ? path.join(options.persistDir, 'oidc') : undefined;
  const people = new PeopleStore(dataDir);
  // Loaded on first start only: what imports the runner (most tests) does not load the library and koa.
  const { createProvider, SessionNotFound } = await importWithoutRuntimeWarning();
  const provider = createProvider({
    issuer,
    audience,
    consoleClient,
    jwks: loadOrCreateSigningKeys(dataDir),
    people,
    // Sessions live in memory only, so the cookies' keys need not outlive the process either.
    cookieKeys: [randomBytes(32).toString('base64url')],
  });
  const adminToken = randomBytes(32).toString('base64url');
  const admin = createAdminHandler(people, adminToken);
  const callback = provider.callback();
  const onError = options.onError ?? ((error: unknown) => console.error('local OIDC provider:', error));
  const formTargets = [...new Set(consoleClient.redirectUris.map((uri) => new URL(uri).origin))];

  const interaction = async (req: IncomingMessage, res: ServerResponse, uid: string, login: boolean): Promise<void> => {
    const expired = () =>
      sendPage(
        res,
        400,
        messagePage('This sign-in has expired', 'This sign-in page is no longer valid (it expired, or another sign-in started since). Go back to the console and sign in again.'),
        formTargets,
      );
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (error) {
      if (error instanceof SessionNotFound) return expired();
      throw error;
    }
    if (details.uid !== uid || details.prompt.name !== 'login') return expired();
    const action = `${LOCAL_OIDC_PATH}/interaction/${uid}/login`;
    if (!login) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD');
      const hint = details.params['login_hint'];
      return sendPage(res, 200, loginPage({ action, ...(typeof hint === 'string' ? { email: hint } : {}) }), formTargets);
    }
    if (req.method !== 'POST') return methodNotAllowed(res, 'POST');
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
      return sendPage(res, 415, messagePage('Sign-in cannot continue', 'The sign-in form was not sent as a form.'), formTargets);
    }
    const body = await readBody(req, MAX_FORM_BYTES);
    if (body === undefined) return sendPage(res, 413, messagePage('Sign-in cannot continue', 'The sign-in form was too large.'), formTargets);
    const form = new URLSearchParams(body);
    const email = form.get('email') ?? '';
    const person = await people.authenticate(email, form.get('password') ?? '');
    if (!person) return sendPage(res, 200, loginPage({ action, email, failed: true }), formTargets);
    await provider.interactionFinished(req, res, { login: { accountId: person.subject, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', origin);
    const inner = url.pathname.slice(LOCAL_OIDC_PATH.length) || '/';
    const fail = (error: unknown) => {
      onError(error);
      if (!res.headersSent) sendPage(res, 500, messagePage('Something went wrong', 'The local sign-in failed unexpectedly; the npm start output says why.'), formTargets);
      else res.end();
    };
    if (inner === ADMIN_PATH || inner.startsWith('/admin/')) {
      admin(req, res, new URL(`${inner}${url.search}`, origin)).catch(fail);
      return;
    }
    const match = INTERACTION.exec(inner);
    if (match) {
      interaction(req, res, match[1]!, match[2] !== undefined).catch(fail);
      return;
    }
    // Mounted as the library's documentation shows: the full URL kept in originalUrl, the prefix removed.
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
    req.url = (req.url ?? '/').slice(LOCAL_OIDC_PATH.length) || '/';
    if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    void Promise.resolve(callback(req, res)).catch(fail);
  };

  return {
    issuer,
    authorizerSettings: localAuthorizerSettings(origin, audience),
    consoleClient,
    people,
    adminState: { issuer, adminUrl: `${issuer}${ADMIN_PATH}`, adminToken },
    ...(dataDir ? { dataDir } : {}),
    handler,
    seedDemoPerson: () => people.seedPerson(DEMO_PERSON_EMAIL),
  };
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.writeHead(405, { Allow: allow, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end('Method not allowed\n');
}
