/**
 * Issue #14, finding 1: the runner's Lambda Invoke API holds Lambda's request limits as Lambda answers
 * them (413 RequestEntityTooLargeException, nothing invoked): 6 MB for a synchronous invocation, 1 MB
 * for an asynchronous (`Event`) one; a result over 6 MB comes back as the function error
 * `Function.ResponseSizeTooLarge`. The API runs alone on loopback with one known caller; the SDK's own
 * client signs the calls, as the functions do.
 */
import { createServer, type Server } from 'node:http';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { FunctionError } from '../local-runner/functions.js';
import { createLambdaApi } from '../local-runner/lambda-api.js';
import { CALLER, REGION } from './support/lambda-caller.js';


let server: Server;
let lambda: LambdaClient;
let invoked: number;

beforeAll(async () => {
  const api = createLambdaApi({
    invoke: async (_functionId, event) => {
      invoked++;
      if ((event as { big?: boolean }).big) {
        throw new FunctionError('Function.ResponseSizeTooLarge', 'Response payload size exceeded maximum allowed payload size (6291556 bytes).');
      }
      return { ok: true };
    },
    resolve: (name) => (name === 'local-WorkerFunction' ? 'WorkerFunction' : undefined),
    callers: new Map([[CALLER.sessionToken, CALLER]]),
    region: REGION,
  });
  server = createServer(api.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  lambda = new LambdaClient({ endpoint, region: REGION, credentials: CALLER, maxAttempts: 1 });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => (invoked = 0));

/** A JSON payload of exactly `bytes` bytes. */
const payloadOf = (bytes: number) => Buffer.from(JSON.stringify({ pad: 'x'.repeat(bytes - 10) }));

async function invoke(type: 'RequestResponse' | 'Event', payload: Buffer) {
  try {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'local-WorkerFunction', InvocationType: type, Payload: payload }));
    return { status: out.StatusCode, functionError: out.FunctionError, payload: out.Payload ? JSON.parse(Buffer.from(out.Payload).toString()) : undefined };
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, error: e.name, message: e.message };
  }
}

it('sizes the payloads as the tests mean them', () => {
  expect(payloadOf(1000).length).toBe(1000);
});

it('a synchronous invocation over 6,291,456 bytes: 413 RequestEntityTooLargeException, nothing runs; at the limit it runs', async () => {
  expect(await invoke('RequestResponse', payloadOf(6 * 1024 * 1024 + 1))).toEqual({
    status: 413,
    error: 'RequestEntityTooLargeException',
    message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation',
  });
  expect(invoked).toBe(0);
  expect(await invoke('RequestResponse', payloadOf(6 * 1024 * 1024))).toEqual({ status: 200, functionError: undefined, payload: { ok: true } });
  expect(invoked).toBe(1);
});

it('an asynchronous invocation over 1 MB: 413 RequestEntityTooLargeException, nothing is queued; at the limit it is accepted', async () => {
  expect(await invoke('Event', payloadOf(1024 * 1024 + 1))).toEqual({
    status: 413,
    error: 'RequestEntityTooLargeException',
    message: `${1024 * 1024 + 1} byte payload is too large for the Event invocation type (limit 1048576 bytes)`,
  });
  await new Promise((r) => setTimeout(r, 50));
  expect(invoked).toBe(0);
  expect(await invoke('Event', payloadOf(1024 * 1024))).toEqual({ status: 202, functionError: undefined, payload: undefined });
});

it('a result over 6 MB: 200 with the function error Function.ResponseSizeTooLarge', async () => {
  expect(await invoke('RequestResponse', Buffer.from(JSON.stringify({ big: true })))).toEqual({
    status: 200,
    functionError: 'Unhandled',
    payload: { errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' },
  });
});
