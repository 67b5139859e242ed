/**
 * What the authorizer needs to verify a person's access token (API.md §1, §6): which provider issued it,
 * where its signing keys are, and which access-token profile to expect. The stack writes it into the
 * authorizer's environment (lib/identity.ts); the authorizer reads it back with
 * `identityProviderFromEnv()`. Configuration only: verifying a token is the authorizer's business.
 */

/**
 * The access-token profile the authorizer expects:
 * - `cognito-access`: an Amazon Cognito user pool's access token: `token_use` is `access`, `client_id` is
 *   the console's client, and there is no `aud` claim.
 * - `rfc9068`: an RFC 9068 JWT access token from the deployer's own provider (`typ` `at+jwt`): `aud` is
 *   the API's identifier, `client_id` the client it was issued to.
 */
export type TokenUse = 'cognito-access' | 'rfc9068';

interface CommonIdentityProviderConfig {
  /**
   * The `iss` the tokens carry, compared as an exact string (an issuer that ends with `/`, as Auth0's
   * does, keeps its slash).
   */
  readonly issuer: string;
  /** The console's OAuth client id. */
  readonly clientId: string;
}

/** The stack's own Cognito user pool. */
export interface CognitoAccessTokenConfig extends CommonIdentityProviderConfig {
  readonly tokenUse: 'cognito-access';
  /** `<issuer>/.well-known/jwks.json`. */
  readonly jwksUri: string;
}

/** The deployer's own OpenID Connect provider (`identityProvider` prop). */
export interface Rfc9068AccessTokenConfig extends CommonIdentityProviderConfig {
  readonly tokenUse: 'rfc9068';
  /** The `aud` an access token must carry (the prop's `audience`, by default its `clientId`). */
  readonly audience: string;
  /**
   * The provider's JSON Web Key Set. When the deployer gave none: undefined, and the keys are found through
   * discovery, the `jwks_uri` of `discoveryUrl(issuer)`.
   */
  readonly jwksUri?: string;
}

export type IdentityProviderConfig = CognitoAccessTokenConfig | Rfc9068AccessTokenConfig;

/** The authorizer's environment variables that carry an `IdentityProviderConfig`. */
export const IDENTITY_PROVIDER_ENV = {
  issuer: 'KNOUDS_IDP_ISSUER',
  clientId: 'KNOUDS_IDP_CLIENT_ID',
  tokenUse: 'KNOUDS_IDP_TOKEN_USE',
  audience: 'KNOUDS_IDP_AUDIENCE',
  jwksUri: 'KNOUDS_IDP_JWKS_URI',
} as const satisfies Record<string, string>;

const TOKEN_USES: readonly TokenUse[] = ['cognito-access', 'rfc9068'];

/** The variables that carry `config` (values may be CloudFormation tokens when the stack writes them). */
export function identityProviderEnvironment(config: IdentityProviderConfig): Record<string, string> {
  const env: Record<string, string> = {
    [IDENTITY_PROVIDER_ENV.issuer]: config.issuer,
    [IDENTITY_PROVIDER_ENV.clientId]: config.clientId,
    [IDENTITY_PROVIDER_ENV.tokenUse]: config.tokenUse,
  };
  if (config.tokenUse === 'rfc9068') env[IDENTITY_PROVIDER_ENV.audience] = config.audience;
  if (config.jwksUri !== undefined) env[IDENTITY_PROVIDER_ENV.jwksUri] = config.jwksUri;
  return env;
}

/**
 * The configuration in `env` (by default the process's), or an error naming the missing or invalid
 * variable: call it at cold start, so a misconfigured function fails before its first request.
 */
export function identityProviderFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): IdentityProviderConfig {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const need = (name: string): string => {
    const value = read(name);
    if (value === undefined) throw new Error(`environment variable ${name} is not set`);
    return value;
  };
  const issuer = need(IDENTITY_PROVIDER_ENV.issuer);
  const clientId = need(IDENTITY_PROVIDER_ENV.clientId);
  const tokenUse = need(IDENTITY_PROVIDER_ENV.tokenUse);
  if (!(TOKEN_USES as readonly string[]).includes(tokenUse)) {
    throw new Error(`environment variable ${IDENTITY_PROVIDER_ENV.tokenUse} must be one of ${TOKEN_USES.join(', ')}, got '${tokenUse}'`);
  }
  const jwksUri = read(IDENTITY_PROVIDER_ENV.jwksUri);
  if (tokenUse === 'cognito-access') {
    return { tokenUse, issuer, clientId, jwksUri: jwksUri ?? cognitoJwksUri(issuer) };
  }
  const audience = need(IDENTITY_PROVIDER_ENV.audience);
  return { tokenUse: 'rfc9068', issuer, clientId, audience, ...(jwksUri === undefined ? {} : { jwksUri }) };
}

/**
 * Where the provider publishes its metadata (OpenID Connect Discovery 1.0 §4): the issuer, less a trailing
 * `/`, followed by `/.well-known/openid-configuration`.
 */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/** The JWKS of a Cognito user pool's issuer. */
export function cognitoJwksUri(issuer: string): string {
  return `${issuer}/.well-known/jwks.json`;
}
