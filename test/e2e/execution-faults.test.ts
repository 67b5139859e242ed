/**
 * Issue #13 (reliability review), end to end: the local stack's bundles talk to DynamoDB Local through
 * the fault proxy, which loses answers to writes that happened, throttles reads and fails writes.
 * - finding 4: a lost answer on the worker's claim does not fail the run;
 * - finding 5: a lost answer on the execution's put or on a cancel is harmless (the write landed);
 * - finding 6: a throttled cancellation check or a failing final write does not leave a run RUNNING;
 * - finding 7: a custom model slower than a sync run's budget fails the step within the budget, and the
 *   outcome is stored.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { newExecutionId } from '../../lambdas/shared/repositories/executions.js';
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { SLEEPY } from '../support/definitions.js';
import { SYNC_BUDGET_MS } from '../../lambdas/shared/run-budget.js';

let proxy: CountingProxy;
let t: TestStack;
let admin: string;
let accountId: string;
let executions: string;

const ECHO = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
/** The example model (`-c exampleModel=true`), answering `sleep_ms` late. */
const SLOW = { input_schema: {}, steps: [{ id: 'rev', model: 'reverse', input: '$.input' }], output: '$.steps.rev.output' };

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  t = await startTestStack('e2e-exec-faults', { dynamodbEndpoint: proxy.endpoint });
  ({ key: admin, accountId } = await t.account('business'));
  executions = t.stack.state.tables.executions;
  for (const [slug, definition] of [['sleepy', SLEEPY], ['echo', ECHO], ['slow', SLOW]] as const) {
    const created = await t.api(admin, 'POST', '/workflows', { slug, name: slug, definition });
    const deployed = await t.api(admin, 'POST', `/workflows/${slug}/deploy`);
    if (created.status !== 201 || deployed.status !== 200) throw new Error(`setup of ${slug} failed`);
  }
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await t?.close();
  await proxy?.close();
});

/** The execution's item as stored (read once the faults are cleared). */
async function stored(executionId: string): Promise<Record<string, unknown> | undefined> {
  proxy.clearFaults();
  const out = await t.stack.doc.send(new GetCommand({ TableName: executions, Key: { account_id: accountId, execution_id: executionId }, ConsistentRead: true }));
  return out.Item;
}

describe('finding 4: the worker’s claim', () => {
  it('a lost answer on QUEUED → RUNNING: the SDK’s retry is the same owner’s, and the run succeeds', async () => {
    proxy.reset();
    proxy.inject({ operation: 'UpdateItem', table: executions, fault: 'lose-response', times: 1 });
    const reply = await t.api(admin, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 200 } });
    expect(reply.status).toBe(202);
    const done = await t.execution(admin, String(reply.body['execution_id']));
    expect(proxy.injected()).toBe(1);
    expect(done.body).toMatchObject({ status: 'SUCCEEDED', output: { done: true }, error: null });
  });
});

describe('finding 5: a retried write that had landed', () => {
  it('sync run, lost answer on the execution’s put: 200 with the terminal execution, stored with its ttl', async () => {
    proxy.reset();
    // The first put is the run's sync slot; the second, the execution.
    proxy.inject({ operation: 'PutItem', table: executions, fault: 'lose-response', times: 1, skip: 1 });
    const reply = await t.api(admin, 'POST', '/workflows/echo/run', { input: { a: 1 } });
    expect(proxy.injected()).toBe(1);
    expect({ status: reply.status, body: reply.body }).toMatchObject({ status: 200, body: { status: 'SUCCEEDED', output: { a: 1 } } });
    expect(await stored(String(reply.body['execution_id']))).toMatchObject({ status: 'SUCCEEDED', ttl: expect.any(Number) });
  });

  it('async run, lost answer on the execution’s put (one transaction with its in-flight slot): 202, and the worker runs it', async () => {
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: executions, fault: 'lose-response', times: 1 });
    const reply = await t.api(admin, 'POST', '/workflows/echo/run?async=true', { input: { b: 2 } });
    expect(proxy.injected()).toBe(1);
    expect(reply.status).toBe(202);
    expect((await t.execution(admin, String(reply.body['execution_id']))).body).toMatchObject({ status: 'SUCCEEDED', output: { b: 2 } });
  });

  it('a lost answer on the cancel: 200 CANCELLED (the contract’s answer), and a retried cancel is 200 too', async () => {
    // A queued execution no worker will take, so the cancel's are the only writes to it.
    const now = new Date();
    const id = newExecutionId(now);
    await t.stack.doc.send(
      new PutCommand({
        TableName: executions,
        Item: {
          account_id: accountId,
          execution_id: id,
          account_workflow: `${accountId}#sleepy`,
          workflow_slug: 'sleepy',
          workflow_version: 1,
          workspace_id: 'default',
          status: 'QUEUED',
          input: { ms: 1 },
          created_at: now.toISOString(),
          key_id: 'key_x',
          async: true,
        },
      }),
    );
    proxy.reset();
    // Whichever write the cancel makes, its first answer is lost.
    for (const operation of ['UpdateItem', 'TransactWriteItems']) proxy.inject({ operation, table: executions, fault: 'lose-response', times: 1 });
    const cancelled = await t.api(admin, 'POST', `/executions/${id}/cancel`);
    expect(proxy.injected()).toBe(1);
    expect({ status: cancelled.status, body: cancelled.body }).toMatchObject({ status: 200, body: { execution_id: id, status: 'CANCELLED' } });
    proxy.clearFaults();
    const again = await t.api(admin, 'POST', `/executions/${id}/cancel`);
    expect({ status: again.status, body: again.body }).toMatchObject({ status: 200, body: { execution_id: id, status: 'CANCELLED' } });
    expect(await stored(id)).toMatchObject({ status: 'CANCELLED', ttl: expect.any(Number) });
  });
});

describe('finding 6: a brief DynamoDB error mid-run', () => {
  it('a throttled cancellation check (past the SDK’s four attempts): the sync run still ends, stored with its ttl', async () => {
    proxy.reset();
    proxy.inject({ operation: 'GetItem', table: executions, fault: 'throttle', times: 4 });
    const reply = await t.api(admin, 'POST', '/workflows/sleepy/run', { input: { ms: 600 } });
    expect(proxy.injected()).toBe(4);
    expect(reply.status).toBe(200);
    expect(['SUCCEEDED', 'FAILED']).toContain(reply.body['status']);
    expect(await stored(String(reply.body['execution_id']))).toMatchObject({ status: reply.body['status'], ttl: expect.any(Number) });
  });

  it('the final write fails more often than the SDK retries: retried again, and the run ends', async () => {
    proxy.reset();
    proxy.inject({ operation: 'UpdateItem', table: executions, fault: 'server-error', times: 4 });
    const reply = await t.api(admin, 'POST', '/workflows/echo/run', { input: 'x' });
    expect(proxy.injected()).toBe(4);
    expect({ status: reply.status, body: reply.body }).toMatchObject({ status: 200, body: { status: 'SUCCEEDED', output: 'x' } });
    expect(await stored(String(reply.body['execution_id']))).toMatchObject({ status: 'SUCCEEDED', ttl: expect.any(Number) });
  });
});

describe('finding 7: a custom model slower than the sync budget', () => {
  it('the step fails with the "too long" message within the budget, the outcome is stored; a direct model run is 422', async () => {
    const started = Date.now();
    const [run, direct] = await Promise.all([
      t.api(admin, 'POST', '/workflows/slow/run', { input: { text: 'abc', sleep_ms: 40_000 } }),
      t.api(admin, 'POST', '/models/reverse/run', { input: { text: 'abc', sleep_ms: 40_000 } }),
    ]);
    // Neither waited for the model's 40 s. The client's clock also counts cold starts and this machine's
    // load (other suites run beside this one), so the budget itself is read from the run's own record.
    expect(Date.now() - started).toBeLessThan(35_000);
    expect({ status: run.status, body: run.body }).toMatchObject({ status: 200, body: { status: 'FAILED', error: expect.stringContaining('?async=true') } });
    const record = await stored(String(run.body['execution_id']));
    expect(record).toMatchObject({ status: 'FAILED', ttl: expect.any(Number) });
    // The run ended when its 25 s budget did (counted from before the record was written), inside API Gateway’s 29 s.
    const ran = Date.parse(String(record?.['finished_at'])) - Date.parse(String(record?.['started_at']));
    // (started_at is written after the workflow is read, a moment into the budget: the lower bound only
    // says the run was not cut short.)
    expect(ran).toBeGreaterThan(SYNC_BUDGET_MS - 5_000);
    expect(ran).toBeLessThan(SYNC_BUDGET_MS + 2_000);
    expect({ status: direct.status, body: direct.body }).toMatchObject({ status: 422, body: { code: 'MODEL_FAILED', error: expect.stringContaining('?async=true') } });
  }, 60_000);
});
