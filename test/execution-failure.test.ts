/**
 * `failure: {code, step_id}` of a FAILED execution (issue #21 item 2), at the ends the end-to-end tests
 * cannot reach in reasonable time, against DynamoDB Local: housekeeping's "timed out" (TIMED_OUT), an
 * interrupted attempt (INTERRUPTED), a queued run whose workflow version is gone (WORKFLOW_DELETED);
 * and runs that failed before failures were recorded, whose failure is read from their error.
 */
import { failure, legacyFailure } from '../lambdas/shared/execution-failure.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository, newExecutionId, TIMED_OUT, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { toExecutionObject } from '../lambdas/shared/services/execution-object.js';
import { workExecution, type WorkflowDeps } from '../lambdas/shared/services/workflows.js';
import { webhookPayload } from '../lambdas/shared/services/webhooks.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let repo: ExecutionsRepository;
beforeAll(async () => {
  db = await createTestDb('execution-failure');
  repo = new ExecutionsRepository(db.doc, db.tables.executions);
});
afterAll(() => db.close());

async function queued(createdAt = new Date(), extra: Partial<ExecutionRecord> = {}): Promise<ExecutionRecord> {
  const record: ExecutionRecord = {
    account_id: 'acct_fail',
    execution_id: newExecutionId(createdAt),
    workflow_slug: 'gone',
    workflow_version: 3,
    workspace_id: 'default',
    status: 'QUEUED',
    input: null,
    created_at: createdAt.toISOString(),
    async: true,
    ...extra,
  };
  await repo.create(record);
  return record;
}

it('housekeeping’s end of an overdue run: TIMED_OUT, no step, stored and shown', async () => {
  const old = await queued(new Date(Date.now() - 3_600_000));
  const cutoffs = { queuedBefore: new Date(), legacyStartedBefore: new Date(0) };
  const ended = await repo.failOverdue(old, 'att_sweep', new Date(), cutoffs);
  expect(ended).toMatchObject({ status: 'FAILED', error: TIMED_OUT, failure: { code: 'TIMED_OUT', step_id: null } });
  const stored = (await repo.get(old.account_id, old.execution_id))!;
  expect(toExecutionObject(stored)).toEqual(expect.objectContaining({ status: 'FAILED', error: 'timed out', failure: { code: 'TIMED_OUT', step_id: null } }));
});

it('an attempt found gone: INTERRUPTED', async () => {
  const e = await queued();
  await repo.claim(e.account_id, e.execution_id, 'att_dead', Date.now() - 1, new Date());
  const ended = await repo.failInterrupted(e.account_id, e.execution_id, 'att_dead', 'att_next', new Date(), new Date(0));
  expect(ended).toMatchObject({ status: 'FAILED', failure: { code: 'INTERRUPTED', step_id: null } });
});

it('a queued run whose workflow version is gone: WORKFLOW_DELETED', async () => {
  const e = await queued();
  const deps: WorkflowDeps = {
    workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
    executions: repo,
    accounts: new AccountsRepository(db.doc, db.tables.accounts),
    models: new ModelRegistry(),
    retrySchedule: [1],
  };
  const ended = await workExecution(deps, e.account_id, e.execution_id, Date.now() + 10_000);
  expect(ended).toMatchObject({ status: 'FAILED', error: 'the workflow version no longer exists', failure: { code: 'WORKFLOW_DELETED', step_id: null } });
});

it('a webhook carries the failure, its fields in one order whatever DynamoDB returns', async () => {
  const e = await queued(new Date(Date.now() - 3_600_000), { webhook_url: 'https://hooks.example.com/x' });
  await repo.failOverdue(e, 'att_sweep', new Date(), { queuedBefore: new Date(), legacyStartedBefore: new Date(0) });
  const stored = (await repo.get(e.account_id, e.execution_id))!;
  const reordered = { ...stored, failure: { step_id: null, code: 'TIMED_OUT' as const } };
  expect(webhookPayload(reordered)).toBe(webhookPayload(stored));
  expect(JSON.parse(webhookPayload(stored)).data.failure).toEqual({ code: 'TIMED_OUT', step_id: null });
});

describe('a run that failed before failures were recorded: its failure read from its error', () => {
  it.each([
    ['timed out', failure('TIMED_OUT')],
    // What such a record holds: the wording of the time (since changed to name the 25 s budget).
    [
      'The run would take longer than a synchronous request may last (29 s); run it asynchronously with POST /workflows/{slug}/run?async=true and poll GET /executions/{execution_id}',
      failure('TIMED_OUT'),
    ],
    ['The run outlasted the worker’s time limit', failure('TIMED_OUT')],
    ['the run was interrupted', failure('INTERRUPTED')],
    ['the workflow version no longer exists', failure('WORKFLOW_DELETED')],
    ['the run could not be started', failure('INTERNAL_ERROR')],
    ["step 'b': stopped by an internal error (TimeoutError)", failure('INTERNAL_ERROR', 'b')],
    ["step 'big': its output is 300000 bytes, over the limit of 256 KiB", failure('VALUE_TOO_LARGE', 'big')],
    ['the execution output is over the limit of 128 KiB', failure('VALUE_TOO_LARGE')],
    ["step 'explode': no luck", failure('MODEL_FAILED', 'explode')],
  ])('%s', (error, expected) => {
    expect(legacyFailure(error)).toEqual(expected);
  });

  it('shown as such, and null for a run that did not fail', () => {
    const base = { account_id: 'a', execution_id: 'exe_x', workflow_slug: 'w', workflow_version: 1, workspace_id: 'default', input: null, created_at: '2026-01-01T00:00:00.000Z', async: false };
    expect(toExecutionObject({ ...base, status: 'FAILED', error: 'timed out' }).failure).toEqual({ code: 'TIMED_OUT', step_id: null });
    expect(toExecutionObject({ ...base, status: 'SUCCEEDED', output: 1 }).failure).toBeNull();
    expect(toExecutionObject({ ...base, status: 'CANCELLED' }).failure).toBeNull();
  });
});
