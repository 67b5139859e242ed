/**
 * Issue #16's "done when", end to end with real parts only: people sign in through the local OpenID
 * Connect provider (a scripted authorization code + PKCE exchange), and the local stack's authorizer
 * verifies their access tokens with the very code that verifies Cognito's (only the issuer differs).
 * The demo admin calls GET /me and creates a key; a viewer cannot; a removed person is refused at once.
 */
import { jest } from '@jest/globals';
import { removeMember } from '../../admin-cli/members.js';
import { DEMO_ACCOUNT_ID } from '../../local-runner/stack.js';
import { CONSOLE_CLIENT_ID } from '../../local-runner/oidc/index.js';
import { call, expectError, type Reply } from '../support/http.js';
import { signIn } from '../support/oidc.js';
import { startTestStack, type TestStack } from '../support/stack.js';

jest.setTimeout(60_000);

let t: TestStack;

beforeAll(async () => {
  t = await startTestStack('e2e-sign-in', { seed: true });
});
afterAll(() => t?.close());

async function accessToken(email: string, password: string): Promise<string> {
  const tokens = await signIn(`${t.stack.url}/oidc`, { email, password, clientId: CONSOLE_CLIENT_ID, redirectUri: `${t.stack.url}/auth/callback` });
  return tokens.access_token;
}

const as = (token: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  call(`${t.stack.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { body } : {}) });

describe('signed in through the local provider', () => {
  it('the demo admin calls GET /me and creates a key with their access token', async () => {
    const demo = t.stack.demoPerson!;
    const token = await accessToken(demo.email, demo.password);
    const me = await as(token, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      kind: 'person',
      account: { account_id: DEMO_ACCOUNT_ID, tier: 'business' },
      person: { subject: demo.subject, email: demo.email, role: 'admin' },
    });
    const created = await as(token, 'POST', '/keys', { name: 'made by a person', preset: 'workflow-deploy' });
    expect(created.status).toBe(201);
    expect(created.body['created_by']).toEqual({ kind: 'person', subject: demo.subject, email: demo.email });
    // The key works on its own.
    const verified = await call(`${t.stack.apiUrl}/keys/verify`, { headers: { 'x-api-key': String(created.body['api_key']) } });
    expect(verified.status).toBe(200);
  });

  it('a viewer reads keys but cannot create one; removed, they are refused at once', async () => {
    const added = await t.stack.oidc.people.addPerson('viewer@example.com');
    await t.member(added.subject, DEMO_ACCOUNT_ID, added.email, 'viewer');
    const token = await accessToken(added.email, added.password!);
    expect((await as(token, 'GET', '/keys')).status).toBe(200);
    expectError(await as(token, 'POST', '/keys', { name: 'nope', preset: 'read-only' }), 403, 'CAPABILITY_DENIED', { required: 'keys:write' });
    await removeMember(t.members(), DEMO_ACCOUNT_ID, { subject: added.subject });
    // The same token, still valid at the provider: the membership decides, from the next request.
    expectError(await as(token, 'GET', '/keys'), 403, 'NOT_A_MEMBER');
  });

  it('an ID token from the same sign-in is refused (401): the API takes access tokens only', async () => {
    const demo = t.stack.demoPerson!;
    const tokens = await signIn(`${t.stack.url}/oidc`, { email: demo.email, password: demo.password, clientId: CONSOLE_CLIENT_ID, redirectUri: `${t.stack.url}/auth/callback` });
    expect(tokens.id_token).toEqual(expect.any(String));
    expectError(await as(tokens.id_token, 'GET', '/me'), 401, 'UNAUTHORIZED');
  });
});
