/**
 * The execution state machine's conditional writes against DynamoDB Local: QUEUED → RUNNING →
 * SUCCEEDED | FAILED, QUEUED | RUNNING → CANCELLED; a terminal state is never overwritten and a cancel
 * beats a finishing step, whatever the interleaving.
 */
import { createAccount } from '../lambdas/shared/services/keys.js';
import { ExecutionsRepository, isExecutionItem, newExecutionId, SYNC_SLOTS_PARTITION_SUFFIX, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { createWorkflow, deleteWorkflow, deployWorkflow, runWorkflow, workExecution } from '../lambdas/shared/services/workflows.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';
import { GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { failure } from '../lambdas/shared/execution-failure.js';
import { ConcurrencyLimitExceededError } from '../lambdas/shared/errors.js';
import { cancelExecution } from '../lambdas/shared/services/executions.js';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.js';

let db: TestDb;
let repo: ExecutionsRepository;
beforeAll(async () => {
  db = await createTestDb('executions');
  repo = new ExecutionsRepository(db.doc, db.tables.executions);
});
afterAll(() => db.close());

async function queued(): Promise<ExecutionRecord> {
  const now = new Date();
  const record: ExecutionRecord = {
    account_id: 'acct_sm',
    execution_id: newExecutionId(now),
    workflow_slug: 'wf',
    workflow_version: 1,
    workspace_id: 'default',
    status: 'QUEUED',
    input: { a: 1 },
    created_at: now.toISOString(),
    key_id: 'key_x',
    async: true,
  };
  await repo.create(record);
  return record;
}

const now = () => new Date();
const lease = () => Date.now() + 60_000;

describe('execution state machine', () => {
  it('QUEUED → RUNNING → SUCCEEDED, and nothing moves it afterwards', async () => {
    const e = await queued();
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a')).toBeUndefined();
    expect(await repo.claim(e.account_id, e.execution_id, 'att_a', lease(), now())).toMatchObject({ status: 'RUNNING', owner: 'att_a' });
    expect(await repo.claim(e.account_id, e.execution_id, 'att_b', lease(), now())).toBeUndefined();
    // The owner's own claim again (its first answer lost): still its run.
    expect(await repo.claim(e.account_id, e.execution_id, 'att_a', lease(), now())).toMatchObject({ status: 'RUNNING', owner: 'att_a' });
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_b')).toBeUndefined();
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: { ok: true } }, now(), 'att_a')).toMatchObject({
      status: 'SUCCEEDED',
      output: { ok: true },
    });
    // A late write by the owner finds its own result (as a retry after a lost answer would); it changes nothing.
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'FAILED', error: 'late', failure: failure('MODEL_FAILED', 's') }, now(), 'att_a')).toMatchObject({ status: 'SUCCEEDED' });
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'FAILED', error: 'late', failure: failure('MODEL_FAILED', 's') }, now(), 'att_b')).toBeUndefined();
    expect(await repo.cancel(e.account_id, e.execution_id, 'RUNNING', now())).toBe(false);
    expect(await repo.get(e.account_id, e.execution_id)).toMatchObject({ status: 'SUCCEEDED', output: { ok: true } });
    expect(await repo.cancelRequested(e.account_id, e.execution_id)).toBe(false);
  });

  it('a cancelled execution is never started nor finished, and its signal is set', async () => {
    const e = await queued();
    expect(await repo.cancelRequested(e.account_id, e.execution_id)).toBe(false);
    expect(await repo.cancel(e.account_id, e.execution_id, 'QUEUED', now())).toBe(true);
    expect(await repo.claim(e.account_id, e.execution_id, 'att_a', lease(), now())).toBeUndefined();
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a', ['QUEUED', 'RUNNING'])).toBeUndefined();
    expect((await repo.get(e.account_id, e.execution_id))?.status).toBe('CANCELLED');
    expect(await repo.cancelRequested(e.account_id, e.execution_id)).toBe(true);
  });

  it('cancel racing a finishing step: exactly one wins, and the record says which', async () => {
    for (let i = 0; i < 20; i++) {
      const e = await queued();
      await repo.claim(e.account_id, e.execution_id, 'att_a', lease(), now());
      const [finished, cancelled] = await Promise.all([
        repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: i }, now(), 'att_a'),
        repo.cancel(e.account_id, e.execution_id, 'RUNNING', now()),
      ]);
      // The owner learns either way: its result, or the cancel that won while it held the run.
      expect(finished?.status === 'SUCCEEDED').toBe(!cancelled);
      const final = await repo.get(e.account_id, e.execution_id);
      expect(final?.status).toBe(cancelled ? 'CANCELLED' : 'SUCCEEDED');
      expect(finished?.status).toBe(final?.status);
    }
  });

  it('two workers claiming one execution: only one starts it', async () => {
    const e = await queued();
    const claims = await Promise.all(Array.from({ length: 5 }, (_, i) => repo.claim(e.account_id, e.execution_id, `att_${i}`, lease(), now())));
    expect(claims.filter(Boolean)).toHaveLength(1);
  });

  it('a run is failed as interrupted only once its holder’s lease has expired', async () => {
    const e = await queued();
    await repo.claim(e.account_id, e.execution_id, 'att_a', Date.now() + 2000, now());
    const cutoff = new Date(Date.now() - 3_600_000);
    expect(await repo.failInterrupted(e.account_id, e.execution_id, 'att_a', 'att_b', now(), cutoff)).toBeUndefined();
    expect(await repo.failInterrupted(e.account_id, e.execution_id, 'att_a', 'att_b', new Date(Date.now() + 3000), cutoff)).toMatchObject({
      status: 'FAILED',
      error: 'the run was interrupted',
      owner: 'att_b',
    });
    // The dead attempt's late finish changes nothing.
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a')).toBeUndefined();
  });

  it('ids sort by creation time', () => {
    const a = newExecutionId(new Date('2026-01-01T00:00:00.000Z'));
    const b = newExecutionId(new Date('2026-01-01T00:00:00.001Z'));
    const c = newExecutionId(new Date('2030-06-01T00:00:00.000Z'));
    expect([c, a, b].sort()).toEqual([a, b, c]);
    expect(a).toMatch(/^exe_[0-9A-Za-z]{21}$/);
  });
});

/** Workflow `wf` (one echo step), created and deployed for `actor`. */
async function deployedEcho(deps: Parameters<typeof createWorkflow>[0], actor: Parameters<typeof createWorkflow>[1]): Promise<void> {
  await createWorkflow(deps, actor, {
    slug: 'wf',
    name: 'wf',
    definition: { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: 1 }], output: '$.steps.e.output' },
  });
  await deployWorkflow(deps, actor, 'wf');
}

/** The workflow services' repositories over the test tables (the executions through `repo`). */
const workflowDeps = () => ({
  workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
  executions: repo,
  accounts: new AccountsRepository(db.doc, db.tables.accounts),
  models: new ModelRegistry(),
});

/** A key of `accountId` acting with access to every workspace. */
const keyActor = (accountId: string) => ({ accountId, principal: { kind: 'key' as const, key_id: 'key_a' }, workspaces: ['*'] });

/** A worker that can never be invoked. */
const down = async () => {
  throw new Error('Lambda is unavailable');
};

describe('a queued run and its workflow deleted and made again', () => {
  it('the run fails WORKFLOW_DELETED: it never runs the new workflow’s version of the same number', async () => {
    const deps = { ...workflowDeps(), retrySchedule: [1] };
    const actor = keyActor('acct_reborn');
    await deployedEcho(deps, actor);
    const queuedRun = (await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: async () => {} })).execution;
    expect(queuedRun).toMatchObject({ status: 'QUEUED', workflow_version: 1 });
    await deleteWorkflow(deps, actor, 'wf');
    await createWorkflow(deps, actor, {
      slug: 'wf',
      name: 'wf, made again',
      definition: { input_schema: {}, steps: [{ id: 'f', model: 'fail', input: { message: 'the new workflow ran' } }], output: '$.steps.f.output' },
    });
    await deployWorkflow(deps, actor, 'wf');
    const ended = await workExecution(deps, 'acct_reborn', queuedRun.execution_id, Date.now() + 10_000);
    expect(ended).toMatchObject({ status: 'FAILED', error: 'the workflow version no longer exists', failure: { code: 'WORKFLOW_DELETED', step_id: null } });
    // A run accepted for the new workflow runs it.
    const next = (await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: async () => {} })).execution;
    expect(await workExecution(deps, 'acct_reborn', next.execution_id, Date.now() + 10_000)).toMatchObject({ status: 'FAILED', error: 'the new workflow ran' });
  });
});

describe('async start', () => {
  it('a worker invocation that landed with its answer lost: the run is in hand, so the request succeeds (no 500, its Idempotency-Key kept)', async () => {
    const deps = workflowDeps();
    const actor = keyActor('acct_async_lost');
    await deployedEcho(deps, actor);
    // Lambda took the event and the worker claimed the run; the SDK then gave up on the answer.
    const landedButLost = async (execution: ExecutionRecord) => {
      await workExecution(deps, execution.account_id, execution.execution_id, Date.now() + 10_000);
      throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    };
    const started = await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: landedButLost });
    expect(started).toMatchObject({ async: true, execution: { status: 'QUEUED' } });
    const runs = (await repo.list('acct_async_lost', {}, 10)).items;
    expect(runs.map((r) => [r.execution_id, r.status])).toEqual([[started.execution.execution_id, 'SUCCEEDED']]);
  });

  it('an execution whose worker cannot be invoked is FAILED, not left QUEUED', async () => {
    const deps = workflowDeps();
    const actor = keyActor('acct_async');
    await deployedEcho(deps, actor);
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: down })).rejects.toThrow(/unavailable/);
    const [execution] = (await repo.list('acct_async', {}, 10)).items;
    expect(execution).toMatchObject({ status: 'FAILED', error: 'the run could not be started' });
  });
});

/** The repositories of runs holding slots (the executions with the accounts table), for the two describes below. */
let slots: ExecutionsRepository;
let accounts: AccountsRepository;
let accountsMade = 0;
/** A new pro account. */
async function account(): Promise<string> {
  const id = `acct_slots_${++accountsMade}_${Date.now().toString(36)}`;
  await createAccount({ accounts, audit: db.audit }, id, 'pro');
  return id;
}
/** The account's counter of async runs in flight. */
const inFlight = async (accountId: string) =>
  (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item?.['async_in_flight'] ?? 0;

describe('async runs in flight: the account’s counter (API.md §4)', () => {
  beforeAll(() => {
    slots = new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts);
    accounts = new AccountsRepository(db.doc, db.tables.accounts);
  });
  const slotted = (accountId: string): ExecutionRecord => {
    const at = new Date();
    return {
      account_id: accountId,
      execution_id: newExecutionId(at),
      workflow_slug: 'wf',
      workflow_version: 1,
      workspace_id: 'default',
      status: 'QUEUED',
      input: null,
      created_at: at.toISOString(),
      key_id: 'key_x',
      async: true,
      async_slot: true,
    };
  };

  it('admits exactly `limit` of many parallel starts; a limit of 0 admits none', async () => {
    const id = await account();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => slots.create(slotted(id), 3)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as ConcurrencyLimitExceededError);
    expect(refused.map((e) => [e.constructor.name, e.status, e.code, e.extra()])).toEqual(
      Array.from({ length: 5 }, () => ['ConcurrencyLimitExceededError', 429, 'CONCURRENCY_LIMIT_EXCEEDED', { limit: 3 }]),
    );
    expect(await inFlight(id)).toBe(3);
    expect((await slots.list(id, {}, 20)).items).toHaveLength(3);
    await expect(slots.create(slotted(await account()), 0)).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: 0 });
  });

  it('every end frees the slot once: success, failure, interrupted, cancel while QUEUED and while RUNNING', async () => {
    const id = await account();
    const runs = Array.from({ length: 5 }, () => slotted(id));
    for (const r of runs) await slots.create(r, 5);
    expect(await inFlight(id)).toBe(5);
    const [ok, failed, interrupted, cancelledQueued, cancelledRunning] = runs as [ExecutionRecord, ExecutionRecord, ExecutionRecord, ExecutionRecord, ExecutionRecord];
    const claimed = async (r: ExecutionRecord, owner: string, leaseUntil = lease()) => (await slots.claim(id, r.execution_id, owner, leaseUntil, now()))!;
    const okRun = await claimed(ok, 'att_a');
    expect(await slots.finish(id, ok.execution_id, { status: 'SUCCEEDED', output: { x: 1 } }, now(), 'att_a', ['RUNNING'], okRun)).toMatchObject({
      status: 'SUCCEEDED',
      output: { x: 1 },
      owner: 'att_a',
    });
    expect(await slots.get(id, ok.execution_id)).toMatchObject({ status: 'SUCCEEDED', output: { x: 1 } });
    // Again, as a retry after a lost answer: its own result, no second release.
    expect(await slots.finish(id, ok.execution_id, { status: 'SUCCEEDED', output: { x: 1 } }, now(), 'att_a', ['RUNNING'], okRun)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await inFlight(id)).toBe(4);
    const failedRun = await claimed(failed, 'att_b');
    expect(await slots.finish(id, failed.execution_id, { status: 'FAILED', error: 'x', failure: failure('MODEL_FAILED', 's') }, now(), 'att_b', ['RUNNING'], failedRun)).toMatchObject({ status: 'FAILED' });
    // Another attempt's finish of an ended run frees nothing.
    expect(await slots.finish(id, failed.execution_id, { status: 'FAILED', error: 'x', failure: failure('MODEL_FAILED', 's') }, now(), 'att_z', ['RUNNING'], failedRun)).toBeUndefined();
    expect(await inFlight(id)).toBe(3);
    const held = await claimed(interrupted, 'att_c', Date.now() - 1);
    expect(await slots.failInterrupted(id, interrupted.execution_id, 'att_c', 'att_d', now(), new Date(0), held)).toMatchObject({ status: 'FAILED', owner: 'att_d' });
    expect(await inFlight(id)).toBe(2);
    expect(await slots.cancel(id, cancelledQueued.execution_id, 'QUEUED', now(), true)).toBe(true);
    // Cancelled already: the condition refuses a second cancel, and its release with it.
    expect(await slots.cancel(id, cancelledQueued.execution_id, 'QUEUED', now(), true)).toBe(false);
    expect(await inFlight(id)).toBe(1);
    await claimed(cancelledRunning, 'att_e');
    // A caller that says the run holds no slot is refused (re-read), never ends it without the release.
    expect(await slots.cancel(id, cancelledRunning.execution_id, 'RUNNING', now(), false)).toBe(false);
    expect(await slots.cancel(id, cancelledRunning.execution_id, 'RUNNING', now(), true)).toBe(true);
    expect(await inFlight(id)).toBe(0);
  });

  it('a finish that did not know of the slot still frees it (made again as the transaction)', async () => {
    const id = await account();
    const r = slotted(id);
    await slots.create(r, 1);
    await slots.claim(id, r.execution_id, 'att_a', lease(), now());
    expect(await slots.finish(id, r.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a')).toMatchObject({ status: 'SUCCEEDED', owner: 'att_a' });
    expect(await inFlight(id)).toBe(0);
  });

  it('a create retried after a lost answer is the same run and takes one slot', async () => {
    const id = await account();
    const r = slotted(id);
    await slots.create(r, 2);
    await slots.create(r, 2);
    expect(await inFlight(id)).toBe(1);
    // At the limit, the retry of a create that landed is still recognised as ours, not refused.
    await slots.create(slotted(id), 2);
    await slots.create(r, 2);
    expect(await inFlight(id)).toBe(2);
  });

  it('a run that could not be started frees its slot; a refused start writes nothing', async () => {
    const id = await account();
    const deps = {
      workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
      executions: slots,
      accounts,
      models: new ModelRegistry(),
    };
    const actor = keyActor(id);
    await deployedEcho(deps, actor);
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: down, asyncLimit: 1 })).rejects.toThrow(/unavailable/);
    expect((await slots.list(id, {}, 10)).items).toMatchObject([{ status: 'FAILED', error: 'the run could not be started', async_slot: true }]);
    expect(await inFlight(id)).toBe(0);
    const up = async () => {};
    await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: up, asyncLimit: 1 });
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: up, asyncLimit: 1 })).rejects.toBeInstanceOf(ConcurrencyLimitExceededError);
    expect((await slots.list(id, {}, 10)).items).toHaveLength(2);
    expect(await inFlight(id)).toBe(1);
    // A sync run takes no async slot.
    expect((await runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, asyncLimit: 1 })).execution).toMatchObject({ status: 'SUCCEEDED' });
    expect(await inFlight(id)).toBe(1);
  });
});

describe('sync runs running at once: the account’s sync slots', () => {
  beforeAll(() => {
    slots = new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts);
    accounts = new AccountsRepository(db.doc, db.tables.accounts);
  });
  const held = async (accountId: string) => (await slots.heldSyncSlots(accountId, Date.now())).map((h) => h.holder).sort();
  /** The first holder of the account's sync slots, once a run holds one (within 5 s). */
  const holderOnceHeld = async (accountId: string) => {
    const deadline = Date.now() + 5000;
    while ((await held(accountId)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return (await held(accountId))[0];
  };

  it('admits exactly `limit` of many parallel takes, each on a slot of its own below the limit; a limit of 0 admits none', async () => {
    const id = await account();
    const runs = Array.from({ length: 9 }, () => newExecutionId(new Date()));
    const results = await Promise.allSettled(runs.map((run) => slots.takeSyncSlot(id, run, 3, lease())));
    const taken = results.filter((r): r is PromiseFulfilledResult<string> => r.status === 'fulfilled').map((r) => r.value);
    expect(taken).toHaveLength(3);
    expect(new Set(taken).size).toBe(3);
    for (const slot of taken) expect(['slot#0000', 'slot#0001', 'slot#0002']).toContain(slot);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as ConcurrencyLimitExceededError);
    expect(refused.map((e) => [e.status, e.code, e.extra(), e.kind])).toEqual(Array.from({ length: 6 }, () => [429, 'CONCURRENCY_LIMIT_EXCEEDED', { limit: 3 }, 'sync']));
    expect(refused[0]!.message).toMatch(/limit of 3 synchronous executions running/);
    expect(await held(id)).toHaveLength(3);
    // The slots are not executions: no list shows them, and the async counter is untouched.
    expect((await slots.list(id, {}, 20)).items).toEqual([]);
    expect(await inFlight(id)).toBe(0);
    await expect(slots.takeSyncSlot(await account(), newExecutionId(new Date()), 0, lease())).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: 0, kind: 'sync' });
  });

  it('a take sent again finds its own slot; a release frees it once, and only its holder’s; a lease that ended frees it for another', async () => {
    const id = await account();
    const [a, b, c] = [newExecutionId(new Date()), newExecutionId(new Date()), newExecutionId(new Date())];
    const slot = await slots.takeSyncSlot(id, a, 1, lease());
    // The same take again (its answer lost): the same slot, still one held.
    expect(await slots.takeSyncSlot(id, a, 1, lease())).toBe(slot);
    expect(await held(id)).toEqual([a]);
    await expect(slots.takeSyncSlot(id, b, 1, lease())).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED' });
    // Another run's release frees nothing.
    expect(await slots.releaseSyncSlot(id, slot, b)).toBe(false);
    expect(await held(id)).toEqual([a]);
    expect(await slots.releaseSyncSlot(id, slot, a)).toBe(true);
    expect(await slots.releaseSyncSlot(id, slot, a)).toBe(true);
    expect(await held(id)).toEqual([]);
    // A holder that died: its slot is taken over once its lease is over (a take's "now" past it), and its late release leaves the new holder's.
    const now = Date.now();
    await slots.takeSyncSlot(id, b, 1, now + 60_000, now);
    await expect(slots.takeSyncSlot(id, c, 1, lease(), now + 59_999)).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED' });
    expect(await slots.takeSyncSlot(id, c, 1, lease(), now + 60_000)).toBe(slot);
    expect(await slots.releaseSyncSlot(id, slot, b)).toBe(false);
    expect(await held(id)).toEqual([c]);
  });

  it('takes choose among the lowest free slots: runs one after another under a limit of 100 leave a few slot items for the query to read, not 100', async () => {
    const id = await account();
    for (let i = 0; i < 30; i++) {
      const run = newExecutionId(new Date());
      await slots.releaseSyncSlot(id, await slots.takeSyncSlot(id, run, 100, lease()), run);
    }
    const items = await db.doc.send(new QueryCommand({ TableName: db.tables.executions, KeyConditionExpression: 'account_id = :p', ExpressionAttributeValues: { ':p': `${id}${SYNC_SLOTS_PARTITION_SUFFIX}` }, ConsistentRead: true }));
    expect(items.Count).toBeLessThanOrEqual(4);
    for (const item of items.Items ?? []) expect(['slot#0000', 'slot#0001', 'slot#0002', 'slot#0003']).toContain(item['execution_id']);
  });

  it('a burst at one instant is not refused below the limit: 100 parallel takes under a limit of 100 all get a slot', async () => {
    const id = await account();
    const runs = Array.from({ length: 100 }, () => newExecutionId(new Date()));
    const taken = await Promise.all(runs.map((run) => slots.takeSyncSlot(id, run, 100, lease())));
    expect(new Set(taken).size).toBe(100);
    expect(await held(id)).toHaveLength(100);
  });

  it('a lowered limit: slots held past it still count until they are given back', async () => {
    const id = await account();
    const runs = Array.from({ length: 3 }, () => newExecutionId(new Date()));
    const taken = await Promise.all(runs.map((run) => slots.takeSyncSlot(id, run, 3, lease())));
    await expect(slots.takeSyncSlot(id, newExecutionId(new Date()), 2, lease())).rejects.toMatchObject({ limit: 2 });
    await slots.releaseSyncSlot(id, taken[0]!, runs[0]!);
    await expect(slots.takeSyncSlot(id, newExecutionId(new Date()), 2, lease())).rejects.toMatchObject({ limit: 2 });
    await slots.releaseSyncSlot(id, taken[1]!, runs[1]!);
    expect(await slots.takeSyncSlot(id, newExecutionId(new Date()), 2, lease())).toMatch(/^slot#000[01]$/);
  });

  /** Workflows `wf` (one echo step) and `nap` (one sleep step of `input.ms`), deployed for a new account, over `executions`. */
  const deployed = async (executions: ExecutionsRepository) => {
    const id = await account();
    const deps = { workflows: new WorkflowsRepository(db.doc, db.tables.workflows), executions, accounts, models: new ModelRegistry() };
    const actor = keyActor(id);
    await deployedEcho(deps, actor);
    const nap = { input_schema: {}, steps: [{ id: 'n', model: 'sleep', input: { ms: '$.input.ms' } }], output: '$.steps.n.output' };
    await createWorkflow(deps, actor, { slug: 'nap', name: 'nap', definition: nap });
    await deployWorkflow(deps, actor, 'nap');
    return { id, deps, actor };
  };
  const up = async () => {};

  it('runWorkflow: a sync run holds a slot while it runs and gives it back; at the limit it is refused and writes nothing; async runs are not held back', async () => {
    const { id, deps, actor } = await deployed(slots);
    // Long enough for the checks below to happen while it runs, on a loaded machine too.
    const running = runWorkflow(deps, actor, 'nap', { input: { ms: 3000 } }, { async: false, startAsync: up, syncLimit: 1, asyncLimit: 1 });
    const holder = await holderOnceHeld(id);
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', kind: 'sync', limit: 1 });
    expect((await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: up, syncLimit: 1, asyncLimit: 1 })).execution).toMatchObject({ status: 'QUEUED', async_slot: true });
    const done = (await running).execution;
    expect(done).toMatchObject({ status: 'SUCCEEDED' });
    expect(holder).toBe(done.execution_id);
    expect(await held(id)).toEqual([]);
    // The refused run wrote nothing: the sync run and the async one only.
    expect((await slots.list(id, {}, 10)).items).toHaveLength(2);
    expect(await inFlight(id)).toBe(1);
    expect((await runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).execution).toMatchObject({ status: 'SUCCEEDED' });
  });

  it('a sync run cancelled while it runs gives its slot back when it ends', async () => {
    const { id, deps, actor } = await deployed(slots);
    const running = runWorkflow(deps, actor, 'nap', { input: { ms: 3000 } }, { async: false, startAsync: up, syncLimit: 1 });
    const holder = await holderOnceHeld(id);
    expect(await cancelExecution({ executions: slots }, actor, holder!)).toMatchObject({ status: 'CANCELLED' });
    expect((await running).execution).toMatchObject({ execution_id: holder, status: 'CANCELLED' });
    expect(await held(id)).toEqual([]);
  });

  describe('through the fault proxy', () => {
    let proxy: CountingProxy;
    let proxied: ExecutionsRepository;
    beforeAll(async () => {
      proxy = await startCountingProxy(testEndpoint());
      proxied = new ExecutionsRepository(createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }), db.tables.executions, db.tables.accounts);
    });
    afterEach(() => proxy.clearFaults());
    afterAll(() => proxy?.close());

    it('a take whose answer is lost holds one slot, its own; one whose every answer is lost gives back what may have landed', async () => {
      const id = await account();
      const [a, b] = [newExecutionId(new Date()), newExecutionId(new Date())];
      proxy.reset();
      proxy.inject({ operation: 'PutItem', table: db.tables.executions, fault: 'lose-response', times: 1 });
      const slot = await proxied.takeSyncSlot(id, a, 2, lease());
      expect(proxy.injected()).toBe(1);
      expect(await slots.heldSyncSlots(id, Date.now())).toEqual([{ slot, holder: a, lease_until: expect.any(Number) }]);
      // Every attempt of b's put lands, and no answer comes back: the error is thrown, and b holds nothing.
      proxy.clearFaults();
      proxy.reset();
      proxy.inject({ operation: 'PutItem', table: db.tables.executions, fault: 'lose-response' });
      await expect(proxied.takeSyncSlot(id, b, 2, lease())).rejects.toThrow();
      expect(proxy.injected()).toBeGreaterThanOrEqual(4);
      expect(await held(id)).toEqual([a]);
    });

    it('a release waits a second at the most when DynamoDB does not answer', async () => {
      const id = await account();
      const a = newExecutionId(new Date());
      const slot = await proxied.takeSyncSlot(id, a, 1, lease());
      proxy.inject({ operation: 'UpdateItem', table: db.tables.executions, fault: 'hang' });
      const started = Date.now();
      await expect(proxied.releaseSyncSlot(id, slot, a)).rejects.toThrow();
      // The client's own bounds would wait 4 × 1.5 s.
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(await held(id)).toEqual([a]);
    });

    it('a run whose put fails (past the SDK’s retries) gives its slot back; a lost answer on the slot’s put leaves no slot held after the run', async () => {
      const { id, deps, actor } = await deployed(proxied);
      proxy.reset();
      // The slot's put passes; the run's put fails on every attempt.
      proxy.inject({ operation: 'PutItem', table: db.tables.executions, fault: 'server-error', skip: 1 });
      await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).rejects.toMatchObject({ name: 'InternalServerError' });
      expect(proxy.injected()).toBeGreaterThanOrEqual(4);
      expect(await held(id)).toEqual([]);
      proxy.clearFaults();
      proxy.reset();
      proxy.inject({ operation: 'PutItem', table: db.tables.executions, fault: 'lose-response', times: 1 });
      const done = (await runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).execution;
      expect(proxy.injected()).toBe(1);
      expect(done.status).toBe('SUCCEEDED');
      expect(await held(id)).toEqual([]);
    });

    it('a release that fails leaves the slot to its lease, and the run’s answer unchanged', async () => {
      const { id, deps, actor } = await deployed(proxied);
      proxy.reset();
      // The run's finish passes; the release fails on every attempt.
      proxy.inject({ operation: 'UpdateItem', table: db.tables.executions, fault: 'server-error', skip: 1 });
      const done = (await runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).execution;
      expect(done.status).toBe('SUCCEEDED');
      expect(proxy.injected()).toBeGreaterThanOrEqual(4);
      expect(await held(id)).toEqual([done.execution_id]);
    });
  });
});

describe('the table’s other items (isExecutionItem: what soak/run.ts and any scan count as executions)', () => {
  it('after the runs above: each item is an execution exactly when it has a status; cancels’ signals and sync slots are among the others', async () => {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await db.doc.send(new ScanCommand({ TableName: db.tables.executions, ConsistentRead: true, ExclusiveStartKey: start }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    // Before, the soak counted every sync slot as a stuck execution (it knew only of signals).
    expect(items.filter((i) => isExecutionItem(i) !== (typeof i['status'] === 'string'))).toEqual([]);
    const others = new Set(items.filter((i) => !isExecutionItem(i)).map((i) => String(i['account_id']).replace(/^[^#]*/, '')));
    expect([...others].sort()).toEqual(expect.arrayContaining(['#signal', SYNC_SLOTS_PARTITION_SUFFIX]));
    expect(isExecutionItem({ account_id: 'acct_x#redeliveries', execution_id: 'w#1' })).toBe(false);
  });
});
