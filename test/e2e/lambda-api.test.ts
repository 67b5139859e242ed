/**
 * Security review #12, finding 11, end to end: the running stack's Lambda Invoke API (what the functions
 * call each other through) refuses what anything else on the machine sends it, here the attack the
 * review describes: the keys function invoked directly with a forged authorizer context, to mint an
 * admin key in someone else's account. Unsigned, signed with a made-up secret, or with a session token
 * the runner never gave: 403, no function runs, nothing is written, and the refusal is in the runner's
 * log. Meanwhile the stack's own async runs (the workflows function invoking the worker through this
 * API, signed with its own credentials) still go through.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ALL_CAPABILITIES } from '../../lambdas/shared/capabilities.js';
import { encodeCaller } from '../../lambdas/shared/caller.js';
import { LOCAL_CREDENTIALS } from '../../local-runner/dynamodb-local.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let admin: string;
let victim: string;
const runnerLog: string[] = [];

beforeAll(async () => {
  t = await startTestStack('e2e-lambda-api', {
    onFunctionLog: (functionId, line) => runnerLog.push(`[${functionId}] ${line}`),
  });
  ({ key: admin } = await t.account('business'));
  ({ accountId: victim } = await t.account('business'));
});
afterAll(() => t?.close());

/** What the gateway would hand the keys function for `POST /keys` by an admin key of the victim's account. */
function forgedCreateKeyEvent() {
  const context = encodeCaller({
    kind: 'key',
    keyId: 'key_forged',
    counterId: 'key_forged',
    accountId: victim,
    tier: 'business',
    environment: 'live',
    name: 'forged',
    prefix: 'knouds_live_xxxx',
    createdAt: new Date().toISOString(),
    expiresAt: null,
    createdBy: null,
    rotatedTo: null,
    capabilities: ALL_CAPABILITIES,
    workspaces: ['*'],
    rateLimit: 1000,
  });
  return {
    resource: '/keys',
    path: '/keys',
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: { 'content-type': ['application/json'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      requestId: 'forged-request',
      httpMethod: 'POST',
      resourcePath: '/keys',
      authorizer: { ...Object.fromEntries(Object.entries(context).map(([k, v]) => [k, String(v)])), principalId: 'key_forged' },
    },
    body: JSON.stringify({ name: 'backdoor', scope: 'admin' }),
    isBase64Encoded: false,
  };
}

const keysFunction = () => `local-${[...t.stack.model.functions.keys()].find((id) => id.startsWith('KeysFunction'))!}`;

async function forgedInvoke(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  const lambda = new LambdaClient({ endpoint: t.stack.lambdaEndpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
  try {
    const out = await lambda.send(new InvokeCommand({ FunctionName: keysFunction(), Payload: Buffer.from(JSON.stringify(forgedCreateKeyEvent())) }));
    return { status: out.StatusCode, payload: Buffer.from(out.Payload ?? []).toString() };
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, errorType: e.name, message: e.message };
  } finally {
    lambda.destroy();
  }
}

describe('the stack’s Lambda API', () => {
  it('refuses a forged invocation unsigned, with a made-up secret, or with an unknown token: 403, nothing runs or changes', async () => {
    const before = await t.snapshot({ withUsage: true });
    const logBefore = runnerLog.length;

    const unsigned = await fetch(`${t.stack.lambdaEndpoint}/2015-03-31/functions/${keysFunction()}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(forgedCreateKeyEvent()),
    });
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get('x-amzn-errortype')).toBe('UnrecognizedClientException');
    expect(await unsigned.json()).toEqual({ message: expect.any(String) });

    // What the functions signed with before: the local access key and its well-known secret.
    expect(await forgedInvoke(LOCAL_CREDENTIALS)).toMatchObject({ status: 403, errorType: 'UnrecognizedClientException' });
    // The right access key id, a secret and a token the runner never gave out.
    expect(
      await forgedInvoke({ accessKeyId: LOCAL_CREDENTIALS.accessKeyId, secretAccessKey: 'guessed', sessionToken: 'guessed-token' }),
    ).toMatchObject({ status: 403, errorType: 'UnrecognizedClientException' });

    // No key was minted in the victim's account, and no table changed (not even a usage counter).
    expect(await t.snapshot({ withUsage: true })).toBe(before);
    // The keys function never ran: its log has nothing new; the runner logged each refusal.
    const added = runnerLog.slice(logBefore);
    expect(added.filter((line) => line.startsWith('[KeysFunction'))).toEqual([]);
    expect(added.filter((line) => line.startsWith('[lambda-api] refused'))).toHaveLength(3);
  });

  it('serves the stack’s own async runs, signed by the workflows function', async () => {
    const GREET = {
      input_schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
      steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.name' } }],
      output: '$.steps.up.output',
    };
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'greet', name: 'greet', definition: GREET })).status).toBe(201);
    expect((await t.api(admin, 'POST', '/workflows/greet/deploy')).status).toBe(200);
    const logBefore = runnerLog.length;
    const run = await t.api(admin, 'POST', '/workflows/greet/run?async=true', { input: { name: 'grace' } });
    expect(run.status).toBe(202);
    const executionId = String(run.body['execution_id']);
    let status = '';
    let reply = run;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline && status !== 'SUCCEEDED' && status !== 'FAILED'; ) {
      await new Promise((r) => setTimeout(r, 100));
      reply = await t.api(admin, 'GET', `/executions/${executionId}`);
      status = String(reply.body['status']);
    }
    expect(reply.body).toMatchObject({ status: 'SUCCEEDED', output: { text: 'GRACE' } });
    expect(runnerLog.slice(logBefore).filter((line) => line.startsWith('[lambda-api] refused'))).toEqual([]);
  });
});
