/**
 * Where the local OpenID Connect provider of `npm start` lives, and what its relying parties need to know:
 * plain functions of the runner's origin (`http://localhost:<port>`), with no import of the provider
 * itself, so the runner, the console's config and the authorizer's local settings can use them cheaply.
 */

/** The provider is mounted under this path of the runner's server; the issuer is `<origin>/oidc`. */
export const LOCAL_OIDC_PATH = '/oidc';
/** The console's public client (authorization code + PKCE S256, no secret). */
export const CONSOLE_CLIENT_ID = 'knouds-console';
/** The person `npm start` seeds, with a fresh password at each start (§5). */
export const DEMO_PERSON_EMAIL = 'demo@knouds.local';
/**
 * The one signing algorithm, for ID tokens and access tokens alike. RS256 because Cognito (the deployed
 * default) and the common hosted providers sign with it too: the authorizer can pin one list for all.
 */
export const LOCAL_OIDC_ALGORITHMS = ['RS256'] as const;
/** Access tokens for the API live one hour. */
export const ACCESS_TOKEN_TTL_SECONDS = 3600;

export const localIssuer = (origin: string): string => `${trimOrigin(origin)}${LOCAL_OIDC_PATH}`;

/** The API's identifier: the resource the console asks tokens for, and their `aud`. */
export const localApiIdentifier = (origin: string): string => `${trimOrigin(origin)}/v1`;

/** What the API's authorizer needs to verify the local provider's access tokens (RFC 9068 JWTs). */
export interface AuthorizerOidcSettings {
  readonly issuer: string;
  readonly jwksUri: string;
  /** The access token's `aud` (the API's identifier). */
  readonly audience: string;
  /** The console's client; the token's `client_id` claim. */
  readonly clientId: string;
  /** Pin these; refuse any other (RFC 8725). */
  readonly algorithms: readonly string[];
}

export function localAuthorizerSettings(origin: string, audience = localApiIdentifier(origin)): AuthorizerOidcSettings {
  const issuer = localIssuer(origin);
  return { issuer, jwksUri: `${issuer}/jwks`, audience, clientId: CONSOLE_CLIENT_ID, algorithms: [...LOCAL_OIDC_ALGORITHMS] };
}

/** The console's client registration: where the provider sends the browser back. */
export interface ConsoleClientSettings {
  readonly clientId: string;
  /** `<origin>/auth/callback`: the console's `redirect_uri` in /config.json. */
  readonly redirectUri: string;
  /** Also accepted: the same callback on 127.0.0.1 (a browser opened at the loopback address). */
  readonly redirectUris: readonly string[];
  /** `<origin>/`, where the provider's end_session sends the browser after signing out. */
  readonly postLogoutRedirectUri: string;
  readonly postLogoutRedirectUris: readonly string[];
}

export function localConsoleClient(origin: string): ConsoleClientSettings {
  const base = trimOrigin(origin);
  const loopback = loopbackTwin(base);
  const bases = loopback ? [base, loopback] : [base];
  return {
    clientId: CONSOLE_CLIENT_ID,
    redirectUri: `${base}/auth/callback`,
    redirectUris: bases.map((b) => `${b}/auth/callback`),
    postLogoutRedirectUri: `${base}/`,
    postLogoutRedirectUris: bases.map((b) => `${b}/`),
  };
}

function trimOrigin(origin: string): string {
  const url = new URL(origin);
  if (url.pathname !== '/' || url.search || url.hash) throw new Error(`origin must be scheme://host[:port] only, got '${origin}'`);
  return url.origin;
}

/** `http://localhost:<port>` ↔ `http://127.0.0.1:<port>` (the same server, reached two ways). */
function loopbackTwin(origin: string): string | undefined {
  const url = new URL(origin);
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  else if (url.hostname === '127.0.0.1') url.hostname = 'localhost';
  else return undefined;
  return url.origin;
}
