/**
 * Issue #15: `Idempotency-Key` end to end (API.md §4 "Retries and idempotency"), against the local stack
 * whose bundles reach DynamoDB Local through the fault proxy. A retry of the same request replays the
 * first answer (`Idempotent-Replayed: true`) without the work being done again, which the tests check in
 * the tables: one key, one rotation, one execution, one in-flight slot. Lost answers on the idempotency
 * record's writes and on the work's own writes, a client that gives up and retries while the first is in
 * flight, concurrent duplicates, another request or another key with the same Idempotency-Key, a failed
 * first answer, expiry. Then `?async` accepting only `true` and `false`.
 */
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CountingProxy } from '../support/counting-proxy.js';
import { SLEEPY } from '../support/definitions.js';
import { expectError, type Reply } from '../support/http.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

let t: TestStack;
let proxy: CountingProxy;
let close: () => Promise<void>;

const ECHO = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };

beforeAll(async () => {
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-idempotency'));
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(() => close?.());

const newKey = () => `retry-${randomBytes(8).toString('hex')}`;
const tables = () => t.stack.state.tables;

/** A request with an Idempotency-Key. */
const idem = (apiKey: string, idempotencyKey: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  t.api(apiKey, method, path, body, { 'Idempotency-Key': idempotencyKey, ...headers });

/** A business account with its admin key, and the `echo` and `sleepy` workflows deployed. */
async function account(): Promise<{ accountId: string; admin: string }> {
  const { accountId, key: admin } = await t.account('business');
  for (const [slug, definition] of [['echo', ECHO], ['sleepy', SLEEPY]] as const) {
    expect((await t.api(admin, 'POST', '/workflows', { slug, name: slug, definition })).status).toBe(201);
    expect((await t.api(admin, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
  }
  return { accountId, admin };
}

async function scan(table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await t.stack.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

const activeKeys = async (accountId: string) => (await t.deps().accounts.get(accountId))?.active_keys ?? 0;
const asyncInFlight = async (accountId: string) => ((await t.deps().accounts.get(accountId)) as { async_in_flight?: number } | undefined)?.async_in_flight ?? 0;
/** The account's executions (not its cancellation signals), as stored. */
const executionsOf = async (accountId: string, slug: string) =>
  (await scan(tables().executions)).filter((e) => e['account_id'] === accountId && e['workflow_slug'] === slug);
/** The account's idempotency records. */
const recordsOf = async (accountId: string) => (await scan(tables().idempotency)).filter((r) => String(r['pk']).startsWith(`${accountId}#`));

/** The record's `expires_at` (its 24 h) or `lease_until` (its attempt's lease) passed, as the clock would find it. */
const passed = (record: Record<string, unknown>, attribute: 'expires_at' | 'lease_until') =>
  t.stack.doc.send(
    new UpdateCommand({ TableName: tables().idempotency, Key: { pk: record['pk'] }, UpdateExpression: `SET ${attribute} = :past`, ExpressionAttributeValues: { ':past': Date.now() - 1 } }),
  );

function expectReplayOf(replay: Reply, first: Reply, body: Record<string, unknown> = first.body) {
  expect({ status: replay.status, body: replay.body, replayed: replay.headers.get('idempotent-replayed') }).toEqual({
    status: first.status,
    body,
    replayed: 'true',
  });
  expect(replay.headers.get('content-type')).toBe('application/json');
  // The replay is a request of its own: it carries (and cost) its rate-limit headers.
  expect(replay.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
}

async function waitUntil<T>(what: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('key creation and rotation', () => {
  it('a retried POST /keys replays the 201 without api_key, Idempotent-Replayed: true; one key, one slot; the record holds no plaintext and no raw Idempotency-Key', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/keys', { name: 'ci', preset: 'read-only' });
    expect(first.status).toBe(201);
    expect(first.body['api_key']).toEqual(expect.stringMatching(/^knouds_live_/));
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const { api_key: plaintext, ...withoutPlaintext } = first.body;
    const remaining: number[] = [Number(first.headers.get('x-ratelimit-remaining'))];
    for (let i = 0; i < 2; i++) {
      const replay = await idem(admin, key, 'POST', '/keys', { name: 'ci', preset: 'read-only' });
      expectReplayOf(replay, first, withoutPlaintext);
      expect(replay.text).not.toContain(String(plaintext));
      remaining.push(Number(replay.headers.get('x-ratelimit-remaining')));
    }
    // Each replay counted as a request.
    expect(remaining).toEqual([remaining[0], remaining[0]! - 1, remaining[0]! - 2]);
    expect(await activeKeys(accountId)).toBe(before + 1);
    expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items.filter((k) => k.name === 'ci')).toHaveLength(1);
    // At rest: neither the plaintext, nor the caller's key, in any attribute or in the gzipped body.
    const records = await recordsOf(accountId);
    expect(records).toHaveLength(1);
    const stored = JSON.stringify(records) + gunzipSync(records[0]!['body'] as Uint8Array).toString('utf8');
    expect(stored).not.toContain(String(plaintext));
    expect(stored).not.toContain(key);
    expect(stored).toContain(String(first.body['key_id']));
  });

  it('a retried rotation replays the new key without api_key: one rotation, the slot handed over once', async () => {
    const { accountId, admin } = await account();
    const target = await t.api(admin, 'POST', '/keys', { name: 'to-rotate', preset: 'read-only' });
    const slots = await activeKeys(accountId);
    const key = newKey();
    const path = `/keys/${String(target.body['key_id'])}/rotate`;
    const first = await idem(admin, key, 'POST', path, {});
    expect(first.status).toBe(201);
    const { api_key: _plaintext, ...withoutPlaintext } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', path, {}), first, withoutPlaintext);
    // Rotated once: rotating it again without the key is the contract's 409, naming the same replacement.
    expectError(await t.api(admin, 'POST', path, {}), 409, 'ALREADY_EXISTS', { rotated_to: first.body['key_id'] });
    expect(await activeKeys(accountId)).toBe(slots);
    expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items.filter((k) => k.name === 'to-rotate')).toHaveLength(1);
  });

  it('a retried webhook secret rotation replays its answer without the secret: rotated once, the secret it replaced still in its grace', async () => {
    const { accountId, admin } = await account();
    const before = await t.api(admin, 'GET', '/webhooks/secret');
    expect(before.status).toBe(200);
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 86_400 });
    expect(first.status).toBe(200);
    expect(first.body['secret']).not.toBe(before.body['secret']);
    const { secret: _secret, ...withoutSecret } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 86_400 }), first, withoutSecret);
    // Not rotated again (a second rotation would answer another secret and put the first in its grace):
    // the first rotation's secret signs, the one it replaced keeps its day.
    expect((await t.api(admin, 'GET', '/webhooks/secret')).body).toEqual(first.body);
    expect(first.body['previous_secret_expires_at']).not.toBeNull();
    expect((await t.api(admin, 'GET', '/audit-events?action=webhook_secret.rotated')).body['items']).toHaveLength(1);
    // The kept answer holds no secret.
    const records = (await recordsOf(accountId)).filter((r) => r['state'] === 'complete');
    expect(records.length).toBeGreaterThan(0);
    const stored = JSON.stringify(records) + records.map((r) => gunzipSync(r['body'] as Uint8Array).toString('utf8')).join('');
    expect(stored).toContain('previous_secret_expires_at');
    expect(stored).not.toContain(String(first.body['secret']).slice('whsec_'.length));
  });

  it('the header name in any case is the same header; an invalid value is 400 naming Idempotency-Key, nothing written', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const first = await t.api(admin, 'POST', '/keys', { name: 'case', preset: 'read-only' }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const replay = await t.api(admin, 'POST', '/keys', { name: 'case', preset: 'read-only' }, { 'IDEMPOTENCY-KEY': key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const before = await t.snapshot();
    for (const bad of ['', 'x'.repeat(256), 'caf\u00e9']) {
      const reply = await t.api(admin, 'POST', '/keys', { name: 'bad', preset: 'read-only' }, { 'Idempotency-Key': bad });
      expectError(reply, 400, 'VALIDATION_ERROR', { details: [{ field: 'Idempotency-Key', message: expect.any(String) }] });
    }
    expect(await t.snapshot()).toBe(before);
    expect(await activeKeys(accountId)).toBe(2);
  });

  it('the same key with another body is 422 IDEMPOTENCY_KEY_REUSED (nothing created); the same JSON in another key order or spacing is a replay', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/keys', { name: 'same', preset: 'read-only' });
    expect(first.status).toBe(201);
    const slots = await activeKeys(accountId);
    expectError(await idem(admin, key, 'POST', '/keys', { name: 'other', preset: 'read-only' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    // Another route with the same key is another request too.
    expectError(await idem(admin, key, 'POST', '/workflows/echo/run', { input: 1 }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await activeKeys(accountId)).toBe(slots);
    const reordered = await idem(admin, key, 'POST', '/keys', ' {\n  "preset" : "read-only",   "name":"same" }');
    expect(reordered.headers.get('idempotent-replayed')).toBe('true');
    expect(reordered.body['key_id']).toBe(first.body['key_id']);
  });

  it('another key of the account sending the same Idempotency-Key and body gets 422 (a replay is its caller’s); another account’s same key is its own', async () => {
    const { accountId, admin } = await account();
    const second = (await t.api(admin, 'POST', '/keys', { name: 'second admin', scope: 'admin' })).body['api_key'] as string;
    const key = newKey();
    const body = { name: 'shared', preset: 'read-only' };
    expect((await idem(admin, key, 'POST', '/keys', body)).status).toBe(201);
    const slots = await activeKeys(accountId);
    expectError(await idem(second, key, 'POST', '/keys', body), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await activeKeys(accountId)).toBe(slots);
    const other = await account();
    const theirs = await idem(other.admin, key, 'POST', '/keys', body);
    expect({ status: theirs.status, replayed: theirs.headers.get('idempotent-replayed'), plaintext: typeof theirs.body['api_key'] }).toEqual({
      status: 201,
      replayed: null,
      plaintext: 'string',
    });
  });

  it('8 concurrent duplicates of a creation: exactly one key is created; the others are 409 IDEMPOTENCY_IN_PROGRESS (Retry-After: 1) or its replay', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    const replies = await Promise.all(Array.from({ length: 8 }, () => idem(admin, key, 'POST', '/keys', { name: 'race', preset: 'read-only' })));
    const created = replies.filter((r) => r.status === 201);
    const busy = replies.filter((r) => r.status === 409);
    expect(created.length + busy.length).toBe(8);
    expect(created.filter((r) => r.body['api_key'] !== undefined)).toHaveLength(1);
    expect(new Set(created.map((r) => r.body['key_id'])).size).toBe(1);
    for (const r of busy) {
      expectError(r, 409, 'IDEMPOTENCY_IN_PROGRESS');
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.headers.get('x-ratelimit-limit')).toBe('1000');
    }
    expect(await activeKeys(accountId)).toBe(before + 1);
    expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items.filter((k) => k.name === 'race')).toHaveLength(1);
  });

  it('once 24 h have passed (the record’s expires_at; DynamoDB TTL deletes later) the same request runs again', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/keys', { name: 'day', preset: 'read-only' });
    expect(first.status).toBe(201);
    const [record] = await recordsOf(accountId);
    // A day on: as the clock would find it (the record stays in the table until TTL removes it).
    await passed(record!, 'expires_at');
    const again = await idem(admin, key, 'POST', '/keys', { name: 'day', preset: 'read-only' });
    expect({ status: again.status, replayed: again.headers.get('idempotent-replayed'), plaintext: typeof again.body['api_key'] }).toEqual({
      status: 201,
      replayed: null,
      plaintext: 'string',
    });
    expect(again.body['key_id']).not.toBe(first.body['key_id']);
  });
});

describe('lost answers and failing writes (the fault proxy)', () => {
  it('the idempotency put lands and its answer is lost: the SDK’s retry finds its own record and the request goes on; the retry replays it', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    proxy.reset();
    proxy.inject({ operation: 'PutItem', table: tables().idempotency, fault: 'lose-response', times: 1 });
    const first = await idem(admin, key, 'POST', '/keys', { name: 'lost-put', preset: 'read-only' });
    expect(proxy.injected()).toBe(1);
    expect(first.status).toBe(201);
    const { api_key: _p, ...withoutPlaintext } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', '/keys', { name: 'lost-put', preset: 'read-only' }), first, withoutPlaintext);
    expect(await activeKeys(accountId)).toBe(before + 1);
  });

  it('the work’s own write (the key creation’s transaction) lands and its answer is lost: 201, and the retry replays the one key', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: tables().keys, fault: 'lose-response', times: 1 });
    const first = await idem(admin, key, 'POST', '/keys', { name: 'lost-work', preset: 'read-only' });
    expect(proxy.injected()).toBe(1);
    expect(first.status).toBe(201);
    const { api_key: _p, ...withoutPlaintext } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', '/keys', { name: 'lost-work', preset: 'read-only' }), first, withoutPlaintext);
    expect(await activeKeys(accountId)).toBe(before + 1);
  });

  it('the key creation’s transaction lands and every answer to it is lost: 201 with the key it made (a consistent read finds it), and the retry replays that one key', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    proxy.reset();
    // Every attempt the SDK makes loses its answer: before, the request failed (500) with its key made,
    // its plaintext gone, and its Idempotency-Key released, so the retry made a second key.
    proxy.inject({ operation: 'TransactWriteItems', table: tables().keys, fault: 'lose-response' });
    const first = await idem(admin, key, 'POST', '/keys', { name: 'all-lost', preset: 'read-only' });
    expect(proxy.injected()).toBeGreaterThan(1);
    proxy.clearFaults();
    expect(first.status).toBe(201);
    expect((await t.api(String(first.body['api_key']), 'GET', '/keys/verify')).body['key_id']).toBe(first.body['key_id']);
    const { api_key: _p, ...withoutPlaintext } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', '/keys', { name: 'all-lost', preset: 'read-only' }), first, withoutPlaintext);
    expect(await activeKeys(accountId)).toBe(before + 1);
    expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items.filter((k) => k.name === 'all-lost')).toHaveLength(1);
  });

  it('the key creation’s transaction fails with a 500 on each of the SDK’s attempts and did not land: found not stored, it is sent once more with its token and lands (201, one key)', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    proxy.reset();
    // A 500 says nothing of whether a transaction landed; here none did (the proxy does not forward them).
    // 4: every attempt of the SDK (DynamoDB's default, the client's retries of its one token).
    proxy.inject({ operation: 'TransactWriteItems', table: tables().keys, fault: 'server-error', times: 4 });
    const first = await idem(admin, newKey(), 'POST', '/keys', { name: 'resent', preset: 'read-only' });
    expect(proxy.injected()).toBe(4);
    expect(proxy.counts()['TransactWriteItems']).toBe(5);
    expect(first.status).toBe(201);
    expect(await activeKeys(accountId)).toBe(before + 1);
  });

  it('a key rotating itself without grace, every answer to the rotation lost: 201 with its replacement, which works; not locked out', async () => {
    const { admin } = await account();
    const self = await t.api(admin, 'POST', '/keys', { name: 'self-rotating', capabilities: ['keys:read', 'keys:write'] });
    expect(self.status).toBe(201);
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: tables().keys, fault: 'lose-response' });
    const rotated = await idem(String(self.body['api_key']), newKey(), 'POST', `/keys/${String(self.body['key_id'])}/rotate`, {});
    expect(proxy.injected()).toBeGreaterThan(1);
    proxy.clearFaults();
    // Before: 500, and the old key already revoked, so its retry got 401, the replacement never shown.
    expect(rotated.status).toBe(201);
    expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).body['key_id']).toBe(rotated.body['key_id']);
    expect((await t.api(String(self.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);
  });

  it('a key creation whose request dies after the key committed (its answer never kept on its own): the retry after the lease replays the one key', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    const key = newKey();
    // Every write that would keep the answer after the work fails: as if the function died right after
    // the key's transaction committed. Before, the record stayed in progress, and once its lease ended the
    // retry ran again and made a second key, the first one's plaintext lost for good.
    proxy.inject({ operation: 'UpdateItem', table: tables().idempotency, fault: 'server-error' });
    const first = await idem(admin, key, 'POST', '/keys', { name: 'died', preset: 'read-only' });
    expect(first.status).toBe(201);
    proxy.clearFaults();
    const [record] = await recordsOf(accountId);
    expect(record?.['state']).toBe('complete');
    // The lease of the attempt that died has ended.
    await passed(record!, 'lease_until');
    const { api_key: _p, ...withoutPlaintext } = first.body;
    expectReplayOf(await idem(admin, key, 'POST', '/keys', { name: 'died', preset: 'read-only' }), first, withoutPlaintext);
    expect(await activeKeys(accountId)).toBe(before + 1);
  });

  it('a rotation whose request dies after it committed: the retry after the lease replays the one replacement, the old key rotated once', async () => {
    const { accountId, admin } = await account();
    const target = await t.api(admin, 'POST', '/keys', { name: 'to-rotate', preset: 'read-only' });
    const path = `/keys/${String(target.body['key_id'])}/rotate`;
    const key = newKey();
    proxy.inject({ operation: 'UpdateItem', table: tables().idempotency, fault: 'server-error' });
    const first = await idem(admin, key, 'POST', path, { grace_period_seconds: 3600 });
    expect(first.status).toBe(201);
    proxy.clearFaults();
    const [record] = await recordsOf(accountId);
    await passed(record!, 'lease_until');
    const { api_key: _p, ...withoutPlaintext } = first.body;
    // Before: the retry found the old key rotated and answered 409 ALREADY_EXISTS; the replacement's
    // plaintext was never shown again.
    expectReplayOf(await idem(admin, key, 'POST', path, { grace_period_seconds: 3600 }), first, withoutPlaintext);
    expect((await t.deps().keys.listActive(accountId, new Date(), 100)).items.filter((k) => k.name === 'to-rotate')).toHaveLength(2);
  });

  it('a webhook secret rotation whose request dies after it committed: the retry after the lease replays it, rotated once, the replaced secret still in its grace', async () => {
    const { accountId, admin } = await account();
    expect((await t.api(admin, 'GET', '/webhooks/secret')).status).toBe(200);
    const key = newKey();
    proxy.inject({ operation: 'UpdateItem', table: tables().idempotency, fault: 'server-error' });
    const first = await idem(admin, key, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 86_400 });
    expect(first.status).toBe(200);
    proxy.clearFaults();
    const [record] = await recordsOf(accountId);
    await passed(record!, 'lease_until');
    const { secret: _secret, ...withoutSecret } = first.body;
    // Before: rotated a second time, which ended the grace of the secret the first rotation kept.
    expectReplayOf(await idem(admin, key, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 86_400 }), first, withoutSecret);
    expect((await t.api(admin, 'GET', '/webhooks/secret')).body).toEqual(first.body);
    expect((await t.api(admin, 'GET', '/audit-events?action=webhook_secret.rotated')).body['items']).toHaveLength(1);
  });

  it('the answer’s keeping lands and its answer is lost: the SDK’s retry names the same owner; an async run’s retry replays its one execution', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    proxy.reset();
    proxy.inject({ operation: 'UpdateItem', table: tables().idempotency, fault: 'lose-response', times: 1 });
    const first = await idem(admin, key, 'POST', '/workflows/echo/run?async=true', { input: { n: 1 } });
    expect(proxy.injected()).toBe(1);
    expect(first.status).toBe(202);
    const replay = await idem(admin, key, 'POST', '/workflows/echo/run?async=true', { input: { n: 1 } });
    expectReplayOf(replay, first);
    expect(replay.headers.get('location')).toBe(first.headers.get('location'));
    expect(await executionsOf(accountId, 'echo')).toHaveLength(1);
    // Leave no run in flight behind the suite.
    expect(await waitUntil(() => asyncInFlight(accountId), (n) => n === 0)).toBe(0);
  });

  it('a failed first answer whose release lands with its answer lost still lets the retry run (the second delete finds nothing of its owner)', async () => {
    const { accountId, admin } = await account();
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'later', name: 'later', definition: ECHO })).status).toBe(201);
    const key = newKey();
    proxy.reset();
    proxy.inject({ operation: 'DeleteItem', table: tables().idempotency, fault: 'lose-response', times: 1 });
    expectError(await idem(admin, key, 'POST', '/workflows/later/run', { input: 1 }), 409, 'WORKFLOW_NOT_DEPLOYED');
    expect(proxy.injected()).toBe(1);
    expect(await recordsOf(accountId)).toEqual([]);
    expect((await t.api(admin, 'POST', '/workflows/later/deploy')).status).toBe(200);
    const run = await idem(admin, key, 'POST', '/workflows/later/run', { input: 1 });
    expect({ status: run.status, replayed: run.headers.get('idempotent-replayed'), output: run.body['output'] }).toEqual({ status: 200, replayed: null, output: 1 });
  });

  it('the idempotency record cannot be written (DynamoDB failing past the SDK’s retries): 500 before any work is done', async () => {
    const { accountId, admin } = await account();
    const before = await activeKeys(accountId);
    proxy.inject({ operation: 'PutItem', table: tables().idempotency, fault: 'server-error' });
    const reply = await idem(admin, newKey(), 'POST', '/keys', { name: 'never', preset: 'read-only' });
    expectError(reply, 500, 'INTERNAL_ERROR');
    proxy.clearFaults();
    expect(await activeKeys(accountId)).toBe(before);
  });
});

describe('workflows and runs', () => {
  it('POST /workflows whose every answer to its transaction is lost: 500, and the retry replays the 201 the transaction kept (not 409 ALREADY_EXISTS)', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const body = { slug: 'lost-create', name: 'L', definition: ECHO };
    proxy.inject({ operation: 'TransactWriteItems', table: tables().workflows, fault: 'lose-response' });
    expectError(await idem(admin, key, 'POST', '/workflows', body), 500, 'INTERNAL_ERROR');
    proxy.clearFaults();
    const retry = await idem(admin, key, 'POST', '/workflows', body);
    expect({ status: retry.status, replayed: retry.headers.get('idempotent-replayed'), slug: retry.body['slug'], version: retry.body['version'] }).toEqual({
      status: 201,
      replayed: 'true',
      slug: 'lost-create',
      version: 1,
    });
    expect(retry.headers.get('etag')).toBe((await t.api(admin, 'GET', '/workflows/lost-create')).headers.get('etag'));
    expect((await recordsOf(accountId)).map((r) => r['state'])).toEqual(['complete']);
  });

  it('a non-2xx first answer is not kept: the retry after fixing the cause runs, then replays', async () => {
    const { accountId, admin } = await account();
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'draft', name: 'draft', definition: ECHO })).status).toBe(201);
    const key = newKey();
    expectError(await idem(admin, key, 'POST', '/workflows/draft/run', { input: 'x' }), 409, 'WORKFLOW_NOT_DEPLOYED');
    expect((await t.api(admin, 'POST', '/workflows/draft/deploy')).status).toBe(200);
    const run = await idem(admin, key, 'POST', '/workflows/draft/run', { input: 'x' });
    expect({ status: run.status, replayed: run.headers.get('idempotent-replayed'), status_: run.body['status'] }).toEqual({ status: 200, replayed: null, status_: 'SUCCEEDED' });
    expectReplayOf(await idem(admin, key, 'POST', '/workflows/draft/run', { input: 'x' }), run);
    expect(await executionsOf(accountId, 'draft')).toHaveLength(1);
  });

  it('a retried POST /workflows replays its 201 (without the key, the same body is 409 ALREADY_EXISTS)', async () => {
    const { admin } = await account();
    const key = newKey();
    const body = { slug: 'made-once', name: 'made once', definition: ECHO };
    const first = await idem(admin, key, 'POST', '/workflows', body);
    expect(first.status).toBe(201);
    expectReplayOf(await idem(admin, key, 'POST', '/workflows', body), first);
    expectError(await t.api(admin, 'POST', '/workflows', body), 409, 'ALREADY_EXISTS');
  });

  it('a client that gives up on a sync run and retries: 409 IDEMPOTENCY_IN_PROGRESS (Retry-After: 1) while it runs, then the replay of its one execution', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const body = { input: { ms: 3000 } };
    // The client's own timeout: the request goes on in the function (API Gateway does not stop Lambda).
    const abandoned = await fetch(`${t.stack.apiUrl}/workflows/sleepy/run`, {
      method: 'POST',
      headers: { 'x-api-key': admin, 'content-type': 'application/json', 'Idempotency-Key': key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(800),
    }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    expect(abandoned).toBe('TimeoutError');
    const busy = await idem(admin, key, 'POST', '/workflows/sleepy/run', body);
    expectError(busy, 409, 'IDEMPOTENCY_IN_PROGRESS');
    expect(busy.headers.get('retry-after')).toBe('1');
    const replay = await waitUntil(() => idem(admin, key, 'POST', '/workflows/sleepy/run', body), (r) => r.status !== 409);
    expect({ status: replay.status, replayed: replay.headers.get('idempotent-replayed'), execution: replay.body['status'], output: replay.body['output'] }).toEqual({
      status: 200,
      replayed: 'true',
      execution: 'SUCCEEDED',
      output: { done: true },
    });
    expect((await executionsOf(accountId, 'sleepy')).map((e) => e['execution_id'])).toEqual([replay.body['execution_id']]);
  }, 40_000);

  it('a retried ?async=true run replays its 202 and Location and starts nothing: one execution, one in-flight slot', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 2500 } });
    expect(first.status).toBe(202);
    expect(first.headers.get('location')).toBe(`/v1/executions/${String(first.body['execution_id'])}`);
    for (let i = 0; i < 2; i++) {
      const replay = await idem(admin, key, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 2500 } });
      expectReplayOf(replay, first);
      expect(replay.headers.get('location')).toBe(first.headers.get('location'));
    }
    expect(await asyncInFlight(accountId)).toBe(1);
    const runs = await executionsOf(accountId, 'sleepy');
    expect(runs.map((e) => e['execution_id'])).toEqual([first.body['execution_id']]);
    const ended = await waitUntil(() => executionsOf(accountId, 'sleepy'), (r) => r[0]?.['status'] === 'SUCCEEDED');
    expect(ended.map((e) => e['status'])).toEqual(['SUCCEEDED']);
    expect(await asyncInFlight(accountId)).toBe(0);
    // After the run has ended, still the same 202, still nothing started.
    expectReplayOf(await idem(admin, key, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 2500 } }), first);
    expect(await executionsOf(accountId, 'sleepy')).toHaveLength(1);
    expect(await asyncInFlight(accountId)).toBe(0);
  }, 40_000);

  it('6 concurrent duplicates of an async run: one execution and one slot; the same request without ?async is another (422)', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const replies = await Promise.all(Array.from({ length: 6 }, () => idem(admin, key, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 1500 } })));
    expect(replies.every((r) => r.status === 202 || r.status === 409)).toBe(true);
    const accepted = replies.filter((r) => r.status === 202);
    expect(new Set(accepted.map((r) => r.body['execution_id'])).size).toBe(1);
    expect(await executionsOf(accountId, 'sleepy')).toHaveLength(1);
    expect(await asyncInFlight(accountId)).toBeLessThanOrEqual(1);
    expectError(await idem(admin, key, 'POST', '/workflows/sleepy/run', { input: { ms: 1500 } }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await idem(admin, key, 'POST', '/workflows/sleepy/run?async=false', { input: { ms: 1500 } }), 422, 'IDEMPOTENCY_KEY_REUSED');
    await waitUntil(() => asyncInFlight(accountId), (n) => n === 0);
    expect(await asyncInFlight(accountId)).toBe(0);
  }, 40_000);

  it('POST /models/{id}/run: a 200 is replayed, and so is a 422 MODEL_FAILED (the model ran: the retry does not run it again); a 404 is not kept', async () => {
    const { accountId, admin } = await account();
    const key = newKey();
    const first = await idem(admin, key, 'POST', '/models/echo/run', { input: { hello: 'world' } });
    expect(first.body).toEqual({ model: 'echo', output: { hello: 'world' } });
    expectReplayOf(await idem(admin, key, 'POST', '/models/echo/run', { input: { hello: 'world' } }), first);
    const failing = newKey();
    const failed = await idem(admin, failing, 'POST', '/models/fail/run', { input: { message: 'no' } });
    expectError(failed, 422, 'MODEL_FAILED');
    expect(failed.headers.get('idempotent-replayed')).toBeNull();
    // Before: the model ran again, and answered as a new request (its own request_id, no replay header).
    expectReplayOf(await idem(admin, failing, 'POST', '/models/fail/run', { input: { message: 'no' } }), failed);
    const missing = newKey();
    for (let i = 0; i < 2; i++) expectError(await idem(admin, missing, 'POST', '/models/no-such-model/run', { input: 1 }), 404, 'NOT_FOUND');
    expect(await recordsOf(accountId)).toHaveLength(2);
  });
});

describe('?async is true or false (API.md §4 "Pages and parameters")', () => {
  it('anything else (1, empty, TRUE, yes, given twice) is 400 VALIDATION_ERROR naming async, and nothing runs', async () => {
    const { accountId, admin } = await account();
    for (const query of ['async=1', 'async=', 'async', 'async=TRUE', 'async=yes', 'async=true&async=true', 'async=true&async=false']) {
      const reply = await t.api(admin, 'POST', `/workflows/echo/run?${query}`, { input: 1 });
      expect({ query, status: reply.status, body: reply.body }).toEqual({
        query,
        status: 400,
        body: expect.objectContaining({ code: 'VALIDATION_ERROR', details: [{ field: 'async', message: expect.any(String) }] }),
      });
    }
    expect(await executionsOf(accountId, 'echo')).toEqual([]);
    expect(await asyncInFlight(accountId)).toBe(0);
    const sync = await t.api(admin, 'POST', '/workflows/echo/run?async=false', { input: 1 });
    expect({ status: sync.status, execution: sync.body['status'] }).toEqual({ status: 200, execution: 'SUCCEEDED' });
    expect((await t.api(admin, 'POST', '/workflows/echo/run?async=true', { input: 1 })).status).toBe(202);
    expect(await waitUntil(() => asyncInFlight(accountId), (n) => n === 0)).toBe(0);
  });
});
