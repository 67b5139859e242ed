/**
 * A token issuer the tests hold the keys of: an ES256 key pair whose public half is served as a JWKS on
 * this machine, and a `sign` that makes any token the tests need, valid or not (another key, another
 * issuer or audience, expired, `alg: none`, HMAC keyed with the public key, an ID token). The local
 * stack's authorizer is pointed at it with the runner's `identity` option; the sign-in flow itself is
 * tested against the local OpenID Connect provider.
 */
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { IdentityProviderConfig } from '../../lambdas/shared/identity-provider.js';

export const TEST_ISSUER = 'https://issuer.knouds.test';
export const TEST_AUDIENCE = 'https://api.knouds.test/v1';
export const TEST_CLIENT = 'knouds-console-test';

export interface SignOptions {
  /** Header `typ`. @default 'at+jwt' */
  readonly typ?: string;
  readonly alg?: string;
  /** Sign with this key instead of the published one. */
  readonly key?: CryptoKey | Uint8Array;
  readonly kid?: string;
}

export interface TestIssuer {
  readonly config: IdentityProviderConfig;
  readonly publicJwk: JWK;
  /** A token for `subject`: an RFC 9068 access token of this issuer for the API, valid for an hour, unless `claims` say otherwise. */
  sign(subject: string, claims?: JWTPayload, options?: SignOptions): Promise<string>;
  /** Another key pair of the same algorithm, published nowhere. */
  otherKey(): Promise<CryptoKey>;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'test-key-1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer((req, res) => {
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  return {
    config: { issuer: TEST_ISSUER, tokenUse: 'rfc9068', clientId: TEST_CLIENT, audience: TEST_AUDIENCE, jwksUri },
    publicJwk,
    async sign(subject, claims = {}, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: TEST_CLIENT, scope: 'openid email', ...claims })
        .setProtectedHeader({ alg: options.alg ?? 'ES256', typ: options.typ ?? 'at+jwt', kid: options.kid ?? publicJwk.kid })
        .setSubject(subject)
        .setIssuer(typeof claims.iss === 'string' ? claims.iss : TEST_ISSUER)
        .setAudience(claims.aud ?? TEST_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : now + 3600)
        .setJti(createHash('sha256').update(`${subject}${Math.random()}`).digest('hex').slice(0, 16))
        .sign(options.key ?? privateKey);
    },
    otherKey: async () => (await generateKeyPair('ES256')).privateKey,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `alg: none`: a header and a payload, no signature. */
export function unsignedToken(claims: JWTPayload): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'at+jwt' })}.${part(claims)}.`;
}
