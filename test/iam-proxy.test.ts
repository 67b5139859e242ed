/**
 * The DynamoDB proxy that holds the runner's functions to their role policies (local-runner/iam/), here
 * alone in front of the shared DynamoDB Local with the synthesized template's real policies, called by
 * the real SDK as a function would call it (its logical id as the access key id): what the role allows
 * reaches DynamoDB, what it does not fails as on AWS (AccessDeniedException, HTTP 400, AWS's message)
 * and writes nothing; a signature that is not a function's is refused; the runner's own credentials pass.
 */
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand, QueryCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { Agent } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { startDynamoDbIamProxy, type DynamoDbIamProxy } from '../local-runner/iam/dynamodb-proxy.js';
import { IamEnforcer, REFUSALS_KEPT, type IamRefusal } from '../local-runner/iam/enforcer.js';
import type { SigningIdentity } from '../local-runner/sigv4.js';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../local-runner/stack.js';
import { ensureTables } from '../local-runner/tables.js';
import { loadApiModel, type LocalApiModel } from '../local-runner/template.js';
import { testEndpoint, uniquePrefix } from './support/dynamodb.js';
import { TEST_CDK_OUT } from './support/paths.js';

let model: LocalApiModel;
let proxy: DynamoDbIamProxy;
let enforcer: IamEnforcer;
let direct: DynamoDBClient;
const refusals: IamRefusal[] = [];
const logs: string[] = [];
const clients: DynamoDBClient[] = [];

const fnId = (prefix: string) => [...model.functions.keys()].find((id) => id.startsWith(prefix))!;
const table = (prefix: string) => model.tables.find((t) => t.logicalId.startsWith(prefix))!.tableName;
const identity = (functionPrefix: string): SigningIdentity => {
  const name = fnId(functionPrefix);
  return { name, accessKeyId: name, secretAccessKey: `secret-of-${name}`, sessionToken: `token-of-${name}` };
};
const callers = new Map<string, SigningIdentity>();

/** An SDK client signing as `who` (or with these credentials), through the proxy, without retries. */
function clientAs(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): DynamoDBClient {
  const client = new DynamoDBClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials, maxAttempts: 1 });
  clients.push(client);
  return client;
}
const as = (who: SigningIdentity) => clientAs(who);

async function failure(promise: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('the call succeeded');
}

beforeAll(async () => {
  model = loadApiModel(TEST_CDK_OUT, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, tableNamePrefix: uniquePrefix('iam-proxy') });
  direct = new DynamoDBClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  await ensureTables(direct, model.tables);
  for (const prefix of ['AuthorizerFunction', 'KeysFunction', 'ExecutionsFunction']) {
    const who = identity(prefix);
    callers.set(who.sessionToken, who);
  }
  enforcer = new IamEnforcer(model, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, onRefusal: (r) => refusals.push(r) });
  const keysOf = new Map(model.tables.map((t) => [t.tableName, { partitionKey: t.keySchema.find((k) => k.KeyType === 'HASH')!.AttributeName }]));
  proxy = await startDynamoDbIamProxy({
    upstream: testEndpoint(),
    callers,
    runnerCredentials: LOCAL_CREDENTIALS,
    target: { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, table: (name) => keysOf.get(name) },
    enforcer,
    onLog: (line) => logs.push(line),
  });
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  direct?.destroy();
  await proxy?.close();
});

const authorizer = () => identity('AuthorizerFunction');

it('lets through what the role allows: the authorizer reads a key record', async () => {
  const out = await as(authorizer()).send(new GetItemCommand({ TableName: table('DataKeysTable'), Key: { pk: { S: 'H#nothing' } } }));
  expect(out.Item).toBeUndefined();
  expect(out.$metadata.httpStatusCode).toBe(200);
});

it('refuses what it does not allow as AWS does: AccessDeniedException, HTTP 400, the message naming role, action and table; nothing written', async () => {
  const keys = table('DataKeysTable');
  const before = refusals.length;
  const e = await failure(as(authorizer()).send(new PutItemCommand({ TableName: keys, Item: { pk: { S: 'H#planted' } } })));
  expect(e).toEqual({
    name: 'AccessDeniedException',
    status: 400,
    message:
      `User: arn:aws:sts::${LOCAL_ACCOUNT_ID}:assumed-role/${model.functions.get(authorizer().name)!.role}/${authorizer().name} is not authorized to perform: ` +
      `dynamodb:PutItem on resource: arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:table/${keys} because no identity-based policy allows the dynamodb:PutItem action`,
  });
  expect((await direct.send(new GetItemCommand({ TableName: keys, Key: { pk: { S: 'H#planted' } } }))).Item).toBeUndefined();
  expect(refusals.slice(before)).toEqual([expect.objectContaining({ functionId: authorizer().name, action: 'dynamodb:PutItem', resource: expect.stringContaining(keys), effect: 'implicit-deny' })]);
});

it('needs the index ARN for a Query of an index: the keys function may query its keys indexes, the authorizer none', async () => {
  const keys = table('DataKeysTable');
  const query = new QueryCommand({ TableName: keys, IndexName: 'by-account', KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': { S: 'acct_x' } } });
  expect((await as(identity('KeysFunction')).send(query)).Count).toBe(0);
  const e = await failure(as(authorizer()).send(query));
  expect(e.name).toBe('AccessDeniedException');
  expect(e.message).toContain(`dynamodb:Query on resource: arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:table/${keys}/index/by-account because`);
});

it('checks each item of a transaction on its own table: one item not granted refuses the whole, and nothing is written', async () => {
  const keys = table('DataKeysTable');
  const usage = table('DataUsageTable');
  // The keys function may put key records, but only query and update usage counters.
  const e = await failure(
    as(identity('KeysFunction')).send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: keys, Item: { pk: { S: 'K#tx' } } } },
          { Put: { TableName: usage, Item: { key_id: { S: 'k' }, hour: { S: 'h' } } } },
        ],
      }),
    ),
  );
  expect(e.name).toBe('AccessDeniedException');
  expect(e.message).toContain(`dynamodb:PutItem on resource: arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:table/${usage} because`);
  expect((await direct.send(new GetItemCommand({ TableName: keys, Key: { pk: { S: 'K#tx' } } }))).Item).toBeUndefined();
  // A transaction of granted items goes through (here its condition fails, as DynamoDB itself decides).
  await expect(
    as(identity('KeysFunction')).send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: table('DataAccountsTable'),
              Key: { account_id: { S: 'none' } },
              UpdateExpression: 'SET active_keys = :n',
              ConditionExpression: 'attribute_exists(account_id)',
              ExpressionAttributeValues: { ':n': { N: '0' } },
            },
          },
        ],
      }),
    ),
  ).rejects.toMatchObject({ name: 'TransactionCanceledException' });
});

it('evaluates the template’s dynamodb:LeadingKeys condition: the executions function may put only cancellation signals', async () => {
  const executions = table('DataExecutionsTable');
  const fn = as(identity('ExecutionsFunction'));
  await fn.send(new PutItemCommand({ TableName: executions, Item: { account_id: { S: 'acct_1#signal' }, execution_id: { S: 'exe_1' } } }));
  const e = await failure(fn.send(new PutItemCommand({ TableName: executions, Item: { account_id: { S: 'acct_1' }, execution_id: { S: 'exe_forged' } } })));
  expect(e.name).toBe('AccessDeniedException');
  expect(e.message).toContain('dynamodb:PutItem on resource:');
  // Inside a transaction, the same: a signal goes through, and DynamoDB decides the rest (here, a condition).
  await expect(
    fn.send(
      new TransactWriteItemsCommand({
        TransactItems: [{ Put: { TableName: executions, Item: { account_id: { S: 'acct_2#signal' }, execution_id: { S: 'exe_2' } }, ConditionExpression: 'attribute_not_exists(account_id)' } }],
      }),
    ),
  ).resolves.toBeDefined();
  await expect(
    fn.send(new PutItemCommand({ TableName: executions, Item: { account_id: { S: 'acct_1#signal' }, execution_id: { S: 'exe_1' } }, ConditionExpression: 'attribute_not_exists(account_id)' })),
  ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
});

it('refuses a signature that is not a function’s: a wrong secret, an unknown session token', async () => {
  const who = authorizer();
  const get = new GetItemCommand({ TableName: table('DataKeysTable'), Key: { pk: { S: 'H#x' } } });
  const wrongSecret = await failure(clientAs({ ...who, secretAccessKey: 'guessed' }).send(get));
  expect(wrongSecret).toMatchObject({ name: 'InvalidSignatureException', status: 400 });
  const unknownToken = await failure(clientAs({ ...who, sessionToken: 'forged' }).send(get));
  expect(unknownToken).toMatchObject({ name: 'UnrecognizedClientException', status: 400 });
  expect(logs.some((l) => l.includes('signature does not match'))).toBe(true);
  expect(logs.join('\n')).not.toContain(who.secretAccessKey);
  expect(logs.join('\n')).not.toContain(who.sessionToken);
});

it('answers a body DynamoDB could not read as DynamoDB does (SerializationException, HTTP 400), not with a 500', async () => {
  const client = as(identity('KeysFunction'));
  // Replace the serialized body before it is signed: the SDK itself never sends these shapes.
  let raw = '';
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { body: string; headers: Record<string, string> };
      request.body = raw;
      request.headers['content-length'] = String(Buffer.byteLength(raw));
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'rawBody' },
  );
  const get = () => client.send(new GetItemCommand({ TableName: table('DataKeysTable'), Key: { pk: { S: 'H#x' } } }));
  const transact = () => client.send(new TransactWriteItemsCommand({ TransactItems: [] }));
  for (const [body, send] of [
    ['null', get],
    ['[1]', get],
    ['{"TransactItems":"x"}', transact],
  ] as const) {
    raw = body;
    expect(await failure(send())).toMatchObject({ name: 'SerializationException', status: 400 });
  }
});

it('lets the runner’s own credentials (the operator’s) through unchecked', async () => {
  const keys = table('DataKeysTable');
  const before = refusals.length;
  await clientAs(LOCAL_CREDENTIALS).send(new PutItemCommand({ TableName: keys, Item: { pk: { S: 'H#operator' } } }));
  expect((await direct.send(new GetItemCommand({ TableName: keys, Key: { pk: { S: 'H#operator' } } }))).Item).toBeDefined();
  expect(refusals.length).toBe(before);
});

it('counts every refusal for the runner’s summary', () => {
  expect(enforcer.refusals()).toHaveLength(refusals.length);
  expect(enforcer.refusalCount()).toBe(refusals.length);
  expect(enforcer.summary()).toMatch(new RegExp(`^IAM: ${refusals.length} calls refused \\(.*AuthorizerFunction\\w+ dynamodb:PutItem ×1`));
});

it('keeps the newest refusals and counts them all: a caller refused in a loop does not grow the runner’s memory', () => {
  const flooded = new IamEnforcer(model, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID });
  const who = fnId('AuthorizerFunction');
  const none = new Map();
  // Resource names and actions come from requests: each refusal here names a table or an action of its own.
  for (let i = 0; i < REFUSALS_KEPT + 500; i++) flooded.authorize(who, { action: 'dynamodb:PutItem', resource: `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:table/t${i}`, context: none });
  for (let i = 0; i < 150; i++) flooded.authorize(who, { action: `dynamodb:Made${i}Up`, resource: '*', context: none });
  const total = REFUSALS_KEPT + 500 + 150;
  expect(flooded.refusalCount()).toBe(total);
  const kept = flooded.refusals();
  expect(kept).toHaveLength(REFUSALS_KEPT);
  expect(kept.at(-1)).toMatchObject({ action: 'dynamodb:Made149Up' });
  expect(kept[0]).toMatchObject({ resource: expect.stringMatching(new RegExp(`table/t${total - REFUSALS_KEPT}$`)) });
  const summary = flooded.summary();
  expect(summary).toMatch(new RegExp(`^IAM: ${total} calls refused \\(${who} dynamodb:PutItem ×${REFUSALS_KEPT + 500}, `));
  // The first hundred pairs by name, the rest together: the line stays short whatever the callers sent.
  expect(summary).toContain(`${who} dynamodb:Made98Up ×1, other calls ×51)`);
  expect(summary).not.toContain('Made99Up');
});

describe('kept-alive connections (a cut connection fails the usage counter’s one-attempt write with a 500)', () => {
  it('never closes a caller’s idle connection: the next call reuses it after any pause', async () => {
    const agent = new Agent({ keepAlive: true });
    const client = new DynamoDBClient({
      endpoint: proxy.endpoint,
      region: LOCAL_REGION,
      credentials: authorizer(),
      maxAttempts: 1,
      requestHandler: { httpAgent: agent },
    });
    clients.push(client);
    const get = new GetItemCommand({ TableName: table('DataKeysTable'), Key: { pk: { S: 'H#idle' } } });
    await client.send(get);
    const [socket] = Object.values(agent.freeSockets).flat();
    expect(socket).toBeDefined();
    // Past Node's default server keep-alive timeout (5 s, plus the 1 s Node 20 adds), which closed it and
    // raced the next request.
    await new Promise((r) => setTimeout(r, 7_000));
    expect(socket!.destroyed).toBe(false);
    await client.send(get);
    expect(Object.values(agent.freeSockets).flat()).toEqual([socket]);
    agent.destroy();
  }, 15_000);

  it('drops an idle upstream connection after 4 s, before DynamoDB Local closes it (30 s), so none is reused as it closes', async () => {
    // An upstream that answers every request and counts its connections.
    const ANSWER = '{"TableNames":[]}';
    let connections = 0;
    const upstream = createNetServer((socket) => {
      connections++;
      socket.on('data', (chunk: Buffer) => {
        const starts = chunk.toString('latin1').match(/^POST \//gm)?.length ?? 0;
        for (let i = 0; i < starts; i++) socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: ${ANSWER.length}\r\n\r\n${ANSWER}`);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const forwarding = await startDynamoDbIamProxy({
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      callers,
      runnerCredentials: LOCAL_CREDENTIALS,
      target: { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, table: () => undefined },
      enforcer,
    });
    const client = new DynamoDBClient({ endpoint: forwarding.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    try {
      await client.send(new ListTablesCommand({}));
      await client.send(new ListTablesCommand({}));
      // Kept alive between calls close together.
      expect(connections).toBe(1);
      await new Promise((r) => setTimeout(r, 4_600));
      await client.send(new ListTablesCommand({}));
      // Idle past 4 s: dropped by the proxy, a new connection for the next call.
      expect(connections).toBe(2);
    } finally {
      client.destroy();
      await forwarding.close();
      await new Promise((r) => upstream.close(r));
    }
  }, 15_000);
});

it('tells an observer of each call it forwards, checked or the runner’s own, never of a refused one; the observer may change the body and sees the answer', async () => {
  const keys = table('DataKeysTable');
  const seen: string[] = [];
  const answers: string[] = [];
  const observed = await startDynamoDbIamProxy({
    upstream: testEndpoint(),
    callers,
    runnerCredentials: LOCAL_CREDENTIALS,
    target: { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, table: (name) => (name === keys ? { partitionKey: 'pk' } : undefined) },
    enforcer,
    observer: (operation, body) => {
      seen.push(operation);
      if (operation !== 'GetItem') return undefined;
      // As the bench's meter does: ask for the capacity the call consumed, and read it from the answer.
      const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      return { body: Buffer.from(JSON.stringify({ ...parsed, ReturnConsumedCapacity: 'TOTAL' })), onAnswer: (answer) => answers.push(answer.toString('utf8')) };
    },
  });
  const client = (credentials: SigningIdentity | typeof LOCAL_CREDENTIALS) => {
    const c = new DynamoDBClient({ endpoint: observed.endpoint, region: LOCAL_REGION, credentials, maxAttempts: 1 });
    clients.push(c);
    return c;
  };
  try {
    await direct.send(new PutItemCommand({ TableName: keys, Item: { pk: { S: 'H#observed' }, name: { S: 'seen' } } }));
    const out = await client(authorizer()).send(new GetItemCommand({ TableName: keys, Key: { pk: { S: 'H#observed' } }, ConsistentRead: true }));
    // The caller gets the answer to the changed call, whole.
    expect(out.Item?.['name']).toEqual({ S: 'seen' });
    expect(out.ConsumedCapacity?.CapacityUnits).toBe(1);
    expect(JSON.parse(answers[0]!)).toMatchObject({ ConsumedCapacity: { CapacityUnits: 1 }, Item: { name: { S: 'seen' } } });
    await client(LOCAL_CREDENTIALS).send(new ListTablesCommand({}));
    // Refused (the authorizer may not write keys): not forwarded, so not observed.
    expect((await failure(client(authorizer()).send(new PutItemCommand({ TableName: keys, Item: { pk: { S: 'H#nope' } } })))).name).toBe('AccessDeniedException');
    expect(seen).toEqual(['GetItem', 'ListTables']);
  } finally {
    await observed.close();
  }
});

it('cuts the caller’s connection when DynamoDB’s answer is cut short, observed or not, instead of leaving the call hanging', async () => {
  // An upstream that starts an answer and drops the connection halfway through its body.
  const upstream = createNetServer((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 100\r\n\r\n{"TableNames":');
      setTimeout(() => socket.destroy(), 20);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const cut = (observer?: Parameters<typeof startDynamoDbIamProxy>[0]['observer']) =>
    startDynamoDbIamProxy({
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      callers,
      runnerCredentials: LOCAL_CREDENTIALS,
      target: { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, table: () => undefined },
      enforcer,
      ...(observer ? { observer } : {}),
    });
  const proxies = [await cut(), await cut((_operation, body) => ({ body, onAnswer: () => {} }))];
  try {
    for (const p of proxies) {
      // No request timeout of the client's own: without the cut, this call would wait forever.
      const client = new DynamoDBClient({ endpoint: p.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
      clients.push(client);
      const started = Date.now();
      const refused = await failure(client.send(new ListTablesCommand({})));
      expect(refused.name).not.toBe('the call succeeded');
      expect(Date.now() - started).toBeLessThan(3_000);
    }
  } finally {
    for (const p of proxies) await p.close();
    await new Promise((r) => upstream.close(r));
  }
}, 15_000);
