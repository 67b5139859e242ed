/**
 * Where the authorizer learns which identity provider's access tokens to accept (API.md §1, §6): set by
 * the stack from its Cognito user pool or the `identityProvider` prop, and by the local runner from its
 * own OpenID Connect provider. No issuer: sessions are off and only API keys are accepted.
 */
import type { SessionTokenConfig, TokenProfile } from './session-token.js';

export const IDENTITY_ENV = {
  issuer: 'IDENTITY_ISSUER',
  profile: 'IDENTITY_TOKEN_PROFILE',
  clientId: 'IDENTITY_CLIENT_ID',
  audience: 'IDENTITY_AUDIENCE',
  jwksUri: 'IDENTITY_JWKS_URI',
} as const;

const PROFILES: readonly TokenProfile[] = ['cognito-access', 'rfc9068'];

export function identityFromEnv(env: Record<string, string | undefined> = process.env): SessionTokenConfig | undefined {
  const issuer = env[IDENTITY_ENV.issuer];
  if (!issuer) return undefined;
  const profile = env[IDENTITY_ENV.profile] as TokenProfile;
  if (!PROFILES.includes(profile)) throw new Error(`${IDENTITY_ENV.profile} must be one of ${PROFILES.join(', ')}`);
  const optional = (name: string) => (env[name] ? env[name] : undefined);
  const clientId = optional(IDENTITY_ENV.clientId);
  const audience = optional(IDENTITY_ENV.audience);
  const jwksUri = optional(IDENTITY_ENV.jwksUri);
  return { issuer, profile, ...(clientId ? { clientId } : {}), ...(audience ? { audience } : {}), ...(jwksUri ? { jwksUri } : {}) };
}

/** The variables that make `identityFromEnv` return `config` (empty ones clear what a template set). */
export function identityToEnv(config: SessionTokenConfig): Record<string, string> {
  return {
    [IDENTITY_ENV.issuer]: config.issuer,
    [IDENTITY_ENV.profile]: config.profile,
    [IDENTITY_ENV.clientId]: config.clientId ?? '',
    [IDENTITY_ENV.audience]: config.audience ?? '',
    [IDENTITY_ENV.jwksUri]: config.jwksUri ?? '',
  };
}
