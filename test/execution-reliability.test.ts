/**
 * Issue #13 (reliability review), at the service level against DynamoDB Local, with the fault proxy in
 * front of it where a fault is needed:
 * - finding 4: a duplicate delivery of a worker's event leaves a run with a live lease alone; a lost
 *   answer on the claim is the owner's to retry; only an expired lease lets a later delivery fail the
 *   run; one webhook per run, from whoever ended it;
 * - finding 6: an unexpected error inside a step ends the run FAILED with the reason;
 * - finding 8: cancellation checks read a small signal item, not the execution;
 * - finding 9: an async run that could not be started sends its `execution.failed` webhook.
 */
import { createAccount } from '../lambdas/shared/services/keys.js';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startReceiver, type Received, type Receiver } from './support/receiver.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { ModelRegistry, type Model } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository } from '../lambdas/shared/repositories/executions.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { LocalSecretBox } from '../lambdas/shared/secret-box.js';
import { cancelExecution, listExecutions } from '../lambdas/shared/services/executions.js';
import { createWorkflow, deployWorkflow, runWorkflow, workExecution, type Actor, type WorkflowDeps } from '../lambdas/shared/services/workflows.js';
import { ALLOW_LOOPBACK_ENV } from '../lambdas/shared/webhooks.js';
import { firstWebhookSecret } from '../lambdas/shared/services/first-webhook-secret.js';
import { OPERATOR_ACTOR } from '../lambdas/shared/repositories/audit.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';
import { SLEEPY } from './support/definitions.js';

// Webhooks go to a receiver on this machine, as under the local runner.
process.env[ALLOW_LOOPBACK_ENV] = 'true';

let db: TestDb;
let proxy: CountingProxy;
const BOX_KEY = LocalSecretBox.newKey();
const box = new LocalSecretBox(BOX_KEY);

let receiver: Receiver;
let hookUrl: string;
let received: Received[];

function depsOn(doc: DynamoDBDocumentClient, models = new ModelRegistry()): WorkflowDeps {
  return {
    workflows: new WorkflowsRepository(doc, db.tables.workflows),
    executions: new ExecutionsRepository(doc, db.tables.executions),
    accounts: new AccountsRepository(doc, db.tables.accounts, box),
    models,
  };
}
let deps: WorkflowDeps;
/** The same repositories, through the fault proxy, with the functions' own client settings. */
let faulty: WorkflowDeps;

beforeAll(async () => {
  db = await createTestDb('exec-reliability');
  proxy = await startCountingProxy(testEndpoint());
  deps = depsOn(db.doc);
  faulty = depsOn(createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  receiver = await startReceiver();
  ({ url: hookUrl, received } = receiver);
});
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await receiver?.close();
  await proxy?.close();
  db?.close();
});


let accounts = 0;
/** A new account with the sleepy workflow deployed and a webhook secret made (as GET /webhooks/secret would). */
async function account(definition: unknown = SLEEPY, on: WorkflowDeps = deps) {
  const accountId = `acct_rel_${++accounts}_${Date.now().toString(36)}`;
  await createAccount({ accounts: deps.accounts, audit: db.audit }, accountId, 'business');
  const secret = await deps.accounts.webhookSecret(accountId, firstWebhookSecret(db.audit, accountId, OPERATOR_ACTOR, new Date()));
  const actor = { accountId, principal: { kind: 'key' as const, key_id: 'key_rel' }, workspaces: ['*'] };
  await createWorkflow(on, actor, { slug: 'wf', name: 'wf', definition });
  await deployWorkflow(on, actor, 'wf');
  return { accountId, actor, secret };
}

/** An async run left QUEUED (its worker event is ours to deliver). */
async function queued(actor: Actor, input: unknown, webhook = true): Promise<string> {
  const { execution } = await runWorkflow(deps, actor, 'wf', { input, ...(webhook ? { webhook_url: hookUrl } : {}) }, {
    async: true,
    startAsync: async () => {},
  });
  return execution.execution_id;
}

const FAST_DELIVERY = { timeoutMs: 2000 };
const deliveriesOf = (executionId: string) =>
  received.filter((r) => String(r.headers['webhook-id']).includes(executionId)).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });

async function until(what: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stored(accountId: string, executionId: string): Promise<Record<string, unknown>> {
  const out = await db.doc.send(new GetCommand({ TableName: db.tables.executions, Key: { account_id: accountId, execution_id: executionId }, ConsistentRead: true }));
  return out.Item!;
}

describe('finding 4: the worker claims a run with an owner and a lease', () => {
  it('a duplicate delivery while the first attempt runs leaves the run alone: it ends SUCCEEDED, with one webhook', async () => {
    const { accountId, actor } = await account();
    const id = await queued(actor, { ms: 1500 });
    const first = workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY);
    await until(async () => (await stored(accountId, id))['status'] === 'RUNNING');
    await new Promise((r) => setTimeout(r, 300));
    // Lambda delivers at least once: the same event again, while the first attempt is mid-sleep.
    const duplicate = await workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY);
    expect(duplicate?.status).not.toBe('FAILED');
    expect((await stored(accountId, id))['status']).toBe('RUNNING');
    expect(await first).toMatchObject({ status: 'SUCCEEDED', output: { done: true } });
    await new Promise((r) => setTimeout(r, 200));
    expect(deliveriesOf(id).map((d) => d.type)).toEqual(['execution.succeeded']);
  });

  it('two deliveries at once: one runs the steps, the other leaves; one webhook', async () => {
    const { accountId, actor } = await account();
    const id = await queued(actor, { ms: 300 });
    await Promise.all([workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY), workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY)]);
    expect(await stored(accountId, id)).toMatchObject({ status: 'SUCCEEDED', output: { done: true } });
    await new Promise((r) => setTimeout(r, 200));
    expect(deliveriesOf(id).map((d) => d.type)).toEqual(['execution.succeeded']);
  });

  it('a lost answer on the QUEUED → RUNNING claim: the SDK’s retried claim is the owner’s, and the steps run', async () => {
    const { accountId, actor } = await account();
    const id = await queued(actor, { ms: 200 });
    proxy.reset();
    proxy.inject({ operation: 'UpdateItem', table: db.tables.executions, fault: 'lose-response', times: 1 });
    const record = await workExecution(faulty, accountId, id, Date.now() + 60_000, FAST_DELIVERY);
    expect(proxy.injected()).toBe(1);
    expect(record).toMatchObject({ status: 'SUCCEEDED', output: { done: true } });
    expect(await stored(accountId, id)).toMatchObject({ status: 'SUCCEEDED', output: { done: true }, ttl: expect.any(Number) });
    expect(deliveriesOf(id).map((d) => d.type)).toEqual(['execution.succeeded']);
  });

  it('an expired lease means the attempt died: a later delivery fails the run as interrupted, and sends the one webhook', async () => {
    const { accountId, actor } = await account();
    const id = await queued(actor, { ms: 200 });
    // An attempt that claimed the run and died long ago.
    await db.doc.send(
      new UpdateCommand({
        TableName: db.tables.executions,
        Key: { account_id: accountId, execution_id: id },
        UpdateExpression: 'SET #s = :r, started_at = :t, #o = :o, lease_until = :l',
        ExpressionAttributeNames: { '#s': 'status', '#o': 'owner' },
        ExpressionAttributeValues: { ':r': 'RUNNING', ':t': new Date(Date.now() - 20 * 60_000).toISOString(), ':o': 'att_dead', ':l': Date.now() - 1000 },
      }),
    );
    const record = await workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY);
    expect(record).toMatchObject({ status: 'FAILED', error: 'the run was interrupted' });
    expect(await stored(accountId, id)).toMatchObject({ status: 'FAILED', ttl: expect.any(Number) });
    // A third delivery finds it finished by someone else: no second webhook.
    await workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY);
    expect(deliveriesOf(id).map((d) => d.type)).toEqual(['execution.failed']);
  });

  it('a run cancelled while QUEUED: of two deliveries, exactly one sends execution.cancelled', async () => {
    const { accountId, actor } = await account();
    const id = await queued(actor, { ms: 200 });
    expect(await cancelExecution(deps, actor, id)).toMatchObject({ status: 'CANCELLED' });
    await Promise.all([workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY), workExecution(deps, accountId, id, Date.now() + 60_000, FAST_DELIVERY)]);
    expect((await stored(accountId, id))['status']).toBe('CANCELLED');
    expect(deliveriesOf(id).map((d) => d.type)).toEqual(['execution.cancelled']);
  });
});

describe('finding 6: every path that can end a run ends it', () => {
  it('an unexpected error inside a step fails the run with the reason, instead of escaping and leaving it RUNNING', async () => {
    const builtIns = new ModelRegistry();
    const broken: Model = {
      id: 'flaky',
      description: 'throws what a dependency might',
      input_schema: {},
      run: async () => {
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      },
    };
    const models = { get: (id: string) => (id === 'flaky' ? broken : builtIns.get(id)), list: () => builtIns.list() } as unknown as ModelRegistry;
    const on = depsOn(db.doc, models);
    const { accountId, actor } = await account(
      { input_schema: {}, steps: [{ id: 'first', model: 'echo', input: 1 }, { id: 'shaky', model: 'flaky', input: {} }], output: '$.steps.shaky.output' },
      on,
    );
    const { execution } = await runWorkflow(on, actor, 'wf', { input: {} }, { async: false, startAsync: async () => {} });
    expect(execution).toMatchObject({ status: 'FAILED', error: expect.stringContaining("step 'shaky'") });
    expect(await stored(accountId, execution.execution_id)).toMatchObject({ status: 'FAILED', ttl: expect.any(Number) });
  });
});

describe('finding 8: what a cancellation check costs', () => {
  /** A client that asks DynamoDB for the consumed capacity of each GetItem and notes it with the key read. */
  function measured() {
    const client = new DynamoDBClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const reads: { table: string; key: Record<string, unknown>; units: number }[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        if (context.commandName !== 'GetItemCommand') return next(args);
        input['ReturnConsumedCapacity'] = 'TOTAL';
        const out = await next(args);
        const units = (out.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity?.CapacityUnits ?? 0;
        reads.push({ table: String(input['TableName']), key: input['Key'] as Record<string, unknown>, units });
        return out;
      },
      { step: 'initialize', name: 'measureReads' },
    );
    return { doc: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }), reads, close: () => client.destroy() };
  }

  it('a 3 s sleep on a 120 KB input: the checks read a small item, a few read units in all (not ~30 per check)', async () => {
    const m = measured();
    try {
      const on = depsOn(m.doc);
      const { actor } = await account(SLEEPY, on);
      m.reads.length = 0;
      const { execution } = await runWorkflow(on, actor, 'wf', { input: { ms: 3000, blob: 'x'.repeat(120 * 1024) } }, { async: false, startAsync: async () => {} });
      expect(execution.status).toBe('SUCCEEDED');
      const checks = m.reads.filter((r) => r.table === db.tables.executions);
      const units = checks.reduce((s, r) => s + r.units, 0);
      // Two step starts and one check every 500 ms of the sleep, each of one read unit.
      expect({ checks: checks.length, units }).toEqual({ checks: expect.any(Number), units: checks.length });
      expect(checks.length).toBeLessThanOrEqual(9);
      expect(checks.every((r) => r.key['execution_id'] === execution.execution_id && r.key['account_id'] !== actor.accountId)).toBe(true);
    } finally {
      m.close();
    }
  });

  it('the cancellation signal shows in neither list: by account, nor by workflow', async () => {
    const { actor } = await account();
    const ids = [await queued(actor, { ms: 10 }, false), await queued(actor, { ms: 10 }, false)];
    await cancelExecution(deps, actor, ids[0]!);
    for (const query of [null, { workflow: 'wf' }, { status: 'CANCELLED' }]) {
      const page = await listExecutions(deps, actor, query, 50);
      expect(page.items.map((e) => e.execution_id).sort()).toEqual(query?.status ? [ids[0]] : [...ids].sort());
      expect(page.items.every((e) => e.workflow_slug === 'wf')).toBe(true);
    }
  });
});

describe('finding 9: an async run that could not be started', () => {
  const down = async () => {
    throw new Error('Lambda is unavailable');
  };

  it('is FAILED, and its execution.failed webhook goes out, signed with the account’s secret', async () => {
    const { actor, secret } = await account();
    await expect(runWorkflow(deps, actor, 'wf', { input: { ms: 1 }, webhook_url: hookUrl }, { async: true, startAsync: down })).rejects.toThrow(/unavailable/);
    const [execution] = (await deps.executions.list(actor.accountId, {}, 10)).items;
    expect(execution).toMatchObject({ status: 'FAILED', error: 'the run could not be started' });
    const deliveries = received.filter((r) => String(r.headers['webhook-id']).includes(execution!.execution_id));
    expect(deliveries).toHaveLength(1);
    const delivery = deliveries[0]!;
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const signed = createHmac('sha256', key).update(`${String(delivery.headers['webhook-id'])}.${String(delivery.headers['webhook-timestamp'])}.${delivery.body}`).digest('base64');
    expect(String(delivery.headers['webhook-signature']).split(' ')).toContain(`v1,${signed}`);
    expect(JSON.parse(delivery.body)).toMatchObject({ type: 'execution.failed', data: { status: 'FAILED', error: 'the run could not be started' } });
  });

  it('on an account whose secret an earlier release kept in the clear, the workflows function (it may only open) signs with it as it is and leaves it for housekeeping', async () => {
    const { actor } = await account();
    const legacy = 'whsec_bGVnYWN5LXNlY3JldC1mcm9tLWFuLWVhcmxpZXItcmVsZWFzZQ==';
    await db.doc.send(
      new UpdateCommand({
        TableName: db.tables.accounts,
        Key: { account_id: actor.accountId },
        UpdateExpression: 'SET webhook_secret = :s REMOVE webhook_secret_sealed',
        ExpressionAttributeValues: { ':s': legacy },
      }),
    );
    // As the workflows function has it: kms:Decrypt only.
    const workflowsFn: WorkflowDeps = { ...deps, accounts: new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(BOX_KEY, new Set(['open'])), { openOnly: true }) };
    await expect(runWorkflow(workflowsFn, actor, 'wf', { input: { ms: 1 }, webhook_url: hookUrl }, { async: true, startAsync: down })).rejects.toThrow(/unavailable/);
    const [execution] = (await deps.executions.list(actor.accountId, {}, 10)).items;
    const [delivery] = received.filter((r) => String(r.headers['webhook-id']).includes(execution!.execution_id));
    const key = Buffer.from(legacy.replace(/^whsec_/, ''), 'base64');
    const signed = createHmac('sha256', key).update(`${String(delivery!.headers['webhook-id'])}.${String(delivery!.headers['webhook-timestamp'])}.${delivery!.body}`).digest('base64');
    expect(String(delivery!.headers['webhook-signature']).split(' ')).toEqual([`v1,${signed}`]);
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: actor.accountId }, ConsistentRead: true }))).Item!;
    expect(item).toMatchObject({ webhook_secret: legacy });
    expect(item).not.toHaveProperty('webhook_secret_sealed');
  });

  it('a receiver that does not answer holds the request for one attempt only (5 s), and the webhook stays pending for the sender', async () => {
    const silent = await startReceiver(() => 'hang');
    try {
      const { actor } = await account();
      const url = silent.url;
      const started = Date.now();
      await expect(runWorkflow(deps, actor, 'wf', { input: { ms: 1 }, webhook_url: url }, { async: true, startAsync: down })).rejects.toThrow(/unavailable/);
      expect(Date.now() - started).toBeLessThan(7000);
      const [execution] = (await deps.executions.list(actor.accountId, {}, 10)).items;
      expect(execution!.webhook).toMatchObject({ status: 'pending', attempts: 1, last_response_status: null, next_attempt_at: expect.any(String) });
    } finally {
      await silent.close();
    }
  });
});

describe('first webhook attempts under way at once, per account (the run’s slot is already given back)', () => {
  it('past the account’s count, a run’s first attempt is left to the scheduled sender (pending, due); counts are given back after each attempt', async () => {
    // A receiver that never answers: each attempt holds its instance for the attempt's whole timeout.
    const open = new Set<string>();
    let mostOpen = 0;
    const hang = createServer((req) => {
      const id = String(req.headers['webhook-id']);
      open.add(id);
      mostOpen = Math.max(mostOpen, open.size);
      req.on('close', () => open.delete(id));
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/hook`;
    try {
      const { accountId, actor } = await account();
      const start = async () =>
        (await runWorkflow(deps, actor, 'wf', { input: { ms: 1 }, webhook_url: url }, { async: true, startAsync: async () => {} })).execution.execution_id;
      const ids = await Promise.all(Array.from({ length: 5 }, start));
      // One instant for the whole test: every count in one window (a window passing would start a new count).
      const instant = new Date();
      const limited = { ...deps, firstAttemptsAtOnce: 2, now: () => instant };
      await Promise.all(ids.map((id) => workExecution(limited, accountId, id, Date.now() + 60_000, { timeoutMs: 1500 })));
      // Before: 5 attempts at once, each holding its worker after the run's slot was given back.
      expect(mostOpen).toBe(2);
      const webhooks = await Promise.all(ids.map(async (id) => (await stored(accountId, id))['webhook'] as { status: string; attempts: number }));
      expect(webhooks.filter((w) => w.attempts === 1)).toHaveLength(2);
      // Left to the scheduled sender: pending, due now, not attempted.
      expect(webhooks.filter((w) => w.attempts === 0 && w.status === 'pending')).toHaveLength(3);
      // Each count was given back: the next run's first attempt is made at once.
      const next = await start();
      await workExecution(limited, accountId, next, Date.now() + 60_000, { timeoutMs: 300 });
      expect((await stored(accountId, next))['webhook']).toMatchObject({ attempts: 1 });
    } finally {
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
    }
  });
});
