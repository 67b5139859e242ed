/**
 * Issue #14 finding 4, end to end: an account may have at most its tier's number of async executions in
 * flight (API.md §4); past that `?async=true` is 429 CONCURRENCY_LIMIT_EXCEEDED with `limit` and
 * Retry-After (§3). Sync runs have a limit of their own (`maxSyncInFlight`, held as slots), the same 429
 * past it. The accounts here are pro, whose default async limit is 10; their sync limit is set to 3 here
 * (the local runner runs max(8, 4 × CPUs) instances of a function: the default 10 may not be reachable). The bundles
 * talk to DynamoDB Local through the fault proxy, which loses answers to transactions that landed. Runs
 * are watched in the table, not through the API, to stay inside the pro key's rate limit.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ExecutionsRepository } from '../../lambdas/shared/repositories/executions.js';
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** The pro tier's default (lambdas/shared/settings.ts). */
const LIMIT = 10;
/** The pro tier's sync limit in this stack's settings. */
const SYNC_LIMIT = 3;
let proxy: CountingProxy;
let t: TestStack;

const SLEEPY = {
  input_schema: { type: 'object', properties: { ms: { type: 'integer' } } },
  steps: [{ id: 'nap', model: 'sleep', input: { ms: '$.input.ms' } }],
  output: '$.steps.nap.output',
};
const FAILING = { input_schema: {}, steps: [{ id: 'f', model: 'fail', input: { message: 'no' } }], output: '$.steps.f.output' };

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  t = await startTestStack('e2e-concurrency', {
    dynamodbEndpoint: proxy.endpoint,
    // The stack's settings (its defaults) with the pro and business tiers' sync limits lowered (business
    // may run models directly).
    functionEnv: { KNOUDS_SETTINGS: JSON.stringify({ tiers: { pro: { maxSyncInFlight: SYNC_LIMIT }, business: { maxSyncInFlight: SYNC_LIMIT } } }) },
  });
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await t?.close();
  await proxy?.close();
});

/** A pro account with the sleepy and failing workflows deployed. */
async function account(): Promise<{ key: string; accountId: string }> {
  const { key, accountId } = await t.account('pro', {
    name: 'runner',
    capabilities: ['workflow:run', 'workflow:read', 'workflow:write', 'execution:read', 'execution:cancel'],
  });
  for (const [slug, definition] of [['sleepy', SLEEPY], ['failing', FAILING]] as const) {
    expect((await t.api(key, 'POST', '/workflows', { slug, name: slug, definition })).status).toBe(201);
    expect((await t.api(key, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
  }
  return { key, accountId };
}

const inFlight = async (accountId: string) =>
  (await t.stack.doc.send(new GetCommand({ TableName: t.stack.state.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item?.['async_in_flight'] ?? 0;
/** The account's sync slots held now (read from the table). */
const syncHeld = async (accountId: string) => (await new ExecutionsRepository(t.stack.doc, t.stack.state.tables.executions).heldSyncSlots(accountId, Date.now())).length;

const start = (key: string, slug: string, input: unknown = {}) => t.api(key, 'POST', `/workflows/${slug}/run?async=true`, { input });

/** The execution once it has ended (read from the table): `{ body: { status, … } }`. */
async function ended(accountId: string, id: string, timeoutMs = 30_000): Promise<{ body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await t.stack.doc.send(
      new GetCommand({ TableName: t.stack.state.tables.executions, Key: { account_id: accountId, execution_id: id }, ConsistentRead: true }),
    );
    const body = out.Item ?? {};
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(body['status'])) || Date.now() > deadline) return { body };
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe('async executions in flight per account (API.md §4)', () => {
  it(`${LIMIT}+3 parallel starts: exactly ${LIMIT} admitted, the rest 429 CONCURRENCY_LIMIT_EXCEEDED with limit and Retry-After; admitted again once they end`, async () => {
    const { key, accountId } = await account();
    // Long enough that none ends before the checks below (the local worker pool runs 8 at a time).
    const replies = await Promise.all(Array.from({ length: LIMIT + 3 }, () => start(key, 'sleepy', { ms: 6000 })));
    const admitted = replies.filter((r) => r.status === 202);
    const refused = replies.filter((r) => r.status !== 202);
    expect(admitted).toHaveLength(LIMIT);
    expect(refused).toHaveLength(3);
    for (const r of refused) {
      expect({ status: r.status, body: r.body, retryAfter: r.headers.get('retry-after') }).toEqual({
        status: 429,
        body: { error: expect.any(String), code: 'CONCURRENCY_LIMIT_EXCEEDED', request_id: r.headers.get('x-request-id'), limit: LIMIT },
        retryAfter: '5',
      });
      // The key's rate limit headers, as on every response.
      expect(r.headers.get('x-ratelimit-limit')).toBe('100');
    }
    expect(await inFlight(accountId)).toBe(LIMIT);
    // Refused runs left no execution behind.
    expect(((await t.api(key, 'GET', '/executions')).body['items'] as unknown[]).length).toBe(LIMIT);
    // A sync run counts on its own counter: not refused.
    expect((await t.api(key, 'POST', '/workflows/sleepy/run', { input: { ms: 1 } })).status).toBe(200);
    for (const r of admitted) expect((await ended(accountId, String(r.body['execution_id']))).body['status']).toBe('SUCCEEDED');
    expect(await inFlight(accountId)).toBe(0);
    const again = await start(key, 'sleepy', { ms: 1 });
    expect(again.status).toBe(202);
    expect((await ended(accountId, String(again.body['execution_id']))).body['status']).toBe('SUCCEEDED');
    expect(await inFlight(accountId)).toBe(0);
  });

  it('the counter returns to 0 after runs end by failure and by cancel (QUEUED or RUNNING), and a cancel frees a slot at once', async () => {
    const { key, accountId } = await account();
    const failing = await start(key, 'failing');
    expect(failing.status).toBe(202);
    expect((await ended(accountId, String(failing.body['execution_id']))).body['status']).toBe('FAILED');
    expect(await inFlight(accountId)).toBe(0);
    const long = await Promise.all(Array.from({ length: LIMIT }, () => start(key, 'sleepy', { ms: 30_000 })));
    expect(long.map((r) => r.status)).toEqual(Array(LIMIT).fill(202));
    expect((await start(key, 'sleepy', { ms: 1 })).status).toBe(429);
    const first = String(long[0]!.body['execution_id']);
    expect((await t.api(key, 'POST', `/executions/${first}/cancel`)).status).toBe(200);
    // Cancelling again frees nothing more.
    expect((await t.api(key, 'POST', `/executions/${first}/cancel`)).status).toBe(200);
    expect(await inFlight(accountId)).toBe(LIMIT - 1);
    const next = await start(key, 'sleepy', { ms: 30_000 });
    expect(next.status).toBe(202);
    for (const id of [...long.slice(1), next].map((r) => String(r.body['execution_id']))) {
      expect((await t.api(key, 'POST', `/executions/${id}/cancel`)).status).toBe(200);
    }
    expect(await inFlight(accountId)).toBe(0);
  });

  it('a lost answer on the start’s, the finish’s or the cancel’s transaction never leaks nor double-frees a slot', async () => {
    const { key, accountId } = await account();
    const accounts = t.stack.state.tables.accounts;
    // The start: the transaction lands, its answer is lost, the SDK sends it again.
    proxy.inject({ operation: 'TransactWriteItems', table: accounts, fault: 'lose-response', times: 1 });
    const started = await start(key, 'sleepy', { ms: 1500 });
    expect(proxy.injected()).toBe(1);
    expect(started.status).toBe(202);
    expect(await inFlight(accountId)).toBe(1);
    // The worker's finish: the same.
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: accounts, fault: 'lose-response', times: 1 });
    expect((await ended(accountId, String(started.body['execution_id']))).body['status']).toBe('SUCCEEDED');
    expect(proxy.injected()).toBe(1);
    expect(await inFlight(accountId)).toBe(0);
    // The cancel: the same.
    const long = await start(key, 'sleepy', { ms: 30_000 });
    expect(await inFlight(accountId)).toBe(1);
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: accounts, fault: 'lose-response', times: 1 });
    const cancelled = await t.api(key, 'POST', `/executions/${String(long.body['execution_id'])}/cancel`);
    expect(proxy.injected()).toBe(1);
    expect(cancelled.body['status']).toBe('CANCELLED');
    expect(await inFlight(accountId)).toBe(0);
    // Every slot is still there to take.
    const full = await Promise.all(Array.from({ length: LIMIT + 1 }, () => start(key, 'sleepy', { ms: 30_000 })));
    expect(full.map((r) => r.status).sort()).toEqual([...Array(LIMIT).fill(202), 429]);
    for (const r of full.filter((x) => x.status === 202)) expect((await t.api(key, 'POST', `/executions/${String(r.body['execution_id'])}/cancel`)).status).toBe(200);
    expect(await inFlight(accountId)).toBe(0);
  });
});

describe('sync executions running at once per account', () => {
  const run = (key: string, input: unknown) => t.api(key, 'POST', '/workflows/sleepy/run', { input });

  it(`${SYNC_LIMIT}+3 parallel sync runs: exactly ${SYNC_LIMIT} run, the rest 429 CONCURRENCY_LIMIT_EXCEEDED at once and leave nothing behind; async runs are not held back`, async () => {
    const { key, accountId } = await account();
    // Long enough that every request reaches the function while the first ones still hold their slots.
    const replies = await Promise.all(Array.from({ length: SYNC_LIMIT + 3 }, () => run(key, { ms: 4000 })));
    const ran = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status !== 200);
    expect(ran.map((r) => r.body['status'])).toEqual(Array(SYNC_LIMIT).fill('SUCCEEDED'));
    expect(refused).toHaveLength(3);
    for (const r of refused) {
      expect({ status: r.status, body: r.body, retryAfter: r.headers.get('retry-after') }).toEqual({
        status: 429,
        body: { error: expect.stringMatching(/limit of 3 synchronous executions running/), code: 'CONCURRENCY_LIMIT_EXCEEDED', request_id: r.headers.get('x-request-id'), limit: SYNC_LIMIT },
        retryAfter: '5',
      });
    }
    expect(await syncHeld(accountId)).toBe(0);
    expect(((await t.api(key, 'GET', '/executions')).body['items'] as unknown[]).length).toBe(SYNC_LIMIT);

    // While the sync slots are all held, an async run still starts, and takes none of them.
    const holding = Promise.all(Array.from({ length: SYNC_LIMIT }, () => run(key, { ms: 3000 })));
    const deadline = Date.now() + 10_000;
    while ((await syncHeld(accountId)) < SYNC_LIMIT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await syncHeld(accountId)).toBe(SYNC_LIMIT);
    expect((await run(key, { ms: 1 })).status).toBe(429);
    const queued = await start(key, 'sleepy', { ms: 1 });
    expect(queued.status).toBe(202);
    expect((await holding).map((r) => r.status)).toEqual(Array(SYNC_LIMIT).fill(200));
    expect((await ended(accountId, String(queued.body['execution_id']))).body['status']).toBe('SUCCEEDED');
    expect([await syncHeld(accountId), await inFlight(accountId)]).toEqual([0, 0]);
  });

  it('lost answers on the slot’s take, the run’s put, its finish and the slot’s release never leak nor double-take a slot; a failed run gives it back too', async () => {
    const { key, accountId } = await account();
    proxy.reset();
    // Each call's first answer lost, its resend answered: a rule for each call, the next one skipping the
    // resend. The puts: the slot's, then the run's.
    const executions = t.stack.state.tables.executions;
    proxy.inject({ operation: 'PutItem', table: executions, fault: 'lose-response', times: 1 });
    proxy.inject({ operation: 'PutItem', table: executions, fault: 'lose-response', times: 1, skip: 1 });
    // The updates: the run's finish, then the slot's release.
    proxy.inject({ operation: 'UpdateItem', table: executions, fault: 'lose-response', times: 1 });
    proxy.inject({ operation: 'UpdateItem', table: executions, fault: 'lose-response', times: 1, skip: 1 });
    const reply = await run(key, { ms: 1 });
    expect(proxy.injected()).toBe(4);
    // Each sent twice; the fifth update is the usage counter's.
    expect(proxy.counts()).toMatchObject({ PutItem: 4, UpdateItem: 5 });
    expect({ status: reply.status, run: reply.body['status'] }).toEqual({ status: 200, run: 'SUCCEEDED' });
    expect(await syncHeld(accountId)).toBe(0);
    expect((await t.api(key, 'POST', '/workflows/failing/run', { input: {} })).body['status']).toBe('FAILED');
    expect(await syncHeld(accountId)).toBe(0);
    // Every slot is still there to take.
    const full = await Promise.all(Array.from({ length: SYNC_LIMIT + 1 }, () => run(key, { ms: 3000 })));
    expect(full.map((r) => r.status).sort()).toEqual([...Array(SYNC_LIMIT).fill(200), 429]);
    expect(await syncHeld(accountId)).toBe(0);
  });

  it('a direct run of a model that waits (sleep) holds a sync slot too, shared with sync workflow runs (all ran at once before); one that answers at once takes none', async () => {
    const { key, accountId } = await t.account('business', { name: 'models', capabilities: ['model:run', 'workflow:run', 'workflow:write'] });
    const nap = (ms: number) => t.api(key, 'POST', '/models/sleep/run', { input: { ms } });
    const replies = await Promise.all(Array.from({ length: SYNC_LIMIT + 2 }, () => nap(4000)));
    expect(replies.map((r) => r.status).sort()).toEqual([...Array(SYNC_LIMIT).fill(200), 429, 429]);
    for (const r of replies.filter((reply) => reply.status === 429)) {
      expect({ body: r.body, retryAfter: r.headers.get('retry-after') }).toEqual({
        body: { error: expect.stringMatching(/limit of 3 synchronous runs \(workflows, and direct runs of models that wait\)/), code: 'CONCURRENCY_LIMIT_EXCEEDED', request_id: r.headers.get('x-request-id'), limit: SYNC_LIMIT },
        retryAfter: '5',
      });
    }
    expect(await syncHeld(accountId)).toBe(0);
    // The same slots as sync workflow runs: while the model runs hold them all, a sync run is refused.
    expect((await t.api(key, 'POST', '/workflows', { slug: 'sleepy', name: 'sleepy', definition: SLEEPY })).status).toBe(201);
    expect((await t.api(key, 'POST', '/workflows/sleepy/deploy')).status).toBe(200);
    const holding = Promise.all(Array.from({ length: SYNC_LIMIT }, () => nap(3000)));
    const deadline = Date.now() + 10_000;
    while ((await syncHeld(accountId)) < SYNC_LIMIT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await t.api(key, 'POST', '/workflows/sleepy/run', { input: { ms: 1 } })).status).toBe(429);
    // A model that answers at once (echo) is not held back.
    expect((await t.api(key, 'POST', '/models/echo/run', { input: 1 })).status).toBe(200);
    expect((await holding).map((r) => r.status)).toEqual(Array(SYNC_LIMIT).fill(200));
    expect(await syncHeld(accountId)).toBe(0);
  });
});
