/**
 * Issue #14, finding 1, end to end: Lambda's payload limits as AWS answers them, behind the gateway.
 * - A proxy event over Lambda's 6 MB request limit (the whole event JSON: a binary body counts
 *   base64-encoded) never reaches the function: API Gateway answers its REQUEST_TOO_LARGE response (413),
 *   as for its own 10 MB limit. Just under, the function runs and answers for itself.
 * - A function result over Lambda's 6 MB response limit fails the invocation
 *   (`Function.ResponseSizeTooLarge`), and the gateway answers the template's INTEGRATION_FAILURE
 *   response. That part runs a stand-in function (a real worker thread) behind a gateway built from the
 *   synthesized template, since no route of the API may return 6 MB.
 * - Contract §4: a list page holds at most 1 MB (fewer items, with a `next_token`), and following the
 *   tokens returns every item exactly once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FunctionError, FunctionPool, MAX_RESPONSE_BYTES, MAX_SYNC_REQUEST_BYTES } from '../../local-runner/functions.js';
import { createGateway } from '../../local-runner/gateway.js';
import { MAX_PAGE_BYTES } from '../../lambdas/shared/ddb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let admin: string;

beforeAll(async () => {
  t = await startTestStack('e2e-payload-limits');
  ({ key: admin } = await t.account('business'));
});
afterAll(() => t?.close());

async function post(path: string, body: Buffer | string, contentType: string) {
  const response = await fetch(`${t.stack.apiUrl}${path}`, { method: 'POST', headers: { 'x-api-key': admin, 'content-type': contentType }, body });
  const text = await response.text();
  return { status: response.status, errorType: response.headers.get('x-amzn-errortype'), body: JSON.parse(text) as Record<string, unknown> };
}

describe("a request over Lambda's 6 MB request limit", () => {
  it('a 7 MB body: 413 from the gateway (REQUEST_TOO_LARGE), the function never runs', async () => {
    const reply = await post('/workflows', JSON.stringify({ slug: 'big', name: 'x'.repeat(7 * 1024 * 1024) }), 'application/json');
    expect(reply).toEqual({ status: 413, errorType: 'REQUEST_TOO_LARGE', body: expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }) });
  });

  it('a body whose event is just under 6 MB reaches the function (which refuses it itself)', async () => {
    const reply = await post('/workflows', JSON.stringify({ name: 'x'.repeat(MAX_SYNC_REQUEST_BYTES - 64 * 1024) }), 'application/json');
    expect(reply).toEqual({ status: 413, errorType: null, body: expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }) });
  });

  it('counts the whole event: a 4.8 MB binary body is 6.4 MB base64-encoded, a 4.4 MB one 5.9 MB', async () => {
    const binary = (bytes: number) => Buffer.concat([Buffer.from([0xff, 0xfe]), randomBytes(bytes - 2)]);
    const over = await post('/workflows', binary(4.8 * 1024 * 1024), 'application/octet-stream');
    expect({ status: over.status, errorType: over.errorType }).toEqual({ status: 413, errorType: 'REQUEST_TOO_LARGE' });
    const under = await post('/workflows', binary(4.4 * 1024 * 1024), 'application/octet-stream');
    expect(under.errorType).toBeNull();
    expect(under.status).toBeLessThan(500);
  });
});

describe("a result over Lambda's 6 MB response limit", () => {
  let dir: string;
  let pool: FunctionPool;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'knouds-big-result-'));
    const modulePath = join(dir, 'index.mjs');
    // A handler that answers a body of the size the request asks for.
    writeFileSync(modulePath, "export const handler = async (event) => ({ statusCode: 200, body: 'x'.repeat(Number(event.headers['x-size'])) });\n");
    pool = new FunctionPool(
      { logicalId: 'BigResult', assetDir: dir, modulePath, exportName: 'handler', environment: {}, timeoutSeconds: 10, memoryMb: 512 },
      {},
      undefined,
      2,
    );
    const model = t.stack.model;
    const gateway = createGateway({
      model: { ...model, methods: model.methods.map((m) => ({ ...m, authorizationType: 'NONE' })) },
      invoke: (_functionId, event) => pool.invoke(event),
      region: 'us-east-1',
      accountId: '000000000000',
    });
    server = createServer(gateway);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/${model.stageName}/executions`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails the invocation as Lambda does: Function.ResponseSizeTooLarge', async () => {
    const error = await pool.invoke({ headers: { 'x-size': String(MAX_RESPONSE_BYTES) } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FunctionError);
    expect(error).toMatchObject({
      errorName: 'Function.ResponseSizeTooLarge',
      message: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).',
    });
  });

  it("the gateway answers the template's INTEGRATION_FAILURE response; a result just under goes through", async () => {
    const over = await fetch(url, { headers: { 'x-size': String(6 * 1024 * 1024 + 200) } });
    const failure = t.stack.model.gatewayResponses.get('INTEGRATION_FAILURE');
    expect({ status: over.status, errorType: over.headers.get('x-amzn-errortype') }).toEqual({
      status: Number(failure?.statusCode ?? 502),
      errorType: 'INTEGRATION_FAILURE',
    });
    expect(await over.json()).toMatchObject({ code: 'INTERNAL_ERROR' });

    const under = await fetch(url, { headers: { 'x-size': String(6 * 1024 * 1024 - 1024) } });
    expect(under.status).toBe(200);
    expect((await under.text()).length).toBe(6 * 1024 * 1024 - 1024);
  });
});

describe('list pages hold at most 1 MB', () => {
  it('12 executions of ~200 KB: GET /executions?limit=100 pages under 1 MB with a next_token; the tokens return each once', async () => {
    const { key } = await t.account('business');
    const echo = { input_schema: {}, steps: [{ id: 'echo', model: 'echo', input: '$.input' }], output: '$.steps.echo.output' };
    expect((await t.api(key, 'POST', '/workflows', { slug: 'echo', name: 'echo', definition: echo })).status).toBe(201);
    expect((await t.api(key, 'POST', '/workflows/echo/deploy')).status).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const run = await t.api(key, 'POST', '/workflows/echo/run', { input: { n: i, blob: String(i % 10).repeat(100 * 1024) } });
      expect({ status: run.status, execution: run.body['status'] }).toEqual({ status: 200, execution: 'SUCCEEDED' });
      ids.push(String(run.body['execution_id']));
    }

    const seen: string[] = [];
    const sizes: number[] = [];
    let token: string | null = null;
    do {
      const reply = await t.api(key, 'GET', `/executions?limit=100${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
      expect(reply.status).toBe(200);
      sizes.push(Buffer.byteLength(reply.text));
      const items = reply.body['items'] as { execution_id: string; input: { blob: string }; output: { blob: string } }[];
      expect(items.length).toBeGreaterThan(0);
      // Whole items: nothing is cut short.
      for (const item of items) expect([item.input.blob.length, item.output.blob.length]).toEqual([100 * 1024, 100 * 1024]);
      seen.push(...items.map((i) => i.execution_id));
      token = reply.body['next_token'] as string | null;
    } while (token && sizes.length < 20);

    expect(sizes.length).toBeGreaterThan(1);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(MAX_PAGE_BYTES);
    expect(seen).toEqual([...ids].reverse());
  }, 120_000);
});
