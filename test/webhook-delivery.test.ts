/**
 * Issue #15 part 2, at the repository and service level against DynamoDB Local (the fault proxy where a
 * fault is needed): every terminal write marks the webhook pending in the same write and puts it in the
 * `webhooks-due` index; attempts are claimed (two senders never make the same one), recorded, and
 * scheduled; one run of the sender shares its attempts between accounts; the retry schedule.
 */
import { createAccount } from '../lambdas/shared/services/keys.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository, newExecutionId, REDELIVERIES_SENT_AT_ONCE, REDELIVERY_WINDOW_MS, webhookShard, WEBHOOK_SHARDS, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { redeliverWebhook } from '../lambdas/shared/services/executions.js';
import { LocalSecretBox } from '../lambdas/shared/secret-box.js';
import { attemptWebhook, firstAttempt, NO_NEW_SECRET, sendDueWebhooks, sendNow, type WebhookDeps } from '../lambdas/shared/services/webhooks.js';
import { DEFAULT_RETRY_SCHEDULE_SECONDS, RETRY_JITTER, nextAttemptAt, parseRetrySchedule, retryScheduleFromEnv } from '../lambdas/shared/webhook-schedule.js';
import { ALLOW_LOOPBACK_ENV } from '../lambdas/shared/webhooks.js';
import { firstWebhookSecret } from '../lambdas/shared/services/first-webhook-secret.js';
import { OPERATOR_ACTOR } from '../lambdas/shared/repositories/audit.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.js';
import { startReceiver, type Received, type Receiver } from './support/receiver.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';

process.env[ALLOW_LOOPBACK_ENV] = 'true';

describe('the retry schedule', () => {
  it('by default: 7 delays, 1 min to 14 h, 8 attempts over more than a day even at the low end of every jitter (31 h 36 min; 25 h 17 min to 37 h 55 min)', () => {
    expect(DEFAULT_RETRY_SCHEDULE_SECONDS).toEqual([60, 300, 1800, 7200, 18_000, 36_000, 50_400]);
    const total = DEFAULT_RETRY_SCHEDULE_SECONDS.reduce((a, b) => a + b, 0);
    expect(total).toBe(113_760);
    expect(total * (1 - RETRY_JITTER)).toBeGreaterThan(86_400);
    expect(retryScheduleFromEnv({})).toBe(DEFAULT_RETRY_SCHEDULE_SECONDS);
  });

  it('each delay within ±20 %, and none after the last', () => {
    const at = 1_000_000;
    expect(nextAttemptAt(1, at, [60], () => 0)).toBe(at + 48_000);
    expect(nextAttemptAt(1, at, [60], () => 0.999999)).toBeCloseTo(at + 72_000, -1);
    expect(nextAttemptAt(2, at, [60, 300], () => 0.5)).toBe(at + 300_000);
    expect(nextAttemptAt(2, at, [60])).toBeUndefined();
    expect(nextAttemptAt(0, at, [60])).toBeUndefined();
    const draws = Array.from({ length: 200 }, () => nextAttemptAt(1, at, [100])! - at);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(80_000);
    expect(Math.max(...draws)).toBeLessThanOrEqual(120_000);
    expect(new Set(draws).size).toBeGreaterThan(100);
  });

  it('the test-only override is validated', () => {
    expect(retryScheduleFromEnv({ WEBHOOK_RETRY_SCHEDULE_SECONDS: '1,1,2' })).toEqual([1, 1, 2]);
    expect(parseRetrySchedule('0.5, 3')).toEqual([0.5, 3]);
    for (const bad of ['', 'a', '1,,2', '-1', '0', '1;2', '999999999', Array(21).fill('1').join(',')]) {
      expect(() => parseRetrySchedule(bad)).toThrow(/WEBHOOK_RETRY_SCHEDULE_SECONDS/);
    }
  });
});

let db: TestDb;
let proxy: CountingProxy;
let deps: WebhookDeps;
/** The same repositories through the fault proxy. */
let faulty: WebhookDeps;
const box = new LocalSecretBox(LocalSecretBox.newKey());

let receiver: Receiver;
let hookUrl: string;
let received: Received[];
/** How many of the next requests the receiver answers 500. */
let refuse = 0;

function depsOn(doc: ReturnType<typeof createDocumentClient>): WebhookDeps {
  return {
    executions: new ExecutionsRepository(doc, db.tables.executions, db.tables.accounts),
    accounts: new AccountsRepository(doc, db.tables.accounts, box),
    // As the scheduled sender and the worker have it: where an account's first secret records its event.
    audit: db.audit,
    retrySchedule: [1, 1],
  };
}

beforeAll(async () => {
  db = await createTestDb('webhook-delivery');
  proxy = await startCountingProxy(testEndpoint());
  deps = depsOn(db.doc);
  faulty = depsOn(createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  receiver = await startReceiver(() => {
    if (refuse === 0) return 'ok';
    refuse--;
    return 'refuse';
  });
  ({ url: hookUrl, received } = receiver);
});
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await receiver?.close();
  await proxy?.close();
  db?.close();
});

let accounts = 0;
async function account(): Promise<{ accountId: string; secret: string }> {
  const accountId = `acct_wh_${++accounts}_${Date.now().toString(36)}`;
  await createAccount({ accounts: deps.accounts, audit: db.audit }, accountId, 'business');
  return { accountId, secret: await deps.accounts.webhookSecret(accountId, firstWebhookSecret(db.audit, accountId, OPERATOR_ACTOR, new Date())) };
}

/** A RUNNING run of `accountId` held by `att_a`, with a webhook to `url` unless null. */
async function running(accountId: string, url: string | null = hookUrl, extra: Partial<ExecutionRecord> = {}): Promise<ExecutionRecord> {
  const now = new Date();
  const record: ExecutionRecord = {
    account_id: accountId,
    execution_id: newExecutionId(now),
    workflow_slug: 'wf',
    workflow_version: 1,
    workspace_id: 'default',
    status: 'RUNNING',
    input: { b: 2, a: 1 },
    created_at: now.toISOString(),
    started_at: now.toISOString(),
    key_id: 'key_x',
    async: true,
    owner: 'att_a',
    lease_until: Date.now() + 60_000,
    ...(url ? { webhook_url: url } : {}),
    ...extra,
  };
  await deps.executions.create(record, extra.async_slot ? 50 : undefined);
  return record;
}

/** Ends `run` (owner att_a) as an ender that crashed right after its terminal write: pending, no attempt. */
async function endedWithoutAttempt(run: ExecutionRecord, known: ExecutionRecord | undefined = run): Promise<ExecutionRecord> {
  const ended = await deps.executions.finish(run.account_id, run.execution_id, { status: 'SUCCEEDED', output: { z: 1, y: [{ d: 4, c: 3 }] } }, new Date(), 'att_a', ['RUNNING'], known);
  if (!ended) throw new Error('not ended');
  return ended;
}

const inIndex = async (run: ExecutionRecord): Promise<boolean> => {
  const page = await deps.executions.dueWebhooks(webhookShard(run.execution_id), Date.now() + 60_000, 1000);
  return page.items.some((i) => i.execution_id === run.execution_id);
};
const deliveriesOf = (executionId: string) => received.filter((r) => String(r.headers['webhook-id']).includes(executionId));

describe('every terminal write marks the webhook pending, in the same write', () => {
  it('finish, finish holding a slot, a writer that did not know of the webhook, fail as interrupted, cancel while QUEUED or RUNNING', async () => {
    const { accountId } = await account();
    const pending = { status: 'pending', attempts: 0, last_attempt_at: null, last_response_status: null, next_attempt_at: expect.any(String) };
    const plain = await running(accountId);
    expect(await endedWithoutAttempt(plain)).toMatchObject({ status: 'SUCCEEDED', webhook: pending, webhook_due: expect.any(Number), webhook_shard: webhookShard(plain.execution_id) });
    const slot = await running(accountId, hookUrl, { async_slot: true });
    expect(await endedWithoutAttempt(slot)).toMatchObject({ webhook: pending });
    // A writer holding a record without the webhook_url: refused, then written again knowing it.
    const unknowing = await running(accountId);
    const { webhook_url: _url, ...withoutUrl } = unknowing;
    expect(await endedWithoutAttempt(unknowing, withoutUrl as ExecutionRecord)).toMatchObject({ webhook: pending });
    const interrupted = await running(accountId, hookUrl, { lease_until: Date.now() - 1000 });
    expect(await deps.executions.failInterrupted(accountId, interrupted.execution_id, 'att_a', 'att_b', new Date(), new Date(0), interrupted)).toMatchObject({ webhook: pending });
    const cancelled = await running(accountId);
    // A cancel that did not know of the webhook is refused (the caller re-reads), then goes through.
    expect(await deps.executions.cancel(accountId, cancelled.execution_id, 'RUNNING', new Date(), false, false)).toBe(false);
    expect(await deps.executions.cancel(accountId, cancelled.execution_id, 'RUNNING', new Date(), false, true)).toBe(true);
    expect(await deps.executions.get(accountId, cancelled.execution_id)).toMatchObject({ status: 'CANCELLED', webhook: pending });
    for (const run of [plain, slot, unknowing, interrupted, cancelled]) expect(await inIndex(run)).toBe(true);
  });

  it('a run that asked for no webhook gets no webhook record and stays out of the index', async () => {
    const { accountId } = await account();
    const run = await running(accountId, null);
    const ended = await endedWithoutAttempt(run);
    expect(ended.webhook).toBeUndefined();
    expect(ended.webhook_due).toBeUndefined();
    expect(await inIndex(run)).toBe(false);
  });

  it('the shard is fixed by the execution id, one of 8', () => {
    const ids = Array.from({ length: 400 }, () => newExecutionId(new Date()));
    expect(new Set(ids.map(webhookShard))).toEqual(new Set(Array.from({ length: WEBHOOK_SHARDS }, (_, i) => String(i))));
    expect(ids.every((id) => webhookShard(id) === webhookShard(id))).toBe(true);
  });
});

describe('attempts', () => {
  it('a refused attempt is recorded and due again by the schedule; the delivered one leaves the index; every attempt the same bytes, verifiable', async () => {
    const { accountId, secret } = await account();
    const run = await running(accountId);
    const ended = await endedWithoutAttempt(run);
    refuse = 1;
    expect(await firstAttempt(deps, ended)).toBe('retry');
    const afterFirst = (await deps.executions.get(accountId, run.execution_id))!;
    expect(afterFirst.webhook).toEqual({
      status: 'pending',
      attempts: 1,
      last_attempt_at: expect.any(String),
      last_response_status: 500,
      next_attempt_at: expect.any(String),
    });
    const delay = Date.parse(afterFirst.webhook!.next_attempt_at!) - Date.parse(afterFirst.webhook!.last_attempt_at!);
    expect(delay).toBeGreaterThanOrEqual(800);
    expect(delay).toBeLessThanOrEqual(1200);
    expect(afterFirst.webhook_due).toBe(Date.parse(afterFirst.webhook!.next_attempt_at!));
    // Not due yet: a sender run leaves it.
    expect(await attemptWebhook(deps, { account_id: accountId, execution_id: run.execution_id, webhook_due: ended.webhook_due! })).toBe('not-claimed');
    await new Promise((r) => setTimeout(r, 1300));
    await sendDueWebhooks(deps, Date.now() + 10_000);
    const delivered = (await deps.executions.get(accountId, run.execution_id))!;
    expect(delivered.webhook).toEqual({ status: 'delivered', attempts: 2, last_attempt_at: expect.any(String), last_response_status: 204, next_attempt_at: null });
    expect(delivered.webhook_due).toBeUndefined();
    expect(delivered.webhook_shard).toBeUndefined();
    expect(await inIndex(run)).toBe(false);
    const [first, second] = deliveriesOf(run.execution_id);
    expect(deliveriesOf(run.execution_id)).toHaveLength(2);
    expect(second!.body).toBe(first!.body);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(new Webhook(secret).verify(second!.body, second!.headers as Record<string, string>)).toEqual({
      type: 'execution.succeeded',
      timestamp: delivered.finished_at,
      data: expect.objectContaining({ execution_id: run.execution_id, status: 'SUCCEEDED', input: { a: 1, b: 2 }, output: { y: [{ c: 3, d: 4 }], z: 1 } }),
    });
    expect(JSON.parse(second!.body).data).not.toHaveProperty('webhook');
  });

  it('after the last attempt of the schedule: failed, out of the index', async () => {
    const { accountId } = await account();
    const run = await running(accountId, 'http://127.0.0.1:9/closed');
    await firstAttempt(deps, await endedWithoutAttempt(run));
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1300));
      await sendDueWebhooks(deps, Date.now() + 10_000);
    }
    const failed = (await deps.executions.get(accountId, run.execution_id))!;
    expect(failed.webhook).toEqual({ status: 'failed', attempts: 3, last_attempt_at: expect.any(String), last_response_status: null, next_attempt_at: null });
    expect(await inIndex(run)).toBe(false);
  });

  it('two sender runs at once: one POST per due attempt', async () => {
    const { accountId } = await account();
    const runs = await Promise.all(Array.from({ length: 6 }, () => running(accountId)));
    for (const run of runs) await endedWithoutAttempt(run);
    await Promise.all([sendDueWebhooks(deps, Date.now() + 10_000), sendDueWebhooks(deps, Date.now() + 10_000), firstAttempt(deps, (await deps.executions.get(accountId, runs[0]!.execution_id))!)]);
    for (const run of runs) {
      expect(deliveriesOf(run.execution_id)).toHaveLength(1);
      expect((await deps.executions.get(accountId, run.execution_id))!.webhook).toMatchObject({ status: 'delivered', attempts: 1 });
    }
  });

  it('a lost answer on the claim: the SDK’s retry finds its own claim, and the attempt is made once', async () => {
    const { accountId } = await account();
    const run = await running(accountId);
    const ended = await endedWithoutAttempt(run);
    proxy.inject({ operation: 'UpdateItem', table: db.tables.executions, fault: 'lose-response', times: 1 });
    expect(await firstAttempt(faulty, ended)).toBe('delivered');
    expect(proxy.injected()).toBeGreaterThanOrEqual(1);
    expect(deliveriesOf(run.execution_id)).toHaveLength(1);
  });

  it('the account’s secret failing to be read while DynamoDB fails (5xx) sends nothing and counts no attempt: the webhook stays pending, claimed until the lease ends (it used up one of the 8 before)', async () => {
    const { accountId } = await account();
    const run = await running(accountId);
    const ended = await endedWithoutAttempt(run);
    proxy.inject({ operation: 'GetItem', table: db.tables.accounts, fault: 'server-error', times: 20 });
    expect(await firstAttempt(faulty, ended)).toBe('error');
    expect(proxy.injected()).toBeGreaterThanOrEqual(1);
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    const after = (await deps.executions.get(accountId, run.execution_id))!;
    expect(after.webhook).toMatchObject({ status: 'pending', attempts: 0, last_attempt_at: null });
    // Claimed: due again when the claim's lease ends (30 s), not at the schedule's next step.
    expect(after.webhook_due! - Date.now()).toBeGreaterThan(20_000);
    expect(after.webhook_due! - Date.now()).toBeLessThanOrEqual(30_000);
    proxy.clearFaults();
  });

  it('a sender that died after its claim: the webhook comes due again when the claim’s lease ends', async () => {
    const { accountId } = await account();
    const run = await running(accountId);
    const ended = await endedWithoutAttempt(run);
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, ended.webhook_due!, 'clm_dead', Date.now() + 700, Date.now())).toBeDefined();
    await sendDueWebhooks(deps, Date.now() + 10_000);
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 800));
    await sendDueWebhooks(deps, Date.now() + 10_000);
    expect(deliveriesOf(run.execution_id)).toHaveLength(1);
    // The dead sender's late record does not count: its claim is gone.
    expect(await deps.executions.recordWebhookAttempt(accountId, run.execution_id, 'clm_dead', { result: 'failed', status: null, at: new Date() })).toBe(false);
    expect((await deps.executions.get(accountId, run.execution_id))!.webhook).toMatchObject({ status: 'delivered', attempts: 1 });
  });

  it('a run cancelled while its worker held it, claimed by a sender before the worker reads it: the worker’s first attempt leaves the live claim alone (one POST)', async () => {
    // What CI once saw as two execution.cancelled deliveries: the cancel marks the webhook due now, a
    // sender claims it (its due time becomes the claim's lease), and the worker that held the run reads
    // it back, lease and all, and made its own attempt with that due time.
    const { accountId } = await account();
    const run = await running(accountId);
    expect(await deps.executions.cancel(accountId, run.execution_id, 'RUNNING', new Date(), false, true)).toBe(true);
    const cancelled = (await deps.executions.get(accountId, run.execution_id))!;
    const lease = Date.now() + 30_000;
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, cancelled.webhook_due!, 'clm_sender', lease, Date.now())).toBeDefined();
    // The worker's terminal write finds the run cancelled in its hands: the run as stored, the sender's lease as its due time.
    const seenByWorker = await deps.executions.finish(accountId, run.execution_id, { status: 'SUCCEEDED', output: {} }, new Date(), 'att_a', ['RUNNING'], run);
    expect(seenByWorker).toMatchObject({ status: 'CANCELLED', owner: 'att_a', webhook_due: lease, webhook_claim: 'clm_sender' });
    expect(await firstAttempt(deps, seenByWorker!)).toBe('not-claimed');
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, lease, 'clm_other', lease + 30_000, Date.now())).toBeUndefined();
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    // Once the lease has ended, the claim is anyone's again (the sender died): see the test above.
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, lease, 'clm_late', lease + 30_000, lease)).toBeDefined();
  });

  it('a run cancelled while its worker held it, whose first attempt a sender already made and failed: the worker does not make the next one early', async () => {
    const { accountId } = await account();
    const run = await running(accountId);
    expect(await deps.executions.cancel(accountId, run.execution_id, 'RUNNING', new Date(), false, true)).toBe(true);
    const cancelled = (await deps.executions.get(accountId, run.execution_id))!;
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, cancelled.webhook_due!, 'clm_sender', Date.now() + 30_000, Date.now())).toBeDefined();
    const nextDue = Date.now() + 60_000;
    expect(await deps.executions.recordWebhookAttempt(accountId, run.execution_id, 'clm_sender', { result: 'retry', status: 503, at: new Date(), nextDue })).toBe(true);
    // The worker reads the run back: no claim now, and the schedule's next attempt a minute away.
    const seenByWorker = await deps.executions.finish(accountId, run.execution_id, { status: 'SUCCEEDED', output: {} }, new Date(), 'att_a', ['RUNNING'], run);
    expect(seenByWorker).toMatchObject({ status: 'CANCELLED', webhook_due: nextDue, webhook: { status: 'pending', attempts: 1 } });
    expect(seenByWorker).not.toHaveProperty('webhook_claim');
    expect(await firstAttempt(deps, seenByWorker!)).toBe('not-claimed');
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    expect((await deps.executions.get(accountId, run.execution_id))!).toMatchObject({ webhook_due: nextDue, webhook: { attempts: 1 } });
  });

  it('an account with no secret: an ender that only opens secrets fails its attempt without a POST; the scheduled sender makes the first secret (by the system) and delivers', async () => {
    const accountId = `acct_wh_nosecret_${Date.now().toString(36)}`;
    await createAccount({ accounts: deps.accounts, audit: db.audit }, accountId, 'business');
    const run = await running(accountId);
    // The workflows function failing a run it could not hand to the worker: it may not make the secret.
    expect(await firstAttempt(deps, await endedWithoutAttempt(run))).toBe('retry');
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    expect((await deps.executions.get(accountId, run.execution_id))!.webhook).toMatchObject({ status: 'pending', attempts: 1, last_response_status: null });
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty('webhook_secret_sealed');
    // The schedule's next attempt (1 s, ±20 %), by the sender: a redelivery's and a scheduled run's attempt alike.
    await new Promise((r) => setTimeout(r, 1300));
    expect(await sendNow(deps, accountId, run.execution_id)).toBe('delivered');
    const [delivery] = deliveriesOf(run.execution_id);
    const secret = await deps.accounts.webhookSecret(accountId, NO_NEW_SECRET);
    expect(new Webhook(secret).verify(delivery!.body, delivery!.headers as Record<string, string>)).toMatchObject({ type: 'execution.succeeded' });
    expect((await db.audit.list(accountId, { action: 'webhook_secret.created' }, 10)).items).toEqual([
      expect.objectContaining({ action: 'webhook_secret.created', actor: { kind: 'system' }, target: { kind: 'webhook_secret', id: accountId }, changes: null }),
    ]);
  });

  it('a sender that may make the secret but has no audit trail to record it in makes none: the attempt fails and is retried (a failure for good is counted: the schedule ends, and its alarm sees it)', async () => {
    const accountId = `acct_wh_noaudit_${Date.now().toString(36)}`;
    await createAccount({ accounts: deps.accounts, audit: db.audit }, accountId, 'business');
    const run = await running(accountId);
    const { audit: _audit, ...miswired } = deps;
    expect(await firstAttempt(miswired, await endedWithoutAttempt(run), { makeSecret: true })).toBe('retry');
    expect(deliveriesOf(run.execution_id)).toHaveLength(0);
    expect((await deps.executions.get(accountId, run.execution_id))!.webhook).toMatchObject({ status: 'pending', attempts: 1 });
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty('webhook_secret_sealed');
  });
});

describe('one sender run shares its attempts between accounts', () => {
  it('a tenant with a backlog of due webhooks does not keep another’s waiting past the run (and takes its share only)', async () => {
    // What earlier tests left due goes first (this run is about these two tenants only).
    for (let i = 0; i < 6 && (await sendDueWebhooks(deps, Date.now() + 10_000)).due > 0; i++) await new Promise((r) => setTimeout(r, 1300));
    const noisy = await account();
    const quiet = await account();
    // 30 due webhooks of a dead receiver, all due before the quiet tenant's one.
    const backlog = await Promise.all(Array.from({ length: 30 }, () => running(noisy.accountId, 'http://127.0.0.1:9/dead')));
    for (const run of backlog) await endedWithoutAttempt(run);
    await new Promise((r) => setTimeout(r, 20));
    const waiting = await running(quiet.accountId);
    await endedWithoutAttempt(waiting);
    const run = await sendDueWebhooks(deps, Date.now() + 20_000, { perRun: 10, perAccount: 5, concurrency: 5, scanPerShard: 2000, postponePerRun: 2000 });
    expect(deliveriesOf(waiting.execution_id)).toHaveLength(1);
    const attempted = await Promise.all(backlog.map(async (b) => (await deps.executions.get(noisy.accountId, b.execution_id))!.webhook!.attempts));
    expect(attempted.filter((n) => n === 1)).toHaveLength(5);
    expect(run.deferred).toBeGreaterThanOrEqual(25);
  });

  it('a backlog longer than a run reads is moved later, spread at its share per run: the next runs read past it to another tenant', async () => {
    for (let i = 0; i < 6 && (await sendDueWebhooks(deps, Date.now() + 10_000)).due > 0; i++) await new Promise((r) => setTimeout(r, 1300));
    const noisy = await account();
    const quiet = await account();
    // The quiet tenant's run, and 24 of the noisy one's in the same shard, all due before it.
    const waiting = await running(quiet.accountId);
    const shard = webhookShard(waiting.execution_id);
    const backlog: ExecutionRecord[] = [];
    while (backlog.length < 24) {
      const run = await running(noisy.accountId, 'http://127.0.0.1:9/dead');
      if (webhookShard(run.execution_id) === shard) backlog.push(run);
    }
    for (const run of backlog) await endedWithoutAttempt(run);
    await new Promise((r) => setTimeout(r, 20));
    await endedWithoutAttempt(waiting);
    // Each run reads 8 of the shard and takes 2 of an account. Without moving the backlog, the noisy
    // tenant's next ones would fill every run's reads until 12 runs had taken 2 each. The runs happen two
    // minutes on (only what has been due for over a minute is moved: not a redelivery just made due).
    const limits = { perRun: 10, perAccount: 2, concurrency: 5, scanPerShard: 8, postponePerRun: 100 };
    const later = { ...deps, now: () => new Date(Date.now() + 120_000) };
    const started = Date.now() + 120_000;
    let runs = 0;
    while (deliveriesOf(waiting.execution_id).length === 0 && runs < 6) {
      await sendDueWebhooks(later, Date.now() + 20_000, limits);
      runs++;
    }
    expect(deliveriesOf(waiting.execution_id)).toHaveLength(1);
    expect(runs).toBeLessThanOrEqual(4);
    // The noisy tenant's: never more than its share attempted per run; the rest moved a minute or more
    // later (spread over the minutes its share takes), each saying when in next_attempt_at.
    const stored = await Promise.all(backlog.map(async (b) => (await deps.executions.get(noisy.accountId, b.execution_id))!));
    expect(stored.filter((r) => r.webhook!.attempts > 0).length).toBeLessThanOrEqual(2 * runs);
    const moved = stored.filter((r) => r.webhook!.attempts === 0);
    expect(moved.length).toBeGreaterThan(0);
    for (const r of moved) {
      expect(r.webhook_due).toBeGreaterThanOrEqual(started + 60_000);
      // A run read at most 8 of the account: the 4 minutes its share of 2 a run takes them.
      expect(r.webhook_due).toBeLessThanOrEqual(Date.now() + 120_000 + 60_000 + 4 * 60_000);
      expect(Date.parse(String(r.webhook!.next_attempt_at))).toBe(r.webhook_due);
    }
  });

  it('nothing is moved where a run reads the whole backlog, nor what has been due for less than a minute', async () => {
    for (let i = 0; i < 6 && (await sendDueWebhooks(deps, Date.now() + 10_000)).due > 0; i++) await new Promise((r) => setTimeout(r, 1300));
    const noisy = await account();
    const backlog = await Promise.all(Array.from({ length: 12 }, () => running(noisy.accountId, 'http://127.0.0.1:9/dead')));
    for (const run of backlog) await endedWithoutAttempt(run);
    // Read whole (2,000 a shard), two minutes on: past its share, but nobody waits behind it.
    const whole = await sendDueWebhooks({ ...deps, now: () => new Date(Date.now() + 120_000) }, Date.now() + 20_000, {
      perRun: 10, perAccount: 2, concurrency: 5, scanPerShard: 2000, postponePerRun: 100,
    });
    expect(whole.postponed).toBe(0);
    // Read in part (1 a shard), but due only now: a redelivery or a first attempt just made due stays due.
    const fresh = await sendDueWebhooks(deps, Date.now() + 20_000, { perRun: 10, perAccount: 0, concurrency: 5, scanPerShard: 1, postponePerRun: 100 });
    expect(fresh.postponed).toBe(0);
  });

  it('a move is conditioned on the due time read: a webhook claimed or redelivered meanwhile is left as it is', async () => {
    const { accountId } = await account();
    const run = await endedWithoutAttempt(await running(accountId, 'http://127.0.0.1:9/dead'));
    const seen = run.webhook_due!;
    // Claimed since it was read: the move does nothing.
    expect(await deps.executions.claimWebhookAttempt(accountId, run.execution_id, seen, 'claim-x', Date.now() + 30_000, Date.now())).toBeDefined();
    expect(await deps.executions.postponeWebhook(accountId, run.execution_id, seen, Date.now() + 600_000)).toBe(false);
    expect((await deps.executions.get(accountId, run.execution_id))!.webhook_claim).toBe('claim-x');
  });
});

describe('redeliveries sent at once are bounded per account', () => {
  it(`past ${REDELIVERIES_SENT_AT_ONCE} in ${REDELIVERY_WINDOW_MS / 1000} s, an account's redeliveries are left due for the scheduled sender (each one sent at once is a sender of up to 5 s: unbounded before); another account's are sent at once`, async () => {
    const { accountId } = await account();
    const other = await account();
    const actorOf = (id: string) => ({ accountId: id, principal: { kind: 'key' as const, key_id: 'key_r' }, workspaces: ['*'] });
    const runs = await Promise.all(Array.from({ length: REDELIVERIES_SENT_AT_ONCE + 5 }, async () => endedWithoutAttempt(await running(accountId, 'http://127.0.0.1:9/dead'))));
    const sent: string[] = [];
    const invoke = async (ids: { account_id: string; execution_id: string }) => {
      sent.push(`${ids.account_id}/${ids.execution_id}`);
    };
    // In one window (a burst at its start), so the count is exact.
    const windowStart = Math.ceil(Date.now() / REDELIVERY_WINDOW_MS) * REDELIVERY_WINDOW_MS;
    await new Promise((r) => setTimeout(r, windowStart - Date.now() + 10));
    const answers = await Promise.all(runs.map((run) => redeliverWebhook({ executions: deps.executions }, actorOf(accountId), run.execution_id, invoke)));
    expect(answers.map((a) => a.webhook?.status)).toEqual(Array(runs.length).fill('pending'));
    expect(sent.filter((s) => s.startsWith(`${accountId}/`))).toHaveLength(REDELIVERIES_SENT_AT_ONCE);
    // Every one is due now for the scheduled sender, sent at once or not.
    for (const run of runs) expect((await deps.executions.get(accountId, run.execution_id))!.webhook_due).toBeLessThanOrEqual(Date.now());
    // Another account is not held back by it.
    const theirs = await endedWithoutAttempt(await running(other.accountId, 'http://127.0.0.1:9/dead'));
    await redeliverWebhook({ executions: deps.executions }, actorOf(other.accountId), theirs.execution_id, invoke);
    expect(sent).toContain(`${other.accountId}/${theirs.execution_id}`);
  });
});
