/**
 * Failing dependencies, end to end: the local stack talks to DynamoDB Local through a proxy that injects
 * what DynamoDB Local cannot produce (throttling past the SDK's retries, 500s, calls that never answer).
 * - in the authorizer: the request is refused (500 INTERNAL_ERROR with request_id), never allowed;
 * - in the counter write: refused the same way, before the handler runs (nothing written);
 * - in a handler: a generic 500 with request_id and no internals, and no partial write: every change of
 *   several items is one transaction.
 * Then revocation racing with use.
 */
import { createKey } from '../../lambdas/shared/services/keys.js';
import { startCountingProxy, type CountingProxy, type Fault } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let accountId: string;
let admin: string;

const DEFINITION = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  t = await startTestStack('e2e-faults', { dynamodbEndpoint: proxy.endpoint });
  ({ accountId, key: admin } = await t.account('business'));
  const created = await t.api(admin, 'POST', '/workflows', { slug: 'echo', name: 'Echo', definition: DEFINITION });
  const deployed = await t.api(admin, 'POST', '/workflows/echo/deploy');
  if (created.status !== 201 || deployed.status !== 200) throw new Error('setup failed');
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await t?.close();
  await proxy?.close();
});

function expectGeneric500(reply: Reply) {
  expect(reply.status).toBe(500);
  expect(reply.body).toEqual({ error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: expect.any(String) });
  expect(reply.text).not.toMatch(/Exception|ProvisionedThroughput|injected|at .*\.(m?js|ts)/);
}

const FAULTS: Fault[] = ['throttle', 'server-error', 'hang'];

describe('the authorizer’s read fails', () => {
  it.each(FAULTS)('%s: refused with a generic 500, never allowed; nothing written', async (fault) => {
    const before = await t.snapshot({ withUsage: true });
    proxy.inject({ operation: 'GetItem', table: t.stack.state.tables.keys, fault });
    const reply = await t.api(admin, 'POST', '/workflows/echo/run', { input: 1 });
    expectGeneric500(reply);
    expect(reply.headers.get('x-ratelimit-limit')).toBeNull();
    expect(await t.snapshot({ withUsage: true })).toBe(before);
    proxy.clearFaults();
    expect((await t.api(admin, 'GET', '/keys/verify')).status).toBe(200);
  }, 30_000);
});

describe('the counter write fails', () => {
  it.each(FAULTS)('%s: refused with a generic 500 before the handler runs; nothing written', async (fault) => {
    const before = await t.snapshot();
    proxy.inject({ operation: 'UpdateItem', table: t.stack.state.tables.usage, fault });
    const reply = await t.api(admin, 'POST', '/workflows', { slug: `never-${fault}`, name: 'n', definition: DEFINITION });
    expectGeneric500(reply);
    expect(await t.snapshot()).toBe(before);
  }, 30_000);
});

describe('a handler’s write fails: a generic 500 and no partial write', () => {
  it('POST /keys: no record, no pointer, the account’s count unchanged', async () => {
    const before = await t.snapshot();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'POST', '/keys', { name: 'n', preset: 'read-only' }));
    expect(await t.snapshot()).toBe(before);
  });

  it('POST /keys/{id}/rotate: the old key still works, no new key', async () => {
    const { key, apiKey } = await createKey(t.deps(), accountId, { name: 'r', preset: 'read-only' });
    const before = await t.snapshot();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'throttle' });
    expectGeneric500(await t.api(admin, 'POST', `/keys/${key.key_id}/rotate`, {}));
    expect(await t.snapshot()).toBe(before);
    proxy.clearFaults();
    expect((await t.api(apiKey, 'GET', '/keys/verify')).status).toBe(200);
  }, 30_000);

  it('DELETE /keys/{id}: the key still works and still holds its slot', async () => {
    const { key, apiKey } = await createKey(t.deps(), accountId, { name: 'd', preset: 'read-only' });
    const before = await t.snapshot();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'DELETE', `/keys/${key.key_id}`));
    expect(await t.snapshot()).toBe(before);
    proxy.clearFaults();
    expect((await t.api(apiKey, 'GET', '/keys/verify')).status).toBe(200);
  });

  it('POST /workflows and PUT /workflows/{slug}: no head without its version', async () => {
    const before = await t.snapshot();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'POST', '/workflows', { slug: 'half', name: 'h', definition: DEFINITION }));
    expectGeneric500(await t.api(admin, 'PUT', '/workflows/echo', { name: 'changed', definition: DEFINITION }));
    expect(await t.snapshot()).toBe(before);
  });

  it('POST /webhooks/secret/rotate: the secret stays what it was', async () => {
    const secret = (await t.api(admin, 'GET', '/webhooks/secret')).body['secret'];
    const before = await t.snapshot();
    proxy.inject({ operation: 'TransactWriteItems', table: t.stack.state.tables.accounts, fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'POST', '/webhooks/secret/rotate'));
    expect(await t.snapshot()).toBe(before);
    proxy.clearFaults();
    expect((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']).toBe(secret);
  });

  it('a sync run whose execution cannot be stored: no execution, no output, its sync slot given back', async () => {
    /** The snapshot's items, the executions table's sync slots apart. */
    const split = (snapshot: string) => {
      const tables = JSON.parse(snapshot) as Record<string, string[]>;
      const isSlot = (item: string) => String((JSON.parse(item) as { account_id: string }).account_id).endsWith('#sync-slots');
      const slots = tables['executions']!.filter(isSlot).map((item) => JSON.parse(item) as { holder: string; lease_until: number });
      return { slots, rest: { ...tables, executions: tables['executions']!.filter((item) => !isSlot(item)) } };
    };
    const before = split(await t.snapshot());
    proxy.reset();
    // The slot's put passes; the run's put fails on every attempt of the SDK.
    proxy.inject({ operation: 'PutItem', table: t.stack.state.tables.executions, fault: 'server-error', skip: 1 });
    expectGeneric500(await t.api(admin, 'POST', '/workflows/echo/run', { input: 1 }));
    expect(proxy.injected()).toBeGreaterThanOrEqual(2);
    const after = split(await t.snapshot());
    expect(after.rest).toEqual(before.rest);
    // A slot was taken, and given back: none is held.
    expect(after.slots.length).toBeGreaterThan(0);
    expect(after.slots.filter((slot) => slot.lease_until > Date.now())).toEqual([]);
  });

  it('a one-off fault the SDK retries is invisible to the caller', async () => {
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', fault: 'throttle', times: 1 });
    const reply = await t.api(admin, 'POST', '/keys', { name: 'retried', preset: 'read-only' });
    expect(reply.status).toBe(201);
    expect(proxy.injected()).toBe(1);
    expect((await t.api(String(reply.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
  });
});

describe('revocation racing with use', () => {
  it('every request that starts after the revoke answered is refused; none fails with a 5xx', async () => {
    for (let round = 0; round < 3; round++) {
      const { key, apiKey } = await createKey(t.deps(), accountId, { name: `race ${round}`, preset: 'read-only' });
      const uses: Promise<number>[] = [];
      const started: number[] = [];
      let revokedAt = Number.POSITIVE_INFINITY;
      const revoke = t.api(admin, 'DELETE', `/keys/${key.key_id}`).then((r) => {
        revokedAt = performance.now();
        return r.status;
      });
      // Keep using the key until the revoke has answered, and a while after: some uses race it, some
      // start after it.
      let afterRevoke = 0;
      while (afterRevoke < 10) {
        started.push(performance.now());
        uses.push(t.api(apiKey, 'GET', '/keys/verify').then((r) => r.status));
        if (performance.now() > revokedAt) afterRevoke++;
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(await revoke).toBe(204);
      const statuses = await Promise.all(uses);
      // Only answers that say the key works or does not: no 5xx, no throttling.
      expect(statuses.filter((s) => s !== 200 && s !== 401)).toEqual([]);
      const late = statuses.filter((_s, i) => started[i]! > revokedAt);
      expect(late.length).toBeGreaterThanOrEqual(10);
      expect(late).toEqual(late.map(() => 401));
      const after = await Promise.all(Array.from({ length: 10 }, () => t.api(apiKey, 'GET', '/keys/verify')));
      expect(after.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 401));
    }
  });
});
