/**
 * Contract §4 "Workflows", "Models" and "Executions" end to end over HTTP against the local runner:
 * the workflow lifecycle, sync and async runs (the async ones on the worker function, through the
 * runner's Lambda API), cancel races, failing steps, signed webhooks to a local receiver, slug- and
 * model-specific keys, workspaces and other accounts.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SECRET_ATTRIBUTE } from '../../lambdas/shared/repositories/accounts.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { SLEEPY } from '../support/definitions.js';

let t: TestStack;
let admin: string;
let adminAccount: string;

beforeAll(async () => {
  // Webhook retries 1 s apart (test-only schedule), the sender run every 250 ms.
  t = await startTestStack('e2e-workflows', { webhookRetrySchedule: '1,1', schedules: { everyMs: 250 } });
  ({ key: admin, accountId: adminAccount } = await t.account('business'));
  // Deployed workflows the runs, capability and webhook tests share.
  await deployed('sleepy', SLEEPY);
  await deployed('failing', FAILING);
  await deployed('greeter', GREET);
});
afterAll(() => t?.close());

const GREET = {
  input_schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } }, additionalProperties: false },
  steps: [
    { id: 'up', model: 'uppercase', input: { text: '$.input.name' } },
    { id: 'count', model: 'word-count', input: { text: '$.steps.up.output.text' } },
  ],
  output: '$.steps',
};


const FAILING = {
  input_schema: {},
  steps: [{ id: 'boom', model: 'fail', input: { message: 'the model said no' } }],
  output: '$.steps.boom.output',
};

function expectError(reply: Reply, status: number, code: string, extra: Record<string, unknown> = {}) {
  // Every error body carries the request id of its x-request-id header (API.md §3).
  expect({ status: reply.status, body: reply.body }).toEqual({ status, body: { error: expect.any(String), code, request_id: reply.headers.get('x-request-id'), ...extra } });
}

async function deployed(slug: string, definition: unknown, key = admin, extra: Record<string, unknown> = {}) {
  const created = await t.api(key, 'POST', '/workflows', { slug, name: slug, definition, ...extra });
  expect(created.status).toBe(201);
  expect((await t.api(key, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
}

describe('workflow lifecycle', () => {
  it('create, read, list, update, deploy, run the deployed version, delete', async () => {
    const created = await t.api(admin, 'POST', '/workflows', { slug: 'greet', name: 'Greet', definition: GREET, description: 'says hi' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      slug: 'greet',
      name: 'Greet',
      workspace_id: 'default',
      description: 'says hi',
      definition: GREET,
      version: 1,
      latest_version: 1,
      status: 'draft',
      deployed_version: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expectError(await t.api(admin, 'POST', '/workflows', { slug: 'greet', name: 'again', definition: GREET }), 409, 'ALREADY_EXISTS');
    expectError(await t.api(admin, 'POST', '/workflows/greet/run', { input: { name: 'x' } }), 409, 'WORKFLOW_NOT_DEPLOYED');

    const deploy = await t.api(admin, 'POST', '/workflows/greet/deploy');
    expect(deploy.body).toMatchObject({ status: 'deployed', version: 1, deployed_version: 1 });

    const v2 = { ...GREET, output: '$.steps.count.output' };
    const updated = await t.api(admin, 'PUT', '/workflows/greet', { definition: v2, name: 'Greet v2' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ name: 'Greet v2', version: 2, status: 'deployed', deployed_version: 1, definition: v2 });

    // Runs use the deployed version (1) until the next deploy.
    const run1 = await t.api(admin, 'POST', '/workflows/greet/run', { input: { name: 'ada lovelace' } });
    expect(run1.status).toBe(200);
    expect(run1.body).toEqual({
      execution_id: expect.stringMatching(/^exe_/),
      workflow_slug: 'greet',
      workflow_version: 1,
      workspace_id: 'default',
      status: 'SUCCEEDED',
      input: { name: 'ada lovelace' },
      output: { up: { output: { text: 'ADA LOVELACE' } }, count: { output: { count: 2 } } },
      error: null,
      failure: null,
      created_at: expect.any(String),
      started_at: expect.any(String),
      finished_at: expect.any(String),
      // A sync run asks for no webhook.
      webhook: null,
    });
    await t.api(admin, 'POST', '/workflows/greet/deploy');
    const run2 = await t.api(admin, 'POST', '/workflows/greet/run', { input: { name: 'ada' } });
    expect(run2.body).toMatchObject({ workflow_version: 2, output: { count: 1 } });

    const read = await t.api(admin, 'GET', '/workflows/greet');
    expect(read.body).toMatchObject({ slug: 'greet', version: 2, deployed_version: 2, definition: v2 });
    const list = await t.api(admin, 'GET', '/workflows');
    expect((list.body['items'] as { slug: string }[]).map((w) => w.slug)).toContain('greet');

    expect((await t.api(admin, 'DELETE', '/workflows/greet')).status).toBe(204);
    expectError(await t.api(admin, 'GET', '/workflows/greet'), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'DELETE', '/workflows/greet'), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'POST', '/workflows/greet/run', { input: { name: 'x' } }), 404, 'NOT_FOUND');
    // The slug is free again.
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'greet', name: 'Greet', definition: GREET })).status).toBe(201);
  });

  it('pages through workflows', async () => {
    const { key } = await t.account('business');
    for (const slug of ['wf-a', 'wf-b', 'wf-c']) {
      expect((await t.api(key, 'POST', '/workflows', { slug, name: slug, definition: GREET })).status).toBe(201);
    }
    const first = await t.api(key, 'GET', '/workflows?limit=2');
    expect((first.body['items'] as { slug: string }[]).map((w) => w.slug)).toEqual(['wf-a', 'wf-b']);
    expect(first.body['items']).toEqual([expect.not.objectContaining({ definition: expect.anything() }), expect.anything()]);
    const second = await t.api(key, 'GET', `/workflows?limit=2&next_token=${encodeURIComponent(String(first.body['next_token']))}`);
    expect(second.body).toEqual({ items: [expect.objectContaining({ slug: 'wf-c' })], next_token: null });
  });

  it.each([
    ['an invalid JSON Schema', { ...GREET, input_schema: { type: 'no-such-type' } }, 'definition.input_schema'],
    ['an unknown model', { ...GREET, steps: [{ id: 'x', model: 'gpt-9', input: {} }], output: '$.steps.x.output' }, 'definition.steps.0.model'],
    ['a reference to a later step', { ...GREET, steps: [GREET.steps[1]!, GREET.steps[0]!] }, 'definition.steps.0.input.text'],
    ['a reference outside input and steps', { ...GREET, output: '$.secrets' }, 'definition.output'],
    ['duplicate step ids', { ...GREET, steps: [GREET.steps[0]!, GREET.steps[0]!] }, 'definition.steps.1.id'],
    ['no steps', { ...GREET, steps: [] }, 'definition.steps'],
  ])('refuses %s with 400 VALIDATION_ERROR naming the field, and saves nothing', async (_name, definition, field) => {
    const reply = await t.api(admin, 'POST', '/workflows', { slug: 'bad-def', name: 'x', definition });
    expectError(reply, 400, 'VALIDATION_ERROR', { details: expect.arrayContaining([expect.objectContaining({ field })]) });
    expectError(await t.api(admin, 'GET', '/workflows/bad-def'), 404, 'NOT_FOUND');
  });

  it('refuses bad slugs and bodies over 256 KB', async () => {
    expectError(await t.api(admin, 'POST', '/workflows', { slug: 'Bad Slug', name: 'x', definition: GREET }), 400, 'VALIDATION_ERROR', {
      details: [expect.objectContaining({ field: 'slug' })],
    });
    const huge = { ...GREET, steps: [{ id: 'e', model: 'echo', input: { blob: 'x'.repeat(300 * 1024) } }], output: '$.steps.e.output' };
    expectError(await t.api(admin, 'POST', '/workflows', { slug: 'huge', name: 'x', definition: huge }), 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('runs', () => {

  it('checks the input against the input schema', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/greeter/run', { input: { nom: 'x' } });
    expectError(reply, 400, 'VALIDATION_ERROR', { details: expect.arrayContaining([expect.objectContaining({ field: 'input.name' })]) });
    expectError(await t.api(admin, 'POST', '/workflows/greeter/run', { input: { name: 'x' }, extra: 1 }), 400, 'VALIDATION_ERROR', {
      details: expect.any(Array),
    });
  });

  it('a step may take `$.steps` whole: it holds the steps before it, and the run succeeds', async () => {
    const definition = {
      input_schema: {},
      steps: [
        { id: 'first', model: 'echo', input: { n: 1 } },
        { id: 'snap', model: 'echo', input: { so_far: '$.steps' } },
      ],
      output: '$.steps',
    };
    expect((await t.api(admin, 'POST', '/workflows', { slug: 'steps-whole', name: 'Steps whole', definition })).status).toBe(201);
    expect((await t.api(admin, 'POST', '/workflows/steps-whole/deploy')).status).toBe(200);
    const reply = await t.api(admin, 'POST', '/workflows/steps-whole/run', { input: {} });
    const snap = { so_far: { first: { output: { n: 1 } } } };
    expect(reply.body).toMatchObject({ status: 'SUCCEEDED', output: { first: { output: { n: 1 } }, snap: { output: snap } } });
  });

  it('a failing step fails the execution with the model’s message', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/failing/run', { input: {} });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ status: 'FAILED', error: 'the model said no', output: null, finished_at: expect.any(String) });
  });

  it('a sync run that would outlast its 25 s fails at once and points to ?async=true', async () => {
    const started = Date.now();
    const reply = await t.api(admin, 'POST', '/workflows/sleepy/run', { input: { ms: 28_000 } });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(reply.body).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/^The run would take longer than a synchronous run may \(25 s\); .*\?async=true/) });
  });

  it('an async run answers 202 with Location, then the worker runs it to SUCCEEDED', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/greeter/run?async=true', { input: { name: 'grace hopper' } });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ execution_id: expect.stringMatching(/^exe_/), status: 'QUEUED' });
    const id = String(reply.body['execution_id']);
    expect(reply.headers.get('location')).toBe(`/v1/executions/${id}`);
    const done = await t.execution(admin, id, (s) => s === 'SUCCEEDED' || s === 'FAILED');
    expect(done.body).toMatchObject({ status: 'SUCCEEDED', output: { count: { output: { count: 2 } } }, started_at: expect.any(String) });
  });

  it('cancel during a long sleep: CANCELLED within a second, and it never becomes SUCCEEDED', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 3000 } });
    const id = String(reply.body['execution_id']);
    await t.execution(admin, id, (s) => s === 'RUNNING');
    const cancelled = await t.api(admin, 'POST', `/executions/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ execution_id: id, status: 'CANCELLED', finished_at: expect.any(String) });
    await new Promise((r) => setTimeout(r, 3500));
    expect((await t.api(admin, 'GET', `/executions/${id}`)).body).toMatchObject({ status: 'CANCELLED', output: null });
    // A retried cancel is harmless: 200 with the execution as it is (API.md §4).
    const again = await t.api(admin, 'POST', `/executions/${id}/cancel`);
    expect({ status: again.status, body: again.body }).toMatchObject({ status: 200, body: { execution_id: id, status: 'CANCELLED', finished_at: cancelled.body['finished_at'] } });
  });

  it('cancel after success is 409 EXECUTION_FINISHED; a queued run can be cancelled before it starts', async () => {
    const done = await t.api(admin, 'POST', '/workflows/greeter/run', { input: { name: 'x' } });
    expectError(await t.api(admin, 'POST', `/executions/${String(done.body['execution_id'])}/cancel`), 409, 'EXECUTION_FINISHED');
    expectError(await t.api(admin, 'POST', '/executions/exe_nope/cancel'), 404, 'NOT_FOUND');
  });

  it('lists executions newest first, filtered by workflow and status', async () => {
    const { key } = await t.account('business');
    await deployed('one', GREET, key);
    await deployed('two', FAILING, key);
    const ids: string[] = [];
    for (const [slug, input] of [['one', { name: 'a' }], ['two', {}], ['one', { name: 'b c' }]] as const) {
      ids.push(String((await t.api(key, 'POST', `/workflows/${slug}/run`, { input })).body['execution_id']));
    }
    const all = await t.api(key, 'GET', '/executions');
    expect((all.body['items'] as { execution_id: string }[]).map((e) => e.execution_id)).toEqual([...ids].reverse());
    const one = await t.api(key, 'GET', '/executions?workflow=one');
    expect((one.body['items'] as { execution_id: string }[]).map((e) => e.execution_id)).toEqual([ids[2], ids[0]]);
    const failed = await t.api(key, 'GET', '/executions?status=FAILED');
    expect((failed.body['items'] as { execution_id: string }[]).map((e) => e.execution_id)).toEqual([ids[1]]);
    const paged = await t.api(key, 'GET', '/executions?limit=2');
    const next = await t.api(key, 'GET', `/executions?limit=2&next_token=${encodeURIComponent(String(paged.body['next_token']))}`);
    expect((next.body['items'] as { execution_id: string }[]).map((e) => e.execution_id)).toEqual([ids[0]]);
    expectError(await t.api(key, 'GET', '/executions?status=DONE'), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'status' })] });
    // A token resumes only the list it came from: its status filter is bound like its workflow filter.
    const succeeded = await t.api(key, 'GET', '/executions?status=SUCCEEDED&limit=1');
    const token = encodeURIComponent(String(succeeded.body['next_token']));
    expect((await t.api(key, 'GET', `/executions?status=SUCCEEDED&limit=1&next_token=${token}`)).body['items']).toEqual([expect.objectContaining({ execution_id: ids[0] })]);
    for (const other of ['?status=CANCELLED&', '?', '?workflow=one&status=SUCCEEDED&']) {
      expectError(await t.api(key, 'GET', `/executions${other}limit=1&next_token=${token}`), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'next_token' })] });
    }
    expectError(await t.api(key, 'GET', `/executions?status=FAILED&next_token=${encodeURIComponent(String(paged.body['next_token']))}`), 400, 'VALIDATION_ERROR', {
      details: [expect.objectContaining({ field: 'next_token' })],
    });
  });
});

describe('input schemas: each on its own, patterns in linear time', () => {
  const echoing = (input_schema: Record<string, unknown>) => ({
    input_schema,
    steps: [{ id: 'echo', model: 'echo', input: '$.input' }],
    output: '$.steps.echo.output',
  });
  const WITH_ID = echoing({
    $id: 'https://example.com/input.json',
    type: 'object',
    required: ['secret_field'],
    properties: { secret_field: { type: 'string', pattern: '^sk_[a-z]+$' } },
  });

  it('a schema with an $id jams nothing: its runs and other workflows keep running; another account cannot $ref it', async () => {
    const a = await t.account('business');
    await deployed('with-id', WITH_ID, a.key);
    for (let i = 0; i < 3; i++) {
      const run = await t.api(a.key, 'POST', '/workflows/with-id/run', { input: { secret_field: 'sk_abc' } });
      expect({ status: run.status, execution: run.body['status'] }).toEqual({ status: 200, execution: 'SUCCEEDED' });
    }
    expectError(await t.api(a.key, 'POST', '/workflows/with-id/run', { input: { secret_field: 'nope' } }), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'input.secret_field', message: 'must match pattern "^sk_[a-z]+$"' }],
    });
    // Saving it again (a new version, compiled afresh) is fine too.
    const again = await t.api(a.key, 'PUT', '/workflows/with-id', { definition: WITH_ID, description: 'again' });
    expect(again.status).toBe(200);
    expect((await t.api(admin, 'POST', '/workflows/greeter/run', { input: { name: 'ada' } })).body['status']).toBe('SUCCEEDED');

    const b = await t.account('business');
    const refusal = await t.api(b.key, 'POST', '/workflows', {
      slug: 'borrower',
      name: 'borrower',
      definition: echoing({ $ref: 'https://example.com/input.json' }),
    });
    expectError(refusal, 400, 'VALIDATION_ERROR', {
      details: [{ field: 'definition.input_schema', message: expect.stringContaining("can't resolve reference https://example.com/input.json") }],
    });
    expect(JSON.stringify(refusal.body)).not.toContain('secret_field');
    expect((await t.api(b.key, 'GET', '/workflows/borrower')).status).toBe(404);
  });

  it('an exponentially backtracking pattern answers at once: ^(a+)+$ against "a"×30 + "!" is a quick 400', async () => {
    const { key } = await t.account('business');
    await deployed('redos', echoing({ type: 'object', required: ['s'], properties: { s: { type: 'string', pattern: '^(a+)+$' } } }), key);
    expect((await t.api(key, 'POST', '/workflows/redos/run', { input: { s: 'a'.repeat(30) } })).body['status']).toBe('SUCCEEDED');
    const started = Date.now();
    const reply = await t.api(key, 'POST', '/workflows/redos/run', { input: { s: `${'a'.repeat(30)}!` } });
    // Backtracking would take minutes; the bound leaves room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(3000);
    expectError(reply, 400, 'VALIDATION_ERROR', { details: [{ field: 'input.s', message: 'must match pattern "^(a+)+$"' }] });
  });

  it.each(['^(a)\\1$', '^(?=a)a$'])('a pattern that cannot run in linear time (%s) is refused at creation, naming it', async (pattern) => {
    const { key } = await t.account('business');
    const reply = await t.api(key, 'POST', '/workflows', {
      slug: 'unsafe',
      name: 'unsafe',
      definition: echoing({ type: 'object', properties: { s: { type: 'string', pattern } } }),
    });
    expectError(reply, 400, 'VALIDATION_ERROR', {
      details: [{ field: 'definition.input_schema', message: expect.stringContaining(JSON.stringify(pattern)) }],
    });
    expect(String(reply.body['error'])).toContain(JSON.stringify(pattern));
    expect((await t.api(key, 'GET', '/workflows/unsafe')).status).toBe(404);
  });
});

describe('models', () => {
  it('lists the five built-ins and the deployment’s own, with input schemas', async () => {
    const { key } = await t.account('business', { name: 'reader', preset: 'read-only' });
    const reply = await t.api(key, 'GET', '/models');
    expect(reply.status).toBe(200);
    const ids = (reply.body['items'] as { id: string; input_schema: unknown }[]).map((m) => m.id);
    expect(ids).toEqual(['echo', 'uppercase', 'word-count', 'sleep', 'fail', 'reverse']);
  });

  it.each([
    ['echo', { a: [1, 2] }, { a: [1, 2] }],
    ['uppercase', { text: 'abc' }, { text: 'ABC' }],
    ['word-count', { text: ' one two  three ' }, { count: 3 }],
    ['sleep', { ms: 50 }, { slept_ms: 50 }],
    ['reverse', { text: 'abc' }, { text: 'cba' }],
  ])('runs %s', async (model, input, output) => {
    const reply = await t.api(admin, 'POST', `/models/${model}/run`, { input });
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 200, body: { model, output } });
  });

  it('fail, bad input and unknown models', async () => {
    expectError(await t.api(admin, 'POST', '/models/fail/run', { input: { message: 'nope' } }), 422, 'MODEL_FAILED');
    expectError(await t.api(admin, 'POST', '/models/uppercase/run', { input: { text: 3 } }), 400, 'VALIDATION_ERROR', {
      details: expect.any(Array),
    });
    expectError(await t.api(admin, 'POST', '/models/sleep/run', { input: { ms: 30_001 } }), 400, 'VALIDATION_ERROR', {
      details: expect.any(Array),
    });
    expectError(await t.api(admin, 'POST', '/models/gpt-9/run', { input: {} }), 404, 'NOT_FOUND');
  });

  it('a direct run that would outlast the 25 s a synchronous run may take fails at once and says how to run it longer', async () => {
    const started = Date.now();
    const reply = await t.api(admin, 'POST', '/models/sleep/run', { input: { ms: 26_000 } });
    expect(Date.now() - started).toBeLessThan(5000);
    expectError(reply, 422, 'MODEL_FAILED');
    expect(reply.body['error']).toBe(
      'The model would run longer than a direct model run may (25 s: it is synchronous); make it a step of a workflow and run that asynchronously with POST /workflows/{slug}/run?async=true',
    );
  });

  it('a deployer’s model works as a workflow step, and its errors fail the step', async () => {
    await deployed('backwards', {
      input_schema: {},
      steps: [{ id: 'rev', model: 'reverse', input: { text: '$.input.text' } }],
      output: '$.steps.rev.output.text',
    });
    expect((await t.api(admin, 'POST', '/workflows/backwards/run', { input: { text: 'stressed' } })).body).toMatchObject({
      status: 'SUCCEEDED',
      output: 'desserts',
    });
    expect((await t.api(admin, 'POST', '/workflows/backwards/run', { input: {} })).body).toMatchObject({ status: 'FAILED' });
  });
});

describe('capabilities and workspaces', () => {
  it('a slug-specific key runs that workflow only', async () => {
    await deployed('only-this', GREET);
    await deployed('not-that', GREET);
    const key = String((await t.api(admin, 'POST', '/keys', { name: 'one wf', capabilities: ['workflow:only-this:run'] })).body['api_key']);
    expect((await t.api(key, 'POST', '/workflows/only-this/run', { input: { name: 'x' } })).body).toMatchObject({ status: 'SUCCEEDED' });
    expectError(await t.api(key, 'POST', '/workflows/not-that/run', { input: { name: 'x' } }), 403, 'CAPABILITY_DENIED', {
      required: 'workflow:not-that:run',
      actual: ['workflow:only-this:run'],
    });
    expectError(await t.api(key, 'GET', '/workflows/only-this'), 403, 'CAPABILITY_DENIED', { required: 'workflow:read', actual: expect.any(Array) });
  });

  it('a model-specific key runs that model only', async () => {
    const key = String((await t.api(admin, 'POST', '/keys', { name: 'echo only', capabilities: ['model:echo:run'] })).body['api_key']);
    expect((await t.api(key, 'POST', '/models/echo/run', { input: 1 })).status).toBe(200);
    expectError(await t.api(key, 'POST', '/models/uppercase/run', { input: { text: 'a' } }), 403, 'CAPABILITY_DENIED', {
      required: 'model:uppercase:run',
      actual: ['model:echo:run'],
    });
  });

  it('webhook_url needs webhook:receive, an async run and a public https URL', async () => {
    const key = String((await t.api(admin, 'POST', '/keys', { name: 'runner', capabilities: ['workflow:run'] })).body['api_key']);
    expectError(
      await t.api(key, 'POST', '/workflows/greeter/run?async=true', { input: { name: 'x' }, webhook_url: 'https://example.com/hook' }),
      403,
      'CAPABILITY_DENIED',
      { required: 'webhook:receive', actual: ['workflow:run'] },
    );
    for (const url of ['http://10.0.0.1/hook', 'https://169.254.169.254/latest', 'ftp://example.com/x', 'not a url', 'https://user:pw@127.0.0.1/x']) {
      expectError(await t.api(admin, 'POST', '/workflows/greeter/run?async=true', { input: { name: 'x' }, webhook_url: url }), 400, 'VALIDATION_ERROR', {
        details: [expect.objectContaining({ field: 'webhook_url' })],
      });
    }
    expectError(await t.api(admin, 'POST', '/workflows/greeter/run', { input: { name: 'x' }, webhook_url: 'http://127.0.0.1:9/x' }), 400, 'VALIDATION_ERROR', {
      details: [expect.objectContaining({ field: 'webhook_url' })],
    });
  });

  it('workspaces: a key reaches only its own; another account’s workflows and executions are 404', async () => {
    await deployed('in-a', GREET, admin, { workspace_id: 'ws-a' });
    await deployed('in-b', GREET, admin, { workspace_id: 'ws-b' });
    const wsKey = String(
      (await t.api(admin, 'POST', '/keys', {
        name: 'ws-a only',
        capabilities: ['workflow:read', 'workflow:write', 'workflow:run', 'execution:read', 'execution:cancel'],
        workspaces: ['ws-a'],
      })).body['api_key'],
    );
    const listed = await t.api(wsKey, 'GET', '/workflows');
    expect((listed.body['items'] as { workspace_id: string }[]).every((w) => w.workspace_id === 'ws-a')).toBe(true);
    expectError(await t.api(wsKey, 'GET', '/workflows/in-b'), 403, 'WORKSPACE_DENIED', { workspace_id: 'ws-b' });
    expectError(await t.api(wsKey, 'POST', '/workflows/in-b/run', { input: { name: 'x' } }), 403, 'WORKSPACE_DENIED', { workspace_id: 'ws-b' });
    expectError(await t.api(wsKey, 'POST', '/workflows', { slug: 'new-b', name: 'x', definition: GREET, workspace_id: 'ws-b' }), 403, 'WORKSPACE_DENIED', {
      workspace_id: 'ws-b',
    });
    expectError(await t.api(wsKey, 'POST', '/workflows', { slug: 'new-default', name: 'x', definition: GREET }), 403, 'WORKSPACE_DENIED', {
      workspace_id: 'default',
    });
    const inB = await t.api(admin, 'POST', '/workflows/in-b/run', { input: { name: 'x' } });
    expectError(await t.api(wsKey, 'GET', `/executions/${String(inB.body['execution_id'])}`), 403, 'WORKSPACE_DENIED', { workspace_id: 'ws-b' });
    expect((await t.api(wsKey, 'POST', '/workflows/in-a/run', { input: { name: 'x' } })).body).toMatchObject({ status: 'SUCCEEDED' });
    const executions = await t.api(wsKey, 'GET', '/executions');
    expect((executions.body['items'] as { workspace_id: string }[]).map((e) => e.workspace_id)).toEqual(['ws-a']);

    const other = await t.account('business');
    for (const [method, path] of [
      ['GET', '/workflows/in-a'],
      ['PUT', '/workflows/in-a'],
      ['POST', '/workflows/in-a/deploy'],
      ['POST', '/workflows/in-a/run'],
      ['DELETE', '/workflows/in-a'],
      ['GET', `/executions/${String(inB.body['execution_id'])}`],
      ['POST', `/executions/${String(inB.body['execution_id'])}/cancel`],
    ] as const) {
      const body = method === 'PUT' ? { definition: GREET } : method === 'POST' && path.endsWith('/run') ? { input: { name: 'x' } } : undefined;
      expectError(await t.api(other.key, method, path, body), 404, 'NOT_FOUND');
    }
    expect(((await t.api(other.key, 'GET', '/workflows')).body['items'] as unknown[]).length).toBe(0);
    expect((await t.api(admin, 'GET', '/workflows/in-a')).status).toBe(200);
  });
});

describe('signed webhooks', () => {
  interface Received {
    headers: IncomingHttpHeaders;
    body: string;
  }
  let receiver: Server;
  let url: string;
  const received: Received[] = [];
  let failFirst = 0;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failFirst > 0) {
          failFirst--;
          res.writeHead(503).end();
          return;
        }
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  /** Verifies a delivery as a receiver would, per the Standard Webhooks spec. */
  function verify(delivery: Received, secret: string): Record<string, unknown> {
    const id = String(delivery.headers['webhook-id']);
    const timestamp = String(delivery.headers['webhook-timestamp']);
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${delivery.body}`).digest('base64');
    expect(String(delivery.headers['webhook-signature']).split(' ')).toContain(`v1,${expected}`);
    expect(Math.abs(Date.now() / 1000 - Number(timestamp))).toBeLessThan(60);
    return JSON.parse(delivery.body) as Record<string, unknown>;
  }

  async function nextDelivery(count: number): Promise<Received> {
    const deadline = Date.now() + 15_000;
    while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(received.length).toBeGreaterThanOrEqual(count);
    return received[count - 1]!;
  }

  it('delivers succeeded, failed and cancelled events, signed with the account’s secret, retrying failures', async () => {
    const secret = String((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    expect((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']).toBe(secret);

    failFirst = 2; // the first two attempts get 503 (the worker's, then the sender's 1 s later): the third one lands
    const ok = await t.api(admin, 'POST', '/workflows/greeter/run?async=true', { input: { name: 'a b' }, webhook_url: url });
    const first = verify(await nextDelivery(1), secret);
    const okId = String(ok.body['execution_id']);
    let okRun = (await t.api(admin, 'GET', `/executions/${okId}`)).body;
    // The receiver has the POST; the attempt's record follows it.
    for (let i = 0; i < 50 && (okRun['webhook'] as { status?: string } | null)?.status !== 'delivered'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      okRun = (await t.api(admin, 'GET', `/executions/${okId}`)).body;
    }
    expect(okRun['webhook']).toMatchObject({ status: 'delivered', attempts: 3, last_response_status: 204, next_attempt_at: null });
    expect(first).toEqual({
      type: 'execution.succeeded',
      timestamp: okRun['finished_at'],
      data: expect.objectContaining({
        execution_id: ok.body['execution_id'],
        status: 'SUCCEEDED',
        output: expect.objectContaining({ count: { output: { count: 2 } } }),
      }),
    });

    await t.api(admin, 'POST', '/workflows/failing/run?async=true', { input: {}, webhook_url: url });
    expect(verify(await nextDelivery(2), secret)).toMatchObject({ type: 'execution.failed', data: { status: 'FAILED', error: 'the model said no' } });

    const sleepy = await t.api(admin, 'POST', '/workflows/sleepy/run?async=true', { input: { ms: 5000 }, webhook_url: url });
    const id = String(sleepy.body['execution_id']);
    await t.execution(admin, id, (s) => s === 'RUNNING');
    await t.api(admin, 'POST', `/executions/${id}/cancel`);
    const cancelledAt = Date.now();
    expect(verify(await nextDelivery(3), secret)).toMatchObject({ type: 'execution.cancelled', data: { execution_id: id, status: 'CANCELLED' } });
    // The sleep noticed the cancel (it polls every 500 ms) long before its 5 s were up; the bound leaves
    // room for the delivery on a loaded machine.
    expect(Date.now() - cancelledAt).toBeLessThan(3000);

    const rotated = await t.api(admin, 'POST', '/webhooks/secret/rotate');
    const newSecret = String(rotated.body['secret']);
    expect(newSecret).not.toBe(secret);
    await t.api(admin, 'POST', '/workflows/greeter/run?async=true', { input: { name: 'z' }, webhook_url: url });
    verify(await nextDelivery(4), newSecret);
  });

  it('the secret is sealed at rest, bound to its account: copied onto another account it does not open', async () => {
    const secret = String((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']);
    const accounts = t.stack.state.tables.accounts;
    const item = (await t.stack.doc.send(new GetCommand({ TableName: accounts, Key: { account_id: adminAccount } }))).Item!;
    expect(JSON.stringify(item)).not.toContain(secret);
    expect(JSON.stringify(item)).not.toContain(secret.slice('whsec_'.length));
    expect(item[SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);

    const other = await t.account('business');
    await t.stack.doc.send(
      new UpdateCommand({
        TableName: accounts,
        Key: { account_id: other.accountId },
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: { '#s': SECRET_ATTRIBUTE },
        ExpressionAttributeValues: { ':s': item[SECRET_ATTRIBUTE] },
      }),
    );
    const refused = await t.api(other.key, 'GET', '/webhooks/secret');
    expect(refused.status).toBe(500);
    expect(refused.body).toEqual({ error: expect.any(String), code: 'INTERNAL_ERROR', request_id: expect.any(String) });
    expect(JSON.stringify(refused.body)).not.toContain(secret);
  });

  it('a secret an earlier release stored in the clear is kept, sealed in place, and its plaintext removed', async () => {
    const { accountId, key } = await t.account('business');
    const accounts = t.stack.state.tables.accounts;
    const legacy = 'whsec_bGVnYWN5LXNlY3JldC1mcm9tLWFuLW9sZGVyLXJlbGVhc2U=';
    await t.stack.doc.send(
      new UpdateCommand({ TableName: accounts, Key: { account_id: accountId }, UpdateExpression: 'SET webhook_secret = :s', ExpressionAttributeValues: { ':s': legacy } }),
    );
    expect((await t.api(key, 'GET', '/webhooks/secret')).body['secret']).toBe(legacy);
    const item = (await t.stack.doc.send(new GetCommand({ TableName: accounts, Key: { account_id: accountId } }))).Item!;
    expect(item).not.toHaveProperty('webhook_secret');
    expect(item[SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);
    expect(JSON.stringify(item)).not.toContain(legacy.slice('whsec_'.length));
    expect((await t.api(key, 'GET', '/webhooks/secret')).body['secret']).toBe(legacy);
  });

  it('the secret needs keys:read to read and keys:write to rotate', async () => {
    const { key } = await t.account('business', { name: 'runner', preset: 'workflow-deploy' });
    expectError(await t.api(key, 'GET', '/webhooks/secret'), 403, 'CAPABILITY_DENIED', { required: 'keys:read', actual: expect.any(Array) });
    expectError(await t.api(key, 'POST', '/webhooks/secret/rotate'), 403, 'CAPABILITY_DENIED', { required: 'keys:write', actual: expect.any(Array) });
  });
});
