/**
 * Issue #15 part 2, end to end on the local stack: webhooks outlast a receiver's outage. The stack runs
 * the template's schedule (the webhook sender) only when a test fires it (`runSchedules`), with the
 * test-only retry schedule 1 s, 1 s, 1 s (4 attempts), and delivers every asynchronous invocation twice
 * (Lambda's at-least-once delivery: the worker's events, the sender's), so every "one POST" below also
 * holds under duplicate deliveries. Every delivery received is verified with the official
 * `standardwebhooks` library.
 */
import { Webhook } from 'standardwebhooks';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { ExecutionsRepository, newExecutionId, type ExecutionRecord } from '../../lambdas/shared/repositories/executions.js';
import { expectError } from '../support/http.js';
import { startReceiver, type Answer, type Received } from '../support/receiver.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let admin: string;
let accountId: string;
let secret: string;
let executions: ExecutionsRepository;

const receivers: { close(): Promise<void> }[] = [];
async function openReceiver(plan: (n: number) => Answer) {
  const r = await startReceiver(plan);
  receivers.push(r);
  return r;
}

const ECHO = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
const NAP = { input_schema: {}, steps: [{ id: 'zz', model: 'sleep', input: { ms: 20_000 } }], output: '$.steps.zz.output' };

beforeAll(async () => {
  t = await startTestStack('e2e-webhooks', { schedules: 'manual', webhookRetrySchedule: '1,1,1', duplicateDeliveryRate: 1 });
  ({ key: admin, accountId } = await t.account('business'));
  secret = String((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']);
  for (const [slug, definition] of [['echo', ECHO], ['nap', NAP]] as const) {
    await t.api(admin, 'POST', '/workflows', { slug, name: slug, definition });
    await t.api(admin, 'POST', `/workflows/${slug}/deploy`);
  }
  executions = new ExecutionsRepository(t.stack.doc, t.stack.state.tables.executions, t.stack.state.tables.accounts);
}, 60_000);
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await t?.close();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function execution(id: string, key = admin): Promise<Record<string, unknown>> {
  const reply = await t.api(key, 'GET', `/executions/${id}`);
  expect(reply.status).toBe(200);
  return reply.body;
}
const webhookOf = async (id: string) => (await execution(id))['webhook'] as Record<string, unknown> | null;

/** Waits for `check`, firing the schedule (a sender run) every 250 ms when `tick`. */
async function until(check: () => Promise<boolean>, { tick = false, timeoutMs = 20_000 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    if (tick) await t.stack.runSchedules();
    await pause(250);
  }
}

async function runAsync(slug: string, url: string, input: unknown = { n: 1 }, key = admin): Promise<string> {
  const reply = await t.api(key, 'POST', `/workflows/${slug}/run?async=true`, { input, webhook_url: url });
  expect(reply.status).toBe(202);
  return String(reply.body['execution_id']);
}

/** Verifies a delivery as a receiver would, with the standardwebhooks library (it throws when the signature or the timestamp is wrong). */
function verified(delivery: Received): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(delivery.body, delivery.headers as Record<string, string>) as { type: string; timestamp: string; data: Record<string, unknown> };
}

/** A run ended by an ender that crashed right after its terminal write: pending, no attempt made. */
async function endedWithoutAttempt(account: string, url: string): Promise<ExecutionRecord> {
  const now = new Date();
  const record: ExecutionRecord = {
    account_id: account,
    execution_id: newExecutionId(now),
    workflow_slug: 'echo',
    workflow_version: 1,
    workspace_id: 'default',
    status: 'RUNNING',
    input: { crashed: true },
    created_at: now.toISOString(),
    started_at: now.toISOString(),
    key_id: 'key_x',
    async: true,
    owner: 'att_crashed',
    lease_until: Date.now() + 60_000,
    webhook_url: url,
  };
  await executions.create(record);
  const ended = await executions.finish(account, record.execution_id, { status: 'SUCCEEDED', output: { crashed: true } }, new Date(), 'att_crashed', ['RUNNING'], record);
  if (!ended) throw new Error('not ended');
  return ended;
}

describe('a receiver that fails for a while', () => {
  it('refuses (500) its first two attempts, then accepts: delivered by the third, recorded on the execution, the same signed bytes each time', async () => {
    const r = await openReceiver((n) => (n < 2 ? 'refuse' : 'ok'));
    const id = await runAsync('echo', r.url, { b: 2, a: 1 });
    // The worker that ended the run made the first attempt at once (and only one, though its event came twice).
    await until(async () => ((await webhookOf(id))?.['attempts'] ?? 0) === 1);
    expect(await webhookOf(id)).toEqual({
      status: 'pending',
      attempts: 1,
      last_attempt_at: expect.any(String),
      last_response_status: 500,
      next_attempt_at: expect.any(String),
    });
    await until(async () => (await webhookOf(id))?.['status'] === 'delivered', { tick: true });
    const done = await execution(id);
    expect(done['webhook']).toEqual({ status: 'delivered', attempts: 3, last_attempt_at: expect.any(String), last_response_status: 204, next_attempt_at: null });
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((d) => d.headers['webhook-id']))).toEqual(new Set([`msg_${id}_succeeded`]));
    expect(new Set(r.received.map((d) => d.body)).size).toBe(1);
    // The retries came no sooner than the schedule's 1 s − 20 %.
    expect(r.received[1]!.at - r.received[0]!.at).toBeGreaterThanOrEqual(750);
    for (const d of r.received) {
      const payload = verified(d);
      expect(payload).toEqual({ type: 'execution.succeeded', timestamp: done['finished_at'], data: expect.objectContaining({ execution_id: id, status: 'SUCCEEDED', output: { a: 1, b: 2 } }) });
      expect(payload.data).not.toHaveProperty('webhook');
      const { webhook: _w, ...withoutWebhook } = done;
      expect(payload.data).toEqual(withoutWebhook);
    }
  });

  it('hangs on its first attempt (cut at 5 s, no status), then accepts', async () => {
    const r = await openReceiver((n) => (n < 1 ? 'hang' : 'ok'));
    const id = await runAsync('echo', r.url);
    await until(async () => ((await webhookOf(id))?.['attempts'] ?? 0) === 1, { timeoutMs: 15_000 });
    const first = (await webhookOf(id))!;
    expect(first).toMatchObject({ status: 'pending', attempts: 1, last_response_status: null });
    expect(Date.parse(String(first['last_attempt_at'])) - Date.parse(String(((await execution(id))['finished_at']))))
      .toBeGreaterThanOrEqual(4900);
    await until(async () => (await webhookOf(id))?.['status'] === 'delivered', { tick: true });
    expect(await webhookOf(id)).toMatchObject({ status: 'delivered', attempts: 2, last_response_status: 204, next_attempt_at: null });
    expect(r.received).toHaveLength(2);
    r.received.forEach(verified);
  }, 40_000);

  it('down for the whole schedule: failed after 4 attempts; redelivered once it is back: delivered, with the same webhook-id', async () => {
    let up = false;
    const r = await openReceiver(() => (up ? 'ok' : 'refuse'));
    const id = await runAsync('echo', r.url);
    await until(async () => (await webhookOf(id))?.['status'] === 'failed', { tick: true });
    expect(await webhookOf(id)).toEqual({ status: 'failed', attempts: 4, last_attempt_at: expect.any(String), last_response_status: 500, next_attempt_at: null });
    // Failed is final: sender runs leave it.
    await t.stack.runSchedules();
    expect(r.received).toHaveLength(4);

    up = true;
    const redelivered = await t.api(admin, 'POST', `/executions/${id}/webhook/redeliver`);
    expect(redelivered.status).toBe(202);
    expect(redelivered.body).toMatchObject({ execution_id: id, status: 'SUCCEEDED', webhook: { status: 'pending', attempts: 4, next_attempt_at: expect.any(String) } });
    // Sent at once by the sender the executions function invoked (no schedule fired here).
    await until(async () => (await webhookOf(id))?.['status'] === 'delivered');
    expect(await webhookOf(id)).toMatchObject({ status: 'delivered', attempts: 5, last_response_status: 204 });
    expect(r.received).toHaveLength(5);
    expect(r.received[4]!.headers['webhook-id']).toBe(r.received[0]!.headers['webhook-id']);
    expect(r.received[4]!.body).toBe(r.received[0]!.body);
    expect(verified(r.received[4]!)).toMatchObject({ type: 'execution.succeeded', data: { execution_id: id } });

    // A delivered webhook may be redelivered too (a receiver that lost it): once more, the same id.
    expect((await t.api(admin, 'POST', `/executions/${id}/webhook/redeliver`)).status).toBe(202);
    await until(async () => r.received.length === 6 && (await webhookOf(id))?.['status'] === 'delivered');
    expect(await webhookOf(id)).toMatchObject({ attempts: 6 });
    expect(r.received[5]!.headers['webhook-id']).toBe(`msg_${id}_succeeded`);
    verified(r.received[5]!);
  });
});

describe('nothing is lost', () => {
  it('an ender that crashed after its terminal write: the scheduled sender delivers the webhook', async () => {
    const r = await openReceiver(() => 'ok');
    const ended = await endedWithoutAttempt(accountId, r.url);
    expect(await webhookOf(ended.execution_id)).toMatchObject({ status: 'pending', attempts: 0 });
    await t.stack.runSchedules();
    expect(await webhookOf(ended.execution_id)).toMatchObject({ status: 'delivered', attempts: 1, last_response_status: 204 });
    expect(r.received).toHaveLength(1);
    expect(verified(r.received[0]!)).toMatchObject({ type: 'execution.succeeded', timestamp: ended.finished_at, data: { execution_id: ended.execution_id, output: { crashed: true } } });
  });

  it('two sender runs at once (each delivered twice): one POST per due attempt', async () => {
    const r = await openReceiver(() => 'ok');
    const runs = await Promise.all(Array.from({ length: 6 }, () => endedWithoutAttempt(accountId, r.url)));
    await Promise.all([t.stack.runSchedules(), t.stack.runSchedules()]);
    expect(r.received.map((d) => d.headers['webhook-id']).sort()).toEqual(runs.map((e) => `msg_${e.execution_id}_succeeded`).sort());
    r.received.forEach(verified);
  });

  it('a cancelled run gets its execution.cancelled webhook, with its timestamp', async () => {
    const r = await openReceiver(() => 'ok');
    const id = await runAsync('nap', r.url);
    await until(async () => (await execution(id))['status'] === 'RUNNING');
    const cancelled = await t.api(admin, 'POST', `/executions/${id}/cancel`);
    expect(cancelled.body).toMatchObject({ status: 'CANCELLED', webhook: { status: 'pending', attempts: 0 } });
    await until(async () => (await webhookOf(id))?.['status'] === 'delivered');
    expect(r.received).toHaveLength(1);
    expect(verified(r.received[0]!)).toEqual({
      type: 'execution.cancelled',
      timestamp: (await execution(id))['finished_at'],
      data: expect.objectContaining({ execution_id: id, status: 'CANCELLED' }),
    });
  });

  it('a tenant with a backlog of due webhooks does not delay another’s past one sender run', async () => {
    const noisy = await t.account('business');
    const quiet = await t.account('business');
    // Both have a secret (the sender only opens one).
    for (const key of [noisy.key, quiet.key]) expect((await t.api(key, 'GET', '/webhooks/secret')).status).toBe(200);
    // More due webhooks (to a closed port) than a run attempts in all (200), all due before the quiet tenant's one.
    const dead = 'http://127.0.0.1:9/dead';
    const backlog: ExecutionRecord[] = [];
    for (let i = 0; i < 11; i++) backlog.push(...(await Promise.all(Array.from({ length: 20 }, () => endedWithoutAttempt(noisy.accountId, dead)))));
    await pause(20);
    const r = await openReceiver(() => 'ok');
    const waiting = await endedWithoutAttempt(quiet.accountId, r.url);
    await t.stack.runSchedules();
    expect(r.received).toHaveLength(1);
    expect((await execution(waiting.execution_id, quiet.key))['webhook']).toMatchObject({ status: 'delivered', attempts: 1 });
    // The noisy tenant got its share of each run (20 a run; the schedule's event is delivered twice here,
    // as Lambda may, so one or two runs); the rest stay due for later runs.
    const attempts = await Promise.all(backlog.map(async (e) => (await executions.get(noisy.accountId, e.execution_id))!.webhook!.attempts));
    const tried = attempts.filter((n) => n === 1).length;
    expect(tried).toBeGreaterThanOrEqual(20);
    expect(tried).toBeLessThanOrEqual(40);
    expect(attempts.filter((n) => n === 0)).toHaveLength(220 - tried);
  }, 60_000);
});

describe('POST /executions/{id}/webhook/redeliver', () => {
  it('needs execution:read and webhook:receive, each named when missing', async () => {
    const r = await openReceiver(() => 'ok');
    const id = await runAsync('echo', r.url);
    await until(async () => (await webhookOf(id))?.['status'] === 'delivered');
    const readOnly = (await createKey(t.deps(), accountId, { name: 'reader', capabilities: ['execution:read'] })).apiKey;
    const hooksOnly = (await createKey(t.deps(), accountId, { name: 'hooks', preset: 'webhook-receiver' })).apiKey;
    expectError(await t.api(readOnly, 'POST', `/executions/${id}/webhook/redeliver`), 403, 'CAPABILITY_DENIED', { required: 'webhook:receive', actual: ['execution:read'] });
    expectError(await t.api(hooksOnly, 'POST', `/executions/${id}/webhook/redeliver`), 403, 'CAPABILITY_DENIED', { required: 'execution:read', actual: ['webhook:receive'] });
    const both = (await createKey(t.deps(), accountId, { name: 'both', capabilities: ['execution:read', 'webhook:receive'] })).apiKey;
    expect((await t.api(both, 'POST', `/executions/${id}/webhook/redeliver`)).status).toBe(202);
    await until(async () => r.received.length === 2);
    expect(r.received[1]!.headers['webhook-id']).toBe(r.received[0]!.headers['webhook-id']);
  });

  it('404 for another account’s or an unknown execution, and for a run without a webhook (saying so); 409 EXECUTION_NOT_FINISHED for a run in flight', async () => {
    const r = await openReceiver(() => 'ok');
    const other = await t.account('business');
    const mine = await runAsync('echo', r.url);
    await until(async () => (await webhookOf(mine))?.['status'] === 'delivered');
    expectError(await t.api(other.key, 'POST', `/executions/${mine}/webhook/redeliver`), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'POST', `/executions/${newExecutionId(new Date())}/webhook/redeliver`), 404, 'NOT_FOUND');
    const plain = await t.api(admin, 'POST', '/workflows/echo/run', { input: 1 });
    expect(plain.body['webhook']).toBeNull();
    const noHook = await t.api(admin, 'POST', `/executions/${String(plain.body['execution_id'])}/webhook/redeliver`);
    expectError(noHook, 404, 'NOT_FOUND');
    expect(noHook.body['error']).toMatch(/no webhook/);
    const napping = await runAsync('nap', r.url);
    await until(async () => (await execution(napping))['status'] === 'RUNNING');
    expect(await webhookOf(napping)).toBeNull();
    expectError(await t.api(admin, 'POST', `/executions/${napping}/webhook/redeliver`), 409, 'EXECUTION_NOT_FINISHED');
    await t.api(admin, 'POST', `/executions/${napping}/cancel`);
    // Another account's redeliver changed nothing of the run it could not see.
    expect(r.received.filter((d) => d.headers['webhook-id'] === `msg_${mine}_succeeded`)).toHaveLength(1);
  });

  it('redeliveries sent while an attempt is in flight are that attempt: no POST of their own, and its outcome is recorded', async () => {
    // The receiver holds every request until the sender gives up on it (5 s). A run whose ender crashed:
    // only sender runs send its webhook.
    const r = await openReceiver(() => 'hang');
    const id = (await endedWithoutAttempt(accountId, r.url)).execution_id;
    const scheduled = t.stack.runSchedules();
    await until(async () => r.received.length === 1);
    for (let i = 0; i < 5; i++) {
      const redelivered = await t.api(admin, 'POST', `/executions/${id}/webhook/redeliver`);
      expect(redelivered.status).toBe(202);
      expect(redelivered.body['webhook']).toMatchObject({ status: 'pending', attempts: 0 });
    }
    await pause(1500);
    expect(r.received).toHaveLength(1);
    await scheduled;
    // The attempt's end (no answer in 5 s) is recorded, and the schedule goes on from it.
    expect(await webhookOf(id)).toMatchObject({ status: 'pending', attempts: 1, last_response_status: null });
    expect(r.received).toHaveLength(1);
  });
});

describe('rotating the signing secret (POST /webhooks/secret/rotate with a grace period)', () => {
  it('breaks no receiver during the grace: each delivery verifies with the old and the new secret; after a rotation without grace, only the new one', async () => {
    // An account of its own: the rotations must not change the secret the other tests verify with.
    const { key } = await t.account('business');
    for (const [slug, definition] of [['echo', ECHO]] as const) {
      await t.api(key, 'POST', '/workflows', { slug, name: slug, definition });
      await t.api(key, 'POST', `/workflows/${slug}/deploy`);
    }
    const before = String((await t.api(key, 'GET', '/webhooks/secret')).body['secret']);
    const rotated = await t.api(key, 'POST', '/webhooks/secret/rotate', { grace_period_seconds: 3600 });
    expect(rotated.status).toBe(200);
    const after = String(rotated.body['secret']);
    expect(after).not.toBe(before);
    expect(Date.parse(String(rotated.body['previous_secret_expires_at'])) - Date.now()).toBeGreaterThan(3500_000);

    const r = await openReceiver(() => 'ok');
    const id = await runAsync('echo', r.url, { rotated: 1 }, key);
    await until(async () => r.received.length >= 1);
    const delivery = r.received[0]!;
    const signatures = String(delivery.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    // A receiver still on the old secret and one already on the new both verify the same delivery.
    for (const s of [before, after]) {
      const payload = new Webhook(s).verify(delivery.body, delivery.headers as Record<string, string>) as { data: { execution_id: string } };
      expect(payload.data.execution_id).toBe(id);
    }

    // A rotation without grace ends the old secrets at once: only the newest verifies.
    const newest = String((await t.api(key, 'POST', '/webhooks/secret/rotate', {})).body['secret']);
    const id2 = await runAsync('echo', r.url, { rotated: 2 }, key);
    await until(async () => r.received.length >= 2);
    const second = r.received.find((d) => d.body.includes(id2))!;
    expect(String(second.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(() => new Webhook(newest).verify(second.body, second.headers as Record<string, string>)).not.toThrow();
    for (const old of [before, after]) expect(() => new Webhook(old).verify(second.body, second.headers as Record<string, string>)).toThrow();
  });
});
