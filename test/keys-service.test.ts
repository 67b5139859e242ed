/**
 * The key services and repositories against DynamoDB Local: the conditional writes and transactions that
 * keep the key limit, revocation, rotation and rate limits exact under concurrency.
 */
import { jest } from '@jest/globals';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { NotFoundError } from '../lambdas/shared/errors.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { UsageRepository, windowOf } from '../lambdas/shared/repositories/usage.js';
import { createAccount, createKey, revokeKey, rotateKey, setAccountTier, updateKey, type Grant, type KeyServiceDeps } from '../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS } from '../lambdas/shared/settings.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy } from './support/counting-proxy.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let n = 0;
beforeAll(async () => {
  db = await createTestDb('keys-service');
});
afterAll(() => db.close());

async function newAccount(tier: 'pro' | 'business' = 'business'): Promise<string> {
  const id = `acct_svc_${++n}`;
  await createAccount(db.deps(), id, tier);
  return id;
}

/** A key's record and id pointer as stored. */
async function rawItems(keyId: string) {
  const pointer = (await db.doc.send(new GetCommand({ TableName: db.tables.keys, Key: { pk: `K#${keyId}` } }))).Item;
  const record = (await db.doc.send(new GetCommand({ TableName: db.tables.keys, Key: { pk: `H#${String(pointer?.['key_hash'])}` } }))).Item;
  return [record, pointer] as const;
}

const activeCount = async (accountId: string) => (await db.deps().keys.listActive(accountId, new Date(), 100)).items.length;
const counter = async (accountId: string) => (await db.deps().accounts.get(accountId))?.active_keys;

describe('key limit', () => {
  it('15 parallel creates on an empty account: exactly 10 succeed, the rest KEY_LIMIT_REACHED', async () => {
    const account = await newAccount();
    const results = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) => createKey(db.deps(), account, { name: `k${i}`, preset: 'read-only' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(reasons).toEqual(Array.from({ length: 5 }, () => expect.objectContaining({ status: 409, code: 'KEY_LIMIT_REACHED' })));
    expect(await activeCount(account)).toBe(10);
    expect(await counter(account)).toBe(10);
  });

  it('expired keys give their slots back when the limit is reached', async () => {
    const account = await newAccount();
    const past = new Date(Date.now() - 8 * 86_400_000);
    const olds: string[] = [];
    for (let i = 0; i < 3; i++) {
      olds.push((await createKey(db.deps(DEFAULT_SETTINGS, () => past), account, { name: `old${i}`, preset: 'read-only', expires_in_days: 7 })).key.key_id);
    }
    for (let i = 0; i < 7; i++) await createKey(db.deps(), account, { name: `k${i}`, preset: 'read-only' });
    expect(await counter(account)).toBe(10);
    expect(await activeCount(account)).toBe(7);
    // Three more fit, exactly: the expired keys' slots, released once each even when creates race.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => createKey(db.deps(), account, { name: `new${i}`, preset: 'read-only' })),
    );
    const reasons = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string; name?: string }).code ?? (r.reason as Error).name] : []));
    expect(reasons).toEqual(['KEY_LIMIT_REACHED', 'KEY_LIMIT_REACHED', 'KEY_LIMIT_REACHED']);
    expect(await activeCount(account)).toBe(10);
    expect(await counter(account)).toBe(10);
    // Released, the expired keys' items may now expire (30 days on, for audit).
    for (const old of olds) {
      const [record, pointer] = await rawItems(old);
      expect(record).toMatchObject({ released_at: expect.any(String), ttl: expect.any(Number) });
      expect(pointer!['ttl']).toBe(record!['ttl']);
    }
  });

  it('a key that holds a slot carries no TTL, even past its expiry: DynamoDB may not delete it before its slot is released', async () => {
    const account = await newAccount();
    const past = new Date(Date.now() - 8 * 86_400_000);
    const { key } = await createKey(db.deps(DEFAULT_SETTINGS, () => past), account, { name: 'old', preset: 'read-only', expires_in_days: 7 });
    const [record, pointer] = await rawItems(key.key_id);
    expect(record).toMatchObject({ expires_at: key.expires_at });
    expect(record).not.toHaveProperty('ttl');
    expect(pointer).not.toHaveProperty('ttl');
  });
});

describe('transaction conflicts (injected: DynamoDB Local serialises transactions instead)', () => {
  afterEach(() => jest.restoreAllMocks());

  const conflict = () =>
    new TransactionCanceledException({
      message: 'Transaction cancelled',
      $metadata: {},
      CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }, { Code: 'None' }],
    });

  function failTransactions(times: number) {
    const original = DynamoDBDocumentClient.prototype.send;
    let failed = 0;
    return jest.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: unknown) {
      if ((command as object).constructor.name === 'TransactWriteCommand' && failed < times) {
        failed++;
        return Promise.reject(conflict());
      }
      return (original as (c: unknown) => Promise<unknown>).call(this, command);
    } as never);
  }

  it('retries a create that met a TransactionConflict, and succeeds once', async () => {
    const account = await newAccount();
    const spy = failTransactions(2);
    await expect(createKey(db.deps(), account, { name: 'x', preset: 'read-only' })).resolves.toMatchObject({ key: { name: 'x' } });
    expect(spy.mock.calls.filter(([c]) => (c as object).constructor.name === 'TransactWriteCommand')).toHaveLength(3);
    expect(await counter(account)).toBe(1);
  });

  it('a conflict that persists is an error (500), never a false KEY_LIMIT_REACHED', async () => {
    const account = await newAccount();
    failTransactions(100);
    await expect(createKey(db.deps(), account, { name: 'x', preset: 'read-only' })).rejects.toBeInstanceOf(TransactionCanceledException);
    jest.restoreAllMocks();
    expect(await counter(account)).toBe(0);
  });
});

describe('a key’s transaction whose outcome is unknown (faults injected: DynamoDB Local cannot lose answers)', () => {
  afterEach(() => jest.restoreAllMocks());

  /** What each step does to one TransactWriteCommand: send it and then fail (it landed), or fail without sending. */
  type Step = { send: boolean; error: () => Error } | 'pass';
  const noAnswer = () => Object.assign(new Error('socket hang up'), { name: 'TimeoutError', $metadata: {} });
  const throttledAfterRetries = () =>
    Object.assign(new Error('Rate of requests exceeds the allowed throughput'), { name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 4 } });
  const inProgress = () => Object.assign(new Error('Transaction is ongoing for the idempotency token'), { name: 'TransactionInProgressException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
  const conflicted = () =>
    new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: { httpStatusCode: 400 }, CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }, { Code: 'None' }, { Code: 'None' }] });

  /**
   * Scripts the key's transactions (`steps`, in order; then each passes) and, with `failPointerRead`, fails
   * the read of a key's id pointer; returns the client request token of each transaction sent.
   */
  function script(steps: Step[], { failPointerRead = false } = {}): string[] {
    const original = DynamoDBDocumentClient.prototype.send;
    const tokens: string[] = [];
    jest.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(async function (this: DynamoDBDocumentClient, command: unknown) {
      const send = () => (original as (c: unknown) => Promise<unknown>).call(this, command);
      const name = (command as object).constructor.name;
      const input = (command as { input: Record<string, unknown> }).input;
      if (name === 'GetCommand' && failPointerRead && String((input['Key'] as { pk?: unknown }).pk).startsWith('K#')) throw noAnswer();
      if (name !== 'TransactWriteCommand') return send();
      tokens.push(String(input['ClientRequestToken']));
      const step = steps.shift() ?? 'pass';
      if (step === 'pass') return send();
      if (step.send) await send();
      throw step.error();
    } as never);
    return tokens;
  }

  const works = async (account: string, keyId: string) => {
    jest.restoreAllMocks();
    expect((await db.deps().keys.getById(account, keyId))?.key_id).toBe(keyId);
    expect(await counter(account)).toBe(1);
  };

  it('landed, then throttled on the SDK’s later attempts (the last error a 4xx): found by the read, the key is answered', async () => {
    const account = await newAccount();
    const tokens = script([{ send: true, error: throttledAfterRetries }]);
    const { key, apiKey } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    expect(apiKey).toMatch(/^knouds_/);
    expect(tokens).toHaveLength(1);
    await works(account, key.key_id);
  });

  it('landed, and the read that would tell fails too: sent again with its token, which DynamoDB applies once', async () => {
    const account = await newAccount();
    const tokens = script([{ send: true, error: noAnswer }], { failPointerRead: true });
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).toBe(tokens[0]);
    await works(account, key.key_id);
  });

  it('not landed, and its token’s transaction still running when sent again: waited for, sent with the same token, and applied once', async () => {
    const account = await newAccount();
    const tokens = script([{ send: false, error: noAnswer }, { send: false, error: inProgress }]);
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    await works(account, key.key_id);
  });

  it('not landed, and the resend cancelled by a conflict (not applied): tried again, as conflicts are, with a new token', async () => {
    const account = await newAccount();
    const tokens = script([{ send: false, error: noAnswer }, { send: false, error: conflicted }]);
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    expect(tokens).toHaveLength(3);
    expect(tokens[1]).toBe(tokens[0]);
    expect(tokens[2]).not.toBe(tokens[0]);
    await works(account, key.key_id);
  });
});

describe('revocation and rotation races', () => {
  it('two revocations of one key: one succeeds, the other is 404, the slot is freed once', async () => {
    const account = await newAccount();
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    await createKey(db.deps(), account, { name: 'y', preset: 'read-only' });
    const results = await Promise.allSettled([revokeKey(db.deps(), account, key.key_id), revokeKey(db.deps(), account, key.key_id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(NotFoundError);
    expect(await counter(account)).toBe(1);
  });

  it('two rotations of one key: exactly one replacement', async () => {
    const account = await newAccount();
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    const results = await Promise.allSettled([
      rotateKey(db.deps(), account, key.key_id, { grace_period_seconds: 60 }),
      rotateKey(db.deps(), account, key.key_id, { grace_period_seconds: 60 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    // The old key (in grace) and its one replacement both work, and both count.
    expect(await activeCount(account)).toBe(2);
    expect(await counter(account)).toBe(2);
  });

  it('revoking a key during its grace period frees its slot once', async () => {
    const account = await newAccount();
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    const rotated = await rotateKey(db.deps(), account, key.key_id, { grace_period_seconds: 3600 });
    expect(await counter(account)).toBe(2);
    await revokeKey(db.deps(), account, key.key_id);
    expect(await counter(account)).toBe(1);
    await expect(revokeKey(db.deps(), account, key.key_id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await counter(account)).toBe(1);
    await revokeKey(db.deps(), account, rotated.key.key_id);
    expect(await counter(account)).toBe(0);
  });

  it('a rotation with grace on a full account is KEY_LIMIT_REACHED and changes nothing; one without grace works', async () => {
    const account = await newAccount();
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push((await createKey(db.deps(), account, { name: `k${i}`, preset: 'read-only' })).key);
    const before = await db.deps().keys.listActive(account, new Date(), 100);
    await expect(rotateKey(db.deps(), account, keys[0]!.key_id, { grace_period_seconds: 3600 })).rejects.toMatchObject({
      status: 409,
      code: 'KEY_LIMIT_REACHED',
    });
    expect(await db.deps().keys.listActive(account, new Date(), 100)).toEqual(before);
    expect(await counter(account)).toBe(10);
    // Eight grace rotations on a full account once left 18 working keys: now none of them happens.
    for (const key of keys.slice(1, 9)) {
      await expect(rotateKey(db.deps(), account, key.key_id, { grace_period_seconds: 60 })).rejects.toMatchObject({ code: 'KEY_LIMIT_REACHED' });
    }
    expect(await activeCount(account)).toBe(10);
    // Without grace the slot passes to the replacement.
    await rotateKey(db.deps(), account, keys[0]!.key_id, {});
    expect(await activeCount(account)).toBe(10);
    expect(await counter(account)).toBe(10);
  });

  it('a key whose grace has ended gives its slot back when a create finds the account full', async () => {
    const account = await newAccount();
    const start = Date.now();
    const keys = [];
    for (let i = 0; i < 9; i++) keys.push((await createKey(db.deps(), account, { name: `k${i}`, preset: 'read-only' })).key);
    await rotateKey(db.deps(), account, keys[0]!.key_id, { grace_period_seconds: 60 });
    expect(await counter(account)).toBe(10);
    // The record of a key in grace holds no ttl while it holds its slot (TTL must not leak the slot).
    const [graceRecord, gracePointer] = await rawItems(keys[0]!.key_id);
    expect(graceRecord?.['ttl']).toBeUndefined();
    expect(gracePointer?.['ttl']).toBeUndefined();
    await expect(createKey(db.deps(), account, { name: 'full', preset: 'read-only' })).rejects.toMatchObject({ code: 'KEY_LIMIT_REACHED' });
    // Two minutes later the grace is over: the create releases the slot and succeeds.
    const later = () => new Date(start + 120_000);
    await createKey(db.deps(DEFAULT_SETTINGS, later), account, { name: 'after grace', preset: 'read-only' });
    expect(await counter(account)).toBe(10);
    const [released] = await rawItems(keys[0]!.key_id);
    expect(released?.['released_at']).toBeDefined();
    expect(released?.['ttl']).toBeGreaterThan(Math.floor(start / 1000) + 29 * 86_400);
  });

  it('forty edits of one key at once: every one applied, each with its event (each loser reads again after a jittered wait)', async () => {
    const account = await newAccount();
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    const edits = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => updateKey(db.deps(), account, key.key_id, { name: `name ${i}` })));
    expect(edits.filter((e) => e.status === 'rejected').map((e) => String((e as PromiseRejectedResult).reason))).toEqual([]);
    const events = await db.audit.list(account, { action: 'key.updated' }, 100);
    expect(events.items).toHaveLength(40);
  });

  it('an edit of a revoked key is 404 and writes nothing', async () => {
    const account = await newAccount();
    const { key } = await createKey(db.deps(), account, { name: 'x', preset: 'read-only' });
    await revokeKey(db.deps(), account, key.key_id);
    await expect(updateKey(db.deps(), account, key.key_id, { name: 'y' })).rejects.toBeInstanceOf(NotFoundError);
    expect((await db.deps().keys.findById(key.key_id))?.name).toBe('x');
  });
});

describe('a change between the read of a key and the write that was checked on it', () => {
  /**
   * The key services with a keys repository of their own client, which runs `meanwhile` once, just
   * before the first transaction it sends: a change by another request that lands between the service's
   * read of the key and its conditional write.
   */
  async function withChangeMeanwhile(meanwhile: () => Promise<unknown>, use: (deps: KeyServiceDeps) => Promise<void>): Promise<boolean> {
    const doc = createDocumentClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    let ran = false;
    doc.middlewareStack.add(
      (next, context) => async (args) => {
        if (/TransactWrite/.test(String(context.commandName)) && !ran) {
          ran = true;
          await meanwhile();
        }
        return next(args);
      },
      { step: 'initialize', name: 'changeMeanwhile' },
    );
    try {
      await use({ ...db.deps(), keys: new KeysRepository(doc, { keys: db.tables.keys, accounts: db.tables.accounts }) });
    } finally {
      doc.destroy();
    }
    return ran;
  }

  /** A key's caller that may manage keys and read workflows, nothing more. */
  const reader: Grant = { capabilities: ['keys:write', 'workflow:read'], workspaces: ['*'], environment: 'live' };

  it('an edit checked against the tier as read is refused (403 TIER_CEILING_EXCEEDED) when the tier is lowered before it lands', async () => {
    const account = await newAccount('business');
    const { key } = await createKey(db.deps(), account, { name: 'x', capabilities: ['workflow:read'] });
    const ran = await withChangeMeanwhile(
      () => setAccountTier(db.deps(), account, 'pro'),
      (deps) => expect(updateKey(deps, account, key.key_id, { capabilities: ['workflow:read', 'model:run'] })).rejects.toMatchObject({ status: 403, code: 'TIER_CEILING_EXCEEDED' }),
    );
    expect(ran).toBe(true);
    // Nothing stored over the new tier's ceiling.
    expect(await db.deps().keys.findById(key.key_id)).toMatchObject({ tier: 'pro', capabilities: ['workflow:read'], version: 1 });
  });

  it('a revocation is refused (403 CAPABILITY_DENIED) when an edit gives the key a capability the caller lacks before it lands', async () => {
    const account = await newAccount('business');
    const { key } = await createKey(db.deps(), account, { name: 'x', capabilities: ['workflow:read'] });
    const ran = await withChangeMeanwhile(
      () => updateKey(db.deps(), account, key.key_id, { capabilities: ['workflow:read', 'model:run'] }),
      (deps) => expect(revokeKey(deps, account, key.key_id, reader)).rejects.toMatchObject({ status: 403, code: 'CAPABILITY_DENIED' }),
    );
    expect(ran).toBe(true);
    const record = await db.deps().keys.findById(key.key_id);
    expect(record).toMatchObject({ capabilities: ['model:run', 'workflow:read'] });
    expect(record?.revoked_at).toBeUndefined();
    expect(await counter(account)).toBe(1);
  });

  it('a revocation is refused (403 CAPABILITY_DENIED) when a tier raise puts a capability the caller lacks back in force before it lands', async () => {
    const account = await newAccount('business');
    const { key } = await createKey(db.deps(), account, { name: 'x', capabilities: ['workflow:read', 'model:run'] });
    // On pro the key's model:run is not in force, so a caller without it may stop the key …
    await setAccountTier(db.deps(), account, 'pro');
    const ran = await withChangeMeanwhile(
      () => setAccountTier(db.deps(), account, 'business'),
      // … but not once business puts it back in force.
      (deps) => expect(revokeKey(deps, account, key.key_id, reader)).rejects.toMatchObject({ status: 403, code: 'CAPABILITY_DENIED' }),
    );
    expect(ran).toBe(true);
    expect((await db.deps().keys.findById(key.key_id))?.revoked_at).toBeUndefined();
    expect(await counter(account)).toBe(1);
  });

  it('a revocation still goes through after an edit the caller covers (read and checked again)', async () => {
    const account = await newAccount('business');
    const { key } = await createKey(db.deps(), account, { name: 'x', capabilities: ['workflow:read'] });
    const ran = await withChangeMeanwhile(
      () => updateKey(db.deps(), account, key.key_id, { name: 'renamed' }),
      (deps) => revokeKey(deps, account, key.key_id, reader),
    );
    expect(ran).toBe(true);
    expect(await db.deps().keys.findById(key.key_id)).toMatchObject({ name: 'renamed', revoked_at: expect.any(String) });
    expect(await counter(account)).toBe(0);
    // One revocation, recorded once, of the key as edited.
    expect((await db.audit.list(account, { action: 'key.revoked' }, 10)).items).toHaveLength(1);
  });
});

describe('rate-limit counter', () => {
  it('25 parallel hits with limit 10: exactly 10 admitted, each with its own remaining count', async () => {
    const usage = new UsageRepository(db.doc, db.tables.usage);
    const now = new Date('2026-03-01T10:20:30Z');
    const hits = await Promise.all(Array.from({ length: 25 }, () => usage.hit('key_race', 'acct', 10, now)));
    const admitted = hits.filter((h) => h.admitted);
    expect(admitted).toHaveLength(10);
    expect(admitted.map((h) => h.remaining).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(hits.every((h) => h.reset === Date.parse('2026-03-01T10:21:00Z') / 1000)).toBe(true);
    // The next window starts afresh; the totals count admitted requests only.
    expect((await usage.hit('key_race', 'acct', 10, new Date('2026-03-01T10:21:00Z'))).admitted).toBe(true);
    const summary = await usage.summary('key_race', new Date('2026-03-01T12:00:00Z'));
    expect(summary).toMatchObject({ requestsToday: 11, requestsThisMonth: 11, lastUsed: '2026-03-01T10:21:00.000Z' });
    expect(summary.daily.at(-1)).toEqual({ date: '2026-03-01', requests: 11 });
  });

  it('sums today and this month over hour items, and remembers the last use of earlier months', async () => {
    const usage = new UsageRepository(db.doc, db.tables.usage);
    await usage.hit('key_sum', 'acct', 10, new Date('2026-02-27T23:59:59Z'));
    await usage.hit('key_sum', 'acct', 10, new Date('2026-03-01T00:00:00Z'));
    await usage.hit('key_sum', 'acct', 10, new Date('2026-03-02T05:00:00Z'));
    await usage.hit('key_sum', 'acct', 10, new Date('2026-03-02T23:10:00Z'));
    const march = await usage.summary('key_sum', new Date('2026-03-02T23:30:00Z'), 4);
    expect(march).toEqual({
      requestsToday: 2,
      requestsThisMonth: 3,
      lastUsed: '2026-03-02T23:10:00.000Z',
      // The days before the month count in daily, not in this month.
      daily: [
        { date: '2026-02-27', requests: 1 },
        { date: '2026-02-28', requests: 0 },
        { date: '2026-03-01', requests: 1 },
        { date: '2026-03-02', requests: 2 },
      ],
    });
    expect(await usage.summary('key_sum', new Date('2026-04-10T00:00:00Z'))).toMatchObject({
      requestsToday: 0,
      requestsThisMonth: 0,
      lastUsed: '2026-03-02T23:10:00.000Z',
    });
  });

  it('a later last_used put back under throttling: the request is counted once and admitted (the counter write is never sent again)', async () => {
    const proxy = await startCountingProxy(testEndpoint());
    try {
      const usage = new UsageRepository(createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }), db.tables.usage);
      const now = new Date('2026-03-01T10:20:30Z');
      // Another container, its clock a little ahead, counted first.
      expect((await usage.hit('key_clock', 'acct', 10, new Date('2026-03-01T10:20:30.005Z'))).admitted).toBe(true);
      // The counter write passes; putting the later last_used back is throttled on every SDK attempt.
      proxy.inject({ operation: 'UpdateItem', table: db.tables.usage, fault: 'throttle', skip: 1, times: 4 });
      const hit = await usage.hit('key_clock', 'acct', 10, now);
      expect(proxy.injected()).toBe(4);
      // Before: the throttling was taken for the counter's and the counter written again (remaining 7, a count of 3).
      expect(hit).toMatchObject({ admitted: true, remaining: 8 });
      const item = await db.doc.send(new GetCommand({ TableName: db.tables.usage, Key: { key_id: 'key_clock', hour: '2026-03-01T10' } }));
      expect(item.Item?.['m20']).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it('windows are fixed UTC minutes', () => {
    expect(windowOf(new Date('2026-03-01T10:20:59.999Z'))).toEqual({
      hour: '2026-03-01T10',
      minuteAttr: 'm20',
      reset: Date.parse('2026-03-01T10:21:00Z') / 1000,
    });
    expect(windowOf(new Date('2026-03-01T23:59:00Z')).reset).toBe(Date.parse('2026-03-02T00:00:00Z') / 1000);
  });
});
