/**
 * People on the API (API.md §1, §2): an access token in `Authorization: Bearer`, verified by the same
 * authorizer as keys, placed in an account by the person's membership, with their role's capabilities
 * cut to the tier's ceiling. Tokens come from a test issuer whose keys the tests hold (support/issuer.ts),
 * so every kind of bad token can be made; the sign-in itself is tested against the local provider.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import { removeMember, setMemberRole } from '../../admin-cli/members.js';
import { createAccount, setAccountTier } from '../../lambdas/shared/services/keys.js';
import type { RoleName } from '../../lambdas/shared/capabilities.js';
import { call, expectError, type Reply } from '../support/http.js';
import { startTestIssuer, TEST_AUDIENCE, TEST_CLIENT, unsignedToken, type TestIssuer } from '../support/issuer.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let issuer: TestIssuer;
let t: TestStack;
let people = 0;

beforeAll(async () => {
  issuer = await startTestIssuer();
  t = await startTestStack('e2e-people', { identity: issuer.config });
}, 60_000);
afterAll(async () => {
  await t?.close();
  await issuer?.close();
});

function as(token: string, method: string, path: string, options: { body?: unknown; account?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return call(`${t.stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(options.account ? { 'knouds-account': options.account } : {}), ...options.headers },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
}

interface Person {
  readonly subject: string;
  readonly email: string;
  readonly token: string;
}

async function person(...accounts: [string, RoleName][]): Promise<Person> {
  const n = ++people;
  const subject = `sub-${n}-${Date.now().toString(36)}`;
  const email = `person${n}@example.com`;
  for (const [accountId, role] of accounts) await t.member(subject, accountId, email, role);
  return { subject, email, token: await issuer.sign(subject) };
}

describe('a person’s session', () => {
  it('acts in their account with their role’s capabilities: an admin creates a key, recorded as its creator', async () => {
    const { accountId } = await t.account('business');
    const admin = await person([accountId, 'admin']);
    const me = await as(admin.token, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      kind: 'person',
      account: { account_id: accountId, tier: 'business', active_keys: 1, max_active_keys: 10 },
      workspaces: ['*'],
      key: null,
      person: { subject: admin.subject, email: admin.email, role: 'admin', accounts: [{ account_id: accountId, role: 'admin', tier: 'business' }] },
    });
    expect(me.body['capabilities']).toEqual(expect.arrayContaining(['keys:write', 'audit:read', 'model:run']));
    expect(me.headers.get('x-ratelimit-limit')).toBe('1000');

    const created = await as(admin.token, 'POST', '/keys', { body: { name: 'ci', preset: 'workflow-deploy' } });
    expect(created.status).toBe(201);
    expect(created.body['created_by']).toEqual({ kind: 'person', subject: admin.subject, email: admin.email });
    expect(created.body['account_id']).toBe(accountId);
    // The key a person made works, and what it creates names it.
    const listed = await as(admin.token, 'GET', '/keys');
    expect((listed.body['items'] as { key_id: string }[]).map((k) => k.key_id)).toContain(created.body['key_id']);
  });

  it('a person added by subject alone (a deployer’s own provider) has no email: null in GET /me, created_by and the audit trail, and acts as any other', async () => {
    const { accountId } = await t.account('business');
    const subject = `sub-noemail-${Date.now().toString(36)}`;
    await t.member(subject, accountId, null, 'admin');
    const token = await issuer.sign(subject);
    const me = await as(token, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body['person']).toEqual({ subject, email: null, role: 'admin', accounts: [{ account_id: accountId, role: 'admin', tier: 'business' }] });
    const created = await as(token, 'POST', '/keys', { body: { name: 'made by sub', preset: 'read-only' } });
    expect(created.status).toBe(201);
    expect(created.body['created_by']).toEqual({ kind: 'person', subject, email: null });
    expect((await as(token, 'GET', `/keys/${String(created.body['key_id'])}`)).body['created_by']).toEqual({ kind: 'person', subject, email: null });
    const events = await as(token, 'GET', '/audit-events?action=key.created');
    expect((events.body['items'] as { actor: unknown }[])[0]!.actor).toEqual({ kind: 'person', subject, email: null });
    const added = await as(token, 'GET', '/audit-events?action=member.added');
    expect((added.body['items'] as { changes: unknown }[])[0]!.changes).toEqual({ role: { from: null, to: 'admin' } });
  });

  it('a viewer reads but cannot change anything', async () => {
    const { accountId } = await t.account('business');
    const viewer = await person([accountId, 'viewer']);
    expect((await as(viewer.token, 'GET', '/keys')).status).toBe(200);
    expect((await as(viewer.token, 'GET', '/workflows')).status).toBe(200);
    const before = await t.snapshot();
    expectError(await as(viewer.token, 'POST', '/keys', { body: { name: 'x', preset: 'read-only' } }), 403, 'CAPABILITY_DENIED', { required: 'keys:write' });
    expectError(await as(viewer.token, 'POST', '/webhooks/secret/rotate'), 403, 'CAPABILITY_DENIED', { required: 'keys:write' });
    expect(await t.snapshot()).toBe(before);
    const me = await as(viewer.token, 'GET', '/me');
    expect([...(me.body['capabilities'] as string[])].sort()).toEqual(['audit:read', 'execution:read', 'keys:read', 'workflow:read']);
  });

  it('the tier’s ceiling cuts the role: a free account’s admin holds nothing; a pro admin no models', async () => {
    const freeId = `acct_free_${Date.now().toString(36)}`;
    await createAccount(t.deps(), freeId, 'free');
    const freeAdmin = await person([freeId, 'admin']);
    const me = await as(freeAdmin.token, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body['capabilities']).toEqual([]);
    expect(me.body['account']).toMatchObject({ tier: 'free', ceiling: [] });
    expectError(await as(freeAdmin.token, 'GET', '/keys'), 403, 'CAPABILITY_DENIED', { required: 'keys:read' });

    const { accountId: pro } = await t.account('pro', { name: 'reader', preset: 'read-only' });
    const proAdmin = await person([pro, 'admin']);
    const caps = (await as(proAdmin.token, 'GET', '/me')).body['capabilities'] as string[];
    expect(caps).toContain('keys:write');
    expect(caps).not.toContain('model:run');
    expectError(await as(proAdmin.token, 'POST', '/models/echo/run', { body: { input: 1 } }), 403, 'CAPABILITY_DENIED', { required: 'model:echo:run' });
  });

  it('a tier change applies from the next request', async () => {
    const { accountId } = await t.account('business');
    const admin = await person([accountId, 'admin']);
    expect((await as(admin.token, 'POST', '/models/echo/run', { body: { input: 1 } })).status).toBe(200);
    await setAccountTier(t.deps(), accountId, 'pro');
    expectError(await as(admin.token, 'POST', '/models/echo/run', { body: { input: 1 } }), 403, 'CAPABILITY_DENIED');
  });
});

describe('accounts', () => {
  it('a person of two accounts names one in Knouds-Account, and acts in that one only', async () => {
    const { accountId: a } = await t.account('business');
    const { accountId: b } = await t.account('business');
    const both = await person([a, 'admin'], [b, 'viewer']);
    const before = await t.snapshot();
    const refused = await as(both.token, 'GET', '/keys');
    expectError(refused, 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'Knouds-Account' })] });
    expect(await t.snapshot()).toBe(before);

    const inA = await as(both.token, 'POST', '/keys', { account: a, body: { name: 'in a', preset: 'read-only' } });
    expect(inA.status).toBe(201);
    expect(inA.body['account_id']).toBe(a);
    // In b they are a viewer, and a's key is another account's: 404.
    expectError(await as(both.token, 'POST', '/keys', { account: b, body: { name: 'in b', preset: 'read-only' } }), 403, 'CAPABILITY_DENIED');
    expectError(await as(both.token, 'GET', `/keys/${String(inA.body['key_id'])}`, { account: b }), 404, 'NOT_FOUND');
    expect((await as(both.token, 'GET', `/keys/${String(inA.body['key_id'])}`, { account: a })).status).toBe(200);

    // GET /me may leave the header out: the first of their accounts, and all of them listed.
    const me = await as(both.token, 'GET', '/me');
    expect(me.status).toBe(200);
    const accounts = (me.body['person'] as { accounts: { account_id: string }[] }).accounts.map((x) => x.account_id);
    expect(accounts).toEqual([a, b].sort());
    expect((me.body['account'] as { account_id: string }).account_id).toBe(accounts[0]);
    expect(((await as(both.token, 'GET', '/me', { account: b })).body['person'] as { role: string }).role).toBe('viewer');
  });

  it('no membership is 403 NOT_A_MEMBER, named account or not, and changes nothing (but its rate-limit counter)', async () => {
    const { accountId: a } = await t.account('business');
    const { accountId: other } = await t.account('business');
    const member = await person([a, 'admin']);
    const stranger = await person();
    const before = await t.snapshot();
    expectError(await as(stranger.token, 'GET', '/me'), 403, 'NOT_A_MEMBER');
    expectError(await as(stranger.token, 'GET', '/keys'), 403, 'NOT_A_MEMBER');
    expectError(await as(member.token, 'GET', '/keys', { account: other }), 403, 'NOT_A_MEMBER');
    expectError(await as(member.token, 'POST', '/keys', { account: other, body: { name: 'x', preset: 'read-only' } }), 403, 'NOT_A_MEMBER');
    expectError(await as(member.token, 'GET', '/keys', { account: 'acct_that_does_not_exist' }), 403, 'NOT_A_MEMBER');
    expectError(await as(member.token, 'GET', '/keys', { account: '../etc' }), 403, 'NOT_A_MEMBER');
    expect(await t.snapshot()).toBe(before);
  });

  it('a Knouds-Account value that is no account id is 403 NOT_A_MEMBER saying so (not that they belong nowhere), shown cut and escaped', async () => {
    const { accountId: a } = await t.account('business');
    const member = await person([a, 'admin']);
    const before = await t.snapshot();
    const refused = async (value: string) => {
      const reply = await as(member.token, 'GET', '/keys', { headers: { 'knouds-account': value } });
      expectError(reply, 403, 'NOT_A_MEMBER');
      const message = String(reply.body['error']);
      expect(message).not.toMatch(/any account/);
      return message;
    };
    // curl -H 'Knouds-Account: ' sends the header with an empty value.
    expect(await refused('')).toBe(
      'The Knouds-Account header is empty: name one of your accounts in it (GET /me without the header lists them), or leave it out if you belong to one account only',
    );
    expect(await refused('../etc')).toBe("'../etc' is not an account id: name one of your accounts in the Knouds-Account header (GET /me without the header lists them)");
    // Longer than an account id: at most 64 characters shown, the cut marked.
    const long = await refused(`${'a'.repeat(64)}${'b'.repeat(5000)}`);
    expect(long).toContain(`'${'a'.repeat(64)}…' is not an account id`);
    expect(long).not.toContain('b');
    // A tab, a Latin-1 byte and a backslash come back escaped, never as themselves.
    expect(await refused('acct\tx\u00e9\\y')).toMatch(/^'acct\\u0009x\\u00e9\\\\y' is not an account id: /);
    expect(await t.snapshot()).toBe(before);
    // The same person without the header, or naming their account, acts as before.
    expect((await as(member.token, 'GET', '/keys')).status).toBe(200);
    expect((await as(member.token, 'GET', '/keys', { account: a })).status).toBe(200);
  });

  it('refused for want of a membership, a person is still counted: the rate-limit headers, and 429 past the lowest live limit', async () => {
    const { accountId: a } = await t.account('business');
    const { accountId: b } = await t.account('business');
    const stranger = await person();
    const both = await person([a, 'admin'], [b, 'viewer']);
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
    const first = await as(stranger.token, 'GET', '/keys');
    expectError(first, 403, 'NOT_A_MEMBER');
    expect([first.headers.get('x-ratelimit-limit'), first.headers.get('x-ratelimit-remaining')]).toEqual(['10', '9']);
    expect(first.headers.get('ratelimit-policy')).toBe('"default";q=10;w=60');
    // Several accounts and no header: 400, counted the same way (per person, not per account).
    const unnamed = await as(both.token, 'GET', '/keys');
    expectError(unnamed, 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'Knouds-Account' })] });
    expect(unnamed.headers.get('x-ratelimit-remaining')).toBe('9');
    const replies = [];
    for (let i = 0; i < 10; i++) replies.push(await as(stranger.token, 'GET', '/workflows', { account: a }));
    expect(replies.map((r) => r.status)).toEqual([...Array(9).fill(403), 429]);
    expect(replies[9]!.headers.get('retry-after')).toMatch(/^\d+$/);
    // The same person, once a member, is counted in that account as before.
    await t.member(stranger.subject, a, stranger.email, 'viewer');
    const member = await as(stranger.token, 'GET', '/keys');
    expect(member.status).toBe(200);
    expect(member.headers.get('x-ratelimit-limit')).toBe('1000');
  });

  it('removal and a role change apply from the person’s next request', async () => {
    const { accountId } = await t.account('business');
    const p = await person([accountId, 'admin']);
    expect((await as(p.token, 'POST', '/keys', { body: { name: 'one', preset: 'read-only' } })).status).toBe(201);
    await setMemberRole(t.members(), accountId, { subject: p.subject }, 'viewer', new Date());
    expectError(await as(p.token, 'POST', '/keys', { body: { name: 'two', preset: 'read-only' } }), 403, 'CAPABILITY_DENIED');
    expect((await as(p.token, 'GET', '/keys')).status).toBe(200);
    await removeMember(t.members(), accountId, { subject: p.subject });
    expectError(await as(p.token, 'GET', '/keys'), 403, 'NOT_A_MEMBER');
  });
});

describe('tokens the API refuses: 401 UNAUTHORIZED, nothing read past the token, nothing written', () => {
  let accountId: string;
  let subject: string;
  beforeAll(async () => {
    ({ accountId } = await t.account('business'));
    subject = (await person([accountId, 'admin'])).subject;
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, () => Promise<string>][] = [
    ['signed with another key', async () => issuer.sign(subject, {}, { key: await issuer.otherKey() })],
    ['of another issuer', () => issuer.sign(subject, { iss: 'https://evil.example' })],
    ['for another audience', () => issuer.sign(subject, { aud: 'https://other-api.example' })],
    ['expired', () => issuer.sign(subject, { exp: now() - 120 })],
    ['not yet valid', () => issuer.sign(subject, { nbf: now() + 600 })],
    ['alg: none', async () => unsignedToken({ sub: subject, iss: issuer.config.issuer, aud: TEST_AUDIENCE, exp: now() + 600 })],
    [
      'HS256 keyed with the public key',
      async () =>
        new SignJWT({ client_id: TEST_CLIENT })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: issuer.publicJwk.kid! })
          .setSubject(subject)
          .setIssuer(issuer.config.issuer)
          .setAudience(TEST_AUDIENCE)
          .setExpirationTime(now() + 600)
          .sign(new TextEncoder().encode(JSON.stringify(issuer.publicJwk))),
    ],
    ['an ID token (typ JWT, aud the client)', () => issuer.sign(subject, { aud: TEST_CLIENT }, { typ: 'JWT' })],
    ['an access token without typ at+jwt', () => issuer.sign(subject, {}, { typ: 'JWT' })],
    ['issued to another client of the provider', () => issuer.sign(subject, { client_id: 'some-other-app' })],
    ['without client_id', () => issuer.sign(subject, { client_id: undefined })],
    ['an API key', async () => (await t.account('business')).key],
    ['garbage', async () => 'not.a.token'],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const token = await make();
    const before = await t.snapshot({ withUsage: true });
    const reply = await as(token, 'GET', '/keys', { account: accountId });
    expectError(reply, 401, 'UNAUTHORIZED');
    expect(await t.snapshot({ withUsage: true })).toBe(before);
  });

  it('an API key sent as a Bearer token is told to use x-api-key', async () => {
    const { key } = await t.account('business');
    const reply = await as(key, 'GET', '/keys/verify');
    expect(reply.status).toBe(401);
    expect(String(reply.body['error'])).toMatch(/x-api-key/);
  });

  it('a request with both headers is decided by x-api-key', async () => {
    const { key, keyId } = await t.account('business');
    const token = await issuer.sign(subject);
    const reply = await as(token, 'GET', '/me', { headers: { 'x-api-key': key } });
    expect(reply.body).toMatchObject({ kind: 'key', key: { key_id: keyId } });
  });
});

describe('rate limits', () => {
  it('are counted per person and account, exactly, with the headers', async () => {
    const id = `acct_rl_${Date.now().toString(36)}`;
    await createAccount(t.deps(), id, 'free');
    const p = await person([id, 'viewer']);
    const replies = await Promise.all(Array.from({ length: 16 }, () => as(p.token, 'GET', '/me')));
    const admitted = replies.filter((r) => r.status === 200);
    expect(admitted).toHaveLength(10);
    for (const r of replies.filter((x) => x.status !== 200)) {
      expectError(r, 429, 'RATE_LIMIT_EXCEEDED');
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    expect(admitted[0]!.headers.get('x-ratelimit-limit')).toBe('10');
    // The person's counter is their own: another person of the account is not limited by it.
    const other = await person([id, 'viewer']);
    expect((await as(other.token, 'GET', '/me')).status).toBe(200);
    // And per account: the same person in another account has a counter of its own there.
    const id2 = `acct_rl2_${Date.now().toString(36)}`;
    await createAccount(t.deps(), id2, 'free');
    await t.member(p.subject, id2, p.email, 'viewer');
    const elsewhere = await as(p.token, 'GET', '/me', { account: id2 });
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.headers.get('x-ratelimit-remaining')).toBe('9');
    const counter = await t.stack.doc.send(
      new GetCommand({ TableName: t.stack.state.tables.usage, Key: { key_id: `person#${id}#${p.subject}`, hour: new Date().toISOString().slice(0, 13) } }),
    );
    expect(counter.Item?.['requests']).toBeGreaterThanOrEqual(10);
  });
});

describe('keys', () => {
  it('GET /keys/verify is for keys: a person gets 404 and is pointed to GET /me', async () => {
    const { accountId } = await t.account('business');
    const p = await person([accountId, 'admin']);
    const reply = await as(p.token, 'GET', '/keys/verify');
    expectError(reply, 404, 'NOT_FOUND');
    expect(String(reply.body['error'])).toMatch(/GET \/me/);
  });

  it('created_by: a key’s creator key, an operator, and a rotation keeps its predecessor’s', async () => {
    const { key, keyId } = await t.account('business');
    const made = await t.api(key, 'POST', '/keys', { name: 'child', preset: 'read-only' });
    expect(made.body['created_by']).toEqual({ kind: 'key', key_id: keyId });
    const me = await t.api(key, 'GET', `/keys/${keyId}`);
    expect(me.body['created_by']).toEqual({ kind: 'operator' });
    const rotated = await t.api(key, 'POST', `/keys/${String(made.body['key_id'])}/rotate`, {});
    expect(rotated.body['created_by']).toEqual({ kind: 'key', key_id: keyId });
  });
});
