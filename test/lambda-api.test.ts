/**
 * Security review #12, finding 11: the runner's Lambda Invoke API serves only requests signed (SigV4)
 * with the credentials the runner gave one of its functions, and refuses anything else as AWS would
 * (403, `x-amzn-ErrorType`, `{"message"}`) without invoking anything, logging the refusal without the
 * token or the secret. Here the API runs alone on loopback, with one known caller and a fake invoke.
 */
import { createServer, type Server } from 'node:http';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { createLambdaApi } from '../local-runner/lambda-api.js';
import { loadApiModel } from '../local-runner/template.js';
import { TEST_CDK_OUT } from './support/paths.js';
import { CALLER, REGION } from './support/lambda-caller.js';

const PATH = '/2015-03-31/functions/local-WorkerFunction/invocations';

let server: Server;
let endpoint: string;
let invoked: { functionId: string; event: unknown }[];
let logs: string[];
let clockOffsetMs = 0;

beforeAll(async () => {
  const api = createLambdaApi({
    invoke: async (functionId, event) => {
      invoked.push({ functionId, event });
      return { ok: true, functionId };
    },
    resolve: (name) => (name === 'local-WorkerFunction' ? 'WorkerFunction' : undefined),
    callers: new Map([[CALLER.sessionToken, CALLER]]),
    region: REGION,
    now: () => Date.now() + clockOffsetMs,
    onLog: (line) => logs.push(line),
  });
  server = createServer(api.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  invoked = [];
  logs = [];
  clockOffsetMs = 0;
});

/** The SDK's own client, as the functions use it. */
function client(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  return new LambdaClient({ endpoint, region: REGION, credentials, maxAttempts: 1 });
}

/** A request signed with the SDK's signer, then optionally changed, sent with fetch. */
async function sendSigned(
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  options: { body?: string; path?: string; headers?: Record<string, string>; afterSigning?: (headers: Record<string, string>) => string | void } = {},
) {
  const path = options.path ?? PATH;
  const body = options.body ?? JSON.stringify({ executionId: 'exe_forged' });
  const host = new URL(endpoint).host;
  const signer = new SignatureV4({ credentials, region: REGION, service: 'lambda', sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', path, headers: { host, 'content-type': 'application/json', ...options.headers }, body }),
  );
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers['host'];
  const sentBody = options.afterSigning?.(headers) ?? body;
  const response = await fetch(`${endpoint}${path}`, { method: 'POST', headers, body: sentBody });
  return { status: response.status, errorType: response.headers.get('x-amzn-errortype'), body: (await response.json()) as Record<string, unknown> };
}

async function refusal(send: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  const error = (await send.then(
    () => undefined,
    (e: unknown) => e,
  )) as { name: string; $metadata?: { httpStatusCode?: number } } | undefined;
  expect(error).toBeDefined();
  return { name: error!.name, status: error!.$metadata?.httpStatusCode };
}

const event = { executionId: 'exe_1' };
const payload = () => Buffer.from(JSON.stringify(event));

describe('the Lambda API serves the functions the runner started', () => {
  it('a call signed with a function’s own credentials is invoked, sync and async', async () => {
    const lambda = client(CALLER);
    const sync = await lambda.send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() }));
    expect(sync.StatusCode).toBe(200);
    expect(JSON.parse(Buffer.from(sync.Payload!).toString())).toEqual({ ok: true, functionId: 'WorkerFunction' });
    const async = await lambda.send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', InvocationType: 'Event', Payload: payload() }));
    expect(async.StatusCode).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    expect(invoked).toEqual([
      { functionId: 'WorkerFunction', event },
      { functionId: 'WorkerFunction', event },
    ]);
    expect(logs).toEqual([]);
  });

  it('within AWS’s 5 minutes of clock skew either way', async () => {
    for (const offset of [-4 * 60_000, 4 * 60_000]) {
      clockOffsetMs = offset;
      await client(CALLER).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() }));
    }
    expect(invoked).toHaveLength(2);
  });
});

/** Nothing was invoked, and each refusal is in the runner's log, which never holds the caller's token or secret. */
function expectNothingInvokedAndRefusalsLogged(count: number) {
  expect(invoked).toEqual([]);
  expect(logs).toHaveLength(count);
  for (const line of logs) {
    expect(line).toMatch(/^refused POST \/2015-03-31\/functions\/[^ ]+\/invocations from 127\.0\.0\.1:\d+: /);
    expect(line).not.toContain(CALLER.sessionToken);
    expect(line).not.toContain(CALLER.secretAccessKey);
  }
}

describe('the Lambda API refuses everything else, invoking nothing', () => {

  it('an unsigned invocation (forged event, any caller on the machine)', async () => {
    const response = await fetch(`${endpoint}${PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'RequestResponse' },
      body: JSON.stringify({ requestContext: { authorizer: { account_id: 'acct_victim' } } }),
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnrecognizedClientException');
    expect(await response.json()).toEqual({ message: 'The security token included in the request is invalid.' });
    expect(logs[0]).toMatch(/no signature/);
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('a signature made with the wrong secret key (the function’s own token)', async () => {
    const forged = { ...CALLER, secretAccessKey: 'local' };
    expect(await refusal(client(forged).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() })))).toEqual({
      name: 'InvalidSignatureException',
      status: 403,
    });
    expect(logs[0]).toMatch(/signature does not match/);
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('an unknown session token, or none', async () => {
    const unknown = { ...CALLER, sessionToken: 'a-token-the-runner-never-gave' };
    expect(await refusal(client(unknown).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() })))).toEqual({
      name: 'UnrecognizedClientException',
      status: 403,
    });
    // What the runner's functions signed with before: the shared local credentials, no token.
    const shared = { accessKeyId: 'local', secretAccessKey: 'local' };
    expect(await refusal(client(shared).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() })))).toEqual({
      name: 'UnrecognizedClientException',
      status: 403,
    });
    expect(logs).toEqual([expect.stringMatching(/unknown session token/), expect.stringMatching(/no session token/)]);
    expectNothingInvokedAndRefusalsLogged(2);
  });

  it('another access key id with a function’s token', async () => {
    const reply = await sendSigned({ ...CALLER, accessKeyId: 'AKIDOTHER' });
    expect(reply).toEqual({ status: 403, errorType: 'UnrecognizedClientException', body: { message: expect.any(String) } });
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('a signed request whose body was changed afterwards', async () => {
    const reply = await sendSigned(CALLER, { afterSigning: () => JSON.stringify({ executionId: 'exe_other' }) });
    expect(reply).toEqual({ status: 403, errorType: 'InvalidSignatureException', body: { message: expect.stringContaining('does not match') } });
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('a signed request with an unsigned invocation type added', async () => {
    const reply = await sendSigned(CALLER, {
      afterSigning: (headers) => {
        headers['x-amz-invocation-type'] = 'Event';
      },
    });
    expect(reply).toEqual({ status: 403, errorType: 'InvalidSignatureException', body: { message: expect.any(String) } });
    expect(logs[0]).toMatch(/x-amz-invocation-type is not signed/);
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('a payload hash header that is not the body’s', async () => {
    const wrongHash = '0'.repeat(64);
    const reply = await sendSigned(CALLER, { headers: { 'x-amz-content-sha256': wrongHash } });
    expect(reply).toEqual({ status: 403, errorType: 'InvalidSignatureException', body: { message: expect.stringContaining('x-amz-content-sha256') } });
    expectNothingInvokedAndRefusalsLogged(1);
  });

  it('a signature older or newer than 5 minutes (a replay, or a clock far off)', async () => {
    clockOffsetMs = 6 * 60_000;
    expect(await refusal(client(CALLER).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() })))).toEqual({
      name: 'InvalidSignatureException',
      status: 403,
    });
    clockOffsetMs = -6 * 60_000;
    expect(await refusal(client(CALLER).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() })))).toEqual({
      name: 'InvalidSignatureException',
      status: 403,
    });
    expect(logs).toEqual([expect.stringMatching(/signature expired/), expect.stringMatching(/signature not yet current/)]);
    expectNothingInvokedAndRefusalsLogged(2);
  });

  it('an unknown function or path is refused the same way when unsigned (nothing to probe)', async () => {
    const response = await fetch(`${endpoint}/2015-03-31/functions/local-Nope/invocations`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnrecognizedClientException');
    expectNothingInvokedAndRefusalsLogged(1);
  });
});

it('answers a function name that is not valid percent-encoding with a 400, and keeps serving', async () => {
  const bad = await sendSigned(CALLER, { path: '/2015-03-31/functions/local-%E0%A4%A/invocations' });
  expect(bad).toMatchObject({ status: 400, errorType: 'ValidationException' });
  expect(invoked).toEqual([]);
  const out = await client(CALLER).send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', Payload: payload() }));
  expect(out.StatusCode).toBe(200);
});

describe('settled(): when the asynchronous invocations in flight have ended', () => {
  it('waits for those started meanwhile and for Lambda’s retries, and rejects past its deadline', async () => {
    const ended: string[] = [];
    let attempts = 0;
    let hang: (() => void) | undefined;
    const api = createLambdaApi({
      invoke: async (functionId) => {
        if (functionId === 'Hang') return new Promise<void>((resolve) => (hang = resolve));
        await new Promise((r) => setTimeout(r, 50));
        // The first run starts another, as the worker hands work on.
        if (functionId === 'First') void api.invokeAsync('Second', 'second', {});
        // The flaky one fails once, then Lambda's retry succeeds.
        if (functionId === 'Flaky' && attempts++ === 0) throw new Error('once');
        ended.push(functionId);
        return undefined;
      },
      resolve: () => undefined,
      callers: new Map(),
      region: REGION,
      retryDelaysMs: [100],
    });
    void api.invokeAsync('First', 'first', {});
    void api.invokeAsync('Flaky', 'flaky', {});
    await api.settled();
    expect(ended.sort()).toEqual(['First', 'Flaky', 'Second']);
    expect(attempts).toBe(2);

    void api.invokeAsync('Hang', 'hang', {});
    await expect(api.settled(200)).rejects.toThrow('1 asynchronous invocations still in flight after 200 ms');
    hang!();
    await api.settled();
  });
});

describe('asynchronous retries', () => {
  it('a failed invocation is retried as often as the function’s EventInvokeConfig says (Lambda’s 2 when it has none)', async () => {
    const attempts = new Map<string, number>();
    const logged: string[] = [];
    const retries: Record<string, number> = { Never: 0, Once: 1 };
    const api = createLambdaApi({
      invoke: (functionId) => {
        attempts.set(functionId, (attempts.get(functionId) ?? 0) + 1);
        return Promise.reject(new Error('always'));
      },
      resolve: () => undefined,
      callers: new Map(),
      region: REGION,
      retryDelaysMs: [10, 10],
      asyncRetryAttempts: (functionId) => retries[functionId],
      onLog: (line) => logged.push(line),
    });
    await Promise.all(['Never', 'Once', 'Default'].map((id) => api.invokeAsync(id, id, {})));
    expect(Object.fromEntries(attempts)).toEqual({ Never: 1, Once: 2, Default: 3 });
    expect(logged.filter((l) => l.includes('given up')).sort()).toEqual([
      'async invocation of Default failed 3 time(s); given up (to its on-failure destination, if it has one): always',
      'async invocation of Never failed 1 time(s); given up (to its on-failure destination, if it has one): always',
      'async invocation of Once failed 2 time(s); given up (to its on-failure destination, if it has one): always',
    ]);
  });

  it('reads each function’s retries from the template: housekeeping and the webhook sender never, the worker twice', () => {
    const model = loadApiModel(TEST_CDK_OUT, { region: REGION, accountId: '000000000000', tableNamePrefix: 'retries' });
    const retriesOf = (prefix: string) => [...model.functions.values()].find((f) => f.logicalId.startsWith(prefix))!.asyncRetryAttempts;
    expect([retriesOf('HousekeepingFunction'), retriesOf('WebhookSenderFunction'), retriesOf('WorkerFunction'), retriesOf('KeysFunction')]).toEqual([0, 0, 2, undefined]);
  });
});
