/**
 * The execution state machine's conditional writes against DynamoDB Local: QUEUED → RUNNING →
 * SUCCEEDED | FAILED, QUEUED | RUNNING → CANCELLED; a terminal state is never overwritten and a cancel
 * beats a finishing step, whatever the interleaving.
 */
import { createAccount } from '../lambdas/shared/services/keys.js';
import { ExecutionsRepository, newExecutionId, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { createWorkflow, deleteWorkflow, deployWorkflow, runWorkflow, workExecution } from '../lambdas/shared/services/workflows.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { failure } from '../lambdas/shared/execution-failure.js';
import { ConcurrencyLimitExceededError } from '../lambdas/shared/errors.js';

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

describe('async runs in flight: the account’s counter (API.md §4)', () => {
  let slots: ExecutionsRepository;
  let accounts: AccountsRepository;
  let n = 0;
  beforeAll(() => {
    slots = new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts);
    accounts = new AccountsRepository(db.doc, db.tables.accounts);
  });
  const inFlight = async (accountId: string) =>
    (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item?.['async_in_flight'] ?? 0;
  const account = async () => {
    const id = `acct_slots_${++n}_${Date.now().toString(36)}`;
    await createAccount({ accounts, audit: db.audit }, id, 'pro');
    return id;
  };
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
    expect(await slots.cancel(id, cancelledQueued.execution_id, 'QUEUED', now(), 'async')).toBe(true);
    // Cancelled already: the condition refuses a second cancel, and its release with it.
    expect(await slots.cancel(id, cancelledQueued.execution_id, 'QUEUED', now(), 'async')).toBe(false);
    expect(await inFlight(id)).toBe(1);
    await claimed(cancelledRunning, 'att_e');
    // A caller that says the run holds no slot is refused (re-read), never ends it without the release.
    expect(await slots.cancel(id, cancelledRunning.execution_id, 'RUNNING', now(), undefined)).toBe(false);
    expect(await slots.cancel(id, cancelledRunning.execution_id, 'RUNNING', now(), 'async')).toBe(true);
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

describe('sync runs running at once: the account’s other counter', () => {
  let slots: ExecutionsRepository;
  let accounts: AccountsRepository;
  let n = 0;
  beforeAll(() => {
    slots = new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts);
    accounts = new AccountsRepository(db.doc, db.tables.accounts);
  });
  const counters = async (accountId: string) => {
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item ?? {};
    return { sync: item['sync_in_flight'] ?? 0, async: item['async_in_flight'] ?? 0 };
  };
  const account = async () => {
    const id = `acct_sync_${++n}_${Date.now().toString(36)}`;
    await createAccount({ accounts, audit: db.audit }, id, 'pro');
    return id;
  };
  /** A sync run as runWorkflow writes it: RUNNING from its put, owned by its request, leased. */
  const running = (accountId: string, owner = 'att_req', leaseUntil = lease()): ExecutionRecord => {
    const at = new Date();
    return {
      account_id: accountId,
      execution_id: newExecutionId(at),
      workflow_slug: 'wf',
      workflow_version: 1,
      workspace_id: 'default',
      status: 'RUNNING',
      input: null,
      created_at: at.toISOString(),
      started_at: at.toISOString(),
      owner,
      lease_until: leaseUntil,
      key_id: 'key_x',
      async: false,
      sync_slot: true,
    };
  };

  it('admits exactly `limit` of many parallel starts, on its own counter: async slots are not taken', async () => {
    const id = await account();
    const results = await Promise.allSettled(Array.from({ length: 7 }, () => slots.create(running(id), 2)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as ConcurrencyLimitExceededError);
    expect(refused.map((e) => [e.status, e.code, e.extra(), e.kind])).toEqual(Array.from({ length: 5 }, () => [429, 'CONCURRENCY_LIMIT_EXCEEDED', { limit: 2 }, 'sync']));
    expect(refused[0]!.message).toMatch(/limit of 2 synchronous executions running/);
    expect(await counters(id)).toEqual({ sync: 2, async: 0 });
    expect((await slots.list(id, {}, 20)).items).toHaveLength(2);
    await expect(slots.create(running(await account()), 0)).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: 0, kind: 'sync' });
  });

  it('every end frees the sync slot once: success, failure, cancel, housekeeping’s timeout; a retried finish frees nothing more', async () => {
    const id = await account();
    const [ok, failed, cancelled, overdue] = [running(id, 'att_a'), running(id, 'att_b'), running(id, 'att_c'), running(id, 'att_d', Date.now() - 1)];
    for (const r of [ok, failed, cancelled, overdue]) await slots.create(r, 4);
    expect(await counters(id)).toEqual({ sync: 4, async: 0 });
    expect(await slots.finish(id, ok.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a', ['RUNNING'], ok)).toMatchObject({ status: 'SUCCEEDED' });
    // As a retry after a lost answer: its own result, no second release.
    expect(await slots.finish(id, ok.execution_id, { status: 'SUCCEEDED', output: 1 }, now(), 'att_a', ['RUNNING'], ok)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await counters(id)).toEqual({ sync: 3, async: 0 });
    // A finish that did not know of the slot is refused and made again as the transaction.
    expect(await slots.finish(id, failed.execution_id, { status: 'FAILED', error: 'x', failure: failure('MODEL_FAILED', 's') }, now(), 'att_b')).toMatchObject({ status: 'FAILED' });
    expect(await counters(id)).toEqual({ sync: 2, async: 0 });
    // A cancel that names no slot, or the async one, is refused (re-read); the sync one frees it, once.
    expect(await slots.cancel(id, cancelled.execution_id, 'RUNNING', now(), undefined)).toBe(false);
    expect(await slots.cancel(id, cancelled.execution_id, 'RUNNING', now(), 'async')).toBe(false);
    expect(await slots.cancel(id, cancelled.execution_id, 'RUNNING', now(), 'sync')).toBe(true);
    expect(await slots.cancel(id, cancelled.execution_id, 'RUNNING', now(), 'sync')).toBe(false);
    expect(await counters(id)).toEqual({ sync: 1, async: 0 });
    // A request that died mid-run (Lambda's timeout): housekeeping fails it past its lease, and the slot comes back.
    const cutoffs = { queuedBefore: new Date(Date.now() - 3_600_000), legacyStartedBefore: new Date(0) };
    expect(await slots.failOverdue(overdue, 'att_housekeeping', now(), cutoffs)).toMatchObject({ status: 'FAILED', error: 'timed out' });
    expect(await counters(id)).toEqual({ sync: 0, async: 0 });
  });

  it('runWorkflow: a sync run under a limit holds a slot while it runs and gives it back; at the limit it is refused and writes nothing', async () => {
    const id = await account();
    const deps = {
      workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
      executions: slots,
      accounts,
      models: new ModelRegistry(),
    };
    const actor = keyActor(id);
    await deployedEcho(deps, actor);
    const up = async () => {};
    const done = (await runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1, asyncLimit: 1 })).execution;
    expect(done).toMatchObject({ status: 'SUCCEEDED', sync_slot: true });
    expect(done).not.toHaveProperty('async_slot');
    expect(await counters(id)).toEqual({ sync: 0, async: 0 });
    // The one slot taken by a run in progress (its put, as runWorkflow makes it).
    await slots.create(running(id), 1);
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: false, startAsync: up, syncLimit: 1 })).rejects.toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', kind: 'sync', limit: 1 });
    expect((await slots.list(id, {}, 10)).items).toHaveLength(2);
    // An async run is not held back by the sync runs, nor takes their slot.
    expect((await runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: up, syncLimit: 1, asyncLimit: 1 })).execution).toMatchObject({ status: 'QUEUED', async_slot: true });
    expect(await counters(id)).toEqual({ sync: 1, async: 1 });
  });
});
