/**
 * Housekeeping end to end on the local stack (API.md §5, §7; issue #18 item 3): the template's
 * HousekeepingSchedule rule runs the housekeeping function's bundle when the test fires the schedules
 * (`runSchedules`), and every asynchronous invocation is delivered twice, at once (Lambda's
 * at-least-once delivery), so each scheduled run is two overlapping runs of the function. Expired keys
 * and overdue executions are written with the repositories, their clocks in the past; the effects are
 * read over HTTP (GET /me, POST /keys, GET /executions/{id}), in the audit table and at a webhook
 * receiver. `npm run admin -- sweep --json` is run as a user would, against this stack's state file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { SECRET_ATTRIBUTE } from '../../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository, newExecutionId, type ExecutionRecord } from '../../lambdas/shared/repositories/executions.js';
import { QUEUED_DEADLINE_MS } from '../../lambdas/shared/run-budget.js';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS } from '../../lambdas/shared/settings.js';
import { STACK_OUTPUTS } from '../../lib/outputs.js';
import { deployedCli } from '../support/admin-cli.js';
import { startFakeAws } from '../support/fake-aws.js';
import { runTs } from '../support/processes.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const DAY = 86_400_000;
let t: TestStack;
let dir: string;
let stateFile: string;
let receiver: Receiver;
const progress: string[] = [];
const functionLogs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-housekeeping-'));
  stateFile = path.join(dir, 'state.json');
  receiver = await startReceiver();
  t = await startTestStack('e2e-housekeeping', {
    schedules: 'manual',
    duplicateDeliveryRate: 1,
    stateFile,
    onProgress: (line) => progress.push(line),
    onFunctionLog: (fn, line) => {
      if (fn.startsWith('HousekeepingFunction')) functionLogs.push(line);
    },
  });
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const executions = () => new ExecutionsRepository(t.stack.doc, t.stack.state.tables.executions, t.stack.state.tables.accounts);

/** `n` keys made 8 days ago with a 7-day expiry: expired a day ago, still holding their slots. */
async function expiredKeys(accountId: string, n: number): Promise<string[]> {
  const then = new Date(Date.now() - 8 * DAY);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await createKey(t.deps(() => then), accountId, { name: `old ${i}`, scope: 'admin', expires_in_days: 7 })).key.key_id);
  return ids;
}

/** An async run QUEUED longer than its deadline (its worker event was lost), holding an in-flight slot. */
async function overdueRun(accountId: string, webhookUrl?: string): Promise<ExecutionRecord> {
  const created = new Date(Date.now() - QUEUED_DEADLINE_MS - 60_000);
  const record: ExecutionRecord = {
    account_id: accountId,
    execution_id: newExecutionId(created),
    workflow_slug: 'lost',
    workflow_version: 1,
    workspace_id: 'default',
    status: 'QUEUED',
    input: { n: 1 },
    created_at: created.toISOString(),
    started_by: { kind: 'operator' },
    ...(webhookUrl ? { webhook_url: webhookUrl } : {}),
    async: true,
    async_slot: true,
  };
  await executions().create(record, 50);
  return record;
}

async function expiredEvents(accountId: string): Promise<Record<string, unknown>[]> {
  const out = await t.stack.doc.send(
    new QueryCommand({ TableName: t.stack.state.tables.audit, KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': accountId }, ConsistentRead: true }),
  );
  return (out.Items ?? []).filter((e) => e['action'] === 'key.expired');
}

/** Fires the schedules (housekeeping, then the sender) until the receiver has the webhook `hookId`, for at most 20 s. */
async function schedulesUntilDelivered(hookId: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!receiver.received.some((d) => d.headers['webhook-id'] === hookId)) {
    if (Date.now() > deadline) throw new Error(`no webhook ${hookId}`);
    await t.stack.runSchedules();
  }
}

const activeKeys = async (key: string) => ((await t.api(key, 'GET', '/me')).body['account'] as { active_keys: number }).active_keys;

describe('the schedule runs the housekeeping function', () => {
  it('npm start lists the housekeeping schedule among those it runs', () => {
    expect(progress).toContainEqual(expect.stringMatching(/^Schedule HousekeepingSchedule\w*: HousekeepingFunction\w*, when asked$/));
    expect(t.stack.model.schedules.map((s) => s.expression).sort()).toEqual(['rate(1 minute)', 'rate(5 minutes)']);
  });

  it('a full account’s expired keys give their slots back within one run (two at once): creates work again, one key.expired event each', async () => {
    const { accountId, key } = await t.account('business');
    const expired = await expiredKeys(accountId, 9);
    // They hold their slots until released, but are no longer active: GET /me counts the one that works.
    const slotsHeld = async () => (await t.deps().accounts.get(accountId))?.active_keys;
    expect(await slotsHeld()).toBe(10);
    expect(await activeKeys(key)).toBe(1);

    await t.stack.runSchedules();
    expect(await slotsHeld()).toBe(1);
    expect(await activeKeys(key)).toBe(1);
    const events = await expiredEvents(accountId);
    expect(events.map((e) => (e['target'] as { id: string }).id).sort()).toEqual([...expired].sort());
    for (const e of events) expect(e).toMatchObject({ actor: { kind: 'system' }, target: { kind: 'key' }, changes: { released_at: { from: null, to: expect.any(String) } } });
    // Two runs overlapped, each counting only what it released: 9 in all, in the functions' own log lines.
    const released = functionLogs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l['message'] === 'housekeeping run')
      .map((l) => l['released_keys'] as number);
    expect(released).toHaveLength(2);
    expect(released.reduce((a, b) => a + b, 0)).toBe(9);

    for (let i = 0; i < 9; i++) expect((await t.api(key, 'POST', '/keys', { name: `new ${i}`, preset: 'read-only' })).status).toBe(201);
    expect(await activeKeys(key)).toBe(10);
    expect(await slotsHeld()).toBe(10);
    // Nothing more to do: the expired keys' slots were freed once.
    await t.stack.runSchedules();
    expect(await expiredEvents(accountId)).toHaveLength(9);
    expect(await activeKeys(key)).toBe(10);
  });

  it('an overdue execution ends FAILED "timed out", and its webhook reaches the receiver once, signed', async () => {
    const { accountId, key } = await t.account('business');
    const secret = String((await t.api(key, 'GET', '/webhooks/secret')).body['secret']);
    const run = await overdueRun(accountId, receiver.url);
    const hookId = `msg_${run.execution_id}_failed`;
    // The housekeeping fails it (its webhook pending); the sender, fired by the same schedules, sends it.
    await schedulesUntilDelivered(hookId);
    const reply = await t.api(key, 'GET', `/executions/${run.execution_id}`);
    expect(reply.body).toMatchObject({ status: 'FAILED', error: 'timed out', finished_at: expect.any(String), webhook: { status: 'delivered', attempts: 1 } });
    const deliveries = receiver.received.filter((d) => d.headers['webhook-id'] === hookId);
    expect(deliveries).toHaveLength(1);
    const payload = new Webhook(secret).verify(deliveries[0]!.body, deliveries[0]!.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };
    expect(payload).toMatchObject({ type: 'execution.failed', data: { execution_id: run.execution_id, status: 'FAILED', error: 'timed out' } });
    // Its in-flight slot is free again.
    expect((await t.deps().accounts.get(accountId)) as unknown).toMatchObject({ async_in_flight: 0 });
  });

  it('on an account that never had a webhook secret, the sender (under its own IAM) makes the first one, records it by the system, and the webhook verifies with it', async () => {
    const { accountId, key } = await t.account('business');
    const run = await overdueRun(accountId, receiver.url);
    const hookId = `msg_${run.execution_id}_failed`;
    await schedulesUntilDelivered(hookId);
    const reply = await t.api(key, 'GET', `/executions/${run.execution_id}`);
    expect(reply.body).toMatchObject({ status: 'FAILED', error: 'timed out', webhook: { status: 'delivered', attempts: 1 } });
    // The secret the sender made is the one the account's first GET finds (no second one, no second event).
    const secret = String((await t.api(key, 'GET', '/webhooks/secret')).body['secret']);
    const [delivery] = receiver.received.filter((d) => d.headers['webhook-id'] === hookId);
    expect(new Webhook(secret).verify(delivery!.body, delivery!.headers as Record<string, string>)).toMatchObject({ type: 'execution.failed' });
    const events = await t.api(key, 'GET', '/audit-events?action=webhook_secret.created');
    expect(events.body['items']).toEqual([expect.objectContaining({ action: 'webhook_secret.created', actor: { kind: 'system' }, target: { kind: 'webhook_secret', id: accountId } })]);
  });
});

describe('a webhook secret an earlier release kept in the clear', () => {
  it('is sealed in place by the scheduled housekeeping function (under its own IAM and key grant), and still signs', async () => {
    const { accountId, key } = await t.account('business');
    const legacy = 'whsec_bGVnYWN5LXNlY3JldC1mcm9tLWFuLWVhcmxpZXItcmVsZWFzZQ==';
    const accounts = t.stack.state.tables.accounts;
    await t.stack.doc.send(
      new UpdateCommand({ TableName: accounts, Key: { account_id: accountId }, UpdateExpression: 'SET webhook_secret = :s', ExpressionAttributeValues: { ':s': legacy } }),
    );
    await t.stack.runSchedules();
    const item = (await t.stack.doc.send(new GetCommand({ TableName: accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty('webhook_secret');
    expect(item[SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);
    expect(JSON.stringify(item)).not.toContain(legacy.slice('whsec_'.length));
    expect((await t.api(key, 'GET', '/webhooks/secret')).body['secret']).toBe(legacy);
    const sealedLines = functionLogs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l['message'] === 'webhook secret kept in the clear by an earlier release sealed');
    expect(sealedLines.map((l) => l['account_id'])).toEqual([accountId]);
  });
});

describe('npm run admin -- sweep', () => {
  const admin = (...args: string[]) => runTs('admin-cli/main.ts', args, { KNOUDS_STATE_FILE: stateFile });

  it('--json runs it once against the local stack: {released_keys, failed_executions}, then nothing is left', async () => {
    const { accountId, key } = await t.account('business');
    await expiredKeys(accountId, 2);
    await overdueRun(accountId);
    const first = await admin('sweep', '--json');
    expect(first.code).toBe(0);
    // One JSON object and nothing else.
    expect(first.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(first.stdout)).toEqual({ released_keys: 2, failed_executions: 1 });
    expect(await activeKeys(key)).toBe(1);
    expect(await expiredEvents(accountId)).toHaveLength(2);
    const again = await admin('sweep', '--json');
    expect(JSON.parse(again.stdout)).toEqual({ released_keys: 0, failed_executions: 0 });
    const text = await admin('sweep');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Housekeeping on the local stack at http:\/\/localhost:\d+\/v1: released 0 expired key slot\(s\), failed 0 overdue execution\(s\)/);
  }, 60_000);
});

describe('npm run admin -- sweep --stack-name … --region …', () => {
  it('runs the same housekeeping here, with the operator’s credentials, on the deployed stack’s tables (found by its outputs): no function is invoked', async () => {
    const aws = await startFakeAws();
    try {
      const { tables } = t.stack.state;
      aws.stacks.set('knouds-prod', {
        [STACK_OUTPUTS.keysTable]: tables.keys,
        [STACK_OUTPUTS.accountsTable]: tables.accounts,
        [STACK_OUTPUTS.usageTable]: tables.usage,
        [STACK_OUTPUTS.workflowsTable]: tables.workflows,
        [STACK_OUTPUTS.executionsTable]: tables.executions,
        [STACK_OUTPUTS.membershipsTable]: tables.memberships,
        [STACK_OUTPUTS.idempotencyTable]: tables.idempotency,
        [STACK_OUTPUTS.auditTable]: tables.audit,
        [STACK_OUTPUTS.settings]: JSON.stringify(DEFAULT_SETTINGS),
      });
      const { accountId, key } = await t.account('business');
      await expiredKeys(accountId, 3);
      const result = await deployedCli(aws.endpoint, 'knouds-prod', ['sweep', '--json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ released_keys: 3, failed_executions: 0 });
      expect(await activeKeys(key)).toBe(1);
      expect(await expiredEvents(accountId)).toHaveLength(3);
      // What the operator's IAM needs beyond the tables: reading the stack's outputs, nothing else.
      expect(aws.calls.map((c) => `${c.service}:${c.action}`)).toEqual(['cloudformation:DescribeStacks']);
    } finally {
      await aws.close();
    }
  }, 60_000);
});

describe('the local runner’s compressed schedules (tests’ `everyMs`)', () => {
  it('a minute lasts everyMs: housekeeping (every 5 minutes) fires five times less often than the sender', async () => {
    const lines: string[] = [];
    let runs = 0;
    const fast = await startTestStack('e2e-housekeeping-fast', {
      schedules: { everyMs: 100 },
      onProgress: (line) => lines.push(line),
      onFunctionLog: (fn, line) => {
        if (fn.startsWith('HousekeepingFunction') && (JSON.parse(line) as { message?: string }).message === 'housekeeping run') runs++;
      },
    });
    try {
      expect(lines).toContainEqual(expect.stringMatching(/^Schedule HousekeepingSchedule\w*: HousekeepingFunction\w*, every 500 ms$/));
      expect(lines).toContainEqual(expect.stringMatching(/^Schedule WebhookSenderSchedule\w*: WebhookSenderFunction\w*, every 100 ms$/));
      await new Promise((r) => setTimeout(r, 3000));
      // At most six in three seconds at 500 ms (fewer on a slow machine, a tick being skipped while a run
      // is still going); at 100 ms it would be thirty.
      expect(runs).toBeGreaterThanOrEqual(1);
      expect(runs).toBeLessThanOrEqual(7);
    } finally {
      await fast.close();
    }
  }, 60_000);
});
