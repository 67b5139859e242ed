/**
 * The errors the gateway produces itself, through the local stack (issue #14, finding 2): each keeps
 * its own status and carries the contract body with the request id. The runner renders the template's
 * gateway responses; with only the template's DEFAULT_4XX and DEFAULT_5XX (which set no status code,
 * as API Gateway then keeps the error's own status), every 4xx the runner produces still answers its
 * own status with the generic REQUEST_REFUSED, never 400 VALIDATION_ERROR.
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { FunctionError } from '../../local-runner/functions.js';
import { createGateway, MAX_BODY_BYTES, type Invoke } from '../../local-runner/gateway.js';
import type { LocalApiModel } from '../../local-runner/template.js';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../../local-runner/stack.js';
import { call, type Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack('e2e-gateway-responses');
});
afterAll(() => t?.close());

function expectGatewayError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body['code'] }).toEqual({ status, code });
  expect(reply.headers.get('content-type')).toBe('application/json');
  expect(reply.body).toEqual(expect.objectContaining({ error: expect.any(String), code, request_id: reply.headers.get('x-amzn-requestid') }));
  expect(reply.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
}

describe('through the local stack, with the template’s responses', () => {
  it('an unknown route: 404 NOT_FOUND with the request id', async () => {
    expectGatewayError(await t.api(undefined, 'GET', '/no-such-route'), 404, 'NOT_FOUND');
  });

  it('no key: 401 UNAUTHORIZED with the request id', async () => {
    expectGatewayError(await t.api(undefined, 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
  });

  it('a body over 10 MB: 413 PAYLOAD_TOO_LARGE with the request id', async () => {
    expectGatewayError(await t.api(undefined, 'POST', '/keys', 'x'.repeat(MAX_BODY_BYTES + 1)), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a Content-Type the gateway’s own answers have no template for: 415 UNSUPPORTED_MEDIA_TYPE (PassthroughBehavior NEVER)', async () => {
    // GET /health and the 405 of a method a path does not have are mocks with a JSON request template only.
    expectGatewayError(await t.api(undefined, 'GET', '/health', undefined, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectGatewayError(await t.api(undefined, 'PUT', '/health', undefined, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    // JSON (its parameters aside, any case) or no Content-Type at all selects the template.
    for (const type of [undefined, 'application/json', 'Application/JSON; charset=utf-8']) {
      const reply = await t.api(undefined, 'GET', '/health', undefined, type === undefined ? {} : { 'content-type': type });
      expect({ type, status: reply.status, body: reply.body }).toEqual({ type, status: 200, body: { status: 'ok' } });
    }
    expect((await t.api(undefined, 'PUT', '/health', undefined, { 'content-type': 'application/json' })).status).toBe(405);
    // A function's route is a proxy integration: the function decides (here, the key check first).
    expect((await t.api(undefined, 'GET', '/keys/verify', undefined, { 'content-type': 'text/plain' })).status).toBe(401);
  });

  it('a request the local server cannot parse (a raw `…` pasted into the URL): 400 VALIDATION_ERROR as JSON with x-request-id, not a bare 400', async () => {
    const { port, hostname } = new URL(t.stack.apiUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname === 'localhost' ? '127.0.0.1' : hostname);
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(Buffer.concat([Buffer.from('GET /v1/audit-events?target_id=key_8Jd2'), Buffer.from('…', 'utf8'), Buffer.from(' HTTP/1.1\r\nhost: localhost\r\n\r\n')]));
    });
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(head).toMatch(/^content-type: application\/json$/im);
    const requestId = /^x-request-id: ([0-9a-f-]{36})$/im.exec(head)?.[1];
    expect(requestId).toBeDefined();
    expect(JSON.parse(body)).toEqual({ error: expect.stringContaining('percent-encoded'), code: 'VALIDATION_ERROR', request_id: requestId, details: [] });
  });
});

describe('a gateway error without a response of its own keeps its status (DEFAULT_4XX / DEFAULT_5XX)', () => {
  let server: Server;
  let base: string;
  /** What the authorizer, and then the integration, answer in the next request. */
  let authorizerAnswer: (event: unknown) => unknown;

  beforeAll(async () => {
    const model = t.stack.model;
    const defaultsOnly: LocalApiModel = {
      ...model,
      gatewayResponses: new Map([...model.gatewayResponses].filter(([type]) => type === 'DEFAULT_4XX' || type === 'DEFAULT_5XX')),
    };
    if (defaultsOnly.gatewayResponses.size !== 2) throw new Error('the template has no DEFAULT_4XX and DEFAULT_5XX responses');
    const authorizerIds = new Set([...model.authorizers.values()].map((a) => a.functionId));
    const invoke: Invoke = async (functionId, event) => {
      if (authorizerIds.has(functionId)) return authorizerAnswer(event);
      throw new Error('the integration crashed');
    };
    server = createServer(createGateway({ model: defaultsOnly, invoke, region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${model.stageName}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const policy = (effect: 'Allow' | 'Deny') => (event: unknown) => ({
    principalId: 'p',
    policyDocument: { Version: '2012-10-17', Statement: [{ Effect: effect, Action: 'execute-api:Invoke', Resource: (event as { methodArn: string }).methodArn }] },
    context: {},
  });

  it.each([
    // API Gateway's own status for an unknown route is 403 (the template's own response makes it 404).
    ['MISSING_AUTHENTICATION_TOKEN', 403, () => call(`${base}/no-such-route`)],
    [
      'UNAUTHORIZED',
      401,
      () => {
        // The authorizer's refusal, as Lambda reports it (it has no identity source: it tells a missing
        // credential itself).
        authorizerAnswer = () => {
          throw new FunctionError('Error', 'Unauthorized');
        };
        return call(`${base}/keys/verify`);
      },
    ],
    ['REQUEST_TOO_LARGE', 413, () => call(`${base}/keys`, { method: 'POST', body: 'x'.repeat(MAX_BODY_BYTES + 1) })],
    [
      'ACCESS_DENIED',
      403,
      () => {
        authorizerAnswer = policy('Deny');
        return call(`${base}/keys/verify`, { headers: { 'x-api-key': 'k' } });
      },
    ],
  ])('%s → %i REQUEST_REFUSED (not 400 VALIDATION_ERROR)', async (type, status, request) => {
    const reply = await request();
    expectGatewayError(reply, status, 'REQUEST_REFUSED');
    expect(reply.headers.get('x-amzn-errortype')).toBe(type);
    expect(reply.body).not.toHaveProperty('details');
  });

  it.each([
    [
      'AUTHORIZER_FAILURE',
      500,
      () => {
        authorizerAnswer = () => {
          throw new Error('boom');
        };
        return call(`${base}/keys/verify`, { headers: { 'x-api-key': 'k' } });
      },
    ],
    // A crashed function: API Gateway's 502, kept.
    [
      'DEFAULT_5XX',
      502,
      () => {
        authorizerAnswer = policy('Allow');
        return call(`${base}/keys/verify`, { headers: { 'x-api-key': 'k' } });
      },
    ],
  ])('%s → %i INTERNAL_ERROR', async (type, status, request) => {
    const reply = await request();
    expectGatewayError(reply, status, 'INTERNAL_ERROR');
    expect(reply.headers.get('x-amzn-errortype')).toBe(type);
  });
});
