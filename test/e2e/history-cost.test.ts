/**
 * What a page costs does not grow with an account's history (issue #14, finding 6): with thousands of
 * revoked keys in the account, `GET /keys` and a create refused at the key limit read at most the key
 * limit's worth of items (counted as DynamoDB bills them: the Query's ScannedCount, at the proxy).
 */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { CountingProxy } from '../support/counting-proxy.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-history-cost'));
}, 60_000);
afterAll(() => close?.());

const HISTORY = 3000;

/** `n` revoked key records of the account, as years of churn leave them (records only: nothing refers to them). */
async function revokedHistory(accountId: string, n: number): Promise<void> {
  const items = Array.from({ length: n }, (_, i) => ({
    pk: `H#history${accountId}${String(i).padStart(6, '0')}`,
    key_id: `key_history${String(i).padStart(9, '0')}`,
    account_id: accountId,
    name: `old ${i}`,
    prefix: 'knouds_live_xxxx',
    environment: 'live',
    capabilities: ['workflow:read'],
    workspaces: ['*'],
    tier: 'business',
    created_at: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
    revoked_at: new Date(Date.UTC(2025, 6, 1)).toISOString(),
    released_at: new Date(Date.UTC(2025, 6, 1)).toISOString(),
  }));
  const writes = [];
  for (let i = 0; i < items.length; i += 25) {
    writes.push(
      t.stack.doc.send(
        new BatchWriteCommand({ RequestItems: { [t.stack.state.tables.keys]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
      ),
    );
    if (writes.length >= 8) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
}

it(`GET /keys and a create refused at the limit read at most the key limit, after ${HISTORY} revoked keys`, async () => {
  const acct = await t.account('business');
  for (let i = 0; i < 9; i++) expect((await t.api(acct.key, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' })).status).toBe(201);
  await revokedHistory(acct.accountId, HISTORY);

  proxy.reset();
  const page = await t.api(acct.key, 'GET', '/keys?limit=10');
  expect(page.status).toBe(200);
  expect((page.body['items'] as unknown[]).length).toBe(10);
  expect(proxy.scanned()).toBeLessThanOrEqual(10 + 1);

  proxy.reset();
  const refused = await t.api(acct.key, 'POST', '/keys', { name: 'one too many', preset: 'read-only' });
  expect(refused.status).toBe(409);
  expect(proxy.scanned()).toBeLessThanOrEqual(10);
}, 120_000);

it('a status filter reads its own index: one CANCELLED run among 2,500 others costs one item read', async () => {
  const acct = await t.account('business');
  const created = await t.api(acct.key, 'POST', '/workflows', {
    slug: 'nap', name: 'nap', definition: { input_schema: {}, steps: [{ id: 's', model: 'sleep', input: { ms: 5000 } }], output: '$.steps.s.output' },
  });
  expect(created.status).toBe(201);
  expect((await t.api(acct.key, 'POST', '/workflows/nap/deploy')).status).toBe(200);
  const queued = await t.api(acct.key, 'POST', '/workflows/nap/run?async=true', { input: {} });
  const id = String(queued.body['execution_id']);
  expect((await t.api(acct.key, 'POST', `/executions/${id}/cancel`)).body['status']).toBe('CANCELLED');
  await history(acct.accountId, 2500);
  proxy.reset();
  const page = await t.api(acct.key, 'GET', '/executions?status=CANCELLED&limit=10');
  expect((page.body['items'] as { execution_id: string }[]).map((e) => e.execution_id)).toEqual([id]);
  expect(page.body['next_token']).toBeNull();
  expect(proxy.scanned()).toBeLessThanOrEqual(2);
}, 120_000);

/**
 * `n` executions of workflow `old`, older than anything the test starts, all SUCCEEDED but the oldest,
 * CANCELLED; written as records only (without the status index's attribute), so only the per-workflow
 * index and the base table see them.
 */
async function history(accountId: string, n: number): Promise<string> {
  const base = Date.UTC(2026, 0, 1);
  const id = (i: number) => `exe_${String(i).padStart(9, '0')}${'A'.repeat(12)}`;
  const items = Array.from({ length: n }, (_, i) => ({
    account_id: accountId,
    execution_id: id(i),
    workflow_slug: 'old',
    account_workflow: `${accountId}#old`,
    workflow_version: 1,
    workspace_id: 'default',
    status: i === 0 ? 'CANCELLED' : 'SUCCEEDED',
    input: null,
    created_at: new Date(base + i * 1000).toISOString(),
  }));
  for (let i = 0; i < items.length; i += 25 * 8) {
    await Promise.all(
      Array.from({ length: 8 }, (_, b) => items.slice(i + b * 25, i + (b + 1) * 25)).filter((chunk) => chunk.length > 0).map((chunk) =>
        t.stack.doc.send(new BatchWriteCommand({ RequestItems: { [t.stack.state.tables.executions]: chunk.map((Item) => ({ PutRequest: { Item } })) } })),
      ),
    );
  }
  return id(0);
}

it('a filtered list that cannot use an index reads at most 1,000 items a page: a short page and a token, never a timeout', async () => {
  const acct = await t.account('business');
  const oldest = await history(acct.accountId, 2500);
  // The one CANCELLED execution is the oldest: newest first, 2,499 others come before it.
  let token: string | null = null;
  const found: string[] = [];
  let pages = 0;
  do {
    proxy.reset();
    const page = await t.api(acct.key, 'GET', `/executions?workflow=old&status=CANCELLED&limit=1${token ? `&next_token=${token}` : ''}`);
    expect(page.status).toBe(200);
    expect(proxy.scanned()).toBeLessThanOrEqual(1000 + 1);
    found.push(...(page.body['items'] as { execution_id: string }[]).map((e) => e.execution_id));
    token = page.body['next_token'] as string | null;
    pages++;
  } while (token && pages < 10);
  expect(found).toEqual([oldest]);
  expect(pages).toBeGreaterThanOrEqual(3);
}, 120_000);
