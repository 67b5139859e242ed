/**
 * The OpenAPI 3.1 document served at GET /v1/openapi.json: it answers without a key, validates as OpenAPI
 * 3.1, describes exactly the routes the template deploys, publishes the request schemas the handlers
 * validate with, and real responses from an end-to-end run (every operation, successes and errors)
 * conform to it.
 */
import { createServer, type Server } from 'node:http';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { AUDIT_ACTIONS } from '../../lambdas/shared/audit-contract.js';
import { REQUEST_SCHEMAS } from '../../lambdas/shared/schemas.js';
import { API_VERSION, ERROR_CODES, OPENAPI_OPERATIONS, toJsonSchema2020 } from '../../lambdas/shared/openapi.js';
import { queryParameterNames } from '../../lambdas/shared/query-parameters.js';
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from '../../lambdas/shared/webhook-schedule.js';
import { GATEWAY_ERRORS } from '../../lib/gateway-responses.js';
import { call, type Reply } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { startTestStack, type TestStack } from '../support/stack.js';


let t: TestStack;
let doc: Record<string, unknown>;

let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await startTestIssuer();
  t = await startTestStack('e2e-openapi', { identity: issuer.config });
  const reply = await call(`${t.stack.apiUrl}/openapi.json`);
  if (reply.status !== 200) throw new Error(`GET /openapi.json: ${reply.status} ${reply.text}`);
  doc = reply.body;
});
afterAll(async () => {
  await t?.close();
  await issuer?.close();
});

it('is served without a key, as JSON, cacheable', async () => {
  const reply = await call(`${t.stack.apiUrl}/openapi.json`);
  expect(reply.status).toBe(200);
  expect(reply.headers.get('content-type')).toBe('application/json');
  expect(reply.headers.get('cache-control')).toMatch(/max-age/);
  expect(doc['openapi']).toBe('3.1.0');
});

it('validates as an OpenAPI 3.1 document', async () => {
  const result = await new Validator().validate(doc as never);
  expect(result).toEqual({ valid: true });
});

it('describes the webhooks the platform sends (OpenAPI 3.1 `webhooks`): their body and Standard Webhooks headers', () => {
  const webhooks = doc['webhooks'] as Record<string, { post: { parameters: { name: string }[]; requestBody: { content: Record<string, { schema: unknown }> } } }>;
  expect(Object.keys(webhooks).sort()).toEqual(['execution.cancelled', 'execution.failed', 'execution.succeeded']);
  for (const hook of Object.values(webhooks)) {
    expect(hook.post.parameters.map((p) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(hook.post.requestBody.content['application/json']!.schema).toEqual({ $ref: '#/components/schemas/WebhookPayload' });
  }
  const schemas = (doc['components'] as { schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }> }).schemas;
  expect(schemas['WebhookPayload']!.required).toEqual(['type', 'timestamp', 'data']);
  expect(schemas['WebhookExecution']!.properties).not.toHaveProperty('webhook');
  expect(schemas['Execution']!.required).toContain('webhook');
});

it('describes exactly the routes the template deploys (ANY: the 405 of a path’s other methods, no operation)', () => {
  const deployed = t.stack.model.methods.filter((m) => m.httpMethod !== 'ANY').map((m) => `${m.httpMethod} ${m.resourcePath}`).sort();
  const described = Object.entries(doc['paths'] as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
  expect(described).toEqual(deployed);
  expect(OPENAPI_OPERATIONS.map((o) => `${o.method} ${o.path}`).sort()).toEqual(deployed);
});

it('documents the Idempotency-Key header on exactly the five operations of the contract and the webhook secret’s rotation (README), and the replay header on their successes', () => {
  const paths = doc['paths'] as Record<string, Record<string, { parameters: { name: string; in: string }[]; responses: Record<string, { headers?: Record<string, unknown> }> }>>;
  const withKey = Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([, op]) => op.parameters.some((p) => p.in === 'header' && p.name === 'Idempotency-Key'))
      .map(([method]) => `${method.toUpperCase()} ${path}`),
  );
  expect(withKey.sort()).toEqual([
    'POST /keys',
    'POST /keys/{key_id}/rotate',
    'POST /models/{model_id}/run',
    'POST /webhooks/secret/rotate',
    'POST /workflows',
    'POST /workflows/{slug}/run',
  ]);
  for (const name of withKey) {
    const [method, path] = name.split(' ') as [string, string];
    const responses = paths[path]![method.toLowerCase()]!.responses;
    for (const status of Object.keys(responses).filter((s) => s.startsWith('2'))) expect(Object.keys(responses[status]!.headers ?? {})).toContain('Idempotent-Replayed');
    expect(Object.keys(responses).filter((s) => s === '409' || s === '422')).toEqual(['409', '422']);
  }
});

describe('for tolerant readers (issue #21)', () => {
  type Op = {
    description?: string;
    parameters: { name: string; in: string; example?: unknown; schema: unknown }[];
    requestBody?: { content: Record<string, { schema: unknown; example?: unknown }> };
    responses: Record<string, { content?: Record<string, { schema: unknown; example?: unknown }> }>;
  };
  const operations = () =>
    Object.entries(doc['paths'] as Record<string, Record<string, Op>>).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ id: `${method.toUpperCase()} ${path}`, op })));
  const schemas = () => (doc['components'] as { schemas: Record<string, Record<string, unknown>> }).schemas;

  it('no response schema forbids fields it does not list; the request schemas still do', () => {
    const closedIn = (node: unknown, at: string): string[] => {
      if (Array.isArray(node)) return node.flatMap((n, i) => closedIn(n, `${at}/${i}`));
      if (!node || typeof node !== 'object') return [];
      return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) =>
        (k === 'additionalProperties' || k === 'unevaluatedProperties') && v === false ? [at] : k === 'example' ? [] : closedIn(v, `${at}/${k}`),
      );
    };
    const responseSchemas = Object.entries(schemas()).filter(([name]) => !(name in REQUEST_SCHEMAS));
    expect(responseSchemas.flatMap(([name, schema]) => closedIn(schema, name))).toEqual([]);
    for (const name of Object.keys(REQUEST_SCHEMAS)) expect(schemas()[name]!['additionalProperties']).toBe(false);
  });

  it('publishes the error codes as an extensible enum holding every code the API and its gateway answer', () => {
    const code = (schemas()['Error']!['properties'] as Record<string, Record<string, unknown>>)['code']!;
    expect(code).not.toHaveProperty('enum');
    expect(code['x-extensible-enum']).toEqual([...ERROR_CODES]);
    for (const e of GATEWAY_ERRORS) expect(ERROR_CODES).toContain(e.code);
    for (const c of ['METHOD_NOT_ALLOWED', 'EXECUTION_NOT_FINISHED', 'FORBIDDEN', 'UNSUPPORTED_MEDIA_TYPE', 'PRECONDITION_FAILED', 'KEY_LIMIT_REACHED']) expect(ERROR_CODES).toContain(c);
  });

  it('publishes the audit actions as an extensible enum (1.3.0 added one), and the filter’s list is every action', () => {
    const action = (schemas()['AuditEvent']!['properties'] as Record<string, Record<string, unknown>>)['action']!;
    expect(action).not.toHaveProperty('enum');
    expect(action['x-extensible-enum']).toEqual([...AUDIT_ACTIONS]);
    expect(AUDIT_ACTIONS).toContain('webhook_secret.created');
  });

  it('gives every operation a description and an example, and every example fits its schema', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ ...closedForTest(doc), $id: 'openapi.json' });
    const problems: string[] = [];
    for (const { id, op } of operations()) {
      if (!op.description || op.description.length < 20) problems.push(`${id}: no description`);
      const bodies = [
        ...Object.values(op.requestBody?.content ?? {}).map((c) => ['request', c] as const),
        ...Object.values(op.responses).flatMap((r) => Object.values(r.content ?? {}).map((c) => ['response', c] as const)),
      ].filter(([, c]) => c.example !== undefined);
      const pathExamples = op.parameters.filter((p) => p.in === 'path' && p.example !== undefined);
      if (bodies.length === 0 && pathExamples.length === 0) problems.push(`${id}: no example`);
      for (const [where, c] of bodies) {
        const target = (c.schema as { $ref?: string }).$ref;
        // Every example but the document's own (a sketch of it) is of a named schema.
        if (!target) {
          if (id !== 'GET /openapi.json') problems.push(`${id} ${where}: an example of an unnamed schema`);
          continue;
        }
        const validate = ajv.compile({ $ref: `openapi.json${target}` });
        if (!validate(c.example)) problems.push(`${id} ${where} example: ${ajv.errorsText(validate.errors)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('publishes each operation’s query parameters from the list the handlers enforce', () => {
    for (const { id, op } of operations()) {
      expect({ id, query: op.parameters.filter((p) => p.in === 'query').map((p) => p.name) }).toEqual({ id, query: [...queryParameterNames(id)] });
    }
  });

  it('marks the legacy scope deprecated, states the breaking-change policy, and versions by it', () => {
    const scope = (schemas()['CreateKeyRequest']!['properties'] as Record<string, Record<string, unknown>>)['scope']!;
    expect(scope['deprecated']).toBe(true);
    const info = doc['info'] as { version: string; description: string };
    expect(info.version).toBe(API_VERSION);
    expect(info.version).toMatch(/^1\.\d+\.\d+$/);
    expect(info.description).toMatch(/breaking change/i);
    expect(info.description).toMatch(/new major version, a new stage \(`\/v2`\)/);
  });

  it('states the webhook retry schedule the sender uses', () => {
    expect(DEFAULT_RETRY_SCHEDULE_SECONDS.slice(-2)).toEqual([36_000, 50_400]);
    const webhooks = doc['webhooks'] as Record<string, { post: { description: string } }>;
    for (const hook of Object.values(webhooks)) expect(hook.post.description).toContain('1 min, 5 min, 30 min, 2 h, 5 h, 10 h and 14 h later');
  });
});

it('publishes the request schemas the handlers validate with', () => {
  const schemas = (doc['components'] as { schemas: Record<string, unknown> }).schemas;
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) {
    expect(schemas[name]).toEqual(JSON.parse(JSON.stringify(toJsonSchema2020(schema))));
  }
  expect(JSON.stringify(schemas)).not.toContain('nullable');
});

/**
 * The document with every object schema of its components closed again (`unevaluatedProperties: false`),
 * so that the conformance check below still catches a field the document does not list: the document
 * itself leaves responses open (tolerant readers), which would let any extra field through. KeyFields
 * is only ever composed (allOf), so it stays open; the schemas composing it are closed.
 */
function closedForTest(document: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(document);
  const close = (node: unknown, composed: boolean): void => {
    if (Array.isArray(node)) return node.forEach((n) => close(n, false));
    if (!node || typeof node !== 'object') return;
    const schema = node as Record<string, unknown>;
    for (const [k, v] of Object.entries(schema)) {
      if (k === 'allOf') (v as unknown[]).forEach((n) => close(n, true));
      // Branches that only say which of their holder's own properties are given (CreateKeyRequest's
      // oneOf) are evaluated with it: the holder is closed, not each branch. Other branches are schemas
      // of their own (`/me`'s key or person, `created_by`, `failure`), each closed.
      else if ((k === 'oneOf' || k === 'anyOf') && schema['properties']) (v as unknown[]).forEach((n) => close(n, true));
      // A `not` is a condition, not a shape: closing it would make it never match.
      else if (k === 'not') continue;
      else if (k === 'properties') Object.values(v as Record<string, unknown>).forEach((n) => close(n, false));
      else if (k !== 'example') close(v, false);
    }
    if (!composed && (schema['properties'] || schema['allOf']) && schema['additionalProperties'] === undefined) schema['unevaluatedProperties'] = false;
  };
  const schemas = (copy['components'] as { schemas: Record<string, unknown> }).schemas;
  for (const [name, schema] of Object.entries(schemas)) if (name !== 'KeyFields') close(schema, false);
  return copy;
}

describe('real responses conform', () => {
  const seen: { method: string; path: string; reply: Reply }[] = [];
  const templates = OPENAPI_OPERATIONS.map((o) => ({
    ...o,
    pattern: new RegExp(`^${o.path.replace(/\{\w+\}/g, '[^/]+').replace('.', '\\.')}$`),
  }));

  /** A key in x-api-key, or `{session}`: a person's access token. */
  async function api(key: string | undefined | { session: string }, method: string, path: string, body?: unknown, headers?: Record<string, string>) {
    const reply =
      typeof key === 'object'
        ? await call(`${t.stack.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${key.session}`, ...headers }, ...(body !== undefined ? { body } : {}) })
        : await t.api(key, method, path, body, headers);
    seen.push({ method, path: path.replace(/\?.*$/, ''), reply });
    return reply;
  }

  let hookUrl: string;
  let hooks: Server;
  /** The bodies of the webhooks received. */
  const payloads: string[] = [];
  beforeAll(async () => {
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        payloads.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hooks`;
  });
  afterAll(() => new Promise<void>((resolve) => hooks.close(() => resolve())));

  it('over a run that reaches every operation, successes and errors', async () => {
    const { key: admin } = await t.account('business');
    const reader = (await t.account('business', { name: 'reader', preset: 'read-only' })).key;
    await api(undefined, 'GET', '/health');
    await api(undefined, 'GET', '/keys/verify');
    await api(admin, 'GET', '/keys/verify');
    await api(admin, 'GET', '/me');
    const { accountId } = await t.account('business');
    await t.member('openapi-person', accountId, 'p@example.com', 'viewer');
    const person = { session: await issuer.sign('openapi-person') };
    await api(person, 'GET', '/me');
    await api(person, 'POST', '/keys', { name: 'x', preset: 'read-only' });
    await api({ session: await issuer.sign('nobody-at-all') }, 'GET', '/keys');
    const created = await api(admin, 'POST', '/keys', { name: 'c', preset: 'workflow-deploy', expires_in_days: 30 });
    const id = String(created.body['key_id']);
    await api(admin, 'POST', '/keys', { name: '' });
    // A retried creation (replayed without api_key), another request with the same Idempotency-Key, an invalid one.
    const retry = { 'Idempotency-Key': 'openapi-create-1' };
    await api(admin, 'POST', '/keys', { name: 'retried', preset: 'read-only' }, retry);
    await api(admin, 'POST', '/keys', { name: 'retried', preset: 'read-only' }, retry);
    await api(admin, 'POST', '/keys', { name: 'other', preset: 'read-only' }, retry);
    await api(admin, 'POST', '/keys', { name: 'bad', preset: 'read-only' }, { 'Idempotency-Key': '' });
    await api(reader, 'POST', '/keys', { name: 'x', preset: 'read-only' });
    await api(admin, 'GET', '/keys?limit=1');
    await api(admin, 'GET', `/keys/${id}`);
    await api(admin, 'GET', '/keys/key_missing');
    await api(admin, 'PATCH', `/keys/${id}`, { name: 'renamed', workspaces: ['ws'] });
    await api(admin, 'GET', `/keys/${id}/usage`);
    const rotated = await api(admin, 'POST', `/keys/${id}/rotate`, { grace_period_seconds: 60 }, { 'Idempotency-Key': 'openapi-rotate-1' });
    await api(admin, 'POST', `/keys/${id}/rotate`, { grace_period_seconds: 60 }, { 'Idempotency-Key': 'openapi-rotate-1' });
    await api(admin, 'POST', `/keys/${id}/rotate`, {});
    await api(admin, 'DELETE', `/keys/${String(rotated.body['key_id'])}`);
    await api(admin, 'GET', '/webhooks/secret');
    await api(admin, 'POST', '/webhooks/secret/rotate');
    const definition = { input_schema: { type: 'object' }, steps: [{ id: 'u', model: 'uppercase', input: { text: '$.input.text' } }], output: '$.steps.u.output' };
    await api(admin, 'POST', '/workflows', { slug: 'shout', name: 'Shout', definition, description: 'd' });
    await api(admin, 'POST', '/workflows', { slug: 'shout', name: 'Shout', definition });
    await api(admin, 'POST', '/workflows/shout/run', { input: { text: 'a' } });
    await api(admin, 'GET', '/workflows');
    const shout = await api(admin, 'GET', '/workflows/shout');
    await api(admin, 'PUT', '/workflows/shout', { name: 'Shout 2', definition });
    // Workflow versions: the list, one version, a stale If-Match (412), a rollback.
    await api(admin, 'GET', '/workflows/shout/versions?limit=1');
    await api(admin, 'GET', '/workflows/shout?version=1');
    await api(admin, 'GET', '/workflows/shout?version=9');
    await api(admin, 'PUT', '/workflows/shout', { name: 'Shout 3', definition }, { 'If-Match': shout.headers.get('etag') ?? '' });
    await api(admin, 'POST', '/workflows/shout/deploy', { version: 1 });
    await api(admin, 'POST', '/workflows/shout/deploy');
    await api(admin, 'POST', '/workflows/shout/run', { input: { text: 'a' } });
    await api(admin, 'POST', '/workflows/shout/run', { input: 'not an object' });
    const queued = await api(admin, 'POST', '/workflows/shout/run?async=true', { input: { text: 'b' } }, { 'Idempotency-Key': 'openapi-async-1' });
    await api(admin, 'POST', '/workflows/shout/run?async=true', { input: { text: 'b' } }, { 'Idempotency-Key': 'openapi-async-1' });
    await api(admin, 'POST', '/workflows/shout/run?async=1', { input: { text: 'b' } });
    await api(admin, 'POST', '/workflows/shout/run', { input: { text: 'c' } }, { 'Idempotency-Key': 'openapi-sync-1' });
    await api(admin, 'POST', '/workflows/shout/run', { input: { text: 'c' } }, { 'Idempotency-Key': 'openapi-sync-1' });
    await api(admin, 'POST', '/workflows', { slug: 'twice', name: 'Twice', definition }, { 'Idempotency-Key': 'openapi-workflow-1' });
    await api(admin, 'POST', '/workflows', { slug: 'twice', name: 'Twice', definition }, { 'Idempotency-Key': 'openapi-workflow-1' });
    await api(admin, 'GET', '/models');
    await api(admin, 'POST', '/models/uppercase/run', { input: { text: 'x' } }, { 'Idempotency-Key': 'openapi-model-1' });
    await api(admin, 'POST', '/models/uppercase/run', { input: { text: 'x' } }, { 'Idempotency-Key': 'openapi-model-1' });
    await api(admin, 'POST', '/models/uppercase/run', { input: { text: 'y' } }, { 'Idempotency-Key': 'openapi-model-1' });
    await api(admin, 'POST', '/models/fail/run', { input: { message: 'no' } });
    await api(admin, 'GET', '/executions?limit=5');
    await api(admin, 'GET', '/executions?status=bogus');
    await api(admin, 'GET', `/executions/${String(queued.body['execution_id'])}`);
    const sleepy = { input_schema: {}, steps: [{ id: 's', model: 'sleep', input: { ms: 3000 } }], output: '$.steps.s.output' };
    await api(admin, 'POST', '/workflows', { slug: 'sleepy', name: 'S', definition: sleepy });
    await api(admin, 'POST', '/workflows/sleepy/deploy');
    // A retry while the first (a 3 s sync run) is still in flight: 409 IDEMPOTENCY_IN_PROGRESS.
    const inFlight = api(admin, 'POST', '/workflows/sleepy/run', { input: {} }, { 'Idempotency-Key': 'openapi-sleepy-1' });
    await new Promise((r) => setTimeout(r, 1000));
    await api(admin, 'POST', '/workflows/sleepy/run', { input: {} }, { 'Idempotency-Key': 'openapi-sleepy-1' });
    await inFlight;
    const slow = await api(admin, 'POST', '/workflows/sleepy/run?async=true', { input: {}, webhook_url: hookUrl });
    // Not finished yet: 409 EXECUTION_NOT_FINISHED.
    await api(admin, 'POST', `/executions/${String(slow.body['execution_id'])}/webhook/redeliver`);
    await api(admin, 'POST', `/executions/${String(slow.body['execution_id'])}/cancel`);
    // A run with a webhook, delivered, then redelivered (202); a run without one (404).
    const hooked = String((await api(admin, 'POST', '/workflows/shout/run?async=true', { input: { text: 'c' }, webhook_url: hookUrl })).body['execution_id']);
    // Delivered first (a redelivery while the first attempt is being claimed would take its place).
    for (let i = 0; i < 200 && ((await t.api(admin, 'GET', `/executions/${hooked}`)).body['webhook'] as { status?: string } | null)?.status !== 'delivered'; i++) await new Promise((r) => setTimeout(r, 50));
    await api(admin, 'GET', `/executions/${hooked}`);
    await api(admin, 'POST', `/executions/${hooked}/webhook/redeliver`);
    await api(admin, 'POST', `/executions/${String(queued.body['execution_id'])}/webhook/redeliver`);
    await api(admin, 'POST', `/executions/${String(slow.body['execution_id'])}/cancel`);
    await api(admin, 'DELETE', '/workflows/sleepy');
    await api(admin, 'GET', '/workflows/sleepy');

    // The audit trail: the events of this run's key changes, and a filtered page.
    await api(admin, 'GET', '/audit-events?limit=2');
    await api(admin, 'GET', '/audit-events?action=key.created&since=2020-01-01');
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    // `format` asserted, not only annotated: every time is a real ISO-8601 date-time.
    addFormats.default(ajv);
    ajv.addSchema({ ...closedForTest(doc), $id: 'openapi.json' });
    const problems: string[] = [];
    const covered = new Set<string>();
    for (const { method, path, reply } of seen) {
      const op = templates.find((o) => o.method === method && o.pattern.test(path));
      if (!op) {
        problems.push(`${method} ${path}: not in the document`);
        continue;
      }
      const pointer = `/paths/${op.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/responses/${reply.status}`;
      const response = (doc['paths'] as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>)[op.path]![method.toLowerCase()]!.responses[String(reply.status)];
      if (!response) {
        problems.push(`${method} ${path}: status ${reply.status} is not documented`);
        continue;
      }
      if (reply.status < 300) covered.add(`${method} ${op.path}`);
      // The headers that say something of this answer are documented for it.
      const documented = Object.keys((response as { headers?: Record<string, unknown> }).headers ?? {}).map((h) => h.toLowerCase());
      for (const header of ['idempotent-replayed', 'retry-after', 'location', 'etag']) {
        if (reply.headers.has(header) && !documented.includes(header)) problems.push(`${method} ${path} ${reply.status}: header ${header} is not documented`);
      }
      if (!response.content) {
        if (reply.text !== '') problems.push(`${method} ${path} ${reply.status}: documented without a body, got ${reply.text}`);
        continue;
      }
      const validate = ajv.getSchema(`openapi.json#${pointer}/content/application~1json/schema`)!;
      if (!validate(reply.body)) problems.push(`${method} ${path} ${reply.status}: ${ajv.errorsText(validate.errors)} in ${reply.text.slice(0, 300)}`);
    }
    // The webhooks received conform to the document's `webhooks` (their WebhookPayload).
    const payload = ajv.getSchema('openapi.json#/components/schemas/WebhookPayload')!;
    // Three are sent, each asynchronously (the cancelled run's, the hooked run's, its redelivery): waited
    // for, as a loaded machine may send them after the calls above have answered.
    for (const deadline = Date.now() + 20_000; payloads.length < 3 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    expect(payloads.length).toBeGreaterThanOrEqual(3);
    for (const body of payloads) if (!payload(JSON.parse(body))) problems.push(`webhook ${ajv.errorsText(payload.errors)} in ${body.slice(0, 300)}`);
    expect(problems).toEqual([]);
    // Every operation but the document itself (fetched above, outside this list) answered with a success.
    expect([...covered].sort()).toEqual(OPENAPI_OPERATIONS.filter((o) => o.path !== '/openapi.json').map((o) => `${o.method} ${o.path}`).sort());
    // And the errors were exercised too.
    expect(new Set(seen.map((s) => s.reply.status))).toEqual(new Set([200, 201, 202, 204, 400, 401, 403, 404, 409, 412, 422]));
    // Idempotent retries: a replay on each of the five operations, both of their error codes, and a key replayed without api_key.
    const replayed = seen.filter((s) => s.reply.headers.get('idempotent-replayed') === 'true');
    expect(new Set(replayed.map((s) => `${s.method} ${templates.find((o) => o.method === s.method && o.pattern.test(s.path))!.path} ${s.reply.status}`))).toEqual(
      new Set(['POST /keys 201', 'POST /keys/{key_id}/rotate 201', 'POST /workflows 201', 'POST /workflows/{slug}/run 200', 'POST /workflows/{slug}/run 202', 'POST /models/{model_id}/run 200']),
    );
    expect(replayed.filter((s) => s.path.startsWith('/keys')).map((s) => 'api_key' in s.reply.body)).toEqual([false, false]);
    const codes = seen.map((s) => `${s.reply.status} ${String(s.reply.body['code'])}`);
    expect(codes).toEqual(expect.arrayContaining(['409 IDEMPOTENCY_IN_PROGRESS', '422 IDEMPOTENCY_KEY_REUSED']));
  });
});
