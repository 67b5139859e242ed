/**
 * Errors, everywhere the same (issue #21 item 2), through the local stack (its gateway renders the
 * template's gateway responses and mocks; test/errors-template.test.ts pins those for AWS):
 * - every answer carries `x-request-id`, and every error body the same id as `request_id`, whoever
 *   answers (a function, the gateway, a mock);
 * - a known path with another method: 405 METHOD_NOT_ALLOWED with `Allow`;
 * - 401s carry `WWW-Authenticate`, and speak of `Authorization: Bearer` only when one was sent;
 * - KEY_LIMIT_REACHED carries `limit` and `active` and says to revoke one;
 * - an execution that failed carries `failure: {code, step_id}` beside `error`.
 */
import { call, expectError, type Reply } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let issuer: TestIssuer;
let admin: string;

beforeAll(async () => {
  issuer = await startTestIssuer();
  t = await startTestStack('e2e-errors-uniform', { identity: issuer.config });
  admin = (await t.account('business')).key;
});
afterAll(async () => {
  await t?.close();
  await issuer?.close();
});

/** The answer's x-request-id; an error body repeats it as request_id. */
function requestIdOf(reply: Reply): string {
  const id = reply.headers.get('x-request-id');
  expect({ status: reply.status, id }).toEqual({ status: reply.status, id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  // The same id API Gateway gives in x-amzn-RequestId.
  expect(reply.headers.get('x-amzn-requestid')).toBe(id);
  if (reply.status >= 400) expect({ status: reply.status, request_id: reply.body['request_id'] }).toEqual({ status: reply.status, request_id: id });
  return id!;
}

describe('x-request-id on every answer, request_id in every error body', () => {
  it('from the functions, the gateway and its mocks, successes and errors alike, a new id each time', async () => {
    const reader = (await t.account('business', { name: 'reader', preset: 'read-only' })).key;
    const draft = { input_schema: {}, steps: [{ id: 's', model: 'echo', input: '$.input' }], output: '$.steps.s.output' };
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'draft-only', name: 'Draft', definition: draft })).status).toBe(201);
    const replies: [string, Reply, number][] = [
      ['a mock: GET /health', await t.api(undefined, 'GET', '/health'), 200],
      ['GET /openapi.json', await t.api(undefined, 'GET', '/openapi.json'), 200],
      ['a function’s success', await t.api(admin, 'GET', '/keys/verify'), 200],
      ['a function’s 400', await t.api(admin, 'POST', '/keys', { name: '' }), 400],
      ['a function’s 403', await t.api(reader, 'POST', '/keys', { name: 'x', preset: 'read-only' }), 403],
      ['a function’s 404', await t.api(admin, 'GET', '/keys/key_missing'), 404],
      ['a function’s 400 for a body that is no JSON', await t.api(admin, 'POST', '/models/echo/run', '{"input": 1'), 400],
      ['a function’s 409', await t.api(admin, 'POST', '/workflows/draft-only/run', { input: 1 }), 409],
      ['the gateway’s 401', await t.api(undefined, 'GET', '/keys'), 401],
      ['the gateway’s 401 for a refused bearer token', await call(`${t.stack.apiUrl}/keys`, { headers: { authorization: 'Bearer not-a-token' } }), 401],
      ['the gateway’s 404', await t.api(admin, 'GET', '/no-such-route'), 404],
      ['a mock’s 405', await t.api(admin, 'DELETE', '/keys'), 405],
      ['GET /openapi.json’s 400', await t.api(undefined, 'GET', '/openapi.json?format=yaml'), 400],
    ];
    const ids = replies.map(([what, reply, status]) => {
      expect({ what, status: reply.status }).toEqual({ what, status });
      return requestIdOf(reply);
    });
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('405 METHOD_NOT_ALLOWED with Allow', () => {
  const byPath = () => {
    const out = new Map<string, string[]>();
    for (const m of t.stack.model.methods.filter((x) => x.httpMethod !== 'ANY')) out.set(m.resourcePath, [...(out.get(m.resourcePath) ?? []), m.httpMethod]);
    return out;
  };

  it('on every path of the template, for a method it does not have, with or without credentials', async () => {
    const paths = byPath();
    expect(paths.size).toBeGreaterThanOrEqual(17);
    for (const [resource, own] of paths) {
      const path = resource.replace(/\{[^}]+\}/g, 'x1');
      const other = ['PUT', 'PATCH', 'DELETE', 'POST', 'GET'].find((m) => !own.includes(m))!;
      for (const key of [undefined, admin]) {
        const reply = await t.api(key, other, path);
        expectError(reply, 405, 'METHOD_NOT_ALLOWED');
        expect({ path: resource, method: other, allow: reply.headers.get('allow')?.split(', ').sort() }).toEqual({ path: resource, method: other, allow: [...own].sort() });
        expect(reply.body['error']).toContain(other);
        requestIdOf(reply);
      }
    }
  });

  it('an id longer than any issued is 404 on every route that takes one, not a 500 from DynamoDB', async () => {
    const doc = (await t.api(undefined, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const templated = Object.entries(doc.paths).filter(([path]) => path.includes('{'));
    expect(templated.length).toBeGreaterThan(10);
    // Over DynamoDB's key limits (2,048 bytes for a partition key), in ASCII and in two-byte characters.
    for (const long of ['k'.repeat(2047), encodeURIComponent('é'.repeat(1100))]) {
      for (const [path, operations] of templated) {
        for (const method of Object.keys(operations).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))) {
          const reply = await t.api(admin, method.toUpperCase(), path.replace(/\{[^}]+\}/g, long), method === 'get' || method === 'delete' ? undefined : {});
          expect({ route: `${method} ${path}`, status: reply.status, code: reply.body['code'] }).toEqual({ route: `${method} ${path}`, status: 404, code: 'NOT_FOUND' });
          requestIdOf(reply);
        }
      }
    }
  });

  it('an unknown path is still 404, and a known method still reaches its route', async () => {
    expectError(await t.api(admin, 'PATCH', '/keys/x1/nothing'), 404, 'NOT_FOUND');
    expect((await t.api(admin, 'GET', '/keys')).status).toBe(200);
    // OPTIONS and HEAD are methods like others: the path does not have them.
    expect((await t.api(undefined, 'OPTIONS', '/keys')).headers.get('allow')).toBe('GET, POST');
  });
});

describe('401: WWW-Authenticate, and Authorization: Bearer named only when one was sent', () => {
  const keyOrNone = 'ApiKey realm="knouds", Bearer realm="knouds"';

  it.each([
    ['no credentials', {}],
    ['an empty x-api-key', { 'x-api-key': '' }],
    ['a malformed key', { 'x-api-key': 'knouds_live_nope' }],
    ['another scheme in Authorization', { authorization: 'Basic dXNlcjpwYXNz' }],
  ])('%s: both schemes offered, a message about x-api-key alone', async (_what, headers: Record<string, string>) => {
    const reply = await call(`${t.stack.apiUrl}/keys/verify`, { headers });
    expectError(reply, 401, 'UNAUTHORIZED');
    expect(reply.headers.get('www-authenticate')).toBe(keyOrNone);
    expect(reply.body['error']).toMatch(/x-api-key/);
    expect(reply.body['error']).not.toMatch(/Bearer/i);
    requestIdOf(reply);
  });

  it('a revoked key: the same', async () => {
    const { key, keyId } = await t.account('business');
    expect((await t.api(key, 'DELETE', `/keys/${keyId}`)).status).toBe(204);
    const reply = await t.api(key, 'GET', '/keys/verify');
    expectError(reply, 401, 'UNAUTHORIZED');
    expect(reply.headers.get('www-authenticate')).toBe(keyOrNone);
  });

  it.each([
    ['a token that is no JWT', async () => 'not-a-token'],
    ['an expired token', async () => issuer.sign('someone', { exp: Math.floor(Date.now() / 1000) - 3600 })],
    ['a token of another audience', async () => issuer.sign('someone', { aud: 'https://elsewhere.example' })],
    ['an API key sent as a bearer token', async () => admin],
  ])('%s in Authorization: Bearer: Bearer error="invalid_token", a message about the bearer token', async (_what, token) => {
    const reply = await call(`${t.stack.apiUrl}/keys`, { headers: { authorization: `Bearer ${await token()}` } });
    expectError(reply, 401, 'UNAUTHORIZED');
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="knouds", error="invalid_token", error_description="[^"]+"$/);
    expect(reply.body['error']).toMatch(/Authorization: Bearer/);
    expect(reply.body['error']).toMatch(/x-api-key/);
    // Refused before any function: no rate-limit headers.
    expect(reply.headers.get('x-ratelimit-limit')).toBeNull();
    requestIdOf(reply);
  });

  it('a request with both is decided by x-api-key: a bad key is the key’s 401 even beside a good token', async () => {
    const token = await issuer.sign('someone');
    const reply = await call(`${t.stack.apiUrl}/keys`, { headers: { 'x-api-key': 'knouds_live_nope', authorization: `Bearer ${token}` } });
    expectError(reply, 401, 'UNAUTHORIZED');
    expect(reply.headers.get('www-authenticate')).toBe(keyOrNone);
    // An empty x-api-key is still the header: the key's 401, not the token's answer.
    const empty = await call(`${t.stack.apiUrl}/keys`, { headers: { 'x-api-key': '', authorization: `Bearer ${token}` } });
    expectError(empty, 401, 'UNAUTHORIZED');
    expect(empty.headers.get('www-authenticate')).toBe(keyOrNone);
  });
});

describe('a body whose text is not Unicode (a lone surrogate escape) is 400 naming where, and changes nothing', () => {
  const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };

  it('a workflow PUT twice with one is not two versions: neither is saved', async () => {
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'surrogates', name: 'S', definition })).status).toBe(201);
    for (let i = 0; i < 2; i++) {
      const reply = await t.api(admin, 'PUT', '/workflows/surrogates', { name: '\udfff', description: 'ok', definition });
      expectError(reply, 400, 'VALIDATION_ERROR', { details: [{ field: 'name', message: expect.stringContaining('lone UTF-16 surrogate') }] });
    }
    expect((await t.api(admin, 'GET', '/workflows/surrogates')).body).toMatchObject({ version: 1, name: 'S' });
    // Deep inside, and in a member name, the same; a surrogate pair (an emoji) is text like any other.
    expectError(await t.api(admin, 'PUT', '/workflows/surrogates', { name: 'S', definition: { ...definition, steps: [{ id: 'e', model: 'echo', input: { a: ['x', '\ud800'] } }] } }), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'definition.steps.0.input.a.1', message: expect.any(String) }],
    });
    expectError(await t.api(admin, 'POST', '/keys', { name: 'k', preset: 'read-only', metadata: { ['\udc00']: 'v' } }), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'metadata', message: expect.any(String) }],
    });
    const emoji = await t.api(admin, 'PUT', '/workflows/surrogates', { name: 'S \ud83d\ude00', definition });
    expect(emoji.body).toMatchObject({ version: 2, name: 'S 😀' });
  });
});

describe('numbers: any JSON number DynamoDB can hold is kept; one it cannot is 400 naming where, and changes nothing', () => {
  it('a schema bound past 2^53 and a 64-bit id in a run input are kept (both were 500s); 1e126 and 1e-131 are 400s', async () => {
    const schema = { type: 'object', properties: { id: { type: 'integer', maximum: 1e20 } } };
    const definition = { input_schema: schema, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
    const created = await t.api(admin, 'POST', '/workflows', { slug: 'numbers', name: 'N', definition });
    expect({ status: created.status, body: created.body }).toMatchObject({ status: 201, body: { definition: { input_schema: schema } } });
    expect((await t.api(admin, 'GET', '/workflows/numbers')).body).toMatchObject({ definition: { input_schema: { properties: { id: { maximum: 1e20 } } } } });
    expect((await t.api(admin, 'POST', '/workflows/numbers/deploy')).status).toBe(200);

    // Sent as text, so the digits are the client's, not JavaScript's.
    const run = await t.api(admin, 'POST', '/workflows/numbers/run', '{"input":{"id":12345678901234567890,"tiny":1e-130,"huge":-9.99e125,"zero":-0.0}}');
    // The nearest doubles, as any JavaScript client reads them.
    const kept = { id: 12345678901234567000, tiny: 1e-130, huge: -9.99e125, zero: 0 };
    expect({ status: run.status, body: run.body }).toMatchObject({ status: 200, body: { status: 'SUCCEEDED', output: kept } });
    const read = await t.api(admin, 'GET', `/executions/${String(run.body['execution_id'])}`);
    expect({ status: read.status, body: read.body }).toMatchObject({ status: 200, body: { input: kept, output: kept } });

    const before = await t.snapshot();
    for (const [text, field] of [
      ['{"input":{"id":1,"list":[1,1e126]}}', 'input.list.1'],
      ['{"input":{"id":1,"tiny":-1e-131}}', 'input.tiny'],
      ['{"input":1e400}', 'input'],
    ] as const) {
      expectError(await t.api(admin, 'POST', '/workflows/numbers/run', text), 400, 'VALIDATION_ERROR', {
        details: [{ field, message: expect.stringContaining('outside the range this API accepts') }],
      });
    }
    expectError(await t.api(admin, 'PUT', '/workflows/numbers', { name: 'N', definition: { ...definition, input_schema: { maximum: 1e300 } } }), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'definition.input_schema.maximum', message: expect.stringContaining('outside the range') }],
    });
    expect(await t.snapshot()).toBe(before);
  });
});

describe('a member named "" (JSON, but no item DynamoDB stores) is 400 naming where, and changes nothing', () => {
  it('in a run input, sync or async, a definition, an input_schema, key metadata: each 400 (each was a 500 after the checks passed)', async () => {
    const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'empty-names', name: 'E', definition })).status).toBe(201);
    expect((await t.api(admin, 'POST', '/workflows/empty-names/deploy')).status).toBe(200);
    const before = await t.snapshot();
    for (const [method, path, body, field] of [
      ['POST', '/workflows/empty-names/run', { input: { '': 1 } }, 'input'],
      ['POST', '/workflows/empty-names/run?async=true', { input: { a: { '': 2 } } }, 'input.a'],
      ['POST', '/workflows', { slug: 'empty-schema', name: 'E', definition: { ...definition, input_schema: { type: 'object', properties: { '': { type: 'string' } } } } }, 'definition.input_schema.properties'],
      ['PUT', '/workflows/empty-names', { name: 'E', definition: { ...definition, steps: [{ id: 'e', model: 'echo', input: { '': '$.input' } }] } }, 'definition.steps.0.input'],
      ['POST', '/keys', { name: 'k', preset: 'read-only', metadata: { '': 'v' } }, 'metadata'],
      ['POST', '/workflows/empty-names/run', { '': 1 }, 'body'],
    ] as const) {
      expectError(await t.api(admin, method, path, body), 400, 'VALIDATION_ERROR', { details: [{ field, message: expect.stringContaining('name is empty') }] });
    }
    expect(await t.snapshot()).toBe(before);
    // A direct model run stores nothing: its input takes one, as it always did (refusing it would tighten a rule).
    const direct = await t.api(admin, 'POST', '/models/echo/run', { input: { '': 1, a: { '': 'x' } } });
    expect({ status: direct.status, body: direct.body }).toEqual({ status: 200, body: { model: 'echo', output: { '': 1, a: { '': 'x' } } } });
  });
});

describe('a request that takes no body refuses one, before it acts', () => {
  it('DELETE a key or a workflow, cancel or redeliver a run: 400 naming body for text or fields; none, {} and null are no body', async () => {
    const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'bodiless', name: 'B', definition })).status).toBe(201);
    expect((await t.api(admin, 'POST', '/workflows/bodiless/deploy')).status).toBe(200);
    const run = await t.api(admin, 'POST', '/workflows/bodiless/run', { input: 1 });
    const key = await t.api(admin, 'POST', '/keys', { name: 'doomed', preset: 'read-only' });
    const routes = [
      ['DELETE', `/keys/${String(key.body['key_id'])}`],
      ['DELETE', '/workflows/bodiless'],
      ['POST', `/executions/${String(run.body['execution_id'])}/cancel`],
      ['POST', `/executions/${String(run.body['execution_id'])}/webhook/redeliver`],
    ] as const;
    // The OpenAPI document says so of these four, and of no operation that takes a body.
    const doc = (await t.api(undefined, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> };
    const sayNoBody = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => (op.responses?.['400']?.description.includes('takes none') ? [`${method.toUpperCase()} ${path}`] : [])),
    );
    expect(sayNoBody.sort()).toEqual(['DELETE /keys/{key_id}', 'DELETE /workflows/{slug}', 'POST /executions/{execution_id}/cancel', 'POST /executions/{execution_id}/webhook/redeliver']);
    for (const [method, path] of routes) {
      for (const body of ['this is {not json', '{"oops": 1}', '[]']) {
        const reply = await t.api(admin, method, path, body);
        expect({ route: `${method} ${path}`, status: reply.status, field: (reply.body['details'] as { field: string }[] | undefined)?.[0]?.field }).toEqual({
          route: `${method} ${path}`,
          status: 400,
          field: 'body',
        });
      }
    }
    // Nothing was done: the key works, the workflow is there.
    expect((await t.api(String(key.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
    expect((await t.api(admin, 'GET', '/workflows/bodiless')).status).toBe(200);
    // No body, {} or null: the request as usual.
    expect((await t.api(admin, 'DELETE', `/keys/${String(key.body['key_id'])}`, {})).status).toBe(204);
    expect((await t.api(admin, 'POST', `/executions/${String(run.body['execution_id'])}/cancel`, 'null')).body['code']).toBe('EXECUTION_FINISHED');
    expect((await t.api(admin, 'DELETE', '/workflows/bodiless')).status).toBe(204);
  });
});

describe('KEY_LIMIT_REACHED says how many, and to revoke one', () => {
  it('on a create, and on a rotation with a grace period, of a full account', async () => {
    const { key, keyId } = await t.account('pro', { name: 'keys', capabilities: ['keys:read', 'keys:write'] });
    for (let i = 0; i < 9; i++) expect((await t.api(key, 'POST', '/keys', { name: `k${i}`, capabilities: ['keys:read'] })).status).toBe(201);
    const create = await t.api(key, 'POST', '/keys', { name: 'one too many', capabilities: ['keys:read'] });
    expectError(create, 409, 'KEY_LIMIT_REACHED', { limit: 10, active: 10 });
    expect(create.body['error']).toMatch(/revoke one/);
    const rotate = await t.api(key, 'POST', `/keys/${keyId}/rotate`, { grace_period_seconds: 60 });
    expectError(rotate, 409, 'KEY_LIMIT_REACHED', { limit: 10, active: 10 });
    requestIdOf(rotate);
  });
});

describe('an execution that failed carries failure {code, step_id} beside error', () => {
  const deploy = async (slug: string, definition: unknown) => {
    expect((await t.api(admin, 'POST', '/workflows', { slug, name: slug, definition })).status).toBe(201);
    expect((await t.api(admin, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
  };

  beforeAll(async () => {
    await deploy('boom', {
      input_schema: {},
      steps: [
        { id: 'first', model: 'echo', input: '$.input' },
        { id: 'explode', model: 'fail', input: { message: 'no luck' } },
      ],
      output: '$.steps.first.output',
    });
    await deploy('misfit', { input_schema: {}, steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.n' } }], output: '$.steps.up.output' });
    await deploy('bloat', { input_schema: {}, steps: [{ id: 'wide', model: 'echo', input: { a: '$.input', b: '$.input', c: '$.input' } }], output: '$.steps.wide.output' });
    await deploy('fine', { input_schema: {}, steps: [{ id: 'same', model: 'echo', input: '$.input' }], output: '$.steps.same.output' });
  });

  it.each([
    ['its model failed', 'boom', {}, { code: 'MODEL_FAILED', step_id: 'explode' }, /no luck/],
    ['its step could not run (input not what the model takes)', 'misfit', { n: 5 }, { code: 'STEP_FAILED', step_id: 'up' }, /step 'up'/],
    ['a step’s resolved input passed its limit', 'bloat', 'x'.repeat(100_000), { code: 'VALUE_TOO_LARGE', step_id: 'wide' }, /over the limit/],
  ])('%s: sync, read back, listed', async (_why, slug, input, failure, error) => {
    const run = await t.api(admin, 'POST', `/workflows/${slug}/run`, { input });
    expect({ status: run.status, body: run.body }).toEqual({ status: 200, body: expect.objectContaining({ status: 'FAILED', error: expect.stringMatching(error), failure }) });
    const id = String(run.body['execution_id']);
    expect((await t.api(admin, 'GET', `/executions/${id}`)).body).toEqual(expect.objectContaining({ status: 'FAILED', failure }));
    const listed = (await t.api(admin, 'GET', `/executions?workflow=${slug}`)).body['items'] as { execution_id: string; failure: unknown }[];
    expect(listed.find((e) => e.execution_id === id)?.failure).toEqual(failure);
  });

  it('async: the worker records it too', async () => {
    const queued = await t.api(admin, 'POST', '/workflows/boom/run?async=true', { input: 1 });
    expect(queued.status).toBe(202);
    let execution: Record<string, unknown> = {};
    for (let i = 0; i < 100 && execution['status'] !== 'FAILED'; i++) {
      execution = (await t.api(admin, 'GET', `/executions/${String(queued.body['execution_id'])}`)).body;
      if (execution['status'] !== 'FAILED') await new Promise((r) => setTimeout(r, 100));
    }
    expect(execution).toEqual(expect.objectContaining({ status: 'FAILED', failure: { code: 'MODEL_FAILED', step_id: 'explode' } }));
  });

  it('null unless FAILED', async () => {
    const run = await t.api(admin, 'POST', '/workflows/fine/run', { input: { a: 1 } });
    expect(run.body).toEqual(expect.objectContaining({ status: 'SUCCEEDED', error: null, failure: null }));
  });
});
