/**
 * The execution state machine's conditional writes against DynamoDB Local: QUEUED → RUNNING →
 * SUCCEEDED | FAILED, QUEUED | RUNNING → CANCELLED; a terminal state is never overwritten and a cancel
 * beats a finishing step, whatever the interleaving.
 */
import { ExecutionsRepository, newExecutionId, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { createWorkflow, deployWorkflow, runWorkflow } from '../lambdas/shared/services/workflows.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

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
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'FAILED', error: 'late' }, now(), 'att_a')).toMatchObject({ status: 'SUCCEEDED' });
    expect(await repo.finish(e.account_id, e.execution_id, { status: 'FAILED', error: 'late' }, now(), 'att_b')).toBeUndefined();
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

describe('async start', () => {
  it('an execution whose worker cannot be invoked is FAILED, not left QUEUED', async () => {
    const deps = {
      workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
      executions: repo,
      accounts: new AccountsRepository(db.doc, db.tables.accounts),
      models: new ModelRegistry(),
    };
    const actor = { accountId: 'acct_async', keyId: 'key_a', workspaces: ['*'] };
    await createWorkflow(deps, actor, {
      slug: 'wf',
      name: 'wf',
      definition: { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: 1 }], output: '$.steps.e.output' },
    });
    await deployWorkflow(deps, actor, 'wf');
    const down = async () => {
      throw new Error('Lambda is unavailable');
    };
    await expect(runWorkflow(deps, actor, 'wf', { input: {} }, { async: true, startAsync: down })).rejects.toThrow(/unavailable/);
    const [execution] = (await repo.list('acct_async', {}, 10)).items;
    expect(execution).toMatchObject({ status: 'FAILED', error: 'the run could not be started' });
  });
});
