/**
 * The local OpenID Connect provider of `npm start` (local-runner/oidc), on a server of its own: discovery,
 * the sign-in of a person through the login page (authorization code + PKCE S256) and the tokens it
 * yields, verified with jose as the API's authorizer will; what it refuses; sign-out; people added,
 * listed and removed (in process and through the admin endpoint the CLI uses); keys and people kept
 * across a restart with the same folder.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import {
  CONSOLE_CLIENT_ID,
  DEMO_PERSON_EMAIL,
  LocalOidcAdminClient,
  LocalOidcAdminError,
  isLocalOidcPath,
  localAuthorizerSettings,
  startLocalOidc,
  type LocalOidc,
} from '../local-runner/oidc/index.js';
import { PeopleStore, hashPassword, normalizeEmail, verifyPassword } from '../local-runner/oidc/people.js';
import {
  CookieJar,
  authorizationUrl,
  browse,
  discover,
  exchangeCode,
  follow,
  formAction,
  newPkce,
  signIn,
  signInToCallback,
} from './support/oidc.js';

interface Running {
  readonly origin: string;
  readonly oidc: LocalOidc;
  close(): Promise<void>;
}

/** The provider alone on a loopback server, mounted at /oidc as the runner mounts it. */
async function startProvider(options: { persistDir?: string; port?: number } = {}): Promise<Running> {
  let oidc: LocalOidc | undefined = undefined;
  const server: Server = createServer((req, res) => {
    if (oidc && isLocalOidcPath(req.url)) oidc.handler(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  const origin = `http://localhost:${port}`;
  oidc = await startLocalOidc({ origin, ...(options.persistDir ? { persistDir: options.persistDir } : {}) });
  return {
    origin,
    oidc,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let p: Running;
let demo: { subject: string; email: string; password: string };
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-oidc-'));
  p = await startProvider();
  demo = await p.oidc.seedDemoPerson();
});
afterAll(async () => {
  await p.close();
  rmSync(dir, { recursive: true, force: true });
});

const redirectUri = () => p.oidc.consoleClient.redirectUri;
const console_ = () => ({ clientId: CONSOLE_CLIENT_ID, redirectUri: redirectUri() });

/** The access token verified as the API's authorizer will: JWKS, RS256 only, issuer, audience, typ. */
async function verifyAccessToken(token: string, running = p): Promise<JWTPayload> {
  const settings = localAuthorizerSettings(running.origin);
  const jwks = createRemoteJWKSet(new URL(settings.jwksUri));
  const { payload } = await jwtVerify(token, jwks, {
    issuer: settings.issuer,
    audience: settings.audience,
    typ: 'at+jwt',
    algorithms: [...settings.algorithms],
  });
  return payload;
}

describe('discovery', () => {
  it('publishes the issuer <origin>/oidc, code + PKCE S256 only, the scopes, RS256, a public client auth, and public keys only', async () => {
    const d = await discover(p.oidc.issuer);
    expect(d.issuer).toBe(`${p.origin}/oidc`);
    expect(d).toMatchObject({
      authorization_endpoint: `${p.origin}/oidc/auth`,
      token_endpoint: `${p.origin}/oidc/token`,
      jwks_uri: `${p.origin}/oidc/jwks`,
      end_session_endpoint: `${p.origin}/oidc/session/end`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      grant_types_supported: ['authorization_code'],
      token_endpoint_auth_methods_supported: ['none'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
    expect(d['scopes_supported']).toEqual(expect.arrayContaining(['openid', 'email', 'profile']));
    expect(d['scopes_supported']).not.toContain('offline_access');
    // No DPoP: its tokens are bound to a key (cnf), and the API takes bearer tokens only.
    expect(d['dpop_signing_alg_values_supported']).toBeUndefined();
    expect(localAuthorizerSettings(p.origin)).toEqual({
      issuer: d.issuer,
      jwksUri: d.jwks_uri,
      audience: `${p.origin}/v1`,
      clientId: 'knouds-console',
      algorithms: ['RS256'],
    });

    const jwks = (await (await fetch(d.jwks_uri)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'RSA', use: 'sig', kid: expect.any(String) });
      for (const privatePart of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(privatePart);
    }
  });
});

describe('sign-in (authorization code + PKCE S256)', () => {
  it('signs the demo person in through the login page and issues an RFC 9068 access token for the API with the email', async () => {
    const state = 'st-123';
    const result = await signInToCallback(p.oidc.issuer, { email: demo.email, password: demo.password, ...console_(), state });
    const callback = result.callback!;
    expect(`${callback.origin}${callback.pathname}`).toBe(`${p.origin}/auth/callback`);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('iss')).toBe(p.oidc.issuer);
    const code = callback.searchParams.get('code')!;
    expect(code).toBeTruthy();

    const { status, body } = await exchangeCode(result.discovery, { code, verifier: result.pkce.verifier, ...console_() });
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'openid email profile' });
    expect(body).not.toHaveProperty('refresh_token');

    const accessToken = body['access_token'] as string;
    expect(decodeProtectedHeader(accessToken)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const claims = await verifyAccessToken(accessToken);
    expect(claims).toMatchObject({ sub: demo.subject, email: DEMO_PERSON_EMAIL, client_id: CONSOLE_CLIENT_ID, aud: `${p.origin}/v1` });
    expect(claims.exp! - claims.iat!).toBe(3600);

    const jwks = createRemoteJWKSet(new URL(result.discovery.jwks_uri));
    const id = await jwtVerify(body['id_token'] as string, jwks, { issuer: p.oidc.issuer, audience: CONSOLE_CLIENT_ID, algorithms: ['RS256'] });
    expect(id.payload).toMatchObject({ sub: demo.subject, email: DEMO_PERSON_EMAIL, email_verified: true });
    // An ID token is not an access token for the API.
    await expect(verifyAccessToken(body['id_token'] as string)).rejects.toThrow();

    // A code is used once.
    const again = await exchangeCode(result.discovery, { code, verifier: result.pkce.verifier, ...console_() });
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('needs the code verifier that matches the challenge', async () => {
    const result = await signInToCallback(p.oidc.issuer, { email: demo.email, password: demo.password, ...console_() });
    const code = result.callback!.searchParams.get('code')!;
    expect(await exchangeCode(result.discovery, { code, verifier: newPkce().verifier, ...console_() })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    const other = await signInToCallback(p.oidc.issuer, { email: demo.email, password: demo.password, ...console_() });
    const otherCode = other.callback!.searchParams.get('code')!;
    expect(await exchangeCode(other.discovery, { code: otherCode, ...console_() })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('shows a plain, labelled login page without script, and no consent screen once signed in', async () => {
    const jar = new CookieJar();
    const d = await discover(p.oidc.issuer);
    const start = authorizationUrl(d, { ...console_(), pkce: newPkce() });
    const landing = await follow(jar, await browse(jar, start), start, p.oidc.issuer);
    expect(landing.page?.status).toBe(200);
    const html = landing.pageText!;
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<h1>Sign in to Knouds<\/h1>/);
    expect(html).toMatch(/<label for="email">Email<\/label>\s*<input id="email" name="email" type="email"/);
    expect(html).toMatch(/<label for="password">Password<\/label>\s*<input id="password" name="password" type="password"/);
    expect(html).toMatch(/<button type="submit">Sign in<\/button>/);
    expect(html).not.toMatch(/<script/i);
    expect(landing.page!.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(landing.page!.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(landing.page!.headers.get('cache-control')).toBe('no-store');

    const action = formAction(html, p.oidc.issuer);
    const after = await follow(jar, await browse(jar, action, { form: { email: 'DEMO@knouds.local', password: demo.password } }), action, p.oidc.issuer);
    expect(after.redirectedTo?.searchParams.get('code')).toBeTruthy();

    // Signed in: the next authorization request goes straight back with a code (no form, no consent).
    const next = authorizationUrl(d, { ...console_(), pkce: newPkce() });
    const direct = await follow(jar, await browse(jar, next), next, p.oidc.issuer);
    expect(direct.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  it('accepts the console at 127.0.0.1 too', async () => {
    const loopback = redirectUri().replace('localhost', '127.0.0.1');
    const tokens = await signIn(p.oidc.issuer, { email: demo.email, password: demo.password, clientId: CONSOLE_CLIENT_ID, redirectUri: loopback });
    expect((await verifyAccessToken(tokens.access_token)).email).toBe(DEMO_PERSON_EMAIL);
  });

  it('answers a wrong password or an unknown email with the login page and a message in words, and no code', async () => {
    for (const [email, password] of [
      [demo.email, 'not-the-password'],
      ['nobody@knouds.local', demo.password],
      ['"><script>alert(1)</script>', 'x'],
    ] as const) {
      const result = await signInToCallback(p.oidc.issuer, { email, password, ...console_() });
      expect(result.callback).toBeUndefined();
      expect(result.loginPage).toMatch(/role="alert">The email or password is not correct\. Check both and try again\.</);
      expect(result.loginPage).not.toMatch(/<script/i);
      expect(result.loginPage).toContain(`value="${email.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')}"`);
    }
  });
});

describe('refused authorization requests', () => {
  const start = async (url: string) => {
    const jar = new CookieJar();
    return follow(jar, await browse(jar, url), url, p.oidc.issuer);
  };

  it('refuses a request without PKCE, or with the plain method, back at the client with invalid_request and no code', async () => {
    const d = await discover(p.oidc.issuer);
    for (const url of [
      authorizationUrl(d, { ...console_(), pkce: null }),
      authorizationUrl(d, { ...console_(), pkce: newPkce(), method: 'plain' }),
    ]) {
      const landing = await start(url);
      expect(landing.redirectedTo?.searchParams.get('error')).toBe('invalid_request');
      expect(landing.redirectedTo?.searchParams.has('code')).toBe(false);
    }
  });

  it('refuses an unknown client or an unregistered redirect URI with a page, sending nobody anywhere', async () => {
    const d = await discover(p.oidc.issuer);
    for (const url of [
      authorizationUrl(d, { clientId: 'someone-else', redirectUri: redirectUri(), pkce: newPkce() }),
      authorizationUrl(d, { clientId: CONSOLE_CLIENT_ID, redirectUri: 'https://attacker.example/auth/callback', pkce: newPkce() }),
      authorizationUrl(d, { clientId: CONSOLE_CLIENT_ID, redirectUri: `${p.origin}/elsewhere`, pkce: newPkce() }),
    ]) {
      const landing = await start(url);
      expect(landing.redirectedTo).toBeUndefined();
      expect(landing.page?.status).toBe(400);
      expect(landing.pageText).toMatch(/<h1>Sign-in cannot continue<\/h1>/);
      expect(landing.pageText).toMatch(/invalid_client|invalid_redirect_uri/);
    }
  });

  it('answers a sign-in page opened without its interaction (another browser, or expired) with a message, not a form', async () => {
    const jar = new CookieJar();
    const d = await discover(p.oidc.issuer);
    const start = authorizationUrl(d, { ...console_(), pkce: newPkce() });
    const landing = await follow(jar, await browse(jar, start), start, p.oidc.issuer);
    const action = formAction(landing.pageText!, p.oidc.issuer);
    for (const response of [
      await browse(new CookieJar(), action.replace(/\/login$/, '')),
      await browse(new CookieJar(), action, { form: { email: demo.email, password: demo.password } }),
    ]) {
      expect(response.status).toBe(400);
      const html = await response.text();
      expect(html).toMatch(/<h1>This sign-in has expired<\/h1>/);
      expect(html).not.toMatch(/<form/);
      expect(response.headers.get('location')).toBeNull();
    }
  });

  it('refuses a code exchange for another redirect URI or client', async () => {
    const result = await signInToCallback(p.oidc.issuer, { email: demo.email, password: demo.password, ...console_() });
    const code = result.callback!.searchParams.get('code')!;
    const other = await exchangeCode(result.discovery, { code, verifier: result.pkce.verifier, clientId: CONSOLE_CLIENT_ID, redirectUri: redirectUri().replace('localhost', '127.0.0.1') });
    expect(other).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const stranger = await exchangeCode(result.discovery, { code, verifier: result.pkce.verifier, clientId: 'someone-else', redirectUri: redirectUri() });
    expect(stranger).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });
});

describe('sign-out', () => {
  it('asks on a plain page, ends the session, and sends the browser to the console; the next sign-in needs the form', async () => {
    const result = await signInToCallback(p.oidc.issuer, { email: demo.email, password: demo.password, ...console_() });
    const { jar, discovery } = result;
    const endUrl = new URL(discovery.end_session_endpoint);
    endUrl.searchParams.set('client_id', CONSOLE_CLIENT_ID);
    endUrl.searchParams.set('post_logout_redirect_uri', `${p.origin}/`);
    const page = await browse(jar, endUrl.href);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<h1>Sign out of Knouds<\/h1>/);
    expect(html).toMatch(/<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out<\/button>/);
    expect(html).not.toMatch(/<script/i);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const confirm = formAction(html, endUrl.href);
    const done = await follow(jar, await browse(jar, confirm, { form: { xsrf, logout: 'yes' } }), confirm, p.oidc.issuer);
    expect(done.redirectedTo?.href).toBe(`${p.origin}/`);

    const again = authorizationUrl(discovery, { ...console_(), pkce: newPkce() });
    const landing = await follow(jar, await browse(jar, again), again, p.oidc.issuer);
    expect(landing.pageText).toMatch(/<h1>Sign in to Knouds<\/h1>/);
  });
});

describe('people', () => {
  it('adds a person with a fresh password once (emails compared without case), finds, lists and removes them', async () => {
    const store = new PeopleStore();
    const added = await store.addPerson('  Ada@Example.COM ');
    expect(added).toEqual({ subject: expect.stringMatching(/^[0-9a-f-]{36}$/), email: 'ada@example.com', password: expect.stringMatching(/^[A-Za-z0-9_-]{24}$/) });
    expect(await store.addPerson('ada@example.com')).toEqual({ subject: added.subject, email: 'ada@example.com', password: null });
    expect(await store.findPerson('ADA@example.com')).toEqual({ subject: added.subject, email: 'ada@example.com', created_at: expect.any(String) });
    expect(await store.authenticate('ada@EXAMPLE.com', added.password!)).toMatchObject({ subject: added.subject });
    expect(await store.authenticate('ada@example.com', `${added.password!}x`)).toBeUndefined();
    const [first, second] = await Promise.all([store.addPerson('bo@example.com'), store.addPerson('BO@example.com')]);
    expect(first.subject).toBe(second.subject);
    expect([first.password, second.password].filter((pw) => pw !== null)).toHaveLength(1);
    expect((await store.listPeople()).map((person) => person.email)).toEqual(['ada@example.com', 'bo@example.com']);
    expect(await store.removePerson('Ada@example.com')).toBe(true);
    expect(await store.removePerson('ada@example.com')).toBe(false);
    expect(await store.findPerson('ada@example.com')).toBeUndefined();
    expect(await store.authenticate('ada@example.com', added.password!)).toBeUndefined();
    for (const bad of ['', 'no-at-sign', 'two@@signs', 'a b@example.com', '<x>@example.com', `${'a'.repeat(250)}@example.com`]) {
      expect(() => normalizeEmail(bad)).toThrow(/not an email address/);
    }
  });

  it('hashes passwords with scrypt and a salt each, and compares them whole', async () => {
    const one = await hashPassword('correct horse');
    const two = await hashPassword('correct horse');
    expect(one).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(one).not.toBe(two);
    expect(await verifyPassword('correct horse', one)).toBe(true);
    expect(await verifyPassword('correct horsf', one)).toBe(false);
    expect(await verifyPassword('correct horse', one.replace(/^scrypt/, 'md5'))).toBe(false);
    expect(await verifyPassword('correct horse', 'scrypt$1$1$1$x$y')).toBe(false);
  });

  it('a removed person cannot sign in, not even with the session they had', async () => {
    const added = await p.oidc.people.addPerson('leaver@example.com');
    const jar = new CookieJar();
    const before = await signInToCallback(p.oidc.issuer, { email: added.email, password: added.password!, ...console_(), jar });
    expect(before.callback?.searchParams.get('code')).toBeTruthy();
    // A code issued before the removal is not exchanged after it.
    const pending = await signInToCallback(p.oidc.issuer, { email: added.email, password: added.password!, ...console_(), jar });
    const pendingCode = pending.callback!.searchParams.get('code')!;

    expect(await p.oidc.people.removePerson(added.email)).toBe(true);

    expect(await exchangeCode(pending.discovery, { code: pendingCode, verifier: pending.pkce.verifier, ...console_() })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    const withSession = await signInToCallback(p.oidc.issuer, { email: added.email, password: added.password!, ...console_(), jar });
    expect(withSession.callback).toBeUndefined();
    expect(withSession.loginPage).toMatch(/The email or password is not correct/);
    const fresh = await signInToCallback(p.oidc.issuer, { email: added.email, password: added.password!, ...console_() });
    expect(fresh.callback).toBeUndefined();
    expect(fresh.loginPage).toMatch(/The email or password is not correct/);
  });

  it('are managed by another process through the admin endpoint, with the token only', async () => {
    const client = new LocalOidcAdminClient(p.oidc.adminState);
    expect(p.oidc.adminState.adminUrl).toBe(`${p.origin}/oidc/admin/people`);
    const added = await client.addPerson('Cli@Example.com');
    expect(added).toEqual({ subject: expect.any(String), email: 'cli@example.com', password: expect.any(String) });
    expect(await client.addPerson('cli@example.com')).toEqual({ ...added, password: null });
    expect(await client.findPerson('CLI@example.com')).toEqual({ subject: added.subject, email: 'cli@example.com', created_at: expect.any(String) });
    expect((await client.listPeople()).map((person) => person.email)).toEqual(expect.arrayContaining(['cli@example.com', DEMO_PERSON_EMAIL]));
    const tokens = await signIn(p.oidc.issuer, { email: 'cli@example.com', password: added.password!, ...console_() });
    expect((await verifyAccessToken(tokens.access_token)).sub).toBe(added.subject);
    expect(await client.removePerson('cli@example.com')).toBe(true);
    expect(await client.removePerson('cli@example.com')).toBe(false);
    expect(await client.findPerson('cli@example.com')).toBeUndefined();
    await expect(client.addPerson('not an email')).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not an email address/) });

    const forged = new LocalOidcAdminClient({ ...p.oidc.adminState, adminToken: 'guessed' });
    await expect(forged.listPeople()).rejects.toEqual(expect.objectContaining({ status: 401 }));
    await expect(forged.listPeople()).rejects.toBeInstanceOf(LocalOidcAdminError);
    const noToken = await fetch(p.oidc.adminState.adminUrl);
    expect(noToken.status).toBe(401);
    const fromBrowser = await fetch(p.oidc.adminState.adminUrl, {
      headers: { authorization: `Bearer ${p.oidc.adminState.adminToken}`, origin: p.origin },
    });
    expect(fromBrowser.status).toBe(403);
  });
});

describe('a lost password', () => {
  it('is reset in the store: a fresh password for a known person (subject kept, the old one refused), none for an unknown email, kept in the file', async () => {
    const folder = mkdtempSync(path.join(dir, 'reset-'));
    const store = new PeopleStore(folder);
    const added = await store.addPerson('lost@example.com');
    // The answer of `user add` was lost: asked again, the provider has no password to give.
    expect((await store.addPerson('lost@example.com')).password).toBeNull();
    const reset = await store.resetPassword('LOST@example.com');
    expect(reset).toEqual({ subject: added.subject, email: 'lost@example.com', password: expect.stringMatching(/^[A-Za-z0-9_-]{24}$/) });
    expect(reset!.password).not.toBe(added.password);
    expect(await store.authenticate('lost@example.com', reset!.password)).toMatchObject({ subject: added.subject });
    expect(await store.authenticate('lost@example.com', added.password!)).toBeUndefined();
    expect(await store.resetPassword('nobody@example.com')).toBeUndefined();
    expect(await store.findPerson('nobody@example.com')).toBeUndefined();
    await expect(store.resetPassword('not an email')).rejects.toThrow(/not an email address/);
    // Removed while its hash is made: a reset brings nobody back.
    const racing = store.resetPassword('lost@example.com');
    await store.removePerson('lost@example.com');
    expect(await racing).toBeUndefined();
    expect(await store.findPerson('lost@example.com')).toBeUndefined();
    // With a folder (--persist), the new password is what a restart knows; the file holds its hash only.
    const kept = await store.addPerson('kept-reset@example.com');
    const again = (await store.resetPassword('kept-reset@example.com'))!;
    const restarted = new PeopleStore(folder);
    expect(await restarted.authenticate('kept-reset@example.com', again.password)).toMatchObject({ subject: kept.subject });
    expect(await restarted.authenticate('kept-reset@example.com', kept.password!)).toBeUndefined();
    expect(readFileSync(path.join(folder, 'people.json'), 'utf8')).not.toContain(again.password);
  });

  it('is reset by another process through the admin endpoint, with the token only; sessions at the provider are kept', async () => {
    const client = new LocalOidcAdminClient(p.oidc.adminState);
    const added = await client.addPerson('forgot@example.com');
    const jar = new CookieJar();
    const before = await signInToCallback(p.oidc.issuer, { email: added.email, password: added.password!, ...console_(), jar });
    expect(before.callback?.searchParams.get('code')).toBeTruthy();

    const reset = await client.resetPassword('Forgot@Example.com');
    expect(reset).toEqual({ subject: added.subject, email: 'forgot@example.com', password: expect.stringMatching(/^[A-Za-z0-9_-]{24}$/) });
    const tokens = await signIn(p.oidc.issuer, { email: 'forgot@example.com', password: reset!.password, ...console_() });
    expect((await verifyAccessToken(tokens.access_token)).sub).toBe(added.subject);
    const old = await signInToCallback(p.oidc.issuer, { email: 'forgot@example.com', password: added.password!, ...console_() });
    expect(old.loginPage).toMatch(/The email or password is not correct/);
    // The provider's session from before the reset still signs them in without the form (it runs out, ≤ 8 h).
    const withSession = await signInToCallback(p.oidc.issuer, { email: 'forgot@example.com', password: 'not asked', ...console_(), jar });
    expect(withSession.callback?.searchParams.get('code')).toBeTruthy();

    expect(await client.resetPassword('nobody@example.com')).toBeUndefined();
    expect(await client.findPerson('nobody@example.com')).toBeUndefined();
    await expect(client.resetPassword('not an email')).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not an email address/) });

    const url = `${p.oidc.adminState.adminUrl}/password`;
    const post = (headers: Record<string, string>, body = JSON.stringify({ email: 'forgot@example.com' })) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const forged = new LocalOidcAdminClient({ ...p.oidc.adminState, adminToken: 'guessed' });
    await expect(forged.resetPassword('forgot@example.com')).rejects.toEqual(expect.objectContaining({ status: 401 }));
    expect((await post({})).status).toBe(401);
    const fromBrowser = await post({ authorization: `Bearer ${p.oidc.adminState.adminToken}`, origin: p.origin });
    expect(fromBrowser.status).toBe(403);
    const auth = { authorization: `Bearer ${p.oidc.adminState.adminToken}` };
    expect((await post(auth, 'not json')).status).toBe(400);
    const get = await fetch(url, { headers: auth });
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    // None of those refusals changed the password.
    expect(await p.oidc.people.authenticate('forgot@example.com', reset!.password)).toMatchObject({ subject: added.subject });
  });

  it('asked of a provider older than resets (its 404 for an unknown path), says to restart npm start, not that nobody has the email', async () => {
    const older = createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' })));
    await new Promise<void>((resolve) => older.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = older.address() as { port: number };
      const client = new LocalOidcAdminClient({ issuer: `http://127.0.0.1:${port}/oidc`, adminUrl: `http://127.0.0.1:${port}/oidc/admin/people`, adminToken: 't' });
      await expect(client.resetPassword('a@example.com')).rejects.toMatchObject({ status: 501, message: expect.stringMatching(/older than password resets: restart it/) });
    } finally {
      older.closeAllConnections();
      await new Promise((resolve) => older.close(resolve));
    }
  });
});

describe('with a folder (--persist)', () => {
  it('keeps people and the signing key in private files across a restart; tokens issued before verify after', async () => {
    const persistDir = path.join(dir, 'persist');
    const first = await startProvider({ persistDir });
    const { port } = new URL(first.origin);
    let token: string;
    let person: { subject: string; password: string | null };
    let demoBefore: { subject: string; password: string };
    try {
      demoBefore = await first.oidc.seedDemoPerson();
      person = await first.oidc.people.addPerson('kept@example.com');
      token = (await signIn(first.oidc.issuer, { email: 'kept@example.com', password: person.password!, clientId: CONSOLE_CLIENT_ID, redirectUri: first.oidc.consoleClient.redirectUri })).access_token;
    } finally {
      await first.close();
    }
    // Let fetch's connection pool see that the old server closed its kept-alive sockets (same port next).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const oidcDir = path.join(persistDir, 'oidc');
    expect(statSync(oidcDir).mode & 0o777).toBe(0o700);
    for (const file of ['people.json', 'signing-keys.json']) expect(statSync(path.join(oidcDir, file)).mode & 0o777).toBe(0o600);
    const peopleFile = readFileSync(path.join(oidcDir, 'people.json'), 'utf8');
    expect(peopleFile).toContain('kept@example.com');
    expect(peopleFile).not.toContain(person.password!);

    const second = await startProvider({ persistDir, port: Number(port) });
    try {
      expect(second.origin).toBe(first.origin);
      expect((await verifyAccessToken(token, second)).sub).toBe(person.subject);
      expect(await second.oidc.people.findPerson('kept@example.com')).toMatchObject({ subject: person.subject });
      const again = await signIn(second.oidc.issuer, { email: 'kept@example.com', password: person.password!, clientId: CONSOLE_CLIENT_ID, redirectUri: second.oidc.consoleClient.redirectUri });
      expect((await verifyAccessToken(again.access_token, second)).sub).toBe(person.subject);
      // The demo person keeps their subject and gets a new password at each start.
      const demoAfter = await second.oidc.seedDemoPerson();
      expect(demoAfter.subject).toBe(demoBefore.subject);
      expect(demoAfter.password).not.toBe(demoBefore.password);
      expect(await second.oidc.people.authenticate(DEMO_PERSON_EMAIL, demoBefore.password)).toBeUndefined();
    } finally {
      await second.close();
    }
    // A damaged file stops the start with a message saying what to do.
    writeFileSync(path.join(oidcDir, 'signing-keys.json'), '{"keys": []}');
    await expect(startLocalOidc({ origin: first.origin, persistDir })).rejects.toThrow(/signing-keys\.json is not a set of private RSA keys .*move it away/);
    writeFileSync(path.join(oidcDir, 'people.json'), 'not json');
    await expect(startLocalOidc({ origin: first.origin, persistDir })).rejects.toThrow(/people\.json is not JSON; move it away/);
  });

  it('without a folder, makes a new signing key at each start', async () => {
    const other = await startProvider();
    try {
      const kids = async (r: Running) => ((await (await fetch(`${r.oidc.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      expect(await kids(other)).not.toEqual(await kids(p));
    } finally {
      await other.close();
    }
  });
});
