/**
 * The audit trail end to end (API.md §7), against the local stack on DynamoDB Local, its DynamoDB calls
 * through the fault-injecting proxy: every change leaves exactly one event with its actor (key, person,
 * operator) and its changes, written in the change's own transaction (a failing, throttled or hung
 * transaction leaves neither; the retry then leaves one); refused requests leave none; no event holds a
 * key, a hash or a secret; GET /audit-events shows an account its own events only, filtered and paged.
 */
import { jest } from '@jest/globals';
import { createHash, createHmac } from 'node:crypto';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { removeMember, setMemberRole } from '../../admin-cli/members.js';
import { setAccountTier } from '../../lambdas/shared/services/keys.js';
import type { CountingProxy, Fault } from '../support/counting-proxy.js';
import { call, expectError, type Reply } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { startReceiver } from '../support/receiver.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

jest.setTimeout(60_000);

let issuer: TestIssuer;
let t: TestStack;
let proxy: CountingProxy;
let close: () => Promise<void>;
/** Every plaintext key and webhook secret this file sees: none may appear in the audit table. */
const secrets: string[] = [];

const AGENT = 'audit-test/1.0 (+https://knouds.test)';

beforeAll(async () => {
  issuer = await startTestIssuer();
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-audit', { identity: issuer.config }));
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await close?.();
  await issuer?.close();
});

type Event = Record<string, unknown> & { action: string; target: { kind: string; id: string }; actor: Record<string, unknown> };

/** The account's stored events (the table itself, consistent), oldest first. */
async function stored(accountId: string): Promise<Event[]> {
  const out = await t.stack.doc.send(
    new QueryCommand({ TableName: t.stack.state.tables.audit, KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': accountId }, ConsistentRead: true }),
  );
  return (out.Items ?? []) as Event[];
}

const api = (key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  t.api(key, method, path, body, { 'user-agent': AGENT, ...headers });

async function account(tier: 'pro' | 'business' = 'business') {
  const made = await t.account(tier);
  secrets.push(made.key);
  return made;
}

async function newKey(admin: string, body: Record<string, unknown> = { name: 'k', preset: 'read-only' }): Promise<{ keyId: string; key: string }> {
  const reply = await api(admin, 'POST', '/keys', body);
  expect(reply.status).toBe(201);
  secrets.push(String(reply.body['api_key']));
  return { keyId: String(reply.body['key_id']), key: String(reply.body['api_key']) };
}

/** Setup steps (outside a test) throw rather than expect. */
function ok(reply: Reply, status: number): void {
  if (reply.status !== status) throw new Error(`expected ${status}, got ${reply.status}: ${reply.text}`);
}

/** Where an API request's event says it came from. */
const FROM_API = { request_id: expect.any(String), source_ip: expect.stringMatching(/\S/), user_agent: AGENT };

describe('each change leaves exactly one event, with its actor and changes', () => {
  it('a key’s creation, edit, rotation and revocation, and the webhook secret’s rotation, by a key', async () => {
    const { accountId, key: admin, keyId: adminId } = await account();
    const actor = { kind: 'key', key_id: adminId };
    const before = (await stored(accountId)).length;

    const { keyId } = await newKey(admin, { name: 'ci', preset: 'read-only', workspaces: ['ws-b', 'ws-a'], expires_in_days: 30 });
    const patched = await api(admin, 'PATCH', `/keys/${keyId}`, { name: 'ci bot', capabilities: ['workflow:read', 'execution:read'] });
    expect(patched.status).toBe(200);
    const rotated = await api(admin, 'POST', `/keys/${keyId}/rotate`, { grace_period_seconds: 60 });
    expect(rotated.status).toBe(201);
    secrets.push(String(rotated.body['api_key']));
    const nextId = String(rotated.body['key_id']);
    expect((await api(admin, 'DELETE', `/keys/${nextId}`)).status).toBe(204);
    const hook = await api(admin, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 0 });
    expect(hook.status).toBe(200);
    secrets.push(String(hook.body['secret']));

    const events = (await stored(accountId)).slice(before);
    const created = events[0]!;
    // The rotation is two changes at one time: the old key rotated, then (listed after it) its replacement created.
    expect(events.map((e) => e.action)).toEqual(['key.created', 'key.updated', 'key.rotated', 'key.created', 'key.revoked', 'webhook_secret.rotated']);
    const rotation = [events[3]!, events[2]!];
    expect(created).toMatchObject({
      event_id: expect.stringMatching(/^evt_[0-9A-Za-z]{20}$/),
      account_id: accountId,
      actor,
      target: { kind: 'key', id: keyId },
      changes: {
        name: { from: null, to: 'ci' },
        capabilities: { from: null, to: ['workflow:read'] },
        workspaces: { from: null, to: ['ws-a', 'ws-b'] },
        environment: { from: null, to: 'live' },
        expires_at: { from: null, to: expect.any(String) },
      },
      ...FROM_API,
    });
    expect(events[1]).toMatchObject({
      actor,
      target: { kind: 'key', id: keyId },
      changes: { name: { from: 'ci', to: 'ci bot' }, capabilities: { from: ['workflow:read'], to: ['execution:read', 'workflow:read'] } },
      ...FROM_API,
    });
    // Only what changed: the workspaces were not touched.
    expect(Object.keys(events[1]!['changes'] as object).sort()).toEqual(['capabilities', 'name']);
    expect(rotation[1]).toMatchObject({
      actor,
      target: { kind: 'key', id: keyId },
      changes: { rotated_to: { from: null, to: nextId }, expires_at: { from: expect.any(String), to: expect.any(String) } },
      ...FROM_API,
    });
    // The replacement's history begins with what it was made with, and the key it replaces.
    expect(rotation[0]).toMatchObject({
      actor,
      target: { kind: 'key', id: nextId },
      changes: {
        rotated_from: { from: null, to: keyId },
        name: { from: null, to: 'ci bot' },
        capabilities: { from: null, to: ['execution:read', 'workflow:read'] },
        workspaces: { from: null, to: ['ws-a', 'ws-b'] },
        environment: { from: null, to: 'live' },
        // The key's own expiry (the old key's is brought forward to its grace's end).
        expires_at: { from: null, to: (created['changes'] as Record<string, { to: unknown }>)['expires_at']!.to },
        metadata: { from: null, to: {} },
        enabled: { from: null, to: true },
      },
      ...FROM_API,
    });
    expect(rotation[0]!['occurred_at']).toBe(rotation[1]!['occurred_at']);
    expect(rotation[0]!['request_id']).toBe(rotation[1]!['request_id']);
    expect(events[4]).toMatchObject({ actor, target: { kind: 'key', id: nextId }, changes: { revoked_at: { from: null, to: expect.any(String) } }, ...FROM_API });
    // The secret's rotation says that it happened, never what the secret is.
    expect(events[5]).toMatchObject({ actor, target: { kind: 'webhook_secret', id: accountId }, changes: null, ...FROM_API });
    // Each request's own id (the rotation's two events share one), and the time it happened.
    expect(new Set(events.map((e) => e['request_id'])).size).toBe(5);
    for (const e of events) expect(Date.parse(String(e['occurred_at']))).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a rotation without grace records the key revoked at once', async () => {
    const { accountId, key: admin } = await account();
    const { keyId } = await newKey(admin);
    const rotated = await api(admin, 'POST', `/keys/${keyId}/rotate`, {});
    secrets.push(String(rotated.body['api_key']));
    const [event] = (await stored(accountId)).filter((e) => e.action === 'key.rotated');
    expect(event).toMatchObject({ changes: { rotated_to: { from: null, to: rotated.body['key_id'] }, revoked_at: { from: null, to: expect.any(String) } } });
  });

  it('a rotation whose grace outlasts the key’s own expiry records no expiry change (it stays as it was)', async () => {
    const { accountId, key: admin } = await account();
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString().replace(/\.\d{3}Z$/, '.000Z');
    const { keyId } = await newKey(admin, { name: 'soon', preset: 'read-only', expires_at: expiresAt });
    const rotated = await api(admin, 'POST', `/keys/${keyId}/rotate`, { grace_period_seconds: 3600 });
    secrets.push(String(rotated.body['api_key']));
    const [event] = (await stored(accountId)).filter((e) => e.action === 'key.rotated');
    expect(event!['changes']).toEqual({ rotated_to: { from: null, to: rotated.body['key_id'] } });
    // A grace that ends first does change it.
    const { keyId: other } = await newKey(admin, { name: 'later', preset: 'read-only', expires_at: expiresAt });
    const again = await api(admin, 'POST', `/keys/${other}/rotate`, { grace_period_seconds: 60 });
    secrets.push(String(again.body['api_key']));
    const changed = (await stored(accountId)).find((e) => e.action === 'key.rotated' && (e['target'] as { id: string }).id === other);
    expect(changed!['changes']).toEqual({ rotated_to: { from: null, to: again.body['key_id'] }, expires_at: { from: expiresAt, to: expect.any(String) } });
  });

  it('an edit that changes nothing writes nothing, and answers the key as it is', async () => {
    const { accountId, key: admin } = await account();
    const { keyId } = await newKey(admin, { name: 'same', preset: 'read-only' });
    const before = await t.snapshot();
    const reply = await api(admin, 'PATCH', `/keys/${keyId}`, { name: 'same', capabilities: ['workflow:read'] });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ key_id: keyId, name: 'same' });
    expect(await t.snapshot()).toBe(before);
    expect((await stored(accountId)).filter((e) => e.action === 'key.updated')).toEqual([]);
  });

  it('by a signed-in person: the person is the actor (subject and email)', async () => {
    const { accountId } = await account();
    await t.member('audit-person', accountId, 'audit.person@example.com', 'admin');
    const session = { authorization: `Bearer ${await issuer.sign('audit-person')}`, 'knouds-account': accountId, 'user-agent': AGENT };
    const created = await call(`${t.stack.apiUrl}/keys`, { method: 'POST', headers: session, body: { name: 'by a person', preset: 'read-only' } });
    expect(created.status).toBe(201);
    secrets.push(String(created.body['api_key']));
    expect((await call(`${t.stack.apiUrl}/keys/${String(created.body['key_id'])}`, { method: 'DELETE', headers: session })).status).toBe(204);
    const events = (await stored(accountId)).filter((e) => e.target.id === created.body['key_id']);
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ['key.created', { kind: 'person', subject: 'audit-person', email: 'audit.person@example.com' }],
      ['key.revoked', { kind: 'person', subject: 'audit-person', email: 'audit.person@example.com' }],
    ]);
  });

  it('by an operator (the admin CLI’s code): the account’s creation and tier change, and its members', async () => {
    const { accountId } = await account();
    await setAccountTier(t.deps(), accountId, 'pro');
    // The same tier again changes nothing and records nothing.
    await setAccountTier(t.deps(), accountId, 'pro');
    await t.member('op-person', accountId, 'op@example.com', 'viewer');
    await setMemberRole(t.members(), accountId, { subject: 'op-person' }, 'admin', new Date());
    await setMemberRole(t.members(), accountId, { subject: 'op-person' }, 'admin', new Date());
    await removeMember(t.members(), accountId, { subject: 'op-person' });
    const events = await stored(accountId);
    const operator = { kind: 'operator' };
    const none = { request_id: null, source_ip: null, user_agent: null };
    expect(events.filter((e) => e.action !== 'key.created')).toEqual([
      expect.objectContaining({ action: 'account.created', actor: operator, target: { kind: 'account', id: accountId }, changes: { tier: { from: null, to: 'business' } }, ...none }),
      expect.objectContaining({ action: 'account.tier_changed', actor: operator, target: { kind: 'account', id: accountId }, changes: { tier: { from: 'business', to: 'pro' } }, ...none }),
      expect.objectContaining({ action: 'member.added', actor: operator, target: { kind: 'member', id: 'op-person' }, changes: { email: { from: null, to: 'op@example.com' }, role: { from: null, to: 'viewer' } } }),
      expect.objectContaining({ action: 'member.role_changed', actor: operator, target: { kind: 'member', id: 'op-person' }, changes: { role: { from: 'viewer', to: 'admin' } } }),
      expect.objectContaining({ action: 'member.removed', actor: operator, target: { kind: 'member', id: 'op-person' }, changes: { email: { from: 'op@example.com', to: null }, role: { from: 'admin', to: null } } }),
    ]);
    // The account's first key, made by the operator too.
    expect(events.find((e) => e.action === 'key.created')).toMatchObject({ actor: operator });
  });
});

describe('the account’s first webhook secret, made on first use, is recorded once (webhook_secret.created)', () => {
  const createdEvents = async (accountId: string) => (await stored(accountId)).filter((e) => e.action === 'webhook_secret.created');

  it('by the first GET /webhooks/secret, with its request; the next GET records nothing', async () => {
    const { accountId, key: admin, keyId: adminId } = await account();
    const first = await api(admin, 'GET', '/webhooks/secret');
    expect(first.status).toBe(200);
    secrets.push(String(first.body['secret']));
    expect((await api(admin, 'GET', '/webhooks/secret')).body['secret']).toBe(first.body['secret']);
    expect(await createdEvents(accountId)).toEqual([
      expect.objectContaining({ actor: { kind: 'key', key_id: adminId }, target: { kind: 'webhook_secret', id: accountId }, changes: null, ...FROM_API }),
    ]);
  });

  it('by the system, when a run’s webhook is sent before anyone asked for the secret: signed with the secret the event records', async () => {
    const { accountId, key: admin } = await account();
    const receiver = await startReceiver();
    try {
      const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
      expect((await api(admin, 'POST', '/workflows', { slug: 'hooked', name: 'Hooked', definition })).status).toBe(201);
      expect((await api(admin, 'POST', '/workflows/hooked/deploy')).status).toBe(200);
      expect(await createdEvents(accountId)).toEqual([]);
      const run = await api(admin, 'POST', '/workflows/hooked/run?async=true', { input: { a: 1 }, webhook_url: receiver.url });
      expect(run.status).toBe(202);
      for (const deadline = Date.now() + 15_000; receiver.received.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(receiver.received).toHaveLength(1);
      expect(await createdEvents(accountId)).toEqual([
        expect.objectContaining({ actor: { kind: 'system' }, target: { kind: 'webhook_secret', id: accountId }, changes: null, request_id: null, source_ip: null, user_agent: null }),
      ]);
      // The secret the webhook was signed with is the one GET /webhooks/secret now answers (and makes no second event).
      const secret = String((await api(admin, 'GET', '/webhooks/secret')).body['secret']);
      secrets.push(secret);
      const [delivery] = receiver.received;
      const signed = `${String(delivery!.headers['webhook-id'])}.${String(delivery!.headers['webhook-timestamp'])}.${delivery!.body}`;
      const expected = createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64')).update(signed).digest('base64');
      expect(String(delivery!.headers['webhook-signature']).split(' ')).toContain(`v1,${expected}`);
      expect(await createdEvents(accountId)).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});

describe('a failing transaction leaves neither the change nor its event; the retry leaves exactly one', () => {
  const FAULTS: Fault[] = ['server-error', 'throttle', 'hang'];
  /** Each case on an account of its own (the key limit). */
  let admin: string;
  let accountId: string;
  beforeEach(async () => {
    ({ key: admin, accountId } = await account());
  });

  // Each write with the events it records (a rotation two: the old key's and its replacement's).
  const operations: [string, readonly string[], () => Promise<{ run: () => Promise<Reply>; ok: number }>][] = [
    ['POST /keys', ['key.created'], async () => ({ run: () => api(admin, 'POST', '/keys', { name: 'faulty', preset: 'read-only' }), ok: 201 })],
    ['PATCH /keys/{id}', ['key.updated'], async () => {
      const { keyId } = await newKey(admin);
      return { run: () => api(admin, 'PATCH', `/keys/${keyId}`, { name: 'renamed' }), ok: 200 };
    }],
    ['POST /keys/{id}/rotate', ['key.rotated', 'key.created'], async () => {
      const { keyId } = await newKey(admin);
      return { run: () => api(admin, 'POST', `/keys/${keyId}/rotate`, {}), ok: 201 };
    }],
    ['DELETE /keys/{id}', ['key.revoked'], async () => {
      const { keyId } = await newKey(admin);
      return { run: () => api(admin, 'DELETE', `/keys/${keyId}`), ok: 204 };
    }],
    ['POST /webhooks/secret/rotate', ['webhook_secret.rotated'], async () => ({ run: () => api(admin, 'POST', '/webhooks/secret/rotate', {}), ok: 200 })],
    // The account (a new one for each case) has no secret yet: the GET makes it.
    ['GET /webhooks/secret (its first use)', ['webhook_secret.created'], async () => ({ run: () => api(admin, 'GET', '/webhooks/secret'), ok: 200 })],
  ];

  // Before the fault cases below: their timeouts spend the keys function's SDK retry quota (as on AWS, a
  // client whose calls keep timing out stops retrying for a while), and this case needs one retry.
  it('a create whose answer is lost (the SDK resends its transaction): one key, one event', async () => {
    const before = (await stored(accountId)).filter((e) => e.action === 'key.created').length;
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'lose-response', times: 1 });
    const reply = await api(admin, 'POST', '/keys', { name: 'lost answer', preset: 'read-only' }, { 'Idempotency-Key': `audit-lost-${Date.now()}` });
    expect(proxy.injected()).toBe(1);
    expect(reply.status).toBe(201);
    secrets.push(String(reply.body['api_key']));
    const created = (await stored(accountId)).filter((e) => e.action === 'key.created');
    expect(created).toHaveLength(before + 1);
    expect(created.at(-1)!.target.id).toBe(reply.body['key_id']);
  });

  describe.each(operations)('%s', (_name, actions, prepare) => {
    it.each(FAULTS)('%s', async (fault) => {
      const { run, ok } = await prepare();
      const before = await t.snapshot();
      const recorded = async () => (await stored(accountId)).filter((e) => actions.includes(e.action));
      const events = (await recorded()).length;
      proxy.inject({ operation: 'TransactWriteItems', fault });
      const failed = await run();
      expect(failed.status).toBe(500);
      expect(await t.snapshot()).toBe(before);
      proxy.clearFaults();
      const retried = await run();
      expect(retried.status).toBe(ok);
      for (const field of ['api_key', 'secret']) if (retried.body[field]) secrets.push(String(retried.body[field]));
      expect(await recorded()).toHaveLength(events + actions.length);
    }, 30_000);
  });

  it('a create retried with its Idempotency-Key is replayed: still one event', async () => {
    const idem = { 'Idempotency-Key': `audit-replay-${Date.now()}` };
    const first = await api(admin, 'POST', '/keys', { name: 'once', preset: 'read-only' }, idem);
    secrets.push(String(first.body['api_key']));
    const again = await api(admin, 'POST', '/keys', { name: 'once', preset: 'read-only' }, idem);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await stored(accountId)).filter((e) => e.target.id === first.body['key_id'])).toHaveLength(1);
  });
});

describe('a refused request writes no event', () => {
  it('401, 403, 404, 409, 422 and 400: nothing written anywhere', async () => {
    const { key: admin, accountId } = await account();
    const other = await account();
    const reader = await newKey(admin, { name: 'reader', preset: 'read-only' });
    const test = await newKey(admin, { name: 'test', scope: 'admin', environment: 'test' });
    const { keyId } = await newKey(admin);
    const rotated = await api(admin, 'POST', `/keys/${keyId}/rotate`, {});
    secrets.push(String(rotated.body['api_key']));
    const idem = { 'Idempotency-Key': `audit-refused-${Date.now()}` };
    const kept = await api(admin, 'POST', '/keys', { name: 'kept', preset: 'read-only' }, idem);
    secrets.push(String(kept.body['api_key']));
    const before = await t.snapshot();
    const events = (await stored(accountId)).length;

    expectError(await api('knouds_live_not-a-key', 'POST', '/keys', { name: 'x', preset: 'read-only' }), 401, 'UNAUTHORIZED');
    expectError(await api(reader.key, 'POST', '/keys', { name: 'x', preset: 'read-only' }), 403, 'CAPABILITY_DENIED');
    expectError(await api(test.key, 'DELETE', `/keys/${reader.keyId}`), 403, 'ENVIRONMENT_DENIED');
    expectError(await api(reader.key, 'POST', '/webhooks/secret/rotate', {}), 403, 'CAPABILITY_DENIED');
    expectError(await api(other.key, 'DELETE', `/keys/${reader.keyId}`), 404, 'NOT_FOUND');
    expectError(await api(other.key, 'PATCH', `/keys/${reader.keyId}`, { name: 'theirs' }), 404, 'NOT_FOUND');
    expectError(await api(admin, 'POST', `/keys/${keyId}/rotate`, {}), 409, 'ALREADY_EXISTS');
    expectError(await api(admin, 'PATCH', `/keys/${keyId}`, { name: 'old' }), 409, 'KEY_ROTATED');
    expectError(await api(admin, 'POST', '/keys', { name: 'another', preset: 'read-only' }, idem), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await api(admin, 'POST', '/keys', { name: 'x', capabilities: ['nope'] }), 400, 'VALIDATION_ERROR');
    expectError(await api(admin, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: -1 }), 400, 'VALIDATION_ERROR');

    expect(await t.snapshot()).toBe(before);
    expect(await stored(accountId)).toHaveLength(events);
  });

  it('409 KEY_LIMIT_REACHED: no key, no event', async () => {
    const { key: admin, accountId } = await account();
    for (let i = 1; i < 10; i++) await newKey(admin, { name: `fill ${i}`, preset: 'read-only' });
    const before = await t.snapshot();
    expectError(await api(admin, 'POST', '/keys', { name: 'eleventh', preset: 'read-only' }), 409, 'KEY_LIMIT_REACHED');
    expect(await t.snapshot()).toBe(before);
    expect((await stored(accountId)).filter((e) => e.action === 'key.created')).toHaveLength(10);
  });
});

describe('GET /audit-events', () => {
  const list = async (key: string, query = '') => api(key, 'GET', `/audit-events${query}`);

  it('needs audit:read: a key without it is 403 CAPABILITY_DENIED; a viewer person has it', async () => {
    const { key: admin, accountId } = await account();
    const reader = await newKey(admin, { name: 'no audit', capabilities: ['keys:read', 'workflow:read'] });
    expectError(await list(reader.key), 403, 'CAPABILITY_DENIED', { required: 'audit:read' });
    await t.member('audit-viewer', accountId, 'viewer@example.com', 'viewer');
    const before = await t.snapshot();
    const viewer = await call(`${t.stack.apiUrl}/audit-events`, { headers: { authorization: `Bearer ${await issuer.sign('audit-viewer')}`, 'knouds-account': accountId } });
    expect(viewer.status).toBe(200);
    expect((viewer.body['items'] as Event[]).map((e) => e.action)).toContain('member.added');
    // Reading the trail writes nothing.
    expect(await t.snapshot()).toBe(before);
  });

  it('the account’s events only, newest first, as §7 shapes them', async () => {
    const mine = await account();
    const theirs = await account();
    const { keyId } = await newKey(mine.key);
    await newKey(theirs.key);
    const reply = await list(mine.key);
    expect(reply.status).toBe(200);
    const items = reply.body['items'] as Event[];
    expect(reply.body['next_token']).toBeNull();
    expect(items.map((e) => e.action)).toEqual(['key.created', 'key.created', 'account.created']);
    expect(items[0]).toEqual({
      event_id: expect.stringMatching(/^evt_/),
      account_id: mine.accountId,
      action: 'key.created',
      occurred_at: expect.any(String),
      actor: { kind: 'key', key_id: mine.keyId },
      target: { kind: 'key', id: keyId },
      changes: expect.any(Object),
      ...FROM_API,
    });
    for (const e of items) expect(e['account_id']).toBe(mine.accountId);
    // Another account's key, named as a filter, shows nothing.
    expect((await list(theirs.key, `?target_id=${keyId}`)).body).toEqual({ items: [], next_token: null });
    expect((await list(theirs.key, `?actor_id=${mine.keyId}`)).body).toEqual({ items: [], next_token: null });
  });

  describe('filters and pages', () => {
    let admin: string;
    let adminId: string;
    let accountId: string;
    let keyA: string;
    let all: Event[];
    beforeAll(async () => {
      ({ key: admin, keyId: adminId, accountId } = await account());
      keyA = (await newKey(admin, { name: 'a', preset: 'read-only' })).keyId;
      for (const name of ['a1', 'a2', 'a3']) ok(await api(admin, 'PATCH', `/keys/${keyA}`, { name }), 200);
      const b = await newKey(admin, { name: 'b', preset: 'read-only' });
      // "b admin" makes and edits a key of its own: another actor.
      const bKeys = await newKey(admin, { name: 'b admin', scope: 'admin' });
      const c = await newKey(bKeys.key, { name: 'c', preset: 'read-only' });
      ok(await api(bKeys.key, 'PATCH', `/keys/${c.keyId}`, { name: 'c1' }), 200);
      ok(await api(admin, 'DELETE', `/keys/${b.keyId}`), 204);
      all = (await list(admin, '?limit=100')).body['items'] as Event[];
    });

    it('holds every change made: account.created, 5 creations, 4 edits, 1 revocation', () => {
      expect(all.map((e) => e.action).sort()).toEqual(
        ['account.created', ...Array(5).fill('key.created'), ...Array(4).fill('key.updated'), 'key.revoked'].sort(),
      );
    });

    it('newest first, and every page full but the last, which is never empty', async () => {
      const times = all.map((e) => String(e['occurred_at']));
      expect([...times].sort().reverse()).toEqual(times);
      for (const limit of [1, 3, 5, all.length]) {
        const seen: Event[] = [];
        let token: string | null = null;
        let pages = 0;
        do {
          const reply: Reply = await list(admin, `?limit=${limit}${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
          expect(reply.status).toBe(200);
          const items = reply.body['items'] as Event[];
          token = reply.body['next_token'] as string | null;
          expect(items.length).toBe(token ? limit : all.length - seen.length);
          expect(items.length).toBeGreaterThan(0);
          seen.push(...items);
          pages++;
        } while (token);
        expect(seen).toEqual(all);
        expect(pages).toBe(Math.ceil(all.length / limit));
      }
    });

    it('action, target_id, actor_id, and their combinations', async () => {
      const pick = (f: (e: Event) => boolean) => all.filter(f).map((e) => e['event_id']);
      const ids = async (query: string) => ((await list(admin, query)).body['items'] as Event[]).map((e) => e['event_id']);
      expect(await ids('?action=key.updated')).toEqual(pick((e) => e.action === 'key.updated'));
      expect(await ids(`?target_id=${keyA}`)).toEqual(pick((e) => e.target.id === keyA));
      expect(await ids(`?target_id=${accountId}`)).toEqual(pick((e) => e.target.id === accountId));
      expect(await ids(`?actor_id=${adminId}`)).toEqual(pick((e) => e.actor['key_id'] === adminId));
      expect(await ids(`?actor_id=${adminId}&action=key.updated`)).toEqual(pick((e) => e.actor['key_id'] === adminId && e.action === 'key.updated'));
      expect(await ids(`?target_id=${keyA}&action=key.created`)).toEqual(pick((e) => e.target.id === keyA && e.action === 'key.created'));
      expect(await ids(`?target_id=${keyA}&actor_id=${adminId}&action=key.updated`)).toHaveLength(3);
      // A combination pages full pages too (the narrowest partition read, the rest filtered).
      const first = await list(admin, `?actor_id=${adminId}&action=key.updated&limit=2`);
      expect((first.body['items'] as Event[]).length).toBe(2);
      const second = await list(admin, `?actor_id=${adminId}&action=key.updated&limit=2&next_token=${encodeURIComponent(String(first.body['next_token']))}`);
      expect({ n: (second.body['items'] as Event[]).length, next: second.body['next_token'] }).toEqual({ n: 1, next: null });
      expect(await ids('?action=member.removed')).toEqual([]);
    });

    it('since (inclusive) and until (exclusive), alone and with a filter', async () => {
      const times = all.map((e) => String(e['occurred_at']));
      const middle = times[Math.floor(times.length / 2)]!;
      const ids = async (query: string) => ((await list(admin, query)).body['items'] as Event[]).map((e) => e['event_id']);
      expect(await ids(`?since=${middle}`)).toEqual(all.filter((e) => String(e['occurred_at']) >= middle).map((e) => e['event_id']));
      expect(await ids(`?until=${middle}`)).toEqual(all.filter((e) => String(e['occurred_at']) < middle).map((e) => e['event_id']));
      expect(await ids(`?since=${times.at(-1)!}&until=${times[0]!}`)).toEqual(all.filter((e) => e['occurred_at'] !== times[0]).map((e) => e['event_id']));
      expect(await ids(`?target_id=${keyA}&since=${middle}`)).toEqual(all.filter((e) => e.target.id === keyA && String(e['occurred_at']) >= middle).map((e) => e['event_id']));
      // An offset means the same instant.
      const offset = new Date(Date.parse(middle) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      expect(await ids(`?since=${encodeURIComponent(offset)}`)).toEqual(await ids(`?since=${middle}`));
      expect(await ids('?since=2000-01-01&until=2000-01-02')).toEqual([]);
    });

    it('a token is the account’s and the filters’: another account’s, another filter’s or a forged one is 400', async () => {
      const first = await list(admin, '?limit=2');
      const token = String(first.body['next_token']);
      const other = await account();
      expectError(await list(other.key, `?limit=2&next_token=${encodeURIComponent(token)}`), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'next_token' })] });
      expectError(await list(admin, `?limit=2&action=key.updated&next_token=${encodeURIComponent(token)}`), 400, 'VALIDATION_ERROR');
      const [body, mac] = token.split('.');
      const decoded = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8')) as Record<string, string>;
      // Well formed, naming an event that does not exist, under the real token's MAC.
      const forged = `${Buffer.from(JSON.stringify({ ...decoded, s: decoded['s']!.replace(/evt_.{20}$/, 'evt_AAAAAAAAAAAAAAAAAAAA') })).toString('base64url')}.${mac!}`;
      for (const bad of [forged, 'garbage', Buffer.from('{"a":1}').toString('base64url'), 'x'.repeat(3000)]) {
        expectError(await list(admin, `?next_token=${encodeURIComponent(bad)}`), 400, 'VALIDATION_ERROR');
      }
      // The same token with the same filters goes on.
      expect((await list(admin, `?limit=2&next_token=${encodeURIComponent(token)}`)).status).toBe(200);
    });

    it('bad parameters are 400 naming them', async () => {
      for (const [query, field] of [
        ['?limit=0', 'limit'],
        ['?limit=101', 'limit'],
        ['?action=key.deleted', 'action'],
        ['?since=yesterday', 'since'],
        ['?until=2026-13-01', 'until'],
        // Days the calendar does not have, which Date would roll over into March.
        ['?since=2026-02-30', 'since'],
        ['?until=2026-02-29T12:00:00Z', 'until'],
        ['?since=2026-04-31T00:00+02:00', 'since'],
        ['?since=2026-02-01&until=2026-01-01', 'since'],
        ['?target=key_1', 'target'],
        ['?action=key.created&action=key.updated', 'action'],
      ] as const) {
        expectError(await list(admin, query), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field })] });
      }
    });
  });
});

describe('no event holds a key, a key hash or a secret', () => {
  it('the whole audit table, searched for every plaintext key and secret of this file and their hashes', async () => {
    const items: unknown[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await t.stack.doc.send(new ScanCommand({ TableName: t.stack.state.tables.audit, ConsistentRead: true, ExclusiveStartKey: start }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    expect(items.length).toBeGreaterThan(50);
    const text = JSON.stringify(items);
    const plaintexts = secrets.filter((s) => s.startsWith('knouds_') || s.startsWith('whsec_'));
    expect(plaintexts.length).toBeGreaterThan(30);
    for (const secret of plaintexts) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(createHash('sha256').update(secret).digest('hex'));
    }
    // Nor anything shaped like one.
    expect(text).not.toMatch(/knouds_(live|test)_|whsec_|[0-9a-f]{64}/);
  });
});
