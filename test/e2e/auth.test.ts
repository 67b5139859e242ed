/**
 * End to end over HTTP against the local runner, which serves the synthesized template with the same
 * bundles that deploy: GET /health, GET /keys/verify, and every 401 of contract §1 with the §3 body.
 */
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { generateApiKey } from '../../lambdas/shared/api-key.js';
import { createAccount, createKey, revokeKey, setAccountTier } from '../../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS } from '../../lambdas/shared/settings.js';
import { AuditRepository } from '../../lambdas/shared/repositories/audit.js';
import { AccountsRepository } from '../../lambdas/shared/repositories/accounts.js';
import { KeysRepository } from '../../lambdas/shared/repositories/keys.js';
import type { KeyServiceDeps } from '../../lambdas/shared/services/keys.js';
import { DEMO_ACCOUNT_ID, startLocalStack, type LocalStack } from '../../local-runner/stack.js';
import { testEndpoint, uniquePrefix } from '../support/dynamodb.js';
import { call } from '../support/http.js';
import { TEST_CDK_OUT } from '../support/paths.js';

let stack: LocalStack;
let deps: (now?: () => Date) => KeyServiceDeps;
const functionLogs: string[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    cdkOut: TEST_CDK_OUT,
    skipSynth: true,
    dynamodbEndpoint: testEndpoint(),
    tableNamePrefix: uniquePrefix('e2e-auth'),
    onFunctionLog: (_fn, line) => functionLogs.push(line),
  });
  const { tables } = stack.state;
  deps = (now) => ({
    keys: new KeysRepository(stack.doc, { keys: tables.keys, accounts: tables.accounts }),
    accounts: new AccountsRepository(stack.doc, tables.accounts),
    audit: new AuditRepository(stack.doc, tables.audit, DEFAULT_SETTINGS.auditRetentionDays),
    settings: DEFAULT_SETTINGS,
    ...(now ? { now } : {}),
  });
  await createAccount(deps(), 'acct_e2e', 'business');
});

afterAll(() => stack?.close());

const verify = (headers: Record<string, string>) => call(`${stack.apiUrl}/keys/verify`, { headers });

function expectUnauthorized(reply: Awaited<ReturnType<typeof call>>) {
  expect(reply.status).toBe(401);
  expect(reply.headers.get('content-type')).toBe('application/json');
  expect(reply.body).toEqual({ error: expect.stringContaining('x-api-key'), code: 'UNAUTHORIZED', request_id: expect.any(String) });
  // Nothing past the authorizer ran: no rate-limit headers.
  expect(reply.headers.get('x-ratelimit-limit')).toBeNull();
}

describe('GET /v1/health', () => {
  it('answers 200 {"status": "ok"} without a key', async () => {
    const reply = await call(`${stack.apiUrl}/health`);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'ok' });
  });
});

describe('GET /v1/keys/verify', () => {
  it('returns the seeded admin key of acct_demo with its rate limit', async () => {
    expect(stack.adminKey).toMatch(/^knouds_live_[0-9A-Za-z]{38}$/);
    const before = Math.floor(Date.now() / 1000);
    const reply = await verify({ 'x-api-key': stack.adminKey! });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      key_id: expect.stringMatching(/^key_/),
      name: expect.any(String),
      prefix: stack.adminKey!.slice(0, 16),
      environment: 'live',
      capabilities: [
        'audit:read',
        'execution:cancel',
        'execution:read',
        'keys:read',
        'keys:write',
        'model:run',
        'webhook:receive',
        'workflow:read',
        'workflow:run',
        'workflow:write',
      ],
      workspaces: ['*'],
      metadata: {},
      enabled: true,
      rotated_to: null,
      account_id: DEMO_ACCOUNT_ID,
      tier: 'business',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      expires_at: null,
      // Seeded by npm start, as an operator would.
      created_by: { kind: 'operator' },
      last_used: expect.stringMatching(/Z$/),
      rate_limit: { limit: 1000, remaining: expect.any(Number), reset: expect.any(Number) },
    });
    const rateLimit = reply.body['rate_limit'] as { limit: number; remaining: number; reset: number };
    // The fixed one-minute window: reset is the next minute boundary.
    expect(rateLimit.reset % 60).toBe(0);
    expect(rateLimit.reset).toBeGreaterThan(before);
    // At most the boundary after the answer (a loaded machine may take seconds to answer).
    expect(rateLimit.reset).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 60);
    expect(reply.headers.get('x-ratelimit-limit')).toBe('1000');
    expect(reply.headers.get('x-ratelimit-remaining')).toBe(String(rateLimit.remaining));
    expect(reply.headers.get('x-ratelimit-reset')).toBe(String(rateLimit.reset));
    const again = await verify({ 'x-api-key': stack.adminKey! });
    const second = again.body['rate_limit'] as { remaining: number; reset: number };
    // One less left in the same window, or a fresh window if the minute turned in between.
    expect(second.remaining).toBe(second.reset === rateLimit.reset ? rateLimit.remaining - 1 : 999);
  });

  it('returns a created key as created, with expiry, workspaces and the test rate limit', async () => {
    const { key, apiKey } = await createKey(deps(), 'acct_e2e', {
      name: 'CI',
      preset: 'workflow-deploy',
      workspaces: ['ws-1'],
      expires_in_days: 30,
      environment: 'test',
    });
    const reply = await verify({ 'X-Api-Key': apiKey });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      ...key,
      last_used: expect.any(String),
      rate_limit: { limit: 10, remaining: 9, reset: expect.any(Number) },
    });
  });

  it('works for a free-tier key, none of whose capabilities is in force', async () => {
    await createAccount(deps(), 'acct_e2e_free', 'pro');
    const { apiKey } = await createKey(deps(), 'acct_e2e_free', { name: 'x', preset: 'read-only' });
    await setAccountTier(deps(), 'acct_e2e_free', 'free');
    const reply = await verify({ 'x-api-key': apiKey });
    expect(reply.status).toBe(200);
    // The key's object shows what it was given; GET /me what is in force (nothing, on the free tier).
    expect(reply.body).toMatchObject({ tier: 'free', capabilities: ['workflow:read'], rate_limit: { limit: 10 } });
    expect((await call(`${stack.apiUrl}/me`, { headers: { 'x-api-key': apiKey } })).body).toMatchObject({ account: { tier: 'free' }, capabilities: [] });
  });
});

describe('every 401 of contract §1', () => {
  it('no x-api-key header', async () => expectUnauthorized(await verify({})));
  it('an empty x-api-key header', async () => expectUnauthorized(await verify({ 'x-api-key': '' })));
  it('the key in Authorization: Bearer (the message says to use x-api-key)', async () => {
    const reply = await verify({ authorization: `Bearer ${stack.adminKey!}` });
    expectUnauthorized(reply);
    expect(reply.body['error']).toMatch(/x-api-key header, never in Authorization: Bearer/);
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="knouds", error="invalid_token"/);
  });
  it('garbage', async () => expectUnauthorized(await verify({ 'x-api-key': 'hello' })));
  it('a mistyped key (bad checksum)', async () => {
    const key = stack.adminKey!;
    const typo = key.slice(0, 20) + (key[20] === 'x' ? 'y' : 'x') + key.slice(21);
    expectUnauthorized(await verify({ 'x-api-key': typo }));
  });
  it('another prefix or environment', async () => {
    expectUnauthorized(await verify({ 'x-api-key': generateApiKey('acme', 'live') }));
    expectUnauthorized(await verify({ 'x-api-key': stack.adminKey!.replace('_live_', '_test_') }));
  });
  it('a well-formed key that was never issued', async () =>
    expectUnauthorized(await verify({ 'x-api-key': generateApiKey('knouds', 'live') })));
  it('a revoked key, from the next request', async () => {
    const { key, apiKey } = await createKey(deps(), 'acct_e2e', { name: 'r', preset: 'read-only' });
    expect((await verify({ 'x-api-key': apiKey })).status).toBe(200);
    await revokeKey(deps(), 'acct_e2e', key.key_id);
    expectUnauthorized(await verify({ 'x-api-key': apiKey }));
  });
  it('an expired key still stored in DynamoDB', async () => {
    const longAgo = new Date(Date.now() - 31 * 86_400_000);
    const { apiKey } = await createKey(deps(() => longAgo), 'acct_e2e', { name: 'e', preset: 'read-only', expires_in_days: 30 });
    expectUnauthorized(await verify({ 'x-api-key': apiKey }));
  });
});

describe('errors the gateway produces itself', () => {
  it('an unknown route is 404 NOT_FOUND, with or without a key', async () => {
    for (const headers of [{}, { 'x-api-key': stack.adminKey! }] as Record<string, string>[]) {
      const reply = await call(`${stack.apiUrl}/no-such-thing`, { headers });
      expect(reply.status).toBe(404);
      expect(reply.body).toEqual({ error: expect.any(String), code: 'NOT_FOUND', request_id: expect.any(String) });
    }
    // Outside the stage the origin belongs to the console, as behind CloudFront deployed: a page, never an API answer.
    const outside = await call(`${stack.url}/v2/health`);
    expect(outside.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(outside.body['code']).toBeUndefined();
    // A known path with another method: 405 with Allow (test/e2e/errors-uniform.test.ts).
    expect((await call(`${stack.apiUrl}/health`, { method: 'DELETE' })).status).toBe(405);
  });

  it('a body over 10 MB is 413 PAYLOAD_TOO_LARGE', async () => {
    const reply = await call(`${stack.apiUrl}/keys/verify`, {
      method: 'POST',
      headers: { 'x-api-key': stack.adminKey! },
      body: 'x'.repeat(10 * 1024 * 1024 + 1),
    });
    expect(reply.status).toBe(413);
    expect(reply.body).toEqual({ error: expect.any(String), code: 'PAYLOAD_TOO_LARGE', request_id: expect.any(String) });
  });

  it('never logs a plaintext key or its hash', () => {
    const all = functionLogs.join('\n');
    expect(all).toContain('authorizer decision');
    expect(all).not.toContain(stack.adminKey!);
    expect(all).not.toMatch(/[0-9a-f]{64}/);
  });

  // Last: it breaks this file's tables.
  it('fails closed with 500 INTERNAL_ERROR and a request_id when DynamoDB fails under the authorizer', async () => {
    await stack.doc.send(new DeleteTableCommand({ TableName: stack.state.tables.keys }));
    const reply = await verify({ 'x-api-key': stack.adminKey! });
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: expect.any(String) });
    expect(reply.body['request_id']).toBe(reply.headers.get('x-amzn-requestid'));
  });
});
