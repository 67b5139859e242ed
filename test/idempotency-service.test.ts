/**
 * The idempotency service over its repository, against DynamoDB Local, with an injected clock: who takes
 * a key, what is kept and replayed, for how long (24 h, whatever DynamoDB TTL has not yet deleted), how a
 * crashed request's lease ends, what is never kept (non-2xx answers, answers too large for an item, a
 * key's plaintext), and the header's and the fingerprint's rules. End to end: test/e2e/idempotency.test.ts.
 */
import { jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { GetCommand, ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { logger } from '../lambdas/shared/log.js';
import { IdempotencyRepository } from '../lambdas/shared/repositories/idempotency.js';
import {
  beginIdempotent,
  checkIdempotencyKey,
  finishIdempotent,
  IDEMPOTENCY_WINDOW_MS,
  keepingItem,
  MAX_STORED_BODY_BYTES,
  releaseIdempotent,
  requestFingerprint,
  type Answer,
  type Attempt,
  type Begun,
  type IdempotencyDeps,
  type RequestParts,
} from '../lambdas/shared/services/idempotency.js';
import { createAccount, createKey, type CreatedKey } from '../lambdas/shared/services/keys.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let records: IdempotencyRepository;
beforeAll(async () => {
  db = await createTestDb('idempotency');
  records = new IdempotencyRepository(db.doc, db.tables.idempotency);
});
afterAll(() => db.close());

/** A clock the test moves. */
function clock(start = Date.parse('2026-03-01T12:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms), at: () => t };
}

let n = 0;
const deps = (now: () => Date): IdempotencyDeps => ({ records, now });
const LEASE_MS = 70_000;
const begin = (d: IdempotencyDeps, key: string, fingerprint = 'fp-a', accountId = 'acct_idem') => beginIdempotent(d, { accountId, key, fingerprint, leaseMs: LEASE_MS });
const newKey = () => `key-${++n}-${randomBytes(4).toString('hex')}`;
const created: Answer = {
  statusCode: 201,
  headers: { 'content-type': 'application/json', Location: '/v1/things/1', 'X-RateLimit-Remaining': '7', 'x-other': 'not kept' },
  body: JSON.stringify({ id: 'thing_1', api_key: 'knouds_live_secret', name: 'n' }),
};

function attemptOf(begun: Begun): Attempt {
  if (!('attempt' in begun)) throw new Error(`expected to take the key, got a replay: ${JSON.stringify(begun)}`);
  return begun.attempt;
}

const errorOf = async (p: Promise<unknown>) => p.then(
  (v) => ({ resolved: v }),
  (e: { status?: number; code?: string }) => ({ status: e.status, code: e.code }),
);

describe('taking a key, and what the same key finds after', () => {
  it('in flight: 409 IDEMPOTENCY_IN_PROGRESS; kept: the replay (status, content-type, Location, body without api_key, Idempotent-Replayed), again and again', async () => {
    const c = clock();
    const key = newKey();
    const first = attemptOf(await begin(deps(c.now), key));
    expect(await errorOf(begin(deps(c.now), key))).toEqual({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' });
    await finishIdempotent(deps(c.now), first, created, { omit: ['api_key'] });
    for (let i = 0; i < 2; i++) {
      c.advance(1000);
      expect(await begin(deps(c.now), key)).toEqual({
        replay: {
          statusCode: 201,
          headers: { 'content-type': 'application/json', Location: '/v1/things/1', 'Idempotent-Replayed': 'true' },
          body: JSON.stringify({ id: 'thing_1', name: 'n' }),
        },
      });
    }
  });

  it('another request with the key: 422 IDEMPOTENCY_KEY_REUSED, while in flight and once kept; another account’s same key is its own', async () => {
    const c = clock();
    const key = newKey();
    const first = attemptOf(await begin(deps(c.now), key, 'fp-a'));
    expect(await errorOf(begin(deps(c.now), key, 'fp-b'))).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    await finishIdempotent(deps(c.now), first, created);
    expect(await errorOf(begin(deps(c.now), key, 'fp-b'))).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await begin(deps(c.now), key, 'fp-b', 'acct_other')).toEqual({ attempt: expect.objectContaining({ accountId: 'acct_other' }) });
  });

  it('12 concurrent first requests: exactly one takes the key, the others get 409', async () => {
    const c = clock();
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 12 }, () => errorOf(begin(deps(c.now), key))));
    const taken = results.filter((r) => 'resolved' in r);
    expect(taken).toHaveLength(1);
    expect(results.filter((r) => !('resolved' in r))).toEqual(Array(11).fill({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' }));
  });

  it('a non-2xx answer, or a release after an error, is not kept: the retry runs again', async () => {
    const c = clock();
    for (const end of [
      (d: IdempotencyDeps, a: Attempt) => finishIdempotent(d, a, { statusCode: 409, headers: {}, body: '{"code":"WORKFLOW_NOT_DEPLOYED"}' }),
      (d: IdempotencyDeps, a: Attempt) => finishIdempotent(d, a, { statusCode: 500, headers: {}, body: '' }),
      (d: IdempotencyDeps, a: Attempt) => releaseIdempotent(d, a),
    ]) {
      const key = newKey();
      await end(deps(c.now), attemptOf(await begin(deps(c.now), key)));
      // The same request runs again, and a different one may now take the key (nothing was kept).
      await releaseIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)));
      expect(await begin(deps(c.now), key, 'fp-other')).toEqual({ attempt: expect.any(Object) });
    }
  });

  it('an error the route names (keeping.errors: the work was done) is kept and replayed; another code, or a body that is not JSON, is not', async () => {
    const c = clock();
    const failed: Answer = { statusCode: 422, headers: { 'content-type': 'application/json' }, body: '{"error":"no","code":"MODEL_FAILED","request_id":"r1"}' };
    const key = newKey();
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)), failed, { errors: ['MODEL_FAILED'] });
    expect(await begin(deps(c.now), key)).toEqual({ replay: { statusCode: 422, headers: { 'content-type': 'application/json', 'Idempotent-Replayed': 'true' }, body: failed.body } });
    for (const answer of [{ ...failed, body: '{"code":"NOT_FOUND"}' }, { ...failed, body: 'MODEL_FAILED' }, { ...failed, statusCode: 302 }]) {
      const other = newKey();
      await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), other)), answer, { errors: ['MODEL_FAILED'] });
      expect(await begin(deps(c.now), other)).toEqual({ attempt: expect.any(Object) });
    }
  });

  it('a release or a finish retried after its answer was lost changes nothing (each names its owner)', async () => {
    const c = clock();
    const key = newKey();
    const first = attemptOf(await begin(deps(c.now), key));
    await releaseIdempotent(deps(c.now), first);
    const second = attemptOf(await begin(deps(c.now), key));
    // The first attempt's delete again: the record is the second's now.
    await releaseIdempotent(deps(c.now), first);
    await finishIdempotent(deps(c.now), second, created);
    await finishIdempotent(deps(c.now), second, created);
    expect(await begin(deps(c.now), key)).toEqual({ replay: expect.objectContaining({ statusCode: 201 }) });
  });
});

describe('the answer kept by the work’s own transaction (keepingItem)', () => {
  it('committed with the work, it is the replay; another attempt holding the key by then cancels the work; an answer not kept gives no item', async () => {
    const c = clock();
    const key = newKey();
    const attempt = attemptOf(await begin(deps(c.now), key));
    const marker = (id: string) => ({ Put: { TableName: db.tables.idempotency, Item: { pk: `work#${id}` } } });
    await db.doc.send(new TransactWriteCommand({ TransactItems: [marker(key), keepingItem(deps(c.now), attempt, created, { omit: ['api_key'] })!] }));
    expect(await begin(deps(c.now), key)).toEqual({ replay: expect.objectContaining({ statusCode: 201, body: JSON.stringify({ id: 'thing_1', name: 'n' }) }) });

    // This request outlived its lease, and a retry took the key: its work does not commit.
    const late = newKey();
    const outlived = attemptOf(await begin(deps(c.now), late));
    c.advance(LEASE_MS + 1);
    attemptOf(await begin(deps(c.now), late));
    const work = db.doc.send(new TransactWriteCommand({ TransactItems: [marker(late), keepingItem(deps(c.now), outlived, created, { omit: ['api_key'] })!] }));
    await expect(work).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    expect((await db.doc.send(new GetCommand({ TableName: db.tables.idempotency, Key: { pk: `work#${late}` } }))).Item).toBeUndefined();

    // The request then failing (a 500 on an outcome it could not learn) releases nothing: the work was done.
    await releaseIdempotent(deps(c.now), attempt);
    expect(await begin(deps(c.now), key)).toEqual({ replay: expect.objectContaining({ statusCode: 201 }) });

    expect(keepingItem(deps(c.now), attempt, { statusCode: 409, headers: {}, body: '{}' })).toBeUndefined();
    expect(keepingItem(deps(c.now), attempt, { statusCode: 201, headers: {}, body: '[1]' }, { omit: ['api_key'] })).toBeUndefined();
  });

  it('a key creation whose Idempotency-Key another attempt holds by the time it commits makes no key: 409 IDEMPOTENCY_IN_PROGRESS, also on a full account', async () => {
    const c = clock();
    const accountId = `acct_keep_${randomBytes(4).toString('hex')}`;
    await createAccount(db.deps(), accountId, 'business');
    // Full (10 keys), as the retry that took the key over may have left it: the account's condition fails
    // too, and this attempt still says why it is refused (before: 409 KEY_LIMIT_REACHED).
    for (let i = 0; i < 10; i++) await createKey(db.deps(), accountId, { name: `k${i}`, preset: 'read-only' });
    const key = newKey();
    const outlived = attemptOf(await begin(deps(c.now), key, 'fp-a', accountId));
    c.advance(LEASE_MS + 1);
    attemptOf(await begin(deps(c.now), key, 'fp-a', accountId));
    const keep = (made: CreatedKey) => keepingItem(deps(c.now), outlived, { statusCode: 201, headers: {}, body: JSON.stringify({ ...made.key, api_key: made.apiKey }) }, { omit: ['api_key'] });
    expect(await errorOf(createKey(db.deps(), accountId, { name: 'late', preset: 'read-only' }, undefined, undefined, keep))).toEqual({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' });
    expect((await db.deps().accounts.get(accountId))?.active_keys ?? 0).toBe(10);
  });
});

describe('time', () => {
  it('a kept answer is replayed for 24 h, then the key is free again although DynamoDB TTL has not deleted the record', async () => {
    const c = clock();
    const key = newKey();
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)), created);
    c.advance(IDEMPOTENCY_WINDOW_MS - 1);
    expect(await begin(deps(c.now), key)).toEqual({ replay: expect.objectContaining({ statusCode: 201 }) });
    expect(await errorOf(begin(deps(c.now), key, 'fp-b'))).toEqual({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    c.advance(1);
    // The record is still in the table (TTL deletes late) …
    const stored = await records.get((await storedIds(key))[0]!);
    expect(stored?.state).toBe('complete');
    // … yet it counts as absent: the same request runs again, and so would another.
    const again = attemptOf(await begin(deps(c.now), key, 'fp-b'));
    expect(again.pk).toBe(stored?.pk);
  });

  it('a request that crashed holds its key only until its lease ends (its function’s time and a margin), not 24 h', async () => {
    const c = clock();
    const key = newKey();
    const crashed = attemptOf(await begin(deps(c.now), key));
    c.advance(LEASE_MS);
    expect(await errorOf(begin(deps(c.now), key))).toEqual({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' });
    c.advance(1);
    const retry = attemptOf(await begin(deps(c.now), key));
    expect(retry.owner).not.toBe(crashed.owner);
    // The crashed attempt, had it come back after all, can neither keep its answer nor release the retry's hold.
    await finishIdempotent(deps(c.now), crashed, { ...created, body: '{"from":"the crashed attempt"}' });
    await releaseIdempotent(deps(c.now), crashed);
    expect(await errorOf(begin(deps(c.now), key))).toEqual({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' });
    await finishIdempotent(deps(c.now), retry, created);
    expect(await begin(deps(c.now), key)).toEqual({ replay: expect.objectContaining({ body: created.body }) });
  });

  it('the record expires by TTL 24 h after it was taken', async () => {
    const c = clock();
    const key = newKey();
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)), created);
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.idempotency, Key: { pk: (await storedIds(key))[0]! } }))).Item!;
    expect(item['ttl']).toBe(Math.ceil((c.at() + IDEMPOTENCY_WINDOW_MS) / 1000));
    expect(item['expires_at']).toBe(c.at() + IDEMPOTENCY_WINDOW_MS);
  });
});

/** The ids of records that could be `key`'s: the test knows the key, the table does not. */
async function storedIds(key: string): Promise<string[]> {
  const hash = createHash('sha256').update(key).digest('hex');
  const out = await db.doc.send(new ScanCommand({ TableName: db.tables.idempotency, ConsistentRead: true }));
  return (out.Items ?? []).map((i) => String(i['pk'])).filter((pk) => pk.endsWith(`#${hash}`));
}

describe('what is stored', () => {
  it('the id is <account_id>#sha256(key); neither the raw key nor an omitted field is anywhere in the record; the body is gzipped', async () => {
    const c = clock();
    const key = `raw-key-${randomBytes(6).toString('hex')}`;
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)), created, { omit: ['api_key'] });
    const ids = await storedIds(key);
    expect(ids).toEqual([expect.stringMatching(/^acct_idem#[0-9a-f]{64}$/)]);
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.idempotency, Key: { pk: ids[0]! } }))).Item!;
    const body = gunzipSync(item['body'] as Uint8Array).toString('utf8');
    expect(JSON.parse(body)).toEqual({ id: 'thing_1', name: 'n' });
    const everything = JSON.stringify(item) + body;
    expect(everything).not.toContain(key);
    expect(everything).not.toContain('knouds_live_secret');
    expect(item).toMatchObject({ state: 'complete', status: 201, headers: { 'content-type': 'application/json', Location: '/v1/things/1' } });
  });

  it('an answer too large for an item even gzipped is not kept (logged), and the retry runs again; a large compressible one is kept', async () => {
    const c = clock();
    // Random base64 gzips to about 3/4 of its length: this one stays past the limit.
    const big = randomBytes(Math.ceil(MAX_STORED_BODY_BYTES * 1.1)).toString('base64');
    const key = newKey();
    const attempt = attemptOf(await begin(deps(c.now), key));
    const warn = jest.spyOn(logger, 'warn');
    try {
      await finishIdempotent(deps(c.now), attempt, { statusCode: 200, headers: {}, body: JSON.stringify({ output: big }) });
      expect(warn.mock.calls).toEqual([
        [expect.stringContaining('too large'), expect.objectContaining({ account_id: 'acct_idem', gzipped_bytes: expect.any(Number), limit_bytes: MAX_STORED_BODY_BYTES })],
      ]);
    } finally {
      warn.mockRestore();
    }
    expect(await storedIds(key)).toEqual([]);
    expect(await begin(deps(c.now), key)).toEqual({ attempt: expect.any(Object) });
    // ~600 KB of repetitive JSON (a sync run's answer is at most ~260 KB): kept, replayed whole.
    const compressible = JSON.stringify({ output: 'x'.repeat(600_000) });
    const other = newKey();
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), other)), { statusCode: 200, headers: {}, body: compressible });
    expect(await begin(deps(c.now), other)).toEqual({ replay: expect.objectContaining({ body: compressible }) });
  });

  it('an answer whose fields to omit cannot be told apart (not a JSON object) is not kept', async () => {
    const c = clock();
    const key = newKey();
    await finishIdempotent(deps(c.now), attemptOf(await begin(deps(c.now), key)), { statusCode: 201, headers: {}, body: 'api_key=knouds_live_x' }, { omit: ['api_key'] });
    expect(await storedIds(key)).toEqual([]);
  });
});

describe('the Idempotency-Key header', () => {
  it('1 to 255 printable ASCII characters, sent once; anything else is 400 VALIDATION_ERROR naming the header', () => {
    expect(checkIdempotencyKey([])).toBeUndefined();
    for (const ok of ['a', 'x'.repeat(255), ' !~ order 42/retry#1 ', '550e8400-e29b-41d4-a716-446655440000']) expect(checkIdempotencyKey([ok])).toBe(ok);
    for (const bad of [[''], ['x'.repeat(256)], ['caf\u00e9'], ['tab\there'], ['nul\u0000'], ['emoji\u{1F600}'], ['a', 'a']]) {
      let thrown: unknown;
      try {
        checkIdempotencyKey(bad);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ status: 400, code: 'VALIDATION_ERROR', details: [{ field: 'Idempotency-Key', message: expect.any(String) }] });
    }
  });
});

describe('the request fingerprint', () => {
  const base: RequestParts = {
    method: 'POST',
    route: '/workflows/{slug}/run',
    pathParameters: { slug: 'shout' },
    query: {},
    principal: 'key_a',
    body: '{"input":{"text":"hi","n":1},"webhook_url":"https://example.com/h"}',
  };
  const fp = (changes: Partial<RequestParts>) => requestFingerprint({ ...base, ...changes });

  it('the same JSON body whatever its key order and spacing is the same request; numbers compare by value (RFC 8785)', () => {
    expect(fp({ body: ' { "webhook_url" : "https://example.com/h", "input": {"n": 1.0, "text": "hi"} }\n' })).toBe(fp({}));
    expect(fp({ body: '{"input":{"text":"hi","n":1e0},"webhook_url":"https://example.com/h"}' })).toBe(fp({}));
  });

  it('another method, path, query, caller or body is another request', () => {
    const variants = [
      fp({ method: 'PUT' }),
      fp({ route: '/models/{model_id}/run', pathParameters: { model_id: 'shout' } }),
      fp({ pathParameters: { slug: 'other' } }),
      fp({ query: { async: ['true'] } }),
      fp({ query: { async: ['false'] } }),
      fp({ principal: 'key_b' }),
      fp({ body: '{"input":{"text":"hi","n":2},"webhook_url":"https://example.com/h"}' }),
      fp({ body: undefined }),
      fp({ body: '{}' }),
    ];
    expect(new Set([fp({}), ...variants]).size).toBe(variants.length + 1);
  });

  it('a body that is not JSON counts by its raw text; one nested past any accepted depth, or with a lone surrogate, does not throw', () => {
    expect(fp({ body: 'not json' })).toBe(fp({ body: 'not json' }));
    expect(fp({ body: 'not json' })).not.toBe(fp({ body: 'not  json' }));
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(fp({ body: deep })).toMatch(/^[0-9a-f]{64}$/);
    expect(fp({ body: '{"a":"\\ud800"}' })).not.toBe(fp({ body: '{"a":"\\ud801"}' }));
  });
});
