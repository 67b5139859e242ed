/**
 * DynamoDB calls per request, exactly, for every route `npm run bench` measures that test/e2e/budget.test.ts
 * does not already pin (the others are there): counted at a proxy in front of DynamoDB Local while the
 * local runner runs the deployed bundles, the second call of each (a warm instance).
 */
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  t = await startTestStack('e2e-performance-budget', { dynamodbEndpoint: proxy.endpoint });
});
afterAll(async () => {
  await t?.close();
  await proxy?.close();
});

it('GET /webhooks/secret: the authorizer read, the counter write and the account’s secret record', async () => {
  const { key } = await t.account('business');
  await t.api(key, 'GET', '/webhooks/secret');
  for (let i = 0; i < 2; i++) {
    proxy.reset();
    const reply = await t.api(key, 'GET', '/webhooks/secret');
    expect({ status: reply.status, calls: proxy.counts() }).toEqual({ status: 200, calls: { GetItem: 2, UpdateItem: 1 } });
  }
});
