/**
 * Verifies a person's access token (API.md §1) with `jose`: the signature against the provider's
 * published keys (JWKS, fetched once per container and again, at most every 30 s, when a token names a
 * key it does not hold; a failed discovery or key fetch is not tried again for 5 s, its error answered
 * meanwhile: a provider's outage is not met with one fetch per bearer request, made-up tokens included), `iss`, the audience or client, `exp` and `nbf` (30 s of clock tolerance), and
 * asymmetric algorithms only (`alg: none` and HMAC are refused whatever key they name). One code path
 * for every provider; only the configuration differs:
 * - `cognito-access`: an Amazon Cognito access token: `token_use` is `access` and `client_id` is the
 *   console's client (Cognito's access tokens carry no `aud`);
 * - `rfc9068`: an RFC 9068 JWT access token (`typ: at+jwt`) whose `aud` holds the API's identifier.
 * ID tokens fail both (Cognito: `token_use: id`; elsewhere: `typ` is not `at+jwt` and `aud` is the client).
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload } from 'jose';
import { discoveryUrl, type IdentityProviderConfig } from './identity-provider.js';

/** Asymmetric JWS algorithms only. */
export const ACCEPTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const CLOCK_TOLERANCE_SECONDS = 30;
/** Each key or discovery fetch gives up after this long (the authorizer has 10 s in all). */
const FETCH_TIMEOUT_MS = 3000;
/** How long a failed discovery or key fetch is answered with its error before one is tried again. */
const FAILED_FETCH_HOLD_MS = 5000;

/** What jose throws for the token itself (anything else, such as the keys being unreachable, is no refusal). */
const TOKEN_FAULTS = [
  errors.JWSInvalid,
  errors.JWTInvalid,
  errors.JWTExpired,
  errors.JWTClaimValidationFailed,
  errors.JWSSignatureVerificationFailed,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
];

export class InvalidSessionToken extends Error {
  override readonly name = 'InvalidSessionToken';
}

export interface VerifiedSession {
  readonly subject: string;
  readonly claims: JWTPayload;
}

export interface SessionVerifier {
  verify(token: string): Promise<VerifiedSession>;
}

async function discoverJwksUri(issuer: string): Promise<URL> {
  const response = await fetch(discoveryUrl(issuer), { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`the issuer's discovery document answered ${response.status}`);
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (document.issuer !== issuer) throw new Error('the discovery document names another issuer');
  if (typeof document.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
  return new URL(document.jwks_uri);
}

const isTokenFault = (error: unknown) => TOKEN_FAULTS.some((fault) => error instanceof fault);

export function createSessionVerifier(
  config: IdentityProviderConfig,
  {
    cooldownMs = 30_000,
    failureHoldMs = FAILED_FETCH_HOLD_MS,
  }: {
    /** How long after a fetch of the keys no other is made (an unknown `kid` waits that long). @default 30 s */
    cooldownMs?: number;
    /** How long a failed discovery or key fetch is answered with its error before another is tried. @default 5 s */
    failureHoldMs?: number;
  } = {},
): SessionVerifier {
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  let keysFailedAt: number | undefined;
  const keySet = () => {
    // A failed discovery is answered with its error for a while, then tried again.
    if (keysFailedAt !== undefined && Date.now() - keysFailedAt >= failureHoldMs) keys = keysFailedAt = undefined;
    keys ??= (async () => {
      const uri = config.jwksUri ? new URL(config.jwksUri) : await discoverJwksUri(config.issuer);
      return createRemoteJWKSet(uri, { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: cooldownMs, cacheMaxAge: 10 * 60_000 });
    })();
    keys.catch(() => (keysFailedAt ??= Date.now()));
    return keys;
  };
  // jose fetches the keys again at every call while its fetch fails (none held, or a `kid` it does not
  // hold once its cooldown has passed). After a failure, for `failureHoldMs`: the keys already held
  // verify as usual, and anything that would fetch answers that failure's error instead.
  let fetchFailure: { readonly at: number; readonly error: unknown } | undefined;
  const keyFor = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const remote = await keySet();
    if (fetchFailure && Date.now() - fetchFailure.at < failureHoldMs) {
      const held = remote.jwks();
      if (!held || !remote.fresh) throw fetchFailure.error;
      try {
        return await createLocalJWKSet(held)(header, token);
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey) throw fetchFailure.error;
        throw error;
      }
    }
    try {
      return await remote(header, token);
    } catch (error) {
      if (!isTokenFault(error)) fetchFailure = { at: Date.now(), error };
      throw error;
    }
  };
  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        const result = await jwtVerify(token, keyFor, {
          issuer: config.issuer,
          algorithms: ACCEPTED_ALGORITHMS,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['sub', 'exp'],
          ...(config.tokenUse === 'rfc9068' ? { audience: config.audience, typ: 'at+jwt' } : {}),
        });
        payload = result.payload;
      } catch (error) {
        // Anything about the token itself is a refusal (401); the provider's keys being unreachable is not
        // the caller's fault and propagates (500), so a provider outage is never read as "signed out".
        if (isTokenFault(error)) throw new InvalidSessionToken((error as errors.JOSEError).code, { cause: error });
        throw error;
      }
      if (config.tokenUse === 'cognito-access' && (payload['token_use'] !== 'access' || payload['client_id'] !== config.clientId)) {
        throw new InvalidSessionToken('not an access token of the console’s client');
      }
      // RFC 9068 §2.2: `client_id` names the client the token was issued to; it must be the console's, so
      // another application of the same provider given the API's audience cannot act for the person.
      // (`azp`, the OpenID Connect name, for providers that put the client there instead.)
      if (config.tokenUse === 'rfc9068' && (payload['client_id'] ?? payload['azp']) !== config.clientId) {
        throw new InvalidSessionToken('not an access token issued to the console’s client');
      }
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new InvalidSessionToken('no subject');
      // A token with `cnf` is bound to a key its client holds (DPoP, RFC 9449; mutual TLS, RFC 8705) and is
      // only good with proof of that key, which this API does not check: taken as a bearer token, a stolen
      // copy would work without the key. Refused, whatever the profile (RFC 9449 §7.2).
      if (payload['cnf'] !== undefined) throw new InvalidSessionToken('a sender-constrained (cnf) token, not a bearer token');
      return { subject: payload.sub, claims: payload };
    },
  };
}
