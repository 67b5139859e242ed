/**
 * The DynamoDB budget of an authenticated request, counted at a proxy in front of DynamoDB Local while
 * the local runner runs the deployed bundles: the authorizer's one GetItem and the counter's one
 * UpdateItem before any handler work; GET /keys/verify costs exactly those two. A person's session
 * costs the authorizer at most two reads (the membership, the account), then the same counter write.
 */
import { generateApiKey } from '../../lambdas/shared/api-key.js';
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { call } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { testEndpoint } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let issuer: TestIssuer;

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  issuer = await startTestIssuer();
  t = await startTestStack('e2e-budget', { dynamodbEndpoint: proxy.endpoint, identity: issuer.config });
});
afterAll(async () => {
  await t?.close();
  await proxy?.close();
  await issuer?.close();
});

async function countOne(key: string | undefined, method: string, path: string, body?: unknown) {
  proxy.reset();
  const reply = await t.api(key, method, path, body);
  return { status: reply.status, calls: proxy.counts(), reply };
}

describe('DynamoDB calls per request', () => {
  it('a person’s session: the authorizer’s two reads (membership, account) and the counter write', async () => {
    const { accountId } = await t.account('business');
    await t.member('budget-person', accountId, 'budget@example.com', 'admin');
    const token = await issuer.sign('budget-person');
    const count = async (headers: Record<string, string>) => {
      proxy.reset();
      // GET /models: the handler itself reads nothing.
      const reply = await call(`${t.stack.apiUrl}/models`, { headers: { authorization: `Bearer ${token}`, ...headers } });
      return { status: reply.status, calls: proxy.counts() };
    };
    for (let i = 0; i < 2; i++) {
      // Naming the account: the membership's GetItem and the account's.
      expect(await count({ 'knouds-account': accountId })).toEqual({ status: 200, calls: { GetItem: 2, UpdateItem: 1 } });
      // Not naming it: a Query of the person's memberships (at most two) instead.
      expect(await count({})).toEqual({ status: 200, calls: { Query: 1, GetItem: 1, UpdateItem: 1 } });
    }
    // A token refused costs nothing; a person of no account the one read, and their counter's write.
    expect((await count({ authorization: 'Bearer not.a.token' })).calls).toEqual({});
    proxy.reset();
    const stranger = await call(`${t.stack.apiUrl}/models`, { headers: { authorization: `Bearer ${await issuer.sign('nobody')}` } });
    expect({ status: stranger.status, calls: proxy.counts() }).toEqual({ status: 403, calls: { Query: 1, UpdateItem: 1 } });
  });

  it('GET /me by a key: the authorizer read, the counter write, the account and its expired keys still holding a slot', async () => {
    const { key } = await t.account('business');
    const { status, calls } = await countOne(key, 'GET', '/me');
    expect({ status, calls }).toEqual({ status: 200, calls: { GetItem: 2, UpdateItem: 1, Query: 1 } });
  });

  it('GET /keys/verify: exactly one GetItem and one UpdateItem', async () => {
    const { key } = await t.account('business');
    for (let i = 0; i < 3; i++) {
      const { status, calls } = await countOne(key, 'GET', '/keys/verify');
      expect(status).toBe(200);
      expect(calls).toEqual({ GetItem: 1, UpdateItem: 1 });
    }
  });

  it('GET /health and the authorizer’s refusals cost at most its one read', async () => {
    const { key } = await t.account('business');
    expect((await countOne(undefined, 'GET', '/health')).calls).toEqual({});
    expect((await countOne(undefined, 'GET', '/keys/verify')).calls).toEqual({});
    expect((await countOne(`${key.slice(0, -1)}${key.endsWith('a') ? 'b' : 'a'}`, 'GET', '/keys/verify')).calls).toEqual({});
    expect((await countOne(key.replace(/.{6}$/, ''), 'GET', '/keys/verify')).calls).toEqual({});
    // A well-formed key that was never issued: the one read, then 401.
    const unknown = await countOne(generateApiKey('knouds', 'live'), 'GET', '/keys/verify');
    expect(unknown).toMatchObject({ status: 401, calls: { GetItem: 1 } });
  });

  it('a capability refusal costs the read and the counter write, and no more', async () => {
    const { key } = await t.account('business', { name: 'reader', preset: 'read-only' });
    const { status, calls } = await countOne(key, 'GET', '/keys');
    expect(status).toBe(403);
    expect(calls).toEqual({ GetItem: 1, UpdateItem: 1 });
  });

  it('each keys route: the authorizer read and the counter write, plus the handler’s own calls', async () => {
    const { key, keyId } = await t.account('business');
    const created = await countOne(key, 'POST', '/keys', { name: 'x', preset: 'read-only' });
    expect(created.status).toBe(201);
    // + account read, + one transaction (count, record, pointer, its audit event).
    expect(created.calls).toEqual({ GetItem: 2, UpdateItem: 1, TransactWriteItems: 1 });
    const id = String(created.reply.body['key_id']);
    // The audit trail: one query (limit + 1 items), no filter read.
    const listed = await countOne(key, 'GET', '/audit-events?limit=2');
    expect({ status: listed.status, calls: listed.calls }).toEqual({ status: 200, calls: { GetItem: 1, UpdateItem: 1, Query: 1 } });
    // With a page token: + the read of the event it names.
    const first = await countOne(key, 'GET', '/audit-events?limit=1&action=key.created');
    const token = encodeURIComponent(String(first.reply.body['next_token']));
    const next = await countOne(key, 'GET', `/audit-events?limit=1&action=key.created&next_token=${token}`);
    expect({ status: next.status, calls: next.calls }).toEqual({ status: 200, calls: { GetItem: 2, UpdateItem: 1, Query: 1 } });

    const expected: [string, string, unknown, number, Record<string, number>][] = [
      // + pointer and record reads, + last_used query
      ['GET', `/keys/${id}`, undefined, 200, { GetItem: 3, UpdateItem: 1, Query: 1 }],
      // + index query, + a last_used query per key (2 keys)
      ['GET', '/keys', undefined, 200, { GetItem: 1, UpdateItem: 1, Query: 3 }],
      // + pointer and record reads, + the edit and its audit event (one transaction), + last_used query
      ['PATCH', `/keys/${id}`, { name: 'y' }, 200, { GetItem: 3, UpdateItem: 1, TransactWriteItems: 1, Query: 1 }],
      // An edit that changes nothing writes nothing: the reads only.
      ['PATCH', `/keys/${id}`, { name: 'y' }, 200, { GetItem: 3, UpdateItem: 1, Query: 1 }],
      // + pointer and record reads, + this month's usage query
      ['GET', `/keys/${id}/usage`, undefined, 200, { GetItem: 3, UpdateItem: 1, Query: 2 }],
      // + pointer and record reads, + account read, + one transaction (with its audit event)
      ['POST', `/keys/${id}/rotate`, {}, 201, { GetItem: 4, UpdateItem: 1, TransactWriteItems: 1 }],
      // + pointer and record reads, + one transaction (record, pointer, count, audit event)
      ['DELETE', `/keys/${keyId}`, undefined, 204, { GetItem: 3, UpdateItem: 1, TransactWriteItems: 1 }],
    ];
    for (const [method, path, body, status, calls] of expected) {
      const result = await countOne(key, method, path, body);
      expect({ route: `${method} ${path}`, status: result.status, calls: result.calls }).toEqual({
        route: `${method} ${path}`,
        status,
        calls,
      });
    }
  });

  it('each workflow, model and execution route: the authorizer read and the counter write, plus the handler’s own calls', async () => {
    const { key } = await t.account('business');
    const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
    const sleepy = { input_schema: {}, steps: [{ id: 's', model: 'sleep', input: { ms: 5000 } }], output: '$.steps.s.output' };
    const expected: [string, string, unknown, number, Record<string, number>][] = [
      // + one transaction (head and version 1)
      ['POST', '/workflows', { slug: 'budget', name: 'b', definition }, 201, { GetItem: 1, UpdateItem: 1, TransactWriteItems: 1 }],
      // + head and version reads
      ['GET', '/workflows/budget', undefined, 200, { GetItem: 3, UpdateItem: 1 }],
      // + one index query
      ['GET', '/workflows', undefined, 200, { GetItem: 1, UpdateItem: 1, Query: 1 }],
      // + head read, + one transaction (head and version 2)
      // The head, the latest version (an identical PUT saves nothing), then one transaction.
      ['PUT', '/workflows/budget', { name: 'b2', definition }, 200, { GetItem: 3, UpdateItem: 1, TransactWriteItems: 1 }],
      // + head read (workspace check), + the conditional deploy, + the deployed version's read
      ['POST', '/workflows/budget/deploy', undefined, 200, { GetItem: 3, UpdateItem: 2 }],
      // + head and version reads, + the sync slot (a query of the account's slots, a conditional put), + the
      // execution's put, + a cancellation check per step, + the finish, + the slot's release
      ['POST', '/workflows/budget/run', { input: { a: 1 } }, 200, { GetItem: 4, Query: 1, PutItem: 2, UpdateItem: 3 }],
      ['GET', '/models', undefined, 200, { GetItem: 1, UpdateItem: 1 }],
      ['POST', '/models/echo/run', { input: 1 }, 200, { GetItem: 1, UpdateItem: 1 }],
      // + one index query
      ['GET', '/executions', undefined, 200, { GetItem: 1, UpdateItem: 1, Query: 1 }],
    ];
    for (const [method, path, body, status, calls] of expected) {
      const result = await countOne(key, method, path, body);
      expect({ route: `${method} ${path}`, status: result.status, calls: result.calls }).toEqual({ route: `${method} ${path}`, status, calls });
    }
    const execution = (await countOne(key, 'GET', '/executions')).reply.body['items'] as { execution_id: string }[];
    const id = execution[0]!.execution_id;
    // + the execution read
    expect((await countOne(key, 'GET', `/executions/${id}`)).calls).toEqual({ GetItem: 2, UpdateItem: 1 });
    // Cancelling a finished execution: + the execution read, which answers it (no write).
    const finished = await countOne(key, 'POST', `/executions/${id}/cancel`);
    expect({ status: finished.status, calls: finished.calls }).toEqual({ status: 409, calls: { GetItem: 2, UpdateItem: 1 } });

    await t.api(key, 'POST', '/workflows', { slug: 'sleepy', name: 's', definition: sleepy });
    await t.api(key, 'POST', '/workflows/sleepy/deploy');
    // Async: + head and version reads, + one transaction (the execution's put and the account's in-flight
    // slot), + the worker's invocation (not DynamoDB). No PutItem: the put is inside the transaction.
    const queued = await countOne(key, 'POST', '/workflows/sleepy/run?async=true', { input: {} });
    expect(queued.status).toBe(202);
    expect(queued.calls).toMatchObject({ GetItem: 3, TransactWriteItems: 1 });
    expect(queued.calls['PutItem']).toBeUndefined();
    const queuedId = String(queued.reply.body['execution_id']);
    const cancelled = await countOne(key, 'POST', `/executions/${queuedId}/cancel`);
    expect(cancelled.status).toBe(200);
    // + the execution read, + one transaction (the conditional cancel, its signal item and the release of
    // the run's in-flight slot); the worker's own calls may land in the same window.
    expect(cancelled.calls).toMatchObject({ TransactWriteItems: 1 });
    expect(cancelled.calls['GetItem']).toBeGreaterThanOrEqual(2);
    // Cancelling it again: + the execution read, which answers it.
    const again = await countOne(key, 'POST', `/executions/${queuedId}/cancel`);
    expect(again.status).toBe(200);
    expect(again.calls['TransactWriteItems']).toBeUndefined();

    // + head read, + a consistent query of the versions, + one transaction deleting the head and the versions
    // (a workflow of more than 99 versions adds the head's deleting mark, and a query and a transaction
    // per further 99 versions)
    // The worker's run of the cancelled execution ends first: its calls would land in the count.
    await t.stack.asyncInvocationsSettled();
    const deleted = await countOne(key, 'DELETE', '/workflows/budget');
    expect({ status: deleted.status, calls: deleted.calls }).toEqual({
      status: 204,
      calls: { GetItem: 2, UpdateItem: 1, Query: 1, TransactWriteItems: 1 },
    });
  });
});

describe('async runs past the account’s in-flight limit', () => {
  it('a refused ?async=true costs what an admitted one does (the transaction is the check): no PutItem, no extra read', async () => {
    const { key } = await t.account('pro', { name: 'runner', capabilities: ['workflow:run', 'workflow:write', 'execution:cancel'] });
    const sleepy = { input_schema: {}, steps: [{ id: 's', model: 'sleep', input: { ms: 30_000 } }], output: '$.steps.s.output' };
    await t.api(key, 'POST', '/workflows', { slug: 'full', name: 'f', definition: sleepy });
    await t.api(key, 'POST', '/workflows/full/deploy');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(String((await t.api(key, 'POST', '/workflows/full/run?async=true', { input: {} })).body['execution_id']));
    const refused = await countOne(key, 'POST', '/workflows/full/run?async=true', { input: {} });
    expect(refused.status).toBe(429);
    expect(refused.reply.body).toMatchObject({ code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: 10 });
    // The authorizer's read, the counter write, head and version reads, the refused transaction; the
    // running workers' own calls (cancellation checks) may land in the same window.
    expect(refused.calls).toMatchObject({ TransactWriteItems: 1 });
    expect(refused.calls['PutItem']).toBeUndefined();
    for (const id of ids) await t.api(key, 'POST', `/executions/${id}/cancel`);
  });
});
