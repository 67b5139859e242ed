/**
 * Issue #13 (reliability review), end to end: the local stack's bundles talk to DynamoDB Local through
 * the fault proxy.
 * - finding 7: a custom model slower than a sync run's budget fails the step within the budget, and the
 *   outcome is stored.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let admin: string;
let accountId: string;
let executions: string;

const SLEEPY = {
  input_schema: { type: 'object', properties: { ms: { type: 'integer' } } },
  steps: [
    { id: 'nap', model: 'sleep', input: { ms: '$.input.ms' } },
    { id: 'after', model: 'echo', input: { done: true } },
  ],
  output: '$.steps.after.output',
};
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

describe('finding 7: a custom model slower than the sync budget', () => {
  it('the step fails with the "too long" message within the budget, the outcome is stored; a direct model run is 422', async () => {
    const started = Date.now();
    const [run, direct] = await Promise.all([
      t.api(admin, 'POST', '/workflows/slow/run', { input: { text: 'abc', sleep_ms: 40_000 } }),
      t.api(admin, 'POST', '/models/reverse/run', { input: { text: 'abc', sleep_ms: 40_000 } }),
    ]);
    // Inside API Gateway's 29 s, with the 25 s budget spent.
    expect(Date.now() - started).toBeLessThan(28_000);
    expect({ status: run.status, body: run.body }).toMatchObject({ status: 200, body: { status: 'FAILED', error: expect.stringContaining('?async=true') } });
    expect(await stored(String(run.body['execution_id']))).toMatchObject({ status: 'FAILED', ttl: expect.any(Number) });
    expect({ status: direct.status, body: direct.body }).toMatchObject({ status: 422, body: { code: 'MODEL_FAILED', error: expect.stringContaining('?async=true') } });
  }, 60_000);
});
