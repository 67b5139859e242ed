/**
 * The authorizer handler against DynamoDB Local: every refusal of contract §1, the policy and context it
 * returns, and failing closed when DynamoDB fails (an SDK fault injected with a spy: DynamoDB Local
 * cannot be made to throttle).
 */
import { jest } from '@jest/globals';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { generateApiKey } from '../lambdas/shared/api-key.js';
import { decodeCaller } from '../lambdas/shared/caller.js';
import { TABLE_ENV } from '../lambdas/shared/ddb.js';
import { createAccount, createKey, revokeKey, setAccountTier, updateKey } from '../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS, SETTINGS_ENV } from '../lambdas/shared/settings.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';

type Handler = (event: APIGatewayRequestAuthorizerEvent) => Promise<{
  principalId: string;
  policyDocument: { Statement: { Effect: string; Action: string; Resource: string }[] };
  context: Record<string, unknown>;
}>;

const METHOD_ARN = 'arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/keys/verify';
let db: TestDb;
let handler: Handler;

function event(headers: Record<string, string> | null): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/keys/verify',
    path: '/keys/verify',
    httpMethod: 'GET',
    headers,
    multiValueHeaders: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

const withKey = (key: string) => event({ 'x-api-key': key });

beforeAll(async () => {
  db = await createTestDb('authorizer');
  Object.assign(process.env, {
    [TABLE_ENV.keys]: db.tables.keys,
    [SETTINGS_ENV]: JSON.stringify(DEFAULT_SETTINGS),
    AWS_ENDPOINT_URL_DYNAMODB: testEndpoint(),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    LOG_LEVEL: 'warn',
  });
  ({ handler } = (await import('../lambdas/authorizer/index.js')) as unknown as { handler: Handler });
  const deps = db.deps();
  for (const [id, tier] of [
    ['acct_biz', 'business'],
    ['acct_free', 'free'],
    ['acct_pro', 'pro'],
  ] as const) {
    await createAccount(deps, id, tier);
  }
});

afterAll(() => db.close());
afterEach(() => jest.restoreAllMocks());

describe('authorizer: allowed keys', () => {
  it('allows a valid key with a policy for every route of the stage and the key context', async () => {
    const { key, apiKey } = await createKey(db.deps(), 'acct_biz', {
      name: 'deploy',
      preset: 'workflow-deploy',
      workspaces: ['ws-a', 'ws-b'],
    });
    const result = await handler(withKey(apiKey));
    expect(result.principalId).toBe(key.key_id);
    expect(result.policyDocument.Statement).toEqual([
      { Effect: 'Allow', Action: 'execute-api:Invoke', Resource: 'arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*' },
    ]);
    // API Gateway only carries strings, numbers and booleans in a context.
    for (const value of Object.values(result.context)) expect(['string', 'number', 'boolean']).toContain(typeof value);
    const caller = decodeCaller(result.context);
    expect(caller).toMatchObject({
      keyId: key.key_id,
      accountId: 'acct_biz',
      tier: 'business',
      environment: 'live',
      capabilities: ['workflow:read', 'workflow:run'],
      workspaces: ['ws-a', 'ws-b'],
      rateLimit: 1000,
      expiresAt: null,
    });
  });

  it('reads the header case-insensitively and gives test keys the test rate limit', async () => {
    const { apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'test', scope: 'free', environment: 'test' });
    const result = await handler(event({ 'X-API-Key': apiKey }));
    expect(decodeCaller(result.context)).toMatchObject({ environment: 'test', rateLimit: 10 });
  });

  it('cuts capabilities to the tier ceiling, from the next request after a tier change', async () => {
    await createAccount(db.deps(), 'acct_downgrade', 'business');
    const { apiKey } = await createKey(db.deps(), 'acct_downgrade', { name: 'm', capabilities: ['model:run', 'workflow:run'] });
    expect(decodeCaller((await handler(withKey(apiKey))).context).capabilities).toEqual(['model:run', 'workflow:run']);
    await setAccountTier(db.deps(), 'acct_downgrade', 'pro');
    const after = decodeCaller((await handler(withKey(apiKey))).context);
    expect(after.tier).toBe('pro');
    expect(after.capabilities).toEqual(['workflow:run']);
    expect(after.rateLimit).toBe(100);
  });

  it('gives a free account key no capabilities at all', async () => {
    // The free ceiling is empty, so the key can only be made while the account is on a paid tier.
    await createAccount(db.deps(), 'acct_was_pro', 'pro');
    const { apiKey } = await createKey(db.deps(), 'acct_was_pro', { name: 'x', preset: 'read-only' });
    await setAccountTier(db.deps(), 'acct_was_pro', 'free');
    const caller = decodeCaller((await handler(withKey(apiKey))).context);
    expect(caller).toMatchObject({ tier: 'free', capabilities: [], rateLimit: 10 });
  });
});

describe('authorizer: refused keys (Unauthorized, which API Gateway answers with 401)', () => {
  it('refuses a missing or empty header, and an Authorization: Bearer key', async () => {
    const { apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'b', preset: 'read-only' });
    await expect(handler(event(null))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(event({}))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(event({ 'x-api-key': '' }))).rejects.toThrow(/^Unauthorized$/);
    // A key sent as a bearer token: a Deny of the whole API, which the stack answers 401 invalid_token.
    const asBearer = (await handler(event({ Authorization: `Bearer ${apiKey}` }))) as unknown as { policyDocument: { Statement: { Effect: string; Resource: string }[] }; context?: unknown };
    expect(asBearer.policyDocument.Statement).toEqual([expect.objectContaining({ Effect: 'Deny', Resource: expect.stringMatching(/\/\*$/) })]);
    expect(asBearer.context).toBeUndefined();
    // Another scheme sent no bearer token: refused like a missing key.
    await expect(handler(event({ Authorization: 'Basic dXNlcjpwYXNz' }))).rejects.toThrow(/^Unauthorized$/);
  });

  it('refuses a bad checksum without reading DynamoDB', async () => {
    const { apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'c', preset: 'read-only' });
    const send = jest.spyOn(DynamoDBDocumentClient.prototype, 'send');
    const last = apiKey.at(-1) === 'a' ? 'b' : 'a';
    await expect(handler(withKey(apiKey.slice(0, -1) + last))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(withKey('knouds_live_garbage'))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(withKey(apiKey.replace('knouds_', 'other_')))).rejects.toThrow(/^Unauthorized$/);
    expect(send).not.toHaveBeenCalled();
    // …while a well-formed key costs exactly one read.
    await handler(withKey(apiKey));
    expect(send).toHaveBeenCalledTimes(1);
    expect(send.mock.calls[0]![0].constructor.name).toBe('GetCommand');
  });

  it('refuses a well-formed key that was never issued', async () => {
    await expect(handler(withKey(generateApiKey('knouds', 'live')))).rejects.toThrow(/^Unauthorized$/);
  });

  it('refuses a revoked key on the very next request', async () => {
    const { key, apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'r', preset: 'read-only' });
    await expect(handler(withKey(apiKey))).resolves.toBeDefined();
    await revokeKey(db.deps(), 'acct_biz', key.key_id);
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
  });

  it('refuses a disabled key on the very next request, from the record it reads anyway; enabled, the key works again', async () => {
    const { key, apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'd', preset: 'read-only', metadata: { team: 'ops' } });
    const allowed = await handler(withKey(apiKey));
    // The key's metadata travels beside the caller, for GET /keys/verify.
    expect(allowed.context?.['key_metadata']).toBe('{"team":"ops"}');
    await updateKey(db.deps(), 'acct_biz', key.key_id, { enabled: false });
    const send = jest.spyOn(DynamoDBDocumentClient.prototype, 'send');
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
    expect(send).toHaveBeenCalledTimes(1);
    send.mockRestore();
    await updateKey(db.deps(), 'acct_biz', key.key_id, { enabled: true });
    await expect(handler(withKey(apiKey))).resolves.toBeDefined();
  });

  it('refuses an expired key that DynamoDB TTL has not removed yet', async () => {
    const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000);
    const deps = db.deps(DEFAULT_SETTINGS, () => eightDaysAgo);
    const { key, apiKey } = await createKey(deps, 'acct_biz', { name: 'e', preset: 'read-only', expires_in_days: 7 });
    expect(Date.parse(key.expires_at!)).toBeLessThan(Date.now());
    // The record is still stored…
    expect(await deps.keys.findById(key.key_id)).toMatchObject({ key_id: key.key_id });
    // …and the clock, not TTL, refuses it.
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
  });

  it('refuses a key from its expiry instant on', async () => {
    const start = new Date(Date.now() - 7 * 86_400_000 + 1500);
    const { apiKey } = await createKey(db.deps(DEFAULT_SETTINGS, () => start), 'acct_biz', {
      name: 'edge',
      preset: 'read-only',
      expires_in_days: 7,
    });
    await expect(handler(withKey(apiKey))).resolves.toBeDefined();
    await new Promise((r) => setTimeout(r, 1600));
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
  });
});

describe('authorizer: fails closed when DynamoDB fails', () => {
  it.each([
    ['throttling', () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} })],
    ['a network error', () => Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' })],
  ])('never allows on %s: the error propagates (API Gateway: 500), no policy is returned', async (_name, fault) => {
    const { apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'f', preset: 'read-only' });
    jest.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(() => Promise.reject(fault()));
    const outcome = await handler(withKey(apiKey)).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    expect(outcome).not.toHaveProperty('value');
    expect((outcome as { error: Error }).error.message).not.toBe('Unauthorized');
  });
});

describe('authorizer: clocks (skew of a few seconds between the functions that write and the one that reads)', () => {
  afterEach(() => jest.useRealTimers());
  const setClock = (ms: number) => jest.useFakeTimers({ now: ms, doNotFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'queueMicrotask', 'nextTick', 'hrtime', 'performance'] });

  it('decides expiry by its own clock to the millisecond: skew moves the instant, it never extends it', async () => {
    const created = new Date(Date.now() - 7 * 86_400_000 + 3000);
    const { key, apiKey } = await createKey(db.deps(DEFAULT_SETTINGS, () => created), 'acct_biz', { name: 'skew', preset: 'read-only', expires_in_days: 7 });
    const expiry = Date.parse(key.expires_at!);
    setClock(expiry - 1);
    await expect(handler(withKey(apiKey))).resolves.toBeDefined();
    setClock(expiry);
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
    setClock(expiry + 5000);
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
  });

  it('a key written by a clock running 5 s ahead works at once (there is no not-before)', async () => {
    const ahead = new Date(Date.now() + 5000);
    const { apiKey } = await createKey(db.deps(DEFAULT_SETTINGS, () => ahead), 'acct_biz', { name: 'ahead', preset: 'read-only' });
    await expect(handler(withKey(apiKey))).resolves.toBeDefined();
  });

  it('revocation is a fact, not a time: a revoked key stays refused by a clock running behind', async () => {
    const { key, apiKey } = await createKey(db.deps(), 'acct_biz', { name: 'r', preset: 'read-only' });
    await revokeKey(db.deps(), 'acct_biz', key.key_id);
    setClock(Date.now() - 60_000);
    await expect(handler(withKey(apiKey))).rejects.toThrow(/^Unauthorized$/);
  });
});
