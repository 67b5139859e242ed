/**
 * The OpenAPI 3.1 description of the whole contract (API.md), served at `GET /v1/openapi.json`.
 *
 * Request bodies are the very schemas the handlers validate with (`REQUEST_SCHEMAS` in schemas.ts,
 * turned from Ajv's `nullable` into JSON Schema 2020-12 types); capabilities, presets, scopes and
 * limits come from their own modules. Response schemas are written here, once, and
 * `test/e2e/openapi.test.ts` checks real responses against them.
 */
import { FIXED_CAPABILITIES, PRESET_NAMES, SCOPE_NAMES } from './capabilities.js';
import { EXECUTION_STATUSES } from './execution-status.js';
import { IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW_MS, REPLAYED_HEADER } from './idempotency-contract.js';
import { EXPIRY_DAYS, MAX_GRACE_PERIOD_SECONDS, REQUEST_SCHEMAS } from './schemas.js';
import { AUDIT_ACTIONS } from './audit-contract.js';

type Schema = Record<string, unknown>;

/** Ajv's `nullable: true` (an OpenAPI 3.0 idea) as a JSON Schema 2020-12 type union, recursively. */
export function toJsonSchema2020(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema2020);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema as Schema)) {
    if (k === 'nullable') continue;
    out[k] = toJsonSchema2020(v);
  }
  if ((schema as Schema)['nullable'] === true && typeof out['type'] === 'string') {
    out['type'] = [out['type'], 'null'];
    if (Array.isArray(out['enum'])) out['enum'] = [...(out['enum'] as unknown[]), null];
  }
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const TIME = { type: 'string', format: 'date-time' };
/** A list's page: `{items, next_token}` (API.md §4), `next_token` null on the last page. */
const page = (item: string) => ({
  type: 'object',
  additionalProperties: false,
  required: ['items', 'next_token'],
  properties: { items: { type: 'array', items: ref(item) }, next_token: { type: ['string', 'null'] } },
});
const NULLABLE_TIME = { type: ['string', 'null'], format: 'date-time' };

const KEY_FIELDS = {
  type: 'object',
  required: ['key_id', 'name', 'prefix', 'environment', 'capabilities', 'workspaces', 'account_id', 'tier', 'created_at', 'expires_at', 'last_used', 'created_by'],
  properties: {
    key_id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string', description: 'The first 16 characters of the key.' },
    environment: { enum: ['live', 'test'] },
    capabilities: { type: 'array', items: ref('Capability') },
    workspaces: { type: 'array', items: { type: 'string' }, description: '`["*"]` for all.' },
    account_id: { type: 'string' },
    tier: { type: 'string' },
    created_at: TIME,
    expires_at: NULLABLE_TIME,
    last_used: NULLABLE_TIME,
    created_by: {
      description: 'Who made the key (a rotation keeps its predecessor’s); null for keys made before it was recorded.',
      oneOf: [
        { type: 'null' },
        { type: 'object', additionalProperties: false, required: ['kind', 'subject', 'email'], properties: { kind: { const: 'person' }, subject: { type: 'string' }, email: { type: 'string' } } },
        { type: 'object', additionalProperties: false, required: ['kind', 'key_id'], properties: { kind: { const: 'key' }, key_id: { type: 'string' } } },
        { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'operator' } } },
      ],
    },
  },
};

const TIER = { enum: ['free', 'pro', 'business', 'enterprise'] };

const ME = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'account', 'capabilities', 'workspaces', 'rate_limit', 'key', 'person'],
  properties: {
    kind: { enum: ['key', 'person'] },
    account: {
      type: 'object',
      additionalProperties: false,
      required: ['account_id', 'tier', 'ceiling', 'active_keys', 'max_active_keys'],
      description: 'The account the request acted for.',
      properties: {
        account_id: { type: 'string' },
        tier: TIER,
        ceiling: { type: 'array', items: ref('Capability'), description: 'The capabilities the tier allows.' },
        active_keys: { type: 'integer' },
        max_active_keys: { type: 'integer' },
      },
    },
    capabilities: { type: 'array', items: ref('Capability'), description: 'In force: the key’s or the role’s, cut to the tier’s ceiling.' },
    workspaces: { type: 'array', items: { type: 'string' } },
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['limit', 'remaining', 'reset'],
      properties: { limit: { type: 'integer' }, remaining: { type: 'integer' }, reset: { type: 'integer', description: 'Unix epoch seconds.' } },
    },
    key: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['key_id', 'name', 'prefix', 'environment'],
          properties: { key_id: { type: 'string' }, name: { type: 'string' }, prefix: { type: 'string' }, environment: { enum: ['live', 'test'] } },
        },
      ],
    },
    person: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['subject', 'email', 'role', 'accounts'],
          properties: {
            subject: { type: 'string' },
            email: { type: 'string' },
            role: { enum: ['admin', 'viewer'] },
            accounts: {
              type: 'array',
              description: 'Every account the person belongs to (at most 100), by account id.',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['account_id', 'role', 'tier'],
                properties: { account_id: { type: 'string' }, role: { enum: ['admin', 'viewer'] }, tier: TIER },
              },
            },
          },
        },
      ],
    },
  },
};

const WORKFLOW = {
  type: 'object',
  additionalProperties: false,
  required: ['slug', 'name', 'workspace_id', 'description', 'definition', 'version', 'status', 'deployed_version', 'created_at', 'updated_at'],
  properties: {
    slug: { type: 'string' },
    name: { type: 'string' },
    workspace_id: { type: 'string' },
    description: { type: 'string' },
    definition: toJsonSchema2020((REQUEST_SCHEMAS['CreateWorkflowRequest'] as { properties: { definition: unknown } }).properties.definition),
    version: { type: 'integer' },
    status: { enum: ['draft', 'deployed'] },
    deployed_version: { type: ['integer', 'null'] },
    created_at: TIME,
    updated_at: TIME,
  },
};

/** A workflow schema without its definition. */
function withoutDefinition(schema: typeof WORKFLOW): Schema {
  const { definition: _definition, ...properties } = schema.properties;
  return { ...schema, required: schema.required.filter((r) => r !== 'definition'), properties };
}

const EXECUTION = {
  type: 'object',
  additionalProperties: false,
  required: ['execution_id', 'workflow_slug', 'workflow_version', 'workspace_id', 'status', 'input', 'output', 'error', 'created_at', 'started_at', 'finished_at', 'webhook'],
  properties: {
    execution_id: { type: 'string' },
    workflow_slug: { type: 'string' },
    workflow_version: { type: 'integer' },
    workspace_id: { type: 'string' },
    status: { enum: [...EXECUTION_STATUSES] },
    input: {},
    output: {},
    error: { type: ['string', 'null'] },
    created_at: TIME,
    started_at: NULLABLE_TIME,
    finished_at: NULLABLE_TIME,
    webhook: {
      description: 'Null when the run asked for no webhook, or has not ended yet.',
      anyOf: [ref('WebhookState'), { type: 'null' }],
    },
  } as Record<string, unknown>,
};

/** The execution schema without its webhook field (what a webhook's `data` is). */
function withoutWebhook(schema: typeof EXECUTION): Schema {
  const { webhook: _webhook, ...properties } = schema.properties;
  return { ...schema, required: schema.required.filter((r) => r !== 'webhook'), properties };
}

const RESPONSE_SCHEMAS: Record<string, Schema> = {
  Error: {
    type: 'object',
    required: ['error', 'code'],
    properties: {
      error: { type: 'string', description: 'A human sentence.' },
      code: {
        type: 'string',
        enum: [
          'VALIDATION_ERROR',
          'UNAUTHORIZED',
          'CAPABILITY_DENIED',
          'WORKSPACE_DENIED',
          'TIER_CEILING_EXCEEDED',
          'ENVIRONMENT_DENIED',
          'NOT_A_MEMBER',
          'NOT_FOUND',
          'KEY_LIMIT_REACHED',
          'ALREADY_EXISTS',
          'KEY_ROTATED',
          'WORKFLOW_NOT_DEPLOYED',
          'EXECUTION_FINISHED',
          'EXECUTION_NOT_FINISHED',
          'IDEMPOTENCY_IN_PROGRESS',
          'MODEL_FAILED',
          'IDEMPOTENCY_KEY_REUSED',
          'PAYLOAD_TOO_LARGE',
          'RATE_LIMIT_EXCEEDED',
          'CONCURRENCY_LIMIT_EXCEEDED',
          'INTERNAL_ERROR',
          // Produced by API Gateway itself (lib/gateway-responses.ts).
          'THROTTLED',
          'GATEWAY_TIMEOUT',
          'FORBIDDEN',
          'UNSUPPORTED_MEDIA_TYPE',
          'REQUEST_REFUSED',
        ],
      },
      details: { type: 'array', items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } } },
      required: { type: 'string', description: 'CAPABILITY_DENIED: the capability the route needs.' },
      actual: { type: 'array', items: { type: 'string' }, description: 'CAPABILITY_DENIED: the key’s capabilities.' },
      workspace_id: { type: 'string' },
      tier: { type: 'string' },
      capability: { type: 'string' },
      rotated_to: { type: 'string', description: 'KEY_ROTATED, and ALREADY_EXISTS on a rotation: the key that replaced this one.' },
      environment: { type: 'string', enum: ['live', 'test'], description: 'ENVIRONMENT_DENIED: the environment of the key a test key tried to manage.' },
      limit: { type: 'integer', description: 'CONCURRENCY_LIMIT_EXCEEDED: the account’s limit of async executions in flight (QUEUED or RUNNING).' },
      request_id: { type: 'string' },
    },
  },
  Capability: {
    type: 'string',
    description: 'A fixed capability, or workflow:<slug>:run / model:<id>:run.',
    anyOf: [{ enum: [...FIXED_CAPABILITIES] }, { pattern: '^(workflow|model):[a-z0-9][a-z0-9-]{0,62}:run$' }],
  },
  Key: { ...KEY_FIELDS, additionalProperties: false },
  Me: ME,
  // Key with its properties open, for the allOf compositions below.
  KeyFields: KEY_FIELDS,
  CreatedKey: {
    allOf: [ref('KeyFields'), { type: 'object', required: ['api_key'], properties: { api_key: { type: 'string', description: 'The plaintext key, shown once.' } } }],
    unevaluatedProperties: false,
  },
  CreatedKeyOrReplay: {
    description: `The new key with its plaintext; or, replayed for a retry with the same ${IDEMPOTENCY_HEADER} (header \`${REPLAYED_HEADER}: true\`), the key without \`api_key\`: the plaintext is never kept.`,
    oneOf: [ref('CreatedKey'), ref('Key')],
  },
  RateLimit: {
    type: 'object',
    additionalProperties: false,
    required: ['limit', 'remaining', 'reset'],
    properties: { limit: { type: 'integer' }, remaining: { type: 'integer' }, reset: { type: 'integer', description: 'Unix epoch seconds.' } },
  },
  VerifiedKey: {
    allOf: [ref('KeyFields'), { type: 'object', required: ['rate_limit'], properties: { rate_limit: ref('RateLimit') } }],
    unevaluatedProperties: false,
  },
  KeyList: page('Key'),
  KeyUsage: {
    type: 'object',
    additionalProperties: false,
    required: ['key_id', 'requests_today', 'requests_this_month', 'rate_limit', 'last_used'],
    properties: {
      key_id: { type: 'string' },
      requests_today: { type: 'integer' },
      requests_this_month: { type: 'integer' },
      rate_limit: { type: 'integer', description: 'Requests per minute.' },
      last_used: NULLABLE_TIME,
    },
  },
  WebhookSecret: {
    type: 'object',
    additionalProperties: false,
    required: ['secret', 'previous_secret_expires_at'],
    properties: {
      secret: { type: 'string', pattern: '^whsec_' },
      previous_secret_expires_at: {
        ...NULLABLE_TIME,
        description: 'Until when the secret a rotation replaced still signs beside this one (both signatures in webhook-signature); null when it does not.',
      },
    },
  },
  Workflow: WORKFLOW,
  WorkflowSummary: {
    description: 'A workflow as listed: everything but its definition (GET /workflows/{slug} has it).',
    ...withoutDefinition(WORKFLOW),
  },
  WorkflowList: page('WorkflowSummary'),
  Execution: EXECUTION,
  WebhookState: {
    type: 'object',
    additionalProperties: false,
    description: 'The delivery of the execution’s webhook: pending until an attempt gets a 2xx (delivered) or the retry schedule ends (failed).',
    required: ['status', 'attempts', 'last_attempt_at', 'last_response_status', 'next_attempt_at'],
    properties: {
      status: { enum: ['pending', 'delivered', 'failed'] },
      attempts: { type: 'integer', minimum: 0, description: 'Attempts made, redeliveries included.' },
      last_attempt_at: NULLABLE_TIME,
      last_response_status: { type: ['integer', 'null'], description: 'The receiver’s HTTP status at the last attempt; null when none came (network error, no complete answer within 5 s).' },
      next_attempt_at: { ...NULLABLE_TIME, description: 'When the next attempt is due (sent within about a minute of it); null once delivered or failed.' },
    },
  },
  WebhookExecution: { ...withoutWebhook(EXECUTION), description: 'The execution as a webhook carries it: the execution object without its `webhook` field.' },
  WebhookPayload: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'timestamp', 'data'],
    properties: {
      type: { enum: ['execution.succeeded', 'execution.failed', 'execution.cancelled'] },
      timestamp: { ...TIME, description: 'The execution’s finished_at.' },
      data: ref('WebhookExecution'),
    },
  },
  ExecutionList: page('Execution'),
  QueuedExecution: {
    type: 'object',
    additionalProperties: false,
    required: ['execution_id', 'status'],
    properties: { execution_id: { type: 'string' }, status: { const: 'QUEUED' } },
  },
  Model: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'description', 'input_schema'],
    properties: { id: { type: 'string' }, description: { type: 'string' }, input_schema: { type: 'object' } },
  },
  ModelList: {
    type: 'object',
    additionalProperties: false,
    required: ['items'],
    properties: { items: { type: 'array', items: ref('Model') } },
  },
  ModelOutput: {
    type: 'object',
    additionalProperties: false,
    required: ['model', 'output'],
    properties: { model: { type: 'string' }, output: {} },
  },
  Health: { type: 'object', additionalProperties: false, required: ['status'], properties: { status: { const: 'ok' } } },
};

const RATE_HEADERS = {
  'X-RateLimit-Limit': { schema: { type: 'integer' }, description: 'The key’s requests per minute.' },
  'X-RateLimit-Remaining': { schema: { type: 'integer' } },
  'X-RateLimit-Reset': { schema: { type: 'integer' }, description: 'When the window ends, Unix epoch seconds.' },
};

/** On every answer of an idempotent operation that is a replay. */
const REPLAYED_HEADERS = {
  [REPLAYED_HEADER]: { schema: { const: 'true' }, description: `Present on an answer replayed for a retry with the same ${IDEMPOTENCY_HEADER}.` },
};
const RETRY_AFTER = { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds.' } };

const IDEMPOTENCY_PARAMETER = {
  name: IDEMPOTENCY_HEADER,
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7E]+$' },
  description:
    `Any 1–255 printable ASCII characters, new for each new request (a UUID, say). The same key with the same request (method, path, \`async\`, body, and the same API key) ` +
    `within ${IDEMPOTENCY_WINDOW_MS / 3_600_000} h replays the first 2xx answer, with \`${REPLAYED_HEADER}: true\`, without doing the work again ` +
    '(a key creation or rotation is replayed without `api_key`); a non-2xx answer is not kept, so a retry runs again. ' +
    'The same key with another request: 422 IDEMPOTENCY_KEY_REUSED; while the first is in flight: 409 IDEMPOTENCY_IN_PROGRESS. Keys are per account.',
};

const json = (schema: Schema, description: string, headers: Record<string, unknown> = RATE_HEADERS) => ({
  description,
  headers,
  content: { 'application/json': { schema } },
});
const error = (description: string) => json(ref('Error'), description);

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Takes an Idempotency-Key (API.md §4 "Retries and idempotency"). */
  idempotent?: boolean;
  path: string;
  id: string;
  summary: string;
  needs: string | null;
  tag: string;
  body?: string;
  ok: [string, Schema | null, string];
  errors?: Record<string, string>;
  query?: Schema[];
  noKey?: boolean;
}

const PAGE = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 } },
  { name: 'next_token', in: 'query', schema: { type: 'string' }, description: 'The previous page’s next_token.' },
];

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/health', id: 'getHealth', summary: 'The gateway is up', needs: null, tag: 'Service', noKey: true, ok: ['200', ref('Health'), 'OK'] },
  { method: 'get', path: '/openapi.json', id: 'getOpenApi', summary: 'This document', needs: null, tag: 'Service', noKey: true, ok: ['200', { type: 'object' }, 'The OpenAPI 3.1 document'] },
  { method: 'get', path: '/me', id: 'me', summary: 'Who is calling, in which account, with what in force (what the console asks first)', needs: 'any valid key', tag: 'Service', ok: ['200', ref('Me'), 'The caller'] },
  { method: 'get', path: '/keys/verify', id: 'verifyKey', summary: 'The calling key and its rate limit', needs: 'any valid key', tag: 'Keys', ok: ['200', ref('VerifiedKey'), 'The calling key'] },
  {
    method: 'post', path: '/keys', id: 'createKey', summary: 'Create a key (its plaintext is shown once)', needs: 'keys:write', tag: 'Keys', body: 'CreateKeyRequest', idempotent: true,
    ok: ['201', ref('CreatedKeyOrReplay'), 'The new key with its plaintext (a replay: without it)'], errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '409': 'KEY_LIMIT_REACHED' },
  },
  { method: 'get', path: '/keys', id: 'listKeys', summary: 'The account’s active keys', needs: 'keys:read', tag: 'Keys', query: PAGE, ok: ['200', ref('KeyList'), 'A page of keys'] },
  { method: 'get', path: '/keys/{key_id}', id: 'getKey', summary: 'A key', needs: 'keys:read', tag: 'Keys', ok: ['200', ref('Key'), 'The key'], errors: { '404': 'NOT_FOUND' } },
  {
    method: 'patch', path: '/keys/{key_id}', id: 'updateKey', summary: 'Edit a key’s name, capabilities or workspaces', needs: 'keys:write', tag: 'Keys', body: 'UpdateKeyRequest',
    ok: ['200', ref('Key'), 'The edited key'],
    errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND', '409': 'KEY_ROTATED (edit the key in rotated_to)' },
  },
  { method: 'delete', path: '/keys/{key_id}', id: 'revokeKey', summary: 'Revoke a key (it stops at once)', needs: 'keys:write', tag: 'Keys', ok: ['204', null, 'Revoked'], errors: { '403': 'WORKSPACE_DENIED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND' } },
  {
    method: 'post', path: '/keys/{key_id}/rotate', id: 'rotateKey', summary: 'Replace a key, the old one working for a grace period', needs: 'keys:write', tag: 'Keys', body: 'RotateKeyRequest', idempotent: true,
    ok: ['201', ref('CreatedKeyOrReplay'), 'The new key with its plaintext (a replay: without it)'],
    errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND', '409': 'ALREADY_EXISTS (rotated before), or KEY_LIMIT_REACHED (a grace period on a full account)' },
  },
  { method: 'get', path: '/keys/{key_id}/usage', id: 'getKeyUsage', summary: 'A key’s usage', needs: 'keys:read', tag: 'Keys', ok: ['200', ref('KeyUsage'), 'The usage'], errors: { '404': 'NOT_FOUND' } },
  { method: 'get', path: '/webhooks/secret', id: 'getWebhookSecret', summary: 'The account’s webhook signing secret', needs: 'keys:read', tag: 'Webhooks', ok: ['200', ref('WebhookSecret'), 'The secret'] },
  { method: 'post', path: '/webhooks/secret/rotate', id: 'rotateWebhookSecret', summary: 'Replace the webhook signing secret, the old one signing too for a grace period', needs: 'keys:write', tag: 'Webhooks', body: 'RotateWebhookSecretRequest', ok: ['200', ref('WebhookSecret'), 'The new secret'] },
  {
    method: 'post', path: '/workflows', id: 'createWorkflow', summary: 'Create a workflow (a draft, version 1)', needs: 'workflow:write', tag: 'Workflows', body: 'CreateWorkflowRequest', idempotent: true,
    ok: ['201', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '409': 'ALREADY_EXISTS' },
  },
  { method: 'get', path: '/workflows', id: 'listWorkflows', summary: 'Workflows in the key’s workspaces', needs: 'workflow:read', tag: 'Workflows', query: PAGE, ok: ['200', ref('WorkflowList'), 'A page of workflows'] },
  { method: 'get', path: '/workflows/{slug}', id: 'getWorkflow', summary: 'A workflow with its definition', needs: 'workflow:read', tag: 'Workflows', ok: ['200', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' } },
  {
    method: 'put', path: '/workflows/{slug}', id: 'updateWorkflow', summary: 'Save a new version', needs: 'workflow:write', tag: 'Workflows', body: 'UpdateWorkflowRequest',
    ok: ['200', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' },
  },
  { method: 'post', path: '/workflows/{slug}/deploy', id: 'deployWorkflow', summary: 'Deploy the current version', needs: 'workflow:write', tag: 'Workflows', ok: ['200', ref('Workflow'), 'The deployed workflow'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' } },
  { method: 'delete', path: '/workflows/{slug}', id: 'deleteWorkflow', summary: 'Delete a workflow and its versions', needs: 'workflow:write', tag: 'Workflows', ok: ['204', null, 'Deleted'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' } },
  {
    method: 'post', path: '/workflows/{slug}/run', id: 'runWorkflow', summary: 'Run the deployed version, synchronously or with ?async=true', needs: 'workflow:run or workflow:{slug}:run (webhook_url: webhook:receive)', tag: 'Workflows',
    body: 'RunWorkflowRequest', idempotent: true,
    query: [{ name: 'async', in: 'query', schema: { enum: ['true', 'false'] }, description: '`true` or `false` (the default), once; anything else is 400.' }],
    ok: ['200', ref('Execution'), 'Sync: the terminal execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND', '409': 'WORKFLOW_NOT_DEPLOYED' },
  },
  { method: 'get', path: '/models', id: 'listModels', summary: 'The models', needs: 'any valid key', tag: 'Models', ok: ['200', ref('ModelList'), 'The models'] },
  {
    method: 'post', path: '/models/{model_id}/run', id: 'runModel', summary: 'Run one model', needs: 'model:run or model:{id}:run', tag: 'Models', body: 'RunModelRequest', idempotent: true,
    ok: ['200', ref('ModelOutput'), 'The output'], errors: { '404': 'NOT_FOUND', '422': 'MODEL_FAILED' },
  },
  {
    method: 'get', path: '/executions', id: 'listExecutions', summary: 'Executions, newest first', needs: 'execution:read', tag: 'Executions',
    query: [...PAGE, { name: 'workflow', in: 'query', schema: { type: 'string' } }, { name: 'status', in: 'query', schema: { enum: [...EXECUTION_STATUSES] } }],
    ok: ['200', ref('ExecutionList'), 'A page of executions'],
  },
  { method: 'get', path: '/executions/{execution_id}', id: 'getExecution', summary: 'An execution', needs: 'execution:read', tag: 'Executions', ok: ['200', ref('Execution'), 'The execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' } },
  {
    method: 'post', path: '/executions/{execution_id}/cancel', id: 'cancelExecution', summary: 'Cancel an execution in flight', needs: 'execution:cancel', tag: 'Executions',
    ok: ['200', ref('Execution'), 'The cancelled execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND', '409': 'EXECUTION_FINISHED' },
  },
  {
    method: 'post', path: '/executions/{execution_id}/webhook/redeliver', id: 'redeliverWebhook',
    summary: 'Send the execution’s webhook again now (same webhook-id), its retry schedule restarted', needs: 'execution:read and webhook:receive', tag: 'Executions',
    ok: ['202', ref('Execution'), 'Accepted: the execution, its webhook pending and due now'],
    errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND (also: the execution asked for no webhook)', '409': 'EXECUTION_NOT_FINISHED' },
  },
];

/** The headers of every webhook (Standard Webhooks). */
const WEBHOOK_HEADERS = [
  { name: 'webhook-id', in: 'header', required: true, schema: { type: 'string', pattern: '^msg_exe_[0-9A-Za-z]{21}_(succeeded|failed|cancelled)$' }, description: 'msg_<execution_id>_<status>: the same on every attempt and redelivery; deduplicate on it.' },
  { name: 'webhook-timestamp', in: 'header', required: true, schema: { type: 'string', pattern: '^[0-9]+$' }, description: 'When this attempt was signed, Unix epoch seconds.' },
  {
    name: 'webhook-signature',
    in: 'header',
    required: true,
    schema: { type: 'string', pattern: '^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$' },
    description: 'v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>"> keyed with the base64 body of the account’s whsec_ secret; one per secret in force, space-separated.',
  },
];

/** OpenAPI 3.1 `webhooks`: what the platform POSTs to a run's webhook_url when it ends. */
function webhookOperations(): Schema {
  const types = { 'execution.succeeded': 'SUCCEEDED', 'execution.failed': 'FAILED', 'execution.cancelled': 'CANCELLED' };
  return Object.fromEntries(
    Object.entries(types).map(([type, status]) => [
      type,
      {
        post: {
          operationId: `${type.replace('.', '_')}_webhook`,
          summary: `An async execution ended ${status}`,
          description:
            'Sent to the run’s webhook_url, signed per Standard Webhooks. Any 2xx within 5 s (the whole attempt) delivers it; otherwise it is tried again ' +
            '1 min, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later (each ±20 %, within a minute of being due), then given up (the execution’s webhook.status: failed). ' +
            'POST /executions/{execution_id}/webhook/redeliver sends it again.',
          tags: ['Webhooks'],
          parameters: WEBHOOK_HEADERS,
          requestBody: { required: true, content: { 'application/json': { schema: ref('WebhookPayload') } } },
          responses: { '2XX': { description: 'Delivered' }, default: { description: 'Not delivered: tried again later' } },
        },
      },
    ]),
  );
}

// ——— The audit trail (API.md §7): its schemas and its one operation, added to the document below. ———

const AUDIT_SCHEMAS: Record<string, Schema> = {
  AuditEvent: {
    type: 'object',
    additionalProperties: false,
    required: ['event_id', 'account_id', 'action', 'occurred_at', 'actor', 'target', 'changes', 'request_id', 'source_ip', 'user_agent'],
    properties: {
      event_id: { type: 'string', pattern: '^evt_[0-9A-Za-z]{20}$' },
      account_id: { type: 'string' },
      action: { enum: [...AUDIT_ACTIONS] },
      occurred_at: TIME,
      actor: {
        type: 'object',
        additionalProperties: false,
        required: ['kind'],
        description: 'A key (`key_id`), a person (`subject`, `email`), an operator (the admin CLI) or the system (housekeeping).',
        properties: { kind: { enum: ['key', 'person', 'operator', 'system'] }, key_id: { type: 'string' }, subject: { type: 'string' }, email: { type: 'string' } },
      },
      target: {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'id'],
        description: 'A key (its key_id), the account or its webhook secret (the account id), a member (their subject).',
        properties: { kind: { enum: ['key', 'account', 'webhook_secret', 'member'] }, id: { type: 'string' } },
      },
      changes: {
        type: ['object', 'null'],
        description: 'Each changed field as {from, to} (null where it did not exist before, or no longer does). Never a key, a key hash or a webhook secret.',
        additionalProperties: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: {}, to: {} } },
      },
      request_id: { type: ['string', 'null'], description: 'The API request that made the change; null for the admin CLI and housekeeping.' },
      source_ip: { type: ['string', 'null'] },
      user_agent: { type: ['string', 'null'], description: 'At most 512 characters.' },
    },
  },
  AuditEventList: page('AuditEvent'),
};

const AUDIT_OPERATIONS: Operation[] = [
  {
    method: 'get', path: '/audit-events', id: 'listAuditEvents', summary: 'The account’s audit trail, newest first', needs: 'audit:read', tag: 'Audit',
    query: [
      ...PAGE,
      { name: 'action', in: 'query', schema: { enum: [...AUDIT_ACTIONS] } },
      { name: 'target_id', in: 'query', schema: { type: 'string' }, description: 'A key id, a member’s subject, or the account id (its own and its webhook secret’s events).' },
      { name: 'actor_id', in: 'query', schema: { type: 'string' }, description: 'A key id or a person’s subject.' },
      { name: 'since', in: 'query', schema: { type: 'string' }, description: 'ISO-8601 date or date-time: events at or after it.' },
      { name: 'until', in: 'query', schema: { type: 'string' }, description: 'ISO-8601 date or date-time: events before it.' },
    ],
    ok: ['200', ref('AuditEventList'), 'A page of events (pass the same filters with next_token; another page’s token, or another account’s, is 400)'],
  },
];

/** Every path and method of the contract, for tests that compare them with the deployed routes. */
export const OPENAPI_OPERATIONS: readonly { method: string; path: string }[] = [...OPERATIONS, ...AUDIT_OPERATIONS].map((o) => ({ method: o.method.toUpperCase(), path: o.path }));

/** A person's choice of account (API.md §1); keys ignore it. */
const ACCOUNT_PARAMETER = {
  name: 'Knouds-Account',
  in: 'header',
  required: false,
  description:
    'A signed-in person: the account to act for; may be left out by a person of one account (and on GET /me). Several accounts and no header: 400. Not a member: 403 NOT_A_MEMBER.',
  schema: { type: 'string' },
};

function operation(o: Operation): Schema {
  const pathParams = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  const [status, schema, description] = o.ok;
  const okHeaders = o.idempotent ? { ...RATE_HEADERS, ...REPLAYED_HEADERS } : RATE_HEADERS;
  const responses: Record<string, unknown> = {
    [status]: schema ? json(schema, description, o.noKey ? {} : okHeaders) : { description, headers: okHeaders },
  };
  if (o.path === '/workflows/{slug}/run') {
    responses['202'] = json(ref('QueuedExecution'), 'Async: the queued execution', { ...okHeaders, Location: { schema: { type: 'string' } } });
  }
  if (!o.noKey) {
    if (o.body || o.query) responses['400'] = error(o.idempotent ? `VALIDATION_ERROR, with details (an invalid ${IDEMPOTENCY_HEADER} among them)` : 'VALIDATION_ERROR, with details');
    responses['401'] = json(ref('Error'), 'UNAUTHORIZED: no key, or an invalid, revoked or expired one', {});
    // CAPABILITY_DENIED wherever the route needs a capability, and the route's own 403s beside it.
    const forbidden = [o.needs === 'any valid key' ? undefined : 'CAPABILITY_DENIED', o.errors?.['403'], 'NOT_A_MEMBER (a person, of no such account)']
      .filter(Boolean)
      .join(', or ');
    if (forbidden) responses['403'] = error(forbidden);
    for (const [s, d] of Object.entries(o.errors ?? {})) if (s !== '403') responses[s] = error(d);
    if (o.idempotent) {
      const also = (s: string, d: string) => (o.errors?.[s] ? `${o.errors[s]}; or ${d}` : d);
      responses['409'] = json(
        ref('Error'),
        also('409', `IDEMPOTENCY_IN_PROGRESS: the first request with this ${IDEMPOTENCY_HEADER} is still in flight (Retry-After)`),
        { ...RATE_HEADERS, ...RETRY_AFTER },
      );
      responses['422'] = error(also('422', `IDEMPOTENCY_KEY_REUSED: this ${IDEMPOTENCY_HEADER} came with another request`));
    }
    if (o.body) responses['413'] = error('PAYLOAD_TOO_LARGE');
    responses['429'] = json(
      ref('Error'),
      o.path === '/workflows/{slug}/run'
        ? 'RATE_LIMIT_EXCEEDED; or, with ?async=true, CONCURRENCY_LIMIT_EXCEEDED (with `limit`): the account has its tier’s number of async executions in flight'
        : 'RATE_LIMIT_EXCEEDED',
      { ...RATE_HEADERS, 'Retry-After': { schema: { type: 'integer' } } },
    );
  }
  responses['500'] = json(ref('Error'), 'INTERNAL_ERROR, with request_id', {});
  return {
    operationId: o.id,
    summary: o.summary,
    tags: [o.tag],
    ...(o.noKey ? { security: [] } : {}),
    ...(o.needs ? { 'x-knouds-capability': o.needs } : {}),
    parameters: [...pathParams, ...(o.query ?? []), ...(o.idempotent ? [IDEMPOTENCY_PARAMETER] : []), ...(o.noKey ? [] : [ACCOUNT_PARAMETER])],
    ...(o.body ? { requestBody: { required: o.body !== 'RotateKeyRequest' && o.body !== 'RotateWebhookSecretRequest' && o.body !== 'RunWorkflowRequest' && o.body !== 'RunModelRequest', content: { 'application/json': { schema: ref(o.body) } } } } : {}),
    responses,
  };
}

export function buildOpenApiDocument(): Schema {
  const paths: Record<string, Schema> = {};
  for (const o of [...OPERATIONS, ...AUDIT_OPERATIONS]) paths[o.path] = { ...paths[o.path], [o.method]: operation(o) };
  const requestSchemas = Object.fromEntries(Object.entries(REQUEST_SCHEMAS).map(([name, s]) => [name, toJsonSchema2020(s)]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Knouds API',
      version: '1.0.0',
      description:
        'Call workflows and models with API keys, or as a signed-in person. Every request but GET /health and GET /openapi.json carries a key in `x-api-key` or a person’s access token in `Authorization: Bearer`. ' +
        `Presets: ${PRESET_NAMES.join(', ')}; legacy scopes: ${SCOPE_NAMES.join(', ')}; expiry in days: ${EXPIRY_DAYS.join(', ')}; ` +
        `rotation grace period up to ${MAX_GRACE_PERIOD_SECONDS} s.`,
    },
    servers: [
      { url: 'http://localhost:3000/v1', description: 'npm start' },
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com/{stage}',
        description: 'Deployed',
        variables: { apiId: { default: 'abc123' }, region: { default: 'eu-west-1' }, stage: { default: 'v1' } },
      },
    ],
    security: [{ apiKey: [] }, { session: [] }],
    tags: ['Service', 'Keys', 'Webhooks', 'Workflows', 'Models', 'Executions', 'Audit'].map((name) => ({ name })),
    paths,
    webhooks: webhookOperations(),
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        session: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'A signed-in person’s access token from the stack’s identity provider (never an ID token, never an API key). A person of several accounts names one in the Knouds-Account header.',
        },
      },
      schemas: { ...RESPONSE_SCHEMAS, ...AUDIT_SCHEMAS, ...requestSchemas },
    },
  };
}
