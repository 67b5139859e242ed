/**
 * DELETE /workflows/{slug} when DynamoDB fails half-way (issue #13, finding 3): the local stack talks to
 * DynamoDB Local through the fault-injecting proxy. A delete that fails leaves either the workflow as it
 * was or a half-deleted one (its head marked `deleting`, so every route but DELETE and POST answers 404);
 * a retried DELETE finishes it, and so does a POST of the same slug, which then creates version 1. Items
 * DynamoDB leaves unprocessed are never dropped, a lost response does not stop the delete, and a POST
 * racing a DELETE never loses its new workflow to the delete. After each, the workflows table is scanned
 * for the slug's items: nothing is left behind.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, type BatchWriteCommandOutput, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS } from '../../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { testEndpoint } from '../support/dynamodb.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let admin: string;
let accountId: string;
/** Straight to DynamoDB Local, past the proxy and its faults: the tests' own reads and setup writes. */
let direct: DynamoDBDocumentClient;
let table: string;

const DEFINITION = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
const NEW_DEFINITION = { input_schema: {}, steps: [{ id: 'u', model: 'uppercase', input: { text: 'new' } }], output: '$.steps.u.output' };
/** More versions than one delete transaction takes, so the delete goes in pages. */
const MANY = 120;

beforeAll(async () => {
  proxy = await startCountingProxy(testEndpoint());
  t = await startTestStack('e2e-wfdelete', { dynamodbEndpoint: proxy.endpoint });
  ({ key: admin, accountId } = await t.account('business'));
  direct = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  table = t.stack.state.tables.workflows;
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  direct?.destroy();
  await t?.close();
  await proxy?.close();
});

function expectGeneric500(reply: Reply) {
  expect(reply.status).toBe(500);
  expect(reply.body).toEqual({ error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: expect.any(String) });
}

function expectNotFound(reply: Reply) {
  expect({ status: reply.status, code: reply.body['code'] }).toEqual({ status: 404, code: 'NOT_FOUND' });
}

/** Every item of the workflows table that belongs to the slug (its head and its versions), by `sk`. */
async function itemsOf(slug: string): Promise<string[]> {
  const found: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await direct.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) {
      const sk = String(item['sk']);
      if (item['account_id'] === accountId && (sk === `W#${slug}` || sk.startsWith(`V#${slug}#`))) found.push(sk);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return found.sort();
}

const v = (slug: string, n: number) => `V#${slug}#${String(n).padStart(6, '0')}`;

/**
 * A deployed workflow with `versions` versions: created and deployed over HTTP, the later versions
 * written straight to the table as PUT leaves them (the head's `version` names the latest).
 */
async function workflow(slug: string, versions: number, workspace = 'default'): Promise<void> {
  const created = await t.api(admin, 'POST', '/workflows', { slug, name: slug, definition: DEFINITION, workspace_id: workspace });
  expect(created.status).toBe(201);
  expect((await t.api(admin, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
  const now = new Date().toISOString();
  const items = Array.from({ length: versions - 1 }, (_, i) => ({
    PutRequest: { Item: { account_id: accountId, sk: v(slug, i + 2), slug, version: i + 2, definition: DEFINITION, created_at: now } },
  }));
  for (let i = 0; i < items.length; i += 25) {
    let requests: unknown[] | undefined = items.slice(i, i + 25);
    while (requests?.length) {
      const out: BatchWriteCommandOutput = await direct.send(new BatchWriteCommand({ RequestItems: { [table]: requests as never } }));
      requests = out.UnprocessedItems?.[table];
    }
  }
  await direct.send(
    new UpdateCommand({ TableName: table, Key: { account_id: accountId, sk: `W#${slug}` }, UpdateExpression: 'SET version = :n', ExpressionAttributeValues: { ':n': versions } }),
  );
  expect(await itemsOf(slug)).toHaveLength(versions + 1);
  expect((await t.api(admin, 'GET', `/workflows/${slug}`)).body).toMatchObject({ version: versions, deployed_version: 1 });
}

/** The slug is free and clean: POST creates version 1 of a new workflow, and only its head and version 1 exist. */
async function expectReusable(slug: string): Promise<void> {
  const created = await t.api(admin, 'POST', '/workflows', { slug, name: 'again', definition: NEW_DEFINITION });
  expect({ status: created.status, version: created.body['version'] }).toEqual({ status: 201, version: 1 });
  const read = await t.api(admin, 'GET', `/workflows/${slug}`);
  expect(read.body).toMatchObject({ slug, name: 'again', version: 1, deployed_version: null, definition: NEW_DEFINITION });
  expect(await itemsOf(slug)).toEqual([v(slug, 1), `W#${slug}`]);
}

/** A half-deleted (or not yet deleted) workflow is 404 on every route that reads it, and not listed. */
async function expectGoneForReaders(slug: string): Promise<void> {
  expectNotFound(await t.api(admin, 'GET', `/workflows/${slug}`));
  expectNotFound(await t.api(admin, 'PUT', `/workflows/${slug}`, { definition: DEFINITION }));
  expectNotFound(await t.api(admin, 'POST', `/workflows/${slug}/deploy`));
  expectNotFound(await t.api(admin, 'POST', `/workflows/${slug}/run`, { input: 1 }));
  const listed = (await t.api(admin, 'GET', '/workflows?limit=100')).body['items'] as { slug: string }[];
  expect(listed.map((w) => w.slug)).not.toContain(slug);
}

describe('a DELETE that fails half-way is finished by a retried DELETE', () => {
  it.each([
    ['the version query fails', 'q-fail', 3, { operation: 'Query' }],
    ['the second page’s version query fails', 'q-fail-page', MANY, { operation: 'Query', skip: 1 }],
    ['a page’s transaction fails', 'tx-fail-page', MANY, { operation: 'TransactWriteItems' }],
  ] as const)('%s: 500, then DELETE 204 and every item gone, then a POST creates version 1', async (_name, slug, versions, rule) => {
    await workflow(slug, versions);
    proxy.inject({ ...rule, table, fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'DELETE', `/workflows/${slug}`));
    proxy.clearFaults();

    expect((await t.api(admin, 'DELETE', `/workflows/${slug}`)).status).toBe(204);
    expect(await itemsOf(slug)).toEqual([]);
    await expectGoneForReaders(slug);
    // Once it is gone, a DELETE is 404 like any other missing workflow.
    expectNotFound(await t.api(admin, 'DELETE', `/workflows/${slug}`));
    await expectReusable(slug);
  }, 60_000);
});

describe('a workflow of up to 99 versions is deleted in one transaction', () => {
  it('a failed DELETE leaves it exactly as it was: readable, deployable, runnable', async () => {
    await workflow('atomic', 99);
    const before = await itemsOf('atomic');
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'DELETE', '/workflows/atomic'));
    proxy.clearFaults();
    expect(await itemsOf('atomic')).toEqual(before);
    expect((await t.api(admin, 'GET', '/workflows/atomic')).body).toMatchObject({ version: 99, deployed_version: 1 });
    expect((await t.api(admin, 'POST', '/workflows/atomic/run', { input: 'x' })).body).toMatchObject({ status: 'SUCCEEDED', output: 'x' });
    expect((await t.api(admin, 'DELETE', '/workflows/atomic')).status).toBe(204);
    expect(await itemsOf('atomic')).toEqual([]);
  });
});

describe('a POST of a half-deleted slug finishes the deletion, then creates', () => {
  it('a failure between pages: the workflow is 404 everywhere; POST 201 with version 1 and nothing of the old one left', async () => {
    await workflow('half', MANY);
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'DELETE', '/workflows/half'));
    proxy.clearFaults();
    await expectGoneForReaders('half');
    await expectReusable('half');
  }, 60_000);

  it('a head left without its version (what a failed DELETE left before this fix), and versions without a head', async () => {
    // As the old delete left it: the head's `version` removed, the versions (or some of them) still there.
    const now = new Date().toISOString();
    const head = { account_id: accountId, slug: 'legacy', name: 'l', description: '', workspace_id: 'default', deployed_version: 1, created_at: now, updated_at: now };
    await direct.send(new PutCommand({ TableName: table, Item: { ...head, sk: 'W#legacy' } }));
    for (const n of [1, 2, 3]) {
      await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: v('legacy', n), slug: 'legacy', version: n, definition: DEFINITION, created_at: now } }));
    }
    // Versions whose head is gone (the old delete dropped the items DynamoDB left unprocessed).
    for (const n of [1, 7]) {
      await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: v('orphans', n), slug: 'orphans', version: n, definition: DEFINITION, created_at: now } }));
    }
    await expectGoneForReaders('legacy');
    await expectReusable('legacy');
    expectNotFound(await t.api(admin, 'GET', '/workflows/orphans'));
    await expectReusable('orphans');
  });

  it('a DELETE retried on what the old delete left finishes it', async () => {
    const now = new Date().toISOString();
    await direct.send(
      new PutCommand({
        TableName: table,
        Item: { account_id: accountId, sk: 'W#legacy-del', slug: 'legacy-del', name: 'l', description: '', workspace_id: 'default', deployed_version: null, created_at: now, updated_at: now },
      }),
    );
    await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: v('legacy-del', 1), slug: 'legacy-del', version: 1, definition: DEFINITION, created_at: now } }));
    expect((await t.api(admin, 'DELETE', '/workflows/legacy-del')).status).toBe(204);
    expect(await itemsOf('legacy-del')).toEqual([]);
  });
});

describe('who may finish a half-deleted workflow', () => {
  it('a key outside its workspace gets 403 WORKSPACE_DENIED on DELETE, as for a live one, and changes nothing', async () => {
    await workflow('in-ws', MANY, 'ws-a');
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'server-error' });
    expectGeneric500(await t.api(admin, 'DELETE', '/workflows/in-ws'));
    proxy.clearFaults();
    const before = await itemsOf('in-ws');
    const other = String(
      (await t.api(admin, 'POST', '/keys', { name: 'ws-b only', capabilities: ['workflow:read', 'workflow:write'], workspaces: ['ws-b'] })).body['api_key'],
    );
    const denied = await t.api(other, 'DELETE', '/workflows/in-ws');
    expect({ status: denied.status, body: denied.body }).toEqual({
      status: 403,
      body: { error: expect.any(String), code: 'WORKSPACE_DENIED', request_id: denied.headers.get('x-request-id'), workspace_id: 'ws-a' },
    });
    expect(await itemsOf('in-ws')).toEqual(before);
    expect((await t.api(admin, 'DELETE', '/workflows/in-ws')).status).toBe(204);
    expect(await itemsOf('in-ws')).toEqual([]);
  }, 60_000);
});

describe('nothing is dropped', () => {
  it.each([
    ['a few versions', 'unproc', 3],
    ['many versions', 'unproc-many', MANY],
  ] as const)('BatchWriteItem answering every item unprocessed (%s): never a 204 with versions left behind', async (_name, slug, versions) => {
    await workflow(slug, versions);
    // Not by table: a BatchWriteItem names its tables only as keys of RequestItems.
    proxy.inject({ operation: 'BatchWriteItem', fault: 'unprocessed' });
    expect((await t.api(admin, 'DELETE', `/workflows/${slug}`)).status).toBe(204);
    expect(await itemsOf(slug)).toEqual([]);
    proxy.clearFaults();
    await expectReusable(slug);
  }, 60_000);

  it('transactions cancelled by conflicting ones are retried with backoff: 204 and every item gone', async () => {
    await workflow('conflict', MANY);
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'transaction-conflict', times: 3 });
    expect((await t.api(admin, 'DELETE', '/workflows/conflict')).status).toBe(204);
    expect(proxy.injected()).toBeGreaterThanOrEqual(3);
    expect(await itemsOf('conflict')).toEqual([]);
  }, 60_000);

  it('conflicts that never end: a bounded wait, then 500 and a state a retried DELETE finishes', async () => {
    await workflow('conflict-forever', MANY);
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'transaction-conflict' });
    const started = Date.now();
    expectGeneric500(await t.api(admin, 'DELETE', '/workflows/conflict-forever'));
    // Bounded well inside the 29 s a request may last.
    expect(Date.now() - started).toBeLessThan(20_000);
    proxy.clearFaults();
    await expectGoneForReaders('conflict-forever');
    expect((await t.api(admin, 'DELETE', '/workflows/conflict-forever')).status).toBe(204);
    expect(await itemsOf('conflict-forever')).toEqual([]);
  }, 60_000);
});

describe('a lost response (the write happened; the SDK retries it)', () => {
  it.each([
    ['the delete transaction', 'lost-tx', 3, 'TransactWriteItems', 0],
    ['the head’s deleting mark', 'lost-mark', MANY, 'UpdateItem', 0],
    ['the first page’s transaction', 'lost-first', MANY, 'TransactWriteItems', 0],
    ['the last page’s transaction (with the head)', 'lost-last', MANY, 'TransactWriteItems', 1],
  ] as const)('on %s: still 204, and the workflow is fully gone', async (_name, slug, versions, operation, skip) => {
    await workflow(slug, versions);
    proxy.reset();
    proxy.inject({ operation, table, fault: 'lose-response', times: 1, skip });
    expect((await t.api(admin, 'DELETE', `/workflows/${slug}`)).status).toBe(204);
    expect(proxy.injected()).toBe(1);
    expect(await itemsOf(slug)).toEqual([]);
    expectNotFound(await t.api(admin, 'DELETE', `/workflows/${slug}`));
    await expectReusable(slug);
  }, 60_000);
});

describe('a POST racing a DELETE', () => {
  it('the POST that finds the slug half-deleted finishes the deletion and creates; the DELETE never removes the new workflow', async () => {
    await workflow('race', MANY);
    // The DELETE's first page transaction never answers (the SDK gives up on it after 1.5 s and retries):
    // meanwhile the POST finishes the deletion and creates the new workflow.
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table, fault: 'hang', times: 1 });
    const deleting = t.api(admin, 'DELETE', '/workflows/race');
    const deadline = Date.now() + 5000;
    while (proxy.injected() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(proxy.injected()).toBe(1);
    const created = await t.api(admin, 'POST', '/workflows', { slug: 'race', name: 'again', definition: NEW_DEFINITION });
    expect(created.status).toBe(201);
    expect((await deleting).status).toBe(204);
    const read = await t.api(admin, 'GET', '/workflows/race');
    expect(read.body).toMatchObject({ version: 1, name: 'again', definition: NEW_DEFINITION });
    expect(await itemsOf('race')).toEqual([v('race', 1), 'W#race']);
  }, 60_000);

  it('a DELETE and a POST started together: whichever way it goes, never a head without its version or a leftover version', async () => {
    for (let round = 0; round < 5; round++) {
      const slug = `race-${round}`;
      await workflow(slug, round % 2 === 0 ? 3 : MANY);
      const [deleted, created] = await Promise.all([
        t.api(admin, 'DELETE', `/workflows/${slug}`),
        t.api(admin, 'POST', '/workflows', { slug, name: 'again', definition: NEW_DEFINITION }),
      ]);
      const read = await t.api(admin, 'GET', `/workflows/${slug}`);
      const outcome = { deleted: deleted.status, created: created.status, read: read.status, definition: read.body['definition'], items: await itemsOf(slug) };
      // Either the POST came first (409: the workflow still existed), or it came after or during the
      // delete and created version 1, which the DELETE left alone.
      expect([
        { deleted: 204, created: 409, read: 404, definition: undefined, items: [] },
        { deleted: 204, created: 201, read: 200, definition: NEW_DEFINITION, items: [v(slug, 1), `W#${slug}`] },
      ]).toContainEqual(outcome);
    }
  }, 120_000);
});
