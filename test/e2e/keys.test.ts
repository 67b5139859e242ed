/**
 * Contract §1–§4 "Keys" end to end over HTTP against the local runner: every key endpoint, the
 * capability, workspace and tier rules, cross-account isolation, rotation with grace, usage counters,
 * and the key limit under concurrency.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { setAccountTier } from '../../lambdas/shared/services/keys.js';
import { FIXED_CAPABILITIES } from '../../lambdas/shared/capabilities.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack('e2e-keys');
});
afterAll(() => t?.close());

const KEY_FIELDS = [
  'key_id',
  'name',
  'prefix',
  'environment',
  'capabilities',
  'workspaces',
  'account_id',
  'tier',
  'created_at',
  'expires_at',
  'last_used',
  'created_by',
  'metadata',
  'enabled',
  'rotated_to',
].sort();

function expectError(reply: Reply, status: number, code: string, extra: Record<string, unknown> = {}) {
  // Every error body may carry its request id (API.md §3); nothing else beyond the contract's fields.
  const { request_id: requestId, ...body } = reply.body;
  expect({ status: reply.status, body }).toEqual({
    status,
    body: { error: expect.any(String), code, ...extra },
  });
  if (requestId !== undefined) expect(typeof requestId).toBe('string');
}

function expectRateLimitHeaders(reply: Reply) {
  expect(reply.headers.get('x-ratelimit-limit')).toMatch(/^\d+$/);
  expect(reply.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
  expect(reply.headers.get('x-ratelimit-reset')).toMatch(/^\d+$/);
}

async function activeKeyIds(accountId: string): Promise<string[]> {
  const page = await t.deps().keys.listActive(accountId, new Date(), 100);
  return page.items.map((k) => k.key_id).sort();
}

describe('POST /keys', () => {
  it('creates a key from a preset and shows the plaintext once', async () => {
    const { key: admin, accountId } = await t.account('business');
    const reply = await t.api(admin, 'POST', '/keys', { name: 'CI deploy', preset: 'workflow-deploy', expires_in_days: 90 });
    expect(reply.status).toBe(201);
    expectRateLimitHeaders(reply);
    // It holds the plaintext: no cache (a browser's, a proxy's) may keep it; nor the webhook secret's.
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect((await t.api(admin, 'GET', '/webhooks/secret')).headers.get('cache-control')).toBe('no-store');
    // Never read as anything but JSON, the functions' answers and the gateway's own alike.
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await t.api('knouds_live_not_a_key', 'GET', '/me')).headers.get('x-content-type-options')).toBe('nosniff');
    // The gateway's mocks (health, 405) and the OpenAPI function's answer too.
    for (const [method, path] of [['GET', '/health'], ['DELETE', '/health'], ['GET', '/openapi.json']] as const) {
      expect({ path, method, nosniff: (await t.api(undefined, method, path)).headers.get('x-content-type-options') }).toEqual({ path, method, nosniff: 'nosniff' });
    }
    const body = reply.body as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual([...KEY_FIELDS, 'api_key'].sort());
    expect(body).toMatchObject({
      name: 'CI deploy',
      environment: 'live',
      capabilities: ['workflow:read', 'workflow:run'],
      workspaces: ['*'],
      account_id: accountId,
      tier: 'business',
      last_used: null,
    });
    const apiKey = String(body['api_key']);
    expect(body['prefix']).toBe(apiKey.slice(0, 16));
    const days = (Date.parse(String(body['expires_at'])) - Date.parse(String(body['created_at']))) / 86_400_000;
    expect(days).toBe(90);
    // The new key works, and the plaintext is never shown again.
    const verify = await t.api(apiKey, 'GET', '/keys/verify');
    expect(verify.status).toBe(200);
    const read = await t.api(admin, 'GET', `/keys/${String(body['key_id'])}`);
    expect(read.status).toBe(200);
    expect(read.text).not.toContain(apiKey);
    expect((await t.api(admin, 'GET', '/keys')).text).not.toContain(apiKey);
  });

  it('takes explicit capabilities, scopes, workspaces and the test environment', async () => {
    const { key: admin } = await t.account('business');
    const explicit = await t.api(admin, 'POST', '/keys', {
      name: 'one workflow',
      capabilities: ['workflow:nightly-report:run', 'execution:read', 'execution:read'],
      workspaces: ['ws-b', 'ws-a'],
      environment: 'test',
    });
    expect(explicit.status).toBe(201);
    expect(explicit.body).toMatchObject({
      capabilities: ['execution:read', 'workflow:nightly-report:run'],
      workspaces: ['ws-a', 'ws-b'],
      environment: 'test',
      expires_at: null,
    });
    expect(String(explicit.body['api_key'])).toMatch(/^knouds_test_/);
    const scoped = await t.api(admin, 'POST', '/keys', { name: 'deployment', scope: 'deployment' });
    expect(scoped.body['capabilities']).toEqual(['execution:cancel', 'execution:read', 'workflow:read', 'workflow:run']);
  });

  it.each([
    ['no name', { preset: 'read-only' }, 'name'],
    ['an empty name', { name: '', preset: 'read-only' }, 'name'],
    ['a name over 100 characters', { name: 'x'.repeat(101), preset: 'read-only' }, 'name'],
    ['two of capabilities, preset, scope', { name: 'x', preset: 'read-only', scope: 'free' }, 'capabilities'],
    ['none of capabilities, preset, scope', { name: 'x' }, 'capabilities'],
    ['an unknown capability', { name: 'x', capabilities: ['workflow:everything'] }, 'capabilities.0'],
    ['an unknown preset', { name: 'x', preset: 'god-mode' }, 'preset'],
    ['expires_in_days not in the list', { name: 'x', preset: 'read-only', expires_in_days: 5 }, 'expires_in_days'],
    ['an unknown environment', { name: 'x', preset: 'read-only', environment: 'prod' }, 'environment'],
    ['an unknown field', { name: 'x', preset: 'read-only', admin: true }, 'admin'],
    ['a bad workspace id', { name: 'x', preset: 'read-only', workspaces: ['has space'] }, 'workspaces.0'],
  ])('refuses %s with 400 VALIDATION_ERROR naming the field, and creates nothing', async (_case, body, field) => {
    const { key: admin, accountId } = await t.account('business');
    const before = await activeKeyIds(accountId);
    const reply = await t.api(admin, 'POST', '/keys', body);
    expectError(reply, 400, 'VALIDATION_ERROR', { details: expect.arrayContaining([{ field, message: expect.any(String) }]) });
    expectRateLimitHeaders(reply);
    expect(await activeKeyIds(accountId)).toEqual(before);
  });

  it('refuses a body that is not JSON, and one over the size cap', async () => {
    const { key: admin } = await t.account('business');
    expectError(await t.api(admin, 'POST', '/keys', '{"name": '), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'body', message: 'is not valid JSON' }],
    });
    expectError(await t.api(admin, 'POST', '/keys', '[1, 2]'), 400, 'VALIDATION_ERROR', { details: expect.any(Array) });
    expectError(await t.api(admin, 'POST', '/keys', { name: 'x'.repeat(170_000), preset: 'read-only' }), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('takes the largest body the contract allows: metadata at its limits, every character escaped as an encoder that keeps to ASCII writes it', async () => {
    const { key: admin } = await t.account('business');
    const emoji = '😀';
    const metadata = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${emoji.repeat(38)}${String(i).padStart(2, '0')}`, emoji.repeat(500)]));
    const body = { name: emoji.repeat(100), preset: 'read-only', metadata };
    // As Python's json.dumps writes it by default (ensure_ascii): 12 bytes for each emoji.
    const text = JSON.stringify(body).replace(/[\u{10000}-\u{10FFFF}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16)}\\u${c.charCodeAt(1).toString(16)}`);
    expect(Buffer.byteLength(text)).toBeGreaterThan(120 * 1024);
    const reply = await t.api(admin, 'POST', '/keys', text);
    expect(reply.status).toBe(201);
    expect(reply.body['metadata']).toEqual(metadata);
    expect(reply.body['name']).toBe(body.name);
  });

  it('holds the key limit under concurrency: 15 parallel creates, exactly 10 active keys', async () => {
    const { key: admin, accountId } = await t.account('business');
    const replies = await Promise.all(
      Array.from({ length: 15 }, (_, i) => t.api(admin, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' })),
    );
    const statuses = replies.map((r) => r.status).sort();
    // The admin key holds one of the 10 slots.
    expect(statuses.filter((s) => s === 201)).toHaveLength(9);
    for (const r of replies.filter((x) => x.status !== 201)) expectError(r, 409, 'KEY_LIMIT_REACHED', { limit: 10, active: 10 });
    expect(await activeKeyIds(accountId)).toHaveLength(10);
  });
});

describe('GET /keys', () => {
  it('pages through the active keys with limit and next_token', async () => {
    const { key: admin, keyId: adminId } = await t.account('business');
    const created: string[] = [adminId];
    for (let i = 0; i < 4; i++) {
      created.push(String((await t.api(admin, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' })).body['key_id']));
    }
    const revoked = created.pop()!;
    expect((await t.api(admin, 'DELETE', `/keys/${revoked}`)).status).toBe(204);

    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const reply: Reply = await t.api(admin, 'GET', `/keys?limit=2${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
      expect(reply.status).toBe(200);
      const items = reply.body['items'] as { key_id: string }[];
      expect(items.length).toBeLessThanOrEqual(2);
      seen.push(...items.map((k) => k.key_id));
      token = reply.body['next_token'] as string | null;
      // A page token names a position, never a key hash.
      expect(Buffer.from((token ?? '').split('.')[0]!, 'base64url').toString('utf8')).not.toMatch(/[0-9a-f]{64}/);
      pages++;
    } while (token && pages < 10);
    expect(seen.sort()).toEqual([...created].sort());
    const all = await t.api(admin, 'GET', '/keys');
    expect(all.body['next_token']).toBeNull();
    expect((all.body['items'] as unknown[]).length).toBe(4);
  });

  it('refuses a bad limit and another account’s page token', async () => {
    const { key: a } = await t.account('business');
    const { key: b } = await t.account('business');
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5']) {
      expectError(await t.api(a, 'GET', `/keys?${q}`), 400, 'VALIDATION_ERROR', { details: [{ field: 'limit', message: expect.any(String) }] });
    }
    await t.api(b, 'POST', '/keys', { name: 'x', preset: 'read-only' });
    const page = await t.api(b, 'GET', '/keys?limit=1');
    const token = String(page.body['next_token']);
    expect(token).not.toBe('null');
    expectError(await t.api(a, 'GET', `/keys?next_token=${encodeURIComponent(token)}`), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'next_token', message: expect.any(String) }],
    });
    expectError(await t.api(a, 'GET', '/keys?next_token=garbage'), 400, 'VALIDATION_ERROR', { details: expect.any(Array) });
  });
});

describe('PATCH /keys/{key_id}', () => {
  it('edits name, capabilities and workspaces, in force from the next request', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'old', preset: 'full-deploy', workspaces: ['ws-a'] });
    const id = String(made.body['key_id']);
    const edited = await t.api(admin, 'PATCH', `/keys/${id}`, {
      name: 'new',
      capabilities: ['workflow:read'],
      workspaces: ['ws-b', 'ws-c'],
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ key_id: id, name: 'new', capabilities: ['workflow:read'], workspaces: ['ws-b', 'ws-c'] });
    const verify = await t.api(String(made.body['api_key']), 'GET', '/keys/verify');
    expect(verify.body).toMatchObject({ name: 'new', capabilities: ['workflow:read'], workspaces: ['ws-b', 'ws-c'] });
  });

  it('refuses an empty body, unknown fields and bad values, changing nothing', async () => {
    const { key: admin, keyId } = await t.account('business');
    for (const body of [{}, { prefix: 'x' }, { capabilities: [] }, { capabilities: ['nope'] }, { name: '' }, 'null']) {
      expectError(await t.api(admin, 'PATCH', `/keys/${keyId}`, body), 400, 'VALIDATION_ERROR', { details: expect.any(Array) });
    }
    expect((await t.api(admin, 'GET', `/keys/${keyId}`)).body).toMatchObject({ name: 'admin', workspaces: ['*'] });
  });
});

describe('DELETE /keys/{key_id}', () => {
  it('revokes at once: 204, then the key gets 401, and a second delete 404', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'gone', preset: 'read-only' });
    const id = String(made.body['key_id']);
    const revoke = await t.api(admin, 'DELETE', `/keys/${id}`);
    expect(revoke.status).toBe(204);
    expect(revoke.text).toBe('');
    expectRateLimitHeaders(revoke);
    expectError(await t.api(String(made.body['api_key']), 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
    expectError(await t.api(admin, 'DELETE', `/keys/${id}`), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'GET', `/keys/${id}`), 404, 'NOT_FOUND');
  });

  it('a key may revoke itself', async () => {
    const { key: admin, keyId } = await t.account('business');
    expect((await t.api(admin, 'DELETE', `/keys/${keyId}`)).status).toBe(204);
    expect((await t.api(admin, 'GET', '/keys/verify')).status).toBe(401);
  });
});

describe('POST /keys/{key_id}/rotate', () => {
  it('without grace: a new key with the same name, capabilities and workspaces; the old one stops at once', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'bot', preset: 'workflow-deploy', workspaces: ['ws-a'], expires_in_days: 30 });
    const rotated = await t.api(admin, 'POST', `/keys/${String(made.body['key_id'])}/rotate`);
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({
      name: 'bot',
      capabilities: ['workflow:read', 'workflow:run'],
      workspaces: ['ws-a'],
      environment: 'live',
      expires_at: made.body['expires_at'],
    });
    expect(rotated.body['key_id']).not.toBe(made.body['key_id']);
    expect(rotated.body['api_key']).not.toBe(made.body['api_key']);
    expectError(await t.api(String(made.body['api_key']), 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
    expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
  });

  it('with grace_period_seconds: both keys work for that long, then only the new one', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'graceful', preset: 'read-only' });
    const oldKey = String(made.body['api_key']);
    const rotated = await t.api(admin, 'POST', `/keys/${String(made.body['key_id'])}/rotate`, { grace_period_seconds: 2 });
    expect(rotated.status).toBe(201);
    const newKey = String(rotated.body['api_key']);
    const oldId = String(made.body['key_id']);
    const newId = String(rotated.body['key_id']);
    expect(made.body['rotated_to']).toBeNull();
    expect(rotated.body['rotated_to']).toBeNull();
    // The old key says what replaced it, wherever it is read: its own verify, GET /keys/{id}, the list.
    expect((await t.api(oldKey, 'GET', '/keys/verify')).body).toMatchObject({ key_id: oldId, rotated_to: newId });
    expect((await t.api(newKey, 'GET', '/keys/verify')).body).toMatchObject({ key_id: newId, rotated_to: null });
    expect((await t.api(admin, 'GET', `/keys/${oldId}`)).body).toMatchObject({ rotated_to: newId, expires_at: expect.any(String) });
    const listed = ((await t.api(admin, 'GET', '/keys')).body['items'] as { key_id: string; rotated_to: string | null }[]).filter((k) => [oldId, newId].includes(k.key_id));
    expect(Object.fromEntries(listed.map((k) => [k.key_id, k.rotated_to]))).toEqual({ [oldId]: newId, [newId]: null });
    // A key is rotated once.
    expectError(await t.api(admin, 'POST', `/keys/${String(made.body['key_id'])}/rotate`), 409, 'ALREADY_EXISTS', {
      rotated_to: rotated.body['key_id'],
    });
    // An edit of the key in its grace is refused: the replacement is the key to edit.
    expectError(await t.api(admin, 'PATCH', `/keys/${String(made.body['key_id'])}`, { name: 'renamed' }), 409, 'KEY_ROTATED', {
      rotated_to: rotated.body['key_id'],
    });
    // GET /me counts the active keys the list shows: the key in its grace too, and not once it has ended
    // (its slot is released later, by a create on a full account or housekeeping).
    const counted = async () => ({
      me: ((await t.api(admin, 'GET', '/me')).body['account'] as { active_keys: number }).active_keys,
      listed: ((await t.api(admin, 'GET', '/keys')).body['items'] as unknown[]).length,
    });
    expect(await counted()).toEqual({ me: 3, listed: 3 });
    await new Promise((r) => setTimeout(r, 2100));
    expectError(await t.api(oldKey, 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
    expect((await t.api(newKey, 'GET', '/keys/verify')).status).toBe(200);
    expect(await counted()).toEqual({ me: 2, listed: 2 });
  });

  it('works at the key limit (the new key takes the old one’s slot) and refuses a bad grace period', async () => {
    const { key: admin, keyId, accountId } = await t.account('business');
    for (let i = 0; i < 9; i++) await t.api(admin, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' });
    expect(await activeKeyIds(accountId)).toHaveLength(10);
    for (const grace of [-1, 86_401, 1.5, '10']) {
      expectError(await t.api(admin, 'POST', `/keys/${keyId}/rotate`, { grace_period_seconds: grace }), 400, 'VALIDATION_ERROR', {
        details: expect.any(Array),
      });
    }
    const rotated = await t.api(admin, 'POST', `/keys/${keyId}/rotate`, { grace_period_seconds: 0 });
    expect(rotated.status).toBe(201);
    expect(await activeKeyIds(accountId)).toHaveLength(10);
  });
});

describe('GET /keys/{key_id}/usage', () => {
  it('counts requests today and this month, with the key’s rate limit and last use', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'counted', preset: 'read-only', environment: 'test' });
    const id = String(made.body['key_id']);
    const fresh = await t.api(admin, 'GET', `/keys/${id}/usage`);
    expect(fresh.body).toEqual({ key_id: id, requests_today: 0, requests_this_month: 0, rate_limit: 10, last_used: null, daily: expect.any(Array) });
    for (let i = 0; i < 3; i++) await t.api(String(made.body['api_key']), 'GET', '/keys/verify');
    // A refused call still counts: it reached the API and was authenticated.
    await t.api(String(made.body['api_key']), 'GET', '/keys');
    const used = await t.api(admin, 'GET', `/keys/${id}/usage`);
    expect(used.body).toMatchObject({ key_id: id, requests_today: 4, requests_this_month: 4, rate_limit: 10 });
    expect(Date.now() - Date.parse(String(used.body['last_used']))).toBeLessThan(10_000);
    const read = await t.api(admin, 'GET', `/keys/${id}`);
    expect(read.body['last_used']).toBe(used.body['last_used']);
  });

  it('gives the requests of each of the last ?days= UTC days (default 30), oldest first, today last, zeros included', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'charted', preset: 'read-only', environment: 'test' });
    const id = String(made.body['key_id']);
    await t.api(String(made.body['api_key']), 'GET', '/keys/verify');
    // Earlier days' hour items, as the counter writes them (two hours of one day add up).
    const day = (ago: number) => new Date(Date.now() - ago * 86_400_000).toISOString().slice(0, 10);
    const put = (ago: number, hour: string, requests: number) =>
      t.stack.doc.send(new PutCommand({ TableName: t.stack.state.tables.usage, Item: { key_id: id, hour: `${day(ago)}T${hour}`, requests } }));
    await Promise.all([put(3, '05', 7), put(3, '17', 5), put(29, '00', 2), put(30, '12', 100), put(89, '23', 4)]);

    const usage = await t.api(admin, 'GET', `/keys/${id}/usage`);
    const daily = usage.body['daily'] as { date: string; requests: number }[];
    expect(daily).toHaveLength(30);
    expect(daily[0]).toEqual({ date: day(29), requests: 2 });
    expect(daily[26]).toEqual({ date: day(3), requests: 12 });
    expect(daily[29]).toEqual({ date: day(0), requests: 1 });
    expect(daily.reduce((n, d) => n + d.requests, 0)).toBe(15);
    expect(daily.map((d) => d.date)).toEqual([...daily.map((d) => d.date)].sort());

    const long = await t.api(admin, 'GET', `/keys/${id}/usage?days=90`);
    expect((long.body['daily'] as unknown[]).length).toBe(90);
    expect((long.body['daily'] as { requests: number }[]).reduce((n, d) => n + d.requests, 0)).toBe(119);
    const one = await t.api(admin, 'GET', `/keys/${id}/usage?days=1`);
    expect(one.body['daily']).toEqual([{ date: day(0), requests: 1 }]);
    expect(one.body['requests_today']).toBe(1);
    for (const bad of ['0', '91', 'x', '1.5', '']) {
      expectError(await t.api(admin, 'GET', `/keys/${id}/usage?days=${bad}`), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'days' })] });
    }
  });
});

describe('rate limits', () => {
  it('admits exactly the limit of 25 simultaneous requests; the rest get 429 with Retry-After', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'limited', preset: 'read-only', environment: 'test' });
    const key = String(made.body['api_key']);
    // Stay inside one fixed window.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await new Promise((r) => setTimeout(r, 60_500 - intoMinute));
    const replies = await Promise.all(Array.from({ length: 25 }, () => t.api(key, 'GET', '/keys/verify')));
    const ok = replies.filter((r) => r.status === 200);
    const limited = replies.filter((r) => r.status === 429);
    expect(ok).toHaveLength(10);
    expect(limited).toHaveLength(15);
    expect(ok.map((r) => Number(r.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const nowSeconds = Math.floor(Date.now() / 1000);
    for (const r of limited) {
      expectError(r, 429, 'RATE_LIMIT_EXCEEDED');
      const reset = Number(r.headers.get('x-ratelimit-reset'));
      expect(reset % 60).toBe(0);
      expect(r.headers.get('x-ratelimit-limit')).toBe('10');
      expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
      const retryAfter = Number(r.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(Math.abs(nowSeconds + retryAfter - reset)).toBeLessThanOrEqual(2);
    }
    const usage = await t.api(admin, 'GET', `/keys/${String(made.body['key_id'])}/usage`);
    expect(usage.body['requests_today']).toBe(10);
  });
});

describe('capabilities, workspaces and tiers', () => {
  it('a key without the capability gets 403 CAPABILITY_DENIED with required and actual, and rate-limit headers', async () => {
    const { key } = await t.account('business', { name: 'reader', preset: 'read-only' });
    const cases: [string, string, string][] = [
      ['GET', '/keys', 'keys:read'],
      ['POST', '/keys', 'keys:write'],
      ['GET', '/keys/key_x', 'keys:read'],
      ['PATCH', '/keys/key_x', 'keys:write'],
      ['DELETE', '/keys/key_x', 'keys:write'],
      ['POST', '/keys/key_x/rotate', 'keys:write'],
      ['GET', '/keys/key_x/usage', 'keys:read'],
    ];
    for (const [method, path, required] of cases) {
      const reply = await t.api(key, method, path, method === 'GET' || method === 'DELETE' ? undefined : { name: 'x', preset: 'read-only' });
      expect(reply.body).toEqual({ error: 'Insufficient capability', code: 'CAPABILITY_DENIED', request_id: reply.headers.get('x-request-id'), required, actual: ['workflow:read'] });
      expect(reply.status).toBe(403);
      expectRateLimitHeaders(reply);
    }
  });

  it('a free account’s key authenticates but holds nothing in force', async () => {
    const { key, accountId } = await t.account('pro', { name: 'k', capabilities: ['keys:read', 'keys:write'] });
    await setAccountTier(t.deps(), accountId, 'free');
    // The key's object keeps what it was given (docs/api.md: "see GET /me for what is in force").
    expect((await t.api(key, 'GET', '/keys/verify')).body).toMatchObject({ tier: 'free', capabilities: ['keys:read', 'keys:write'] });
    expect((await t.api(key, 'GET', '/me')).body).toMatchObject({ account: { tier: 'free' }, capabilities: [] });
    expectError(await t.api(key, 'GET', '/keys'), 403, 'CAPABILITY_DENIED', { required: 'keys:read', actual: [] });
  });

  it('checks the tier ceiling before the caller’s own capabilities', async () => {
    const { key, accountId } = await t.account('pro', { name: 'pro admin', capabilities: ['keys:write', 'workflow:run'] });
    const before = await activeKeyIds(accountId);
    expectError(await t.api(key, 'POST', '/keys', { name: 'x', capabilities: ['model:run'] }), 403, 'TIER_CEILING_EXCEEDED', {
      tier: 'pro',
      capability: 'model:run',
    });
    expectError(await t.api(key, 'POST', '/keys', { name: 'x', capabilities: ['model:gpt-mini:run'] }), 403, 'TIER_CEILING_EXCEEDED', {
      tier: 'pro',
      capability: 'model:gpt-mini:run',
    });
    expectError(await t.api(key, 'POST', '/keys', { name: 'x', capabilities: ['workflow:read'] }), 403, 'CAPABILITY_DENIED', {
      required: 'workflow:read',
      actual: ['keys:write', 'workflow:run'],
    });
    // workflow:run covers workflow:<slug>:run.
    const made = await t.api(key, 'POST', '/keys', { name: 'x', capabilities: ['workflow:daily:run'] });
    expect(made.status).toBe(201);
    expect((await activeKeyIds(accountId)).length).toBe(before.length + 1);
    // Edits meet the same ceiling first.
    expectError(
      await t.api(key, 'PATCH', `/keys/${String(made.body['key_id'])}`, { capabilities: ['model:run'] }),
      403,
      'TIER_CEILING_EXCEEDED',
      { tier: 'pro', capability: 'model:run' },
    );
  });

  it('a key that a tier downgrade put over the ceiling: disabled and revoked by whoever holds keys:write, never switched back on or rotated by them', async () => {
    const { key, accountId } = await t.account('business');
    const strong = await t.api(key, 'POST', '/keys', { name: 'models', capabilities: ['model:run', 'workflow:read'] });
    const strongId = String(strong.body['key_id']);
    // A caller that never held model:run: it could not manage the key before the downgrade.
    const limited = String((await t.api(key, 'POST', '/keys', { name: 'limited', capabilities: ['keys:read', 'keys:write', 'workflow:read'] })).body['api_key']);
    expectError(await t.api(limited, 'DELETE', `/keys/${strongId}`), 403, 'CAPABILITY_DENIED', { required: 'model:run', actual: ['keys:read', 'keys:write', 'workflow:read'] });
    await setAccountTier(t.deps(), accountId, 'pro');
    // The admin key itself now holds model:run only nominally; the ceiling cuts it at the authorizer.
    // Rotating would hand out a secret for model:run, which the caller no longer holds in force.
    expectError(await t.api(key, 'POST', `/keys/${strongId}/rotate`), 403, 'TIER_CEILING_EXCEEDED', { tier: 'pro', capability: 'model:run' });
    // GET /keys/verify shows the key's object (what it holds, as GET /keys/{id}); GET /me what is in force.
    const verify = await t.api(String(strong.body['api_key']), 'GET', '/keys/verify');
    expect(verify.body['capabilities']).toEqual(['model:run', 'workflow:read']);
    expect((await t.api(key, 'GET', `/keys/${strongId}`)).body['capabilities']).toEqual(['model:run', 'workflow:read']);
    expect((await t.api(String(strong.body['api_key']), 'GET', '/me')).body['capabilities']).toEqual(['workflow:read']);
    // Stopping it counts what is in force (workflow:read), which the limited caller covers: it may disable it …
    const disabled = await t.api(limited, 'PATCH', `/keys/${strongId}`, { enabled: false });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ enabled: false, capabilities: ['model:run', 'workflow:read'] });
    // … but not switch it back on, nor change anything else: that counts all it holds (model:run), else
    // the key would be back with model:run the day the tier goes up, by a caller who never held it. The
    // tier ceiling is checked first, as for a new key: for the admin key too, which holds model:run.
    for (const body of [{ enabled: true }, { name: 'renamed' }, { metadata: { a: 'b' } }, { workspaces: ['ws-a'] }, { enabled: false, name: 'x' }]) {
      for (const caller of [limited, key]) {
        expectError(await t.api(caller, 'PATCH', `/keys/${strongId}`, body), 403, 'TIER_CEILING_EXCEEDED', { tier: 'pro', capability: 'model:run' });
      }
    }
    // Replacing its capabilities by ones the caller may grant is stopping it too.
    expect((await t.api(limited, 'PATCH', `/keys/${strongId}`, { capabilities: ['workflow:read'] })).body).toMatchObject({ capabilities: ['workflow:read'] });
    // A second such key is revoked by the limited caller: a leaked key is stopped whatever the tier did.
    await setAccountTier(t.deps(), accountId, 'business');
    const another = await t.api(key, 'POST', '/keys', { name: 'models 2', capabilities: ['model:run', 'workflow:read'] });
    await setAccountTier(t.deps(), accountId, 'pro');
    expect((await t.api(limited, 'DELETE', `/keys/${String(another.body['key_id'])}`)).status).toBe(204);
    expect((await t.api(String(another.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);
  });

  describe('escalation matrix: a key can never grant a capability it lacks', () => {
    // The caller holds keys:read, keys:write and workflow:run; it lacks every other capability.
    const held = ['keys:read', 'keys:write', 'workflow:run'];
    const lacking = [...FIXED_CAPABILITIES.filter((c) => !held.includes(c)), 'model:some-model:run'];

    it.each(lacking)('%s: through create, edit and rotate', async (capability) => {
      const { key: admin, accountId } = await t.account('business');
      const caller = String((await t.api(admin, 'POST', '/keys', { name: 'limited', capabilities: held })).body['api_key']);
      const own = await t.api(caller, 'POST', '/keys', { name: 'mine', capabilities: ['workflow:run'] });
      expect(own.status).toBe(201);
      const target = await t.api(admin, 'POST', '/keys', { name: 'strong', capabilities: [capability] });
      const before = await t.deps().keys.listActive(accountId, new Date(), 100);
      const denied = { required: capability, actual: held };

      expectError(await t.api(caller, 'POST', '/keys', { name: 'x', capabilities: [capability] }), 403, 'CAPABILITY_DENIED', denied);
      expectError(
        await t.api(caller, 'PATCH', `/keys/${String(own.body['key_id'])}`, { capabilities: ['workflow:run', capability] }),
        403,
        'CAPABILITY_DENIED',
        denied,
      );
      expectError(await t.api(caller, 'PATCH', `/keys/${String(target.body['key_id'])}`, { name: 'renamed' }), 403, 'CAPABILITY_DENIED', denied);
      expectError(await t.api(caller, 'POST', `/keys/${String(target.body['key_id'])}/rotate`), 403, 'CAPABILITY_DENIED', denied);
      expectError(await t.api(caller, 'DELETE', `/keys/${String(target.body['key_id'])}`), 403, 'CAPABILITY_DENIED', denied);
      // Nothing changed.
      expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items).toEqual(before.items);
    });

    it('workspaces: only a subset of the caller’s own', async () => {
      const { key: admin, accountId } = await t.account('business');
      const caller = String(
        (await t.api(admin, 'POST', '/keys', { name: 'ws', capabilities: ['keys:write', 'workflow:run'], workspaces: ['ws-a'] })).body['api_key'],
      );
      const before = await activeKeyIds(accountId);
      for (const workspaces of [['ws-b'], ['*'], ['ws-a', 'ws-b']]) {
        const reply = await t.api(caller, 'POST', '/keys', { name: 'x', capabilities: ['workflow:run'], workspaces });
        expectError(reply, 403, 'WORKSPACE_DENIED', { workspace_id: workspaces.find((w) => w !== 'ws-a') });
      }
      // Omitted workspaces mean all of them: beyond this caller too.
      expectError(await t.api(caller, 'POST', '/keys', { name: 'x', capabilities: ['workflow:run'] }), 403, 'WORKSPACE_DENIED', {
        workspace_id: '*',
      });
      const allWs = await t.api(admin, 'POST', '/keys', { name: 'all', capabilities: ['workflow:run'] });
      expectError(await t.api(caller, 'PATCH', `/keys/${String(allWs.body['key_id'])}`, { name: 'x' }), 403, 'WORKSPACE_DENIED', {
        workspace_id: '*',
      });
      expect(await activeKeyIds(accountId)).toEqual([...before, String(allWs.body['key_id'])].sort());
      expect((await t.api(caller, 'POST', '/keys', { name: 'ok', capabilities: ['workflow:run'], workspaces: ['ws-a'] })).status).toBe(201);
    });
  });
});

describe('cross-account isolation', () => {
  it('another account’s key id is 404 on every key endpoint, and nothing changes', async () => {
    const a = await t.account('business');
    const b = await t.account('business');
    const bKey = await t.api(b.key, 'POST', '/keys', { name: 'b', preset: 'read-only' });
    const id = String(bKey.body['key_id']);
    const calls: [string, string, unknown?][] = [
      ['GET', `/keys/${id}`],
      ['PATCH', `/keys/${id}`, { name: 'hijacked' }],
      ['DELETE', `/keys/${id}`],
      ['POST', `/keys/${id}/rotate`, {}],
      ['GET', `/keys/${id}/usage`],
    ];
    for (const [method, path, body] of calls) {
      expectError(await t.api(a.key, method, path, body), 404, 'NOT_FOUND');
    }
    expect(((await t.api(a.key, 'GET', '/keys')).body['items'] as { key_id: string }[]).map((k) => k.key_id)).not.toContain(id);
    expect((await t.api(String(bKey.body['api_key']), 'GET', '/keys/verify')).body).toMatchObject({ name: 'b', account_id: b.accountId });
  });
});
