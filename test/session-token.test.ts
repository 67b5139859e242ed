/**
 * The session-token verifier on its own (the end-to-end refusals are in test/e2e/people.test.ts): the
 * Cognito profile's `token_use` and `client_id` checks, finding the keys through discovery, a key
 * rotated in at the provider, and an unreachable provider read as a failure (500), never as a refusal.
 */
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createSessionVerifier, InvalidSessionToken } from '../lambdas/shared/session-token.js';

let server: Server;
let base: string;
let jwks: object[] = [];
/** Fetches the server answered, by path; and whether its keys answer 503 (the provider down). */
const fetched = new Map<string, number>();
let keysDown = false;
const { privateKey, publicKey } = await generateKeyPair('ES256');

beforeAll(async () => {
  server = createServer((req, res) => {
    fetched.set(req.url ?? '', (fetched.get(req.url ?? '') ?? 0) + 1);
    if (req.url?.startsWith('/down/') || (keysDown && req.url === '/jwks')) return void res.writeHead(503).end();
    if (req.url === '/jwks') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: jwks }));
    if (req.url === '/.well-known/openid-configuration') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  jwks = [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }];
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const sign = (claims: Record<string, unknown>, kid = 'k1', key = privateKey, typ = 'JWT') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ }).setSubject('person-1').setIssuer(base).setExpirationTime('10m').sign(key);

describe('the Cognito profile', () => {
  const verifier = () => createSessionVerifier({ tokenUse: 'cognito-access', issuer: base, clientId: 'console', jwksUri: `${base}/jwks` });

  it('accepts the console client’s access token', async () => {
    await expect(verifier().verify(await sign({ token_use: 'access', client_id: 'console' }))).resolves.toMatchObject({ subject: 'person-1' });
  });

  it.each([
    ['an ID token', { token_use: 'id', aud: 'console' }],
    ['another client’s access token', { token_use: 'access', client_id: 'someone-else' }],
    ['a token without token_use', { client_id: 'console' }],
    ['a token bound to a client certificate (cnf, RFC 8705)', { token_use: 'access', client_id: 'console', cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }],
  ])('refuses %s', async (_name, claims) => {
    await expect(verifier().verify(await sign(claims))).rejects.toBeInstanceOf(InvalidSessionToken);
  });
});

describe('the RFC 9068 profile', () => {
  const verifier = () => createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api', jwksUri: `${base}/jwks` });
  it('takes the client from client_id, or azp when a provider puts it there', async () => {
    await expect(verifier().verify(await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt'))).resolves.toMatchObject({ subject: 'person-1' });
    await expect(verifier().verify(await sign({ aud: 'api', azp: 'console' }, 'k1', privateKey, 'at+jwt'))).resolves.toMatchObject({ subject: 'person-1' });
  });
  it.each([
    ['another client', { aud: 'api', client_id: 'other' }],
    ['no client at all', { aud: 'api' }],
    ['another audience', { aud: 'other-api', client_id: 'console' }],
    // Bound to the client's DPoP key (RFC 9449): without proof of that key it must not work as a bearer token.
    ['a DPoP-bound client (cnf.jkt)', { aud: 'api', client_id: 'console', cnf: { jkt: 'qZRf0mH2n7bZxXk3Tq8vL1cE5yA9sD4wU6pJ0rN2tKg' } }],
  ])('refuses a token for %s', async (_name, claims) => {
    await expect(verifier().verify(await sign(claims, 'k1', privateKey, 'at+jwt'))).rejects.toBeInstanceOf(InvalidSessionToken);
  });
});

describe('keys', () => {
  it('are found through the issuer’s discovery document when no JWKS address is given', async () => {
    const v = createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api' });
    await expect(v.verify(await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt'))).resolves.toMatchObject({ subject: 'person-1' });
  });

  it('a key the provider rotated in is fetched again when a token names it (once the cooldown since the last fetch has passed)', async () => {
    const v = createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api', jwksUri: `${base}/jwks` }, { cooldownMs: 50 });
    await v.verify(await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt'));
    const next = await generateKeyPair('ES256');
    jwks = [...jwks, { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES256' }];
    await new Promise((r) => setTimeout(r, 100));
    await expect(v.verify(await sign({ aud: 'api', client_id: 'console' }, 'k2', next.privateKey, 'at+jwt'))).resolves.toMatchObject({ subject: 'person-1' });
  });

  it('a provider failing: one fetch of its discovery or keys, then its error answered for a while (no fetch per request, made-up tokens included), then tried again', async () => {
    const made = await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt');
    for (const [config, path] of [
      [{ jwksUri: `${base}/down/jwks` }, '/down/jwks'],
      [{ issuer: `${base}/down` }, '/down/.well-known/openid-configuration'],
    ] as const) {
      const v = createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api', ...config }, { failureHoldMs: 300 });
      fetched.clear();
      for (let i = 0; i < 20; i++) {
        const error = await v.verify(made).catch((e: unknown) => e);
        expect(error).not.toBeInstanceOf(InvalidSessionToken);
      }
      // Before: 20 fetches, one per request.
      expect(fetched.get(path)).toBe(1);
      await new Promise((r) => setTimeout(r, 350));
      await v.verify(made).catch(() => undefined);
      expect(fetched.get(path)).toBe(2);
    }
  });

  it('while a key fetch has just failed, the keys already held still verify; a kid they lack gets the failure, without a fetch', async () => {
    const v = createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api', jwksUri: `${base}/jwks` }, { cooldownMs: 0, failureHoldMs: 60_000 });
    const good = await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt');
    const unknown = await sign({ aud: 'api', client_id: 'console' }, 'k-unknown', privateKey, 'at+jwt');
    await expect(v.verify(good)).resolves.toMatchObject({ subject: 'person-1' });
    keysDown = true;
    try {
      fetched.clear();
      expect(await v.verify(unknown).catch((e: unknown) => e)).not.toBeInstanceOf(InvalidSessionToken);
      expect(fetched.get('/jwks')).toBe(1);
      await expect(v.verify(good)).resolves.toMatchObject({ subject: 'person-1' });
      expect(await v.verify(unknown).catch((e: unknown) => e)).not.toBeInstanceOf(InvalidSessionToken);
      expect(fetched.get('/jwks')).toBe(1);
    } finally {
      keysDown = false;
    }
  });

  it('an unreachable provider is a failure, not a refusal: a signed-in person is never told they are signed out', async () => {
    const v = createSessionVerifier({ tokenUse: 'rfc9068', issuer: base, clientId: 'console', audience: 'api', jwksUri: 'http://127.0.0.1:9/jwks' });
    const error = await v.verify(await sign({ aud: 'api', client_id: 'console' }, 'k1', privateKey, 'at+jwt')).catch((e: unknown) => e);
    // fetch's TypeError comes from another realm under jest: checked by its shape.
    expect(error).toHaveProperty('message');
    expect(error).not.toBeInstanceOf(InvalidSessionToken);
  });
});

