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
import { EXPIRY_DAYS, MAX_EXPIRY_DAYS, MAX_GRACE_PERIOD_SECONDS, MAX_METADATA_ENTRIES, REQUEST_SCHEMAS } from './schemas.js';
import { AUDIT_ACTIONS } from './audit-contract.js';
import { FAILURE_CODES } from './execution-failure.js';
import { ROUTE_QUERY_PARAMETERS } from './query-parameters.js';
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from './webhook-schedule.js';

/**
 * Every error code (API.md §3, and those the code answers besides: EXECUTION_NOT_FINISHED, and the
 * gateway's FORBIDDEN, UNSUPPORTED_MEDIA_TYPE and REQUEST_REFUSED), published as an extensible enum:
 * more may be added, and a client handles an unknown one by its status.
 */
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'UNAUTHORIZED',
  'CAPABILITY_DENIED',
  'WORKSPACE_DENIED',
  'TIER_CEILING_EXCEEDED',
  'ENVIRONMENT_DENIED',
  'NOT_A_MEMBER',
  'FORBIDDEN',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'KEY_LIMIT_REACHED',
  'ALREADY_EXISTS',
  'KEY_ROTATED',
  'WORKFLOW_NOT_DEPLOYED',
  'EXECUTION_FINISHED',
  'EXECUTION_NOT_FINISHED',
  'IDEMPOTENCY_IN_PROGRESS',
  'PRECONDITION_FAILED',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'MODEL_FAILED',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMIT_EXCEEDED',
  'CONCURRENCY_LIMIT_EXCEEDED',
  'THROTTLED',
  'REQUEST_REFUSED',
  'INTERNAL_ERROR',
  'GATEWAY_TIMEOUT',
] as const;

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
    if (Array.isArray(out['enum']) && !(out['enum'] as unknown[]).includes(null)) out['enum'] = [...(out['enum'] as unknown[]), null];
  }
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * An enum a response may grow (Zalando's `x-extensible-enum`): typed clients see a string, and a value
 * they do not know is no error; the values listed are those of today.
 */
const extensible = (values: readonly string[], description: string): Schema => ({ type: 'string', 'x-extensible-enum': [...values], description });

/**
 * A request schema as a response schema: open to new fields (a response may gain fields at any time,
 * API.md §4 "Evolution"; requests stay strict).
 */
export function opened(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(opened);
  if (!schema || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema as Schema)
      .filter(([k, v]) => !((k === 'additionalProperties' || k === 'unevaluatedProperties') && v === false))
      .map(([k, v]) => [k, opened(v)]),
  );
}
const TIME = { type: 'string', format: 'date-time' };
/** A list's page: `{items, next_token}` (API.md §4), `next_token` null on the last page. */
const page = (item: string) => ({
  type: 'object',
  required: ['items', 'next_token'],
  properties: { items: { type: 'array', items: ref(item) }, next_token: { type: ['string', 'null'] } },
});
const NULLABLE_TIME = { type: ['string', 'null'], format: 'date-time' };
/** Who made a key or saved a workflow version: a signed-in person, or an API key (`created_by`'s shapes). */
/** A person's email: `null` for one added by subject alone (the admin CLI's `user add --subject`, with a deployer's own provider). */
const PERSON_EMAIL = { type: ['string', 'null'], description: 'A person added by subject alone (a deployer’s own identity provider) has no email: null.' };
const PERSON_AUTHOR = { type: 'object', required: ['kind', 'subject', 'email'], properties: { kind: { const: 'person' }, subject: { type: 'string' }, email: PERSON_EMAIL } };
const KEY_AUTHOR = { type: 'object', required: ['kind', 'key_id'], properties: { kind: { const: 'key' }, key_id: { type: 'string' } } };

const KEY_FIELDS = {
  type: 'object',
  required: ['key_id', 'name', 'prefix', 'environment', 'capabilities', 'workspaces', 'account_id', 'tier', 'created_at', 'expires_at', 'last_used', 'created_by', 'metadata', 'enabled', 'rotated_to'],
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
        PERSON_AUTHOR,
        KEY_AUTHOR,
        { type: 'object', required: ['kind'], properties: { kind: { const: 'operator' } } },
      ],
    },
    metadata: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: `The owner’s string map (at most ${MAX_METADATA_ENTRIES} entries), keys in order; \`{}\` when none. A rotation copies it.`,
    },
    enabled: {
      type: 'boolean',
      description: 'false: the key is refused (401) from its next request while it keeps its slot (still listed, still counted in the key limit). A rotation copies it.',
    },
    rotated_to: {
      type: ['string', 'null'],
      description:
        'The key that replaced this one: set once the key is rotated, while it works through its grace period (until `expires_at`; edit, rotate or disable the replacement instead). null for a key not rotated.',
    },
  },
};

const TIER = { enum: ['free', 'pro', 'business', 'enterprise'] };

const ME = {
  type: 'object',
  required: ['kind', 'account', 'capabilities', 'workspaces', 'rate_limit', 'key', 'person'],
  properties: {
    kind: { enum: ['key', 'person'] },
    account: {
      type: 'object',
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
          required: ['limit', 'remaining', 'reset'],
      properties: { limit: { type: 'integer' }, remaining: { type: 'integer' }, reset: { type: 'integer', description: 'Unix epoch seconds.' } },
    },
    key: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
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
                  required: ['subject', 'email', 'role', 'accounts'],
          properties: {
            subject: { type: 'string' },
            email: PERSON_EMAIL,
            role: { enum: ['admin', 'viewer'] },
            accounts: {
              type: 'array',
              description: 'Every account the person belongs to (at most 100), by account id.',
              items: {
                type: 'object',
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

// The request's schema of a definition, opened as every response is.
const DEFINITION = opened(toJsonSchema2020((REQUEST_SCHEMAS['CreateWorkflowRequest'] as { properties: { definition: unknown } }).properties.definition)) as Schema;

const WORKFLOW = {
  type: 'object',
  required: ['slug', 'name', 'workspace_id', 'description', 'definition', 'version', 'latest_version', 'status', 'deployed_version', 'created_at', 'updated_at'],
  properties: {
    slug: { type: 'string' },
    name: { type: 'string', description: 'The name of the version shown (the latest’s, unless ?version=n).' },
    workspace_id: { type: 'string' },
    description: { type: 'string', description: 'The description of the version shown.' },
    definition: { ...DEFINITION, description: 'The definition of the version shown.' },
    version: { type: 'integer', description: 'The version this object shows: the latest, or the one GET /workflows/{slug}?version=n asked for.' },
    latest_version: { type: 'integer', description: 'The latest version (what `version` is, unless a version was asked for).' },
    status: { enum: ['draft', 'deployed'], description: '`deployed` once any version is deployed.' },
    deployed_version: { type: ['integer', 'null'], description: 'The version runs use; null until the first deploy.' },
    created_at: TIME,
    updated_at: { ...TIME, description: 'The last change: a new version, or a deploy.' },
  },
};

const WORKFLOW_VERSION = {
  type: 'object',
  description: 'One saved version of a workflow: immutable once saved.',
  required: ['slug', 'version', 'name', 'description', 'definition', 'deployed', 'created_at', 'created_by'],
  properties: {
    slug: { type: 'string' },
    version: { type: 'integer', minimum: 1 },
    name: { type: 'string', description: 'The name saved with it (versions saved before API 1.2.0 show the workflow’s current name).' },
    description: { type: 'string', description: 'The description saved with it (versions saved before API 1.2.0 show the workflow’s current one).' },
    definition: DEFINITION,
    deployed: { type: 'boolean', description: 'Whether this is the deployed version (the one runs use).' },
    created_at: { ...TIME, description: 'When it was saved.' },
    created_by: {
      description: 'Who saved it; null for versions saved before it was recorded.',
      oneOf: [
        { type: 'null' },
        PERSON_AUTHOR,
        KEY_AUTHOR,
      ],
    },
  },
};

/** A workflow schema without its definition. */
function withoutDefinition(schema: typeof WORKFLOW): Schema {
  const { definition: _definition, ...properties } = schema.properties;
  return { ...schema, required: schema.required.filter((r) => r !== 'definition'), properties };
}

const EXECUTION = {
  type: 'object',
  required: ['execution_id', 'workflow_slug', 'workflow_version', 'workspace_id', 'status', 'input', 'output', 'error', 'failure', 'created_at', 'started_at', 'finished_at', 'webhook'],
  properties: {
    execution_id: { type: 'string' },
    workflow_slug: { type: 'string' },
    workflow_version: { type: 'integer' },
    workspace_id: { type: 'string' },
    status: { enum: [...EXECUTION_STATUSES] },
    input: {},
    output: {},
    error: { type: ['string', 'null'], description: 'Why it FAILED, for people; null unless FAILED.' },
    failure: {
      description: 'Why it FAILED, for programs; null unless FAILED. `step_id`: the step that failed, or null when the run failed outside any step.',
      anyOf: [
        {
          type: 'object',
          required: ['code', 'step_id'],
          properties: {
            code: extensible(
              FAILURE_CODES,
              'MODEL_FAILED: the step’s model failed; STEP_FAILED: the step could not run (its input does not fit its model, or the model is not available); ' +
                'VALUE_TOO_LARGE: a step’s input or output, or the output, passed its limit (of size or nesting), or holds a number that cannot be stored; TIMED_OUT: out of time (a sync run past its budget: run it with ?async=true); ' +
                'INTERRUPTED: the attempt running it stopped; WORKFLOW_DELETED: deleted before the queued run started; INTERNAL_ERROR: the platform failed under it. New codes may come.',
            ),
            step_id: { type: ['string', 'null'] },
          },
        },
        { type: 'null' },
      ],
    },
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
    description:
      'Every error: a sentence for people, a code for programs, the request id, and the fields its code adds. New codes may be added at any time: treat an unknown code by its HTTP status.',
    properties: {
      error: { type: 'string', description: 'A human sentence.' },
      code: extensible(ERROR_CODES, 'What went wrong, for programs. An extensible enum: these are the codes today; handle any other by the HTTP status.'),
      request_id: {
        type: 'string',
        description: 'API Gateway’s id for the request, also in the `x-request-id` header of every answer: quote it when asking for help. (Absent only from a 429 of the optional edge web ACL, which answers before API Gateway.)',
      },
      details: { type: 'array', items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } } },
      required: { type: 'string', description: 'CAPABILITY_DENIED: the capability the route needs.' },
      actual: { type: 'array', items: { type: 'string' }, description: 'CAPABILITY_DENIED: the key’s capabilities.' },
      workspace_id: { type: 'string' },
      tier: { type: 'string' },
      capability: { type: 'string' },
      rotated_to: { type: 'string', description: 'KEY_ROTATED, and ALREADY_EXISTS on a rotation: the key that replaced this one.' },
      environment: { type: 'string', enum: ['live', 'test'], description: 'ENVIRONMENT_DENIED: the environment of the key a test key tried to manage.' },
      limit: {
        type: 'integer',
        description: 'CONCURRENCY_LIMIT_EXCEEDED: the account’s limit of async executions in flight (QUEUED or RUNNING), or of sync executions running at once. KEY_LIMIT_REACHED: the account’s maximum of active keys.',
      },
      active: { type: 'integer', description: 'KEY_LIMIT_REACHED: the keys holding a slot now (revoke one to free it).' },
    },
    example: { error: 'Insufficient capability', code: 'CAPABILITY_DENIED', request_id: 'c0a8012e-6b7f-4b8e-9f3a-2d1e5c7b9a40', required: 'keys:write', actual: ['workflow:read'] },
  },
  Capability: extensible(
    FIXED_CAPABILITIES,
    'A fixed capability (these today; more may come), or workflow:<slug>:run / model:<id>:run (slugs and ids [a-z0-9][a-z0-9-]{0,62}).',
  ),
  Key: KEY_FIELDS,
  Me: ME,
  // Key with its properties open, for the allOf compositions below.
  KeyFields: KEY_FIELDS,
  CreatedKey: {
    allOf: [ref('KeyFields'), { type: 'object', required: ['api_key'], properties: { api_key: { type: 'string', description: 'The plaintext key, shown once.' } } }],
  },
  CreatedKeyOrReplay: {
    description: `The new key with its plaintext; or, replayed for a retry with the same ${IDEMPOTENCY_HEADER} (header \`${REPLAYED_HEADER}: true\`), the key without \`api_key\`: the plaintext is never kept.`,
    // anyOf: a key with its plaintext is a key too (responses are open to new fields).
    anyOf: [ref('CreatedKey'), ref('Key')],
  },
  RateLimit: {
    type: 'object',
      required: ['limit', 'remaining', 'reset'],
    properties: { limit: { type: 'integer' }, remaining: { type: 'integer' }, reset: { type: 'integer', description: 'Unix epoch seconds.' } },
  },
  VerifiedKey: {
    allOf: [ref('KeyFields'), { type: 'object', required: ['rate_limit'], properties: { rate_limit: ref('RateLimit') } }],
  },
  KeyList: page('Key'),
  KeyUsage: {
    type: 'object',
      required: ['key_id', 'requests_today', 'requests_this_month', 'rate_limit', 'last_used', 'daily'],
    properties: {
      key_id: { type: 'string' },
      requests_today: { type: 'integer' },
      requests_this_month: { type: 'integer' },
      rate_limit: { type: 'integer', description: 'Requests per minute.' },
      last_used: NULLABLE_TIME,
      daily: {
        type: 'array',
        description: 'One entry per UTC day of the last `days` days, oldest first, today last (zeros included).',
        items: {
          type: 'object',
                  required: ['date', 'requests'],
          properties: { date: { type: 'string', format: 'date' }, requests: { type: 'integer' } },
        },
      },
    },
  },
  WebhookSecret: {
    type: 'object',
      required: ['secret', 'previous_secret_expires_at'],
    properties: {
      secret: { type: 'string', pattern: '^whsec_' },
      previous_secret_expires_at: {
        ...NULLABLE_TIME,
        description: 'Until when the secret a rotation replaced still signs beside this one (both signatures in webhook-signature); null when it does not.',
      },
    },
  },
  RotatedWebhookSecret: {
    description: `The new secret; or, replayed for a retry with the same ${IDEMPOTENCY_HEADER} (header \`${REPLAYED_HEADER}: true\`), the answer without \`secret\` (a secret is never kept in an answer): read it with GET /webhooks/secret.`,
    type: 'object',
    required: ['previous_secret_expires_at'],
    properties: {
      secret: { type: 'string', pattern: '^whsec_' },
      previous_secret_expires_at: {
        ...NULLABLE_TIME,
        description: 'Until when the secret this rotation replaced still signs beside the new one (both signatures in webhook-signature); null when it does not.',
      },
    },
  },
  Workflow: WORKFLOW,
  WorkflowSummary: {
    description: 'A workflow as listed: everything but its definition (GET /workflows/{slug} has it).',
    ...withoutDefinition(WORKFLOW),
  },
  WorkflowList: page('WorkflowSummary'),
  WorkflowVersion: WORKFLOW_VERSION,
  WorkflowVersionList: page('WorkflowVersion'),
  Execution: EXECUTION,
  WebhookState: {
    type: 'object',
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
      required: ['execution_id', 'status'],
    properties: { execution_id: { type: 'string' }, status: { const: 'QUEUED' } },
  },
  Model: {
    type: 'object',
      required: ['id', 'description', 'input_schema'],
    properties: { id: { type: 'string' }, description: { type: 'string' }, input_schema: { type: 'object', additionalProperties: true, description: 'A JSON Schema.' } },
  },
  ModelList: page('Model'),
  ModelOutput: {
    type: 'object',
      required: ['model', 'output'],
    properties: { model: { type: 'string' }, output: {} },
  },
  Health: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
};

/** On every answer, success or error: API Gateway's id for the request (API.md §3). */
const REQUEST_ID_HEADERS = {
  'x-request-id': { schema: { type: 'string' }, description: 'API Gateway’s id for this request (error bodies repeat it as `request_id`): quote it when asking for help.' },
};

/**
 * On every answer past authentication: the de-facto `X-RateLimit-*`, and the IETF fields of
 * draft-ietf-httpapi-ratelimit-headers-10 (see http.ts `rateLimitHeaders`).
 */
const RATE_HEADERS = {
  ...REQUEST_ID_HEADERS,
  'X-RateLimit-Limit': { schema: { type: 'integer' }, description: 'The key’s (or person’s) requests per minute.' },
  'X-RateLimit-Remaining': { schema: { type: 'integer' } },
  'X-RateLimit-Reset': { schema: { type: 'integer' }, description: 'When the window ends, Unix epoch seconds.' },
  'RateLimit-Policy': {
    schema: { type: 'string' },
    description: 'IETF draft-ietf-httpapi-ratelimit-headers-10: the quota policy, e.g. `"default";q=100;w=60` (q requests per w seconds).',
    example: '"default";q=100;w=60',
  },
  RateLimit: {
    schema: { type: 'string' },
    description: 'IETF draft-ietf-httpapi-ratelimit-headers-10: what remains of it, e.g. `"default";r=42;t=17` (r requests left, t seconds until the window resets).',
    example: '"default";r=42;t=17',
  },
};

/** On every answer of an idempotent operation that is a replay. */
const REPLAYED_HEADERS = {
  [REPLAYED_HEADER]: { schema: { const: 'true' }, description: `Present on an answer replayed for a retry with the same ${IDEMPOTENCY_HEADER}.` },
};
/** An example of a workflow's ETag (services/workflows.ts `workflowEtag`): strong, quoted, opaque. */
const EXAMPLE_ETAG_VALUE = '"Yk3pQ0vV9sN2rLx7Wc4aTe"';

/** A workflow's ETag (API.md §4 "Workflow versions"), on its reads and on the answers of its changes. */
const ETAG_HEADERS = {
  ETag: {
    schema: { type: 'string' },
    description:
      'The workflow’s state (its latest and deployed versions), a strong, quoted, opaque entity tag: send it back in If-Match on PUT, deploy or DELETE to change the workflow only if nobody changed it since. The same with or without ?version.',
    example: EXAMPLE_ETAG_VALUE,
  },
};

/** If-Match on a workflow's changes (PUT, deploy, DELETE). */
const IF_MATCH_PARAMETER = {
  name: 'If-Match',
  in: 'header',
  required: false,
  schema: { type: 'string' },
  description:
    'The ETag of a read (or of a change’s answer): the change happens only if the workflow is still in that state, else 412 PRECONDITION_FAILED and nothing changes (a conditional write: of two changes sent with the same ETag, exactly one succeeds). ' +
    'Several tags, comma-separated, match any of them; weak tags (W/"…") never match; `*` matches any existing workflow. Not a quoted tag or `*`: 400. Without If-Match, the change is made on the workflow as it is.',
  example: EXAMPLE_ETAG_VALUE,
};
const RETRY_AFTER = { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds.' } };

const IDEMPOTENCY_PARAMETER = {
  name: IDEMPOTENCY_HEADER,
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7E]+$' },
  description:
    `Any 1–255 printable ASCII characters, new for each new request (a UUID, say). The same key with the same request (method, path, \`async\`, body, and the same API key) ` +
    `within ${IDEMPOTENCY_WINDOW_MS / 3_600_000} h replays the first 2xx answer (or a direct model run's 422 MODEL_FAILED: the model ran), with \`${REPLAYED_HEADER}: true\`, without doing the work again ` +
    '(a key creation or rotation is replayed without `api_key`, a webhook secret rotation without `secret`); any other non-2xx answer is not kept, so a retry runs again. ' +
    'The same key with another request: 422 IDEMPOTENCY_KEY_REUSED; while the first is in flight: 409 IDEMPOTENCY_IN_PROGRESS. Keys are per account.',
  example: '3f1c9a52-8d7e-4b61-a0f4-6c2e9b8d7a15',
};

const json = (schema: Schema, description: string, headers: Record<string, unknown> = RATE_HEADERS, example?: unknown) => ({
  description,
  headers,
  content: { 'application/json': { schema, ...(example !== undefined ? { example } : {}) } },
});
const error = (description: string) => json(ref('Error'), description);

// ——— Examples: one per operation at least (its request, its answer, or its path), checked against the schemas by test/openapi.test.ts ———

const AT = '2026-03-01T12:00:00.000Z';
const KEY_ID = 'key_4F8p2mX9qLw3Rt6Yb1Nc';
const EXECUTION_ID = 'exe_00VcU0hEueMkq9L3EmA5c';
const EXAMPLE_KEY = {
  key_id: KEY_ID,
  name: 'CI deploy',
  prefix: 'knouds_live_Ab3x',
  environment: 'live',
  capabilities: ['workflow:read', 'workflow:run'],
  workspaces: ['ws-prod'],
  account_id: 'acct_acme',
  tier: 'pro',
  created_at: AT,
  expires_at: '2026-05-30T12:00:00.000Z',
  last_used: '2026-03-02T08:15:30.000Z',
  created_by: { kind: 'person', subject: '2b7c4e1a-5f0d-4c8e-9a3b-7d6e5f4c3b2a', email: 'ada@example.com' },
  metadata: { owner: 'platform-team', ticket: 'OPS-1234' },
  enabled: true,
  rotated_to: null,
};
const EXAMPLE_DEFINITION = {
  input_schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
  steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.name' } }],
  output: '$.steps.up.output.text',
};
const EXAMPLE_WORKFLOW = {
  slug: 'greet',
  name: 'Greeting',
  workspace_id: 'default',
  description: 'Shouts a name',
  definition: EXAMPLE_DEFINITION,
  version: 2,
  latest_version: 2,
  status: 'deployed',
  deployed_version: 2,
  created_at: AT,
  updated_at: '2026-03-02T09:00:00.000Z',
};
const EXAMPLE_WORKFLOW_VERSION = {
  slug: 'greet',
  version: 2,
  name: 'Greeting',
  description: 'Shouts a name',
  definition: EXAMPLE_DEFINITION,
  deployed: true,
  created_at: '2026-03-02T08:55:00.000Z',
  created_by: { kind: 'key', key_id: KEY_ID },
};

const { definition: _definition, ...EXAMPLE_WORKFLOW_SUMMARY } = EXAMPLE_WORKFLOW;
const EXAMPLE_EXECUTION = {
  execution_id: EXECUTION_ID,
  workflow_slug: 'greet',
  workflow_version: 2,
  workspace_id: 'default',
  status: 'SUCCEEDED',
  input: { name: 'ada' },
  output: 'ADA',
  error: null,
  failure: null,
  created_at: AT,
  started_at: AT,
  finished_at: '2026-03-01T12:00:00.142Z',
  webhook: null,
};
const EXAMPLE_FAILED_EXECUTION = {
  ...EXAMPLE_EXECUTION,
  execution_id: 'exe_00VcU0hEueMkq9L3EmA5d',
  status: 'FAILED',
  output: null,
  error: "step 'up': steps.up.input must have required property 'text'",
  failure: { code: 'STEP_FAILED', step_id: 'up' },
  webhook: { status: 'delivered', attempts: 1, last_attempt_at: '2026-03-01T12:00:00.300Z', last_response_status: 204, next_attempt_at: null },
};
const EXAMPLE_SECRET = { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', previous_secret_expires_at: null };
const EXAMPLE_MODEL = {
  id: 'uppercase',
  description: 'Upper-cases a text',
  input_schema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
};

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Takes an Idempotency-Key (API.md §4 "Retries and idempotency"). */
  idempotent?: boolean;
  path: string;
  id: string;
  summary: string;
  /** What it does, its order for a list, and what to know (the document's long form of docs/api.md). */
  description: string;
  needs: string | null;
  tag: string;
  body?: string;
  ok: [string, Schema | null, string];
  errors?: Record<string, string>;
  noKey?: boolean;
  /** Its success carries the workflow's ETag. */
  etag?: boolean;
  /** Honours If-Match (412 PRECONDITION_FAILED when stale). */
  ifMatch?: boolean;
  /** Examples: of the request body, of the success answer, and of the path parameters. */
  example: { request?: unknown; response?: unknown; path?: Record<string, string> };
}

const KEY_PATH = { key_id: KEY_ID };
const SLUG_PATH = { slug: 'greet' };
const EXECUTION_PATH = { execution_id: EXECUTION_ID };

const OPERATIONS: Operation[] = [
  {
    method: 'get', path: '/health', id: 'getHealth', summary: 'The gateway is up', needs: null, tag: 'Service', noKey: true,
    description: 'No credentials. 200 while the API is up: for load balancers and readiness checks (`npm start` is ready when it answers).',
    ok: ['200', ref('Health'), 'OK'], example: { response: { status: 'ok' } },
  },
  {
    method: 'get', path: '/openapi.json', id: 'getOpenApi', summary: 'This document', needs: null, tag: 'Service', noKey: true,
    description: 'No credentials. This OpenAPI 3.1 document: every operation, its parameters, request and response schemas, the security schemes and the webhooks. Cacheable for 5 minutes.',
    ok: ['200', { type: 'object', additionalProperties: true }, 'The OpenAPI 3.1 document'], example: { response: { openapi: '3.1.0', info: { title: 'Knouds API', version: '1.3.0' } } },
  },
  {
    method: 'get', path: '/me', id: 'me', summary: 'Who is calling, in which account, with what in force (what the console asks first)', needs: 'any valid key', tag: 'Service',
    description:
      'Any valid key or person. The caller (`kind`), the account the request acted for with its tier, ceiling and key count, the capabilities in force (cut to the tier’s ceiling), the workspaces, the rate limit, and the key or the person. A person of several accounts may leave out Knouds-Account here: `account` is then the first of `person.accounts`.',
    ok: ['200', ref('Me'), 'The caller'],
    example: {
      response: {
        kind: 'key',
        account: { account_id: 'acct_acme', tier: 'pro', ceiling: ['audit:read', 'execution:read', 'workflow:read', 'workflow:run'], active_keys: 3, max_active_keys: 10 },
        capabilities: ['workflow:read', 'workflow:run'],
        workspaces: ['*'],
        rate_limit: { limit: 100, remaining: 99, reset: 1772366460 },
        key: { key_id: KEY_ID, name: 'CI deploy', prefix: 'knouds_live_Ab3x', environment: 'live' },
        person: null,
      },
    },
  },
  {
    method: 'get', path: '/keys/verify', id: 'verifyKey', summary: 'The calling key and its rate limit', needs: 'any valid key', tag: 'Keys',
    description: 'Any valid API key: the calling key’s object and its rate limit (`reset` in Unix epoch seconds); its `capabilities` are those it was given, as GET /keys/{key_id} shows them (GET /me shows those in force under the tier’s ceiling). The quickest check that a key works. A person (who has no calling key) gets 404 pointing to GET /me.',
    ok: ['200', ref('VerifiedKey'), 'The calling key'], errors: { '404': 'NOT_FOUND (a person: ask GET /me)' },
    example: { response: { ...EXAMPLE_KEY, rate_limit: { limit: 100, remaining: 99, reset: 1772366460 } } },
  },
  {
    method: 'post', path: '/keys', id: 'createKey', summary: 'Create a key (its plaintext is shown once)', needs: 'keys:write', tag: 'Keys', body: 'CreateKeyRequest', idempotent: true,
    description:
      'A new key: its capabilities from `capabilities`, a `preset` or a legacy `scope` (deprecated; exactly one of the three), covered by the tier’s ceiling and by the caller’s own capabilities and workspaces. ' +
      `Its expiry from \`expires_in_days\` or an exact \`expires_at\` (in the future, at most ${MAX_EXPIRY_DAYS} days ahead; not both), or none; optional \`metadata\` (a string map) and \`enabled\` (default true). ` +
      'The answer is the only place the plaintext `api_key` appears (a replay for the same Idempotency-Key has none). 409 KEY_LIMIT_REACHED, with `limit` and `active`, when the account holds its maximum of active keys: revoke one first.',
    ok: ['201', ref('CreatedKeyOrReplay'), 'The new key with its plaintext (a replay: without it)'],
    errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '409': 'KEY_LIMIT_REACHED (with limit and active: revoke a key first)' },
    example: {
      request: { name: 'CI deploy', preset: 'workflow-deploy', workspaces: ['ws-prod'], expires_at: '2026-05-30T12:00:00Z', metadata: { owner: 'platform-team', ticket: 'OPS-1234' } },
      response: { ...EXAMPLE_KEY, api_key: 'knouds_live_Ab3xQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7kP2z' },
    },
  },
  {
    method: 'get', path: '/keys', id: 'listKeys', summary: 'The account’s active keys, oldest first', needs: 'keys:read', tag: 'Keys',
    description: 'A page of the account’s active keys (neither revoked nor expired), oldest first (by creation time). `next_token` is null on the last page.',
    ok: ['200', ref('KeyList'), 'A page of keys'], example: { response: { items: [EXAMPLE_KEY], next_token: null } },
  },
  {
    method: 'get', path: '/keys/{key_id}', id: 'getKey', summary: 'A key', needs: 'keys:read', tag: 'Keys',
    description: 'One active key of the account. 404 for a revoked or expired key, or another account’s.',
    ok: ['200', ref('Key'), 'The key'], errors: { '404': 'NOT_FOUND' }, example: { path: KEY_PATH, response: EXAMPLE_KEY },
  },
  {
    method: 'patch', path: '/keys/{key_id}', id: 'updateKey', summary: 'Edit a key’s name, capabilities, workspaces, metadata, or disable and enable it', needs: 'keys:write', tag: 'Keys', body: 'UpdateKeyRequest',
    description:
      'Any of `name`, `capabilities`, `workspaces`, `metadata`, `enabled`, in force from the key’s next request; the result must be grantable by the caller. `metadata` replaces the whole map (`{}` clears it). `enabled: false` makes the key 401 from its next request while it keeps its slot (still listed and counted in the key limit); `enabled: true` brings it back. An edit that changes nothing writes nothing, so a retried PATCH is harmless. An edit is never lost to a concurrent rotation. 409 KEY_ROTATED (with `rotated_to`) for a key that has been rotated: edit its replacement.',
    ok: ['200', ref('Key'), 'The edited key'],
    errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND', '409': 'KEY_ROTATED (edit the key in rotated_to)' },
    example: { path: KEY_PATH, request: { name: 'CI deploy (prod)', metadata: { owner: 'platform-team' }, enabled: false }, response: { ...EXAMPLE_KEY, name: 'CI deploy (prod)', metadata: { owner: 'platform-team' }, enabled: false } },
  },
  {
    method: 'delete', path: '/keys/{key_id}', id: 'revokeKey', summary: 'Revoke a key (it stops at once)', needs: 'keys:write', tag: 'Keys',
    description: 'Revokes the key: it is refused (401) from its very next request, and its slot is free at once.',
    ok: ['204', null, 'Revoked'], errors: { '403': 'WORKSPACE_DENIED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND' }, example: { path: KEY_PATH },
  },
  {
    method: 'post', path: '/keys/{key_id}/rotate', id: 'rotateKey', summary: 'Replace a key, the old one working for a grace period', needs: 'keys:write', tag: 'Keys', body: 'RotateKeyRequest', idempotent: true,
    description:
      'A replacement with the same name, capabilities, workspaces, environment, expiry, metadata and `enabled` (a disabled key’s replacement is disabled too), its plaintext shown once; the old key stops at once, or after `grace_period_seconds` (0–86400). A key is rotated once (then 409 ALREADY_EXISTS with `rotated_to`). A key in its grace keeps its slot, so a rotation with a grace period on a full account is 409 KEY_LIMIT_REACHED; one without grace always works.',
    ok: ['201', ref('CreatedKeyOrReplay'), 'The new key with its plaintext (a replay: without it)'],
    errors: { '403': 'WORKSPACE_DENIED, TIER_CEILING_EXCEEDED or ENVIRONMENT_DENIED', '404': 'NOT_FOUND', '409': 'ALREADY_EXISTS (rotated before), or KEY_LIMIT_REACHED (a grace period on a full account)' },
    example: { path: KEY_PATH, request: { grace_period_seconds: 3600 }, response: { ...EXAMPLE_KEY, key_id: 'key_9Zx2Lm4Nq8Rt1Vw6Yb3C', prefix: 'knouds_live_Qw7e', api_key: 'knouds_live_Qw7eR5t2Y8u1I4o6P9a3S0d7F2g5H8j1K4l' } },
  },
  {
    method: 'get', path: '/keys/{key_id}/usage', id: 'getKeyUsage', summary: 'A key’s usage', needs: 'keys:read', tag: 'Keys',
    description: 'Requests today and this month, the limit per minute, the last use, and `daily`: one entry per UTC day of the last `days` days, oldest first, today last, zeros included. 404 for a key that is not active.',
    ok: ['200', ref('KeyUsage'), 'The usage'], errors: { '404': 'NOT_FOUND' },
    example: {
      path: KEY_PATH,
      response: { key_id: KEY_ID, requests_today: 12, requests_this_month: 340, rate_limit: 100, last_used: '2026-03-02T08:15:30.000Z', daily: [{ date: '2026-03-01', requests: 0 }, { date: '2026-03-02', requests: 12 }] },
    },
  },
  {
    method: 'get', path: '/webhooks/secret', id: 'getWebhookSecret', summary: 'The account’s webhook signing secret', needs: 'keys:read', tag: 'Webhooks',
    description: 'The secret webhooks are signed with (made on first use, which the audit trail records as webhook_secret.created by the caller), and until when the secret a rotation replaced still signs beside it.',
    ok: ['200', ref('WebhookSecret'), 'The secret'], example: { response: EXAMPLE_SECRET },
  },
  {
    method: 'post', path: '/webhooks/secret/rotate', id: 'rotateWebhookSecret', summary: 'Replace the webhook signing secret, the old one signing too for a grace period', needs: 'keys:write', tag: 'Webhooks', body: 'RotateWebhookSecretRequest', idempotent: true,
    description:
      'A new secret; during `grace_period_seconds` (0–604800) webhooks carry a signature with each secret, space-separated in webhook-signature. ' +
      `Send an ${IDEMPOTENCY_HEADER}: a retry of a rotation whose answer was lost then does not rotate again (which would end the grace of the secret your receivers still use).`,
    ok: ['200', ref('RotatedWebhookSecret'), 'The new secret'],
    example: { request: { grace_period_seconds: 86400 }, response: { ...EXAMPLE_SECRET, previous_secret_expires_at: '2026-03-02T12:00:00.000Z' } },
  },
  {
    method: 'post', path: '/workflows', id: 'createWorkflow', summary: 'Create a workflow (a draft, version 1)', needs: 'workflow:write', tag: 'Workflows', body: 'CreateWorkflowRequest', idempotent: true, etag: true,
    description: 'A workflow chaining model steps, as a draft at version 1; deploy it to run it. Each problem of the definition is a 400 detail naming it. The answer carries the workflow’s ETag.',
    ok: ['201', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '409': 'ALREADY_EXISTS' },
    example: {
      request: { slug: 'greet', name: 'Greeting', description: 'Shouts a name', definition: EXAMPLE_DEFINITION },
      response: { ...EXAMPLE_WORKFLOW, version: 1, latest_version: 1, status: 'draft', deployed_version: null, updated_at: AT },
    },
  },
  {
    method: 'get', path: '/workflows', id: 'listWorkflows', summary: 'Workflows in the key’s workspaces, by slug', needs: 'workflow:read', tag: 'Workflows',
    description: 'A page of the workflows in the caller’s workspaces, by slug (alphabetical), each without its definition. `next_token` is null on the last page.',
    ok: ['200', ref('WorkflowList'), 'A page of workflows'], example: { response: { items: [EXAMPLE_WORKFLOW_SUMMARY], next_token: null } },
  },
  {
    method: 'get', path: '/workflows/{slug}', id: 'getWorkflow', summary: 'A workflow with its definition (the latest version, or ?version=n)', needs: 'workflow:read', tag: 'Workflows', etag: true,
    description:
      'The workflow with the definition, name and description of its latest version; with `?version=n`, of version n (`version` is then n, `latest_version` the latest; status, deployed_version and times are the workflow’s). ' +
      '404 NOT_FOUND for a version it does not have; 400 for a `version` that is not a positive integer. The ETag header names the workflow’s state (the same with or without `?version`): send it as If-Match on PUT, deploy or DELETE.',
    ok: ['200', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND (also a version it does not have)' }, example: { path: SLUG_PATH, response: EXAMPLE_WORKFLOW },
  },
  {
    method: 'get', path: '/workflows/{slug}/versions', id: 'listWorkflowVersions', summary: 'A workflow’s versions, newest first', needs: 'workflow:read', tag: 'Workflows',
    description:
      'A page of the workflow’s saved versions, newest first (highest version number first), each with its definition, name, description, when and by whom it was saved, and whether it is the deployed one. ' +
      'A page holds at most 1 MB (fewer items, with a `next_token`); `next_token` is null on the last page, and a token of another workflow’s list is 400.',
    ok: ['200', ref('WorkflowVersionList'), 'A page of versions'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' },
    example: { path: SLUG_PATH, response: { items: [EXAMPLE_WORKFLOW_VERSION, { ...EXAMPLE_WORKFLOW_VERSION, version: 1, deployed: false, created_at: AT }], next_token: null } },
  },
  {
    method: 'put', path: '/workflows/{slug}', id: 'updateWorkflow', summary: 'Save a new version', needs: 'workflow:write', tag: 'Workflows', body: 'UpdateWorkflowRequest', etag: true, ifMatch: true,
    description:
      'Saves the definition (with `name` and `description`, each defaulting to the latest version’s) as a new version (`version` + 1); the status and the deployed version stay until the next deploy. ' +
      'A body identical to the latest version (the same definition, name and description, compared as canonical JSON) saves nothing: 200 with the workflow unchanged, whatever the If-Match (the change is already in place), so a retried PUT never makes a second version. ' +
      'With If-Match, only while the workflow is still in the state its ETag names: of two updates sent with the same ETag, one wins and the other is 412. Without If-Match, concurrent updates each get their own version.',
    ok: ['200', ref('Workflow'), 'The workflow'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' },
    example: { path: SLUG_PATH, request: { name: 'Greeting', definition: EXAMPLE_DEFINITION }, response: { ...EXAMPLE_WORKFLOW, version: 3, latest_version: 3 } },
  },
  {
    method: 'post', path: '/workflows/{slug}/deploy', id: 'deployWorkflow', summary: 'Deploy the latest version, or roll back to an older one', needs: 'workflow:write', tag: 'Workflows', body: 'DeployWorkflowRequest', etag: true, ifMatch: true,
    description:
      'Deploys `version` (default, or without a body: the latest): runs use it from now on (`status: deployed`, `deployed_version` = that version). An older version rolls back to it; the latest version stays what it was. ' +
      'Deploying the version already deployed changes nothing (200, whatever the If-Match: a retried deploy gets its answer again). A `version` the workflow does not have is 400 naming it. With If-Match, only while the workflow is in the state its ETag names.',
    ok: ['200', ref('Workflow'), 'The workflow (its latest version), with the deployed version'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' },
    example: { path: SLUG_PATH, request: { version: 1 }, response: { ...EXAMPLE_WORKFLOW, deployed_version: 1 } },
  },
  {
    method: 'delete', path: '/workflows/{slug}', id: 'deleteWorkflow', summary: 'Delete a workflow and its versions', needs: 'workflow:write', tag: 'Workflows', ifMatch: true,
    description:
      'Deletes the workflow and all its versions; its executions stay readable. A DELETE that failed half-way can be retried and finishes the job. With If-Match, only while the workflow is in the state its ETag names (412 otherwise, nothing deleted).',
    ok: ['204', null, 'Deleted'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' }, example: { path: SLUG_PATH },
  },
  {
    method: 'post', path: '/workflows/{slug}/run', id: 'runWorkflow', summary: 'Run the deployed version, synchronously or with ?async=true', needs: 'workflow:run or workflow:{slug}:run (webhook_url: webhook:receive)', tag: 'Workflows',
    body: 'RunWorkflowRequest', idempotent: true,
    description:
      'Runs the deployed version with `input` (checked against its input_schema). Synchronously (the default): 200 with the finished execution, SUCCEEDED or FAILED (a failed run is a 200 with `error` and `failure`), or CANCELLED when another request cancelled it while it ran. With `?async=true`: 202 with the queued execution’s id and a Location; poll it, or ask for a webhook with `webhook_url`.',
    ok: ['200', ref('Execution'), 'Sync: the terminal execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND', '409': 'WORKFLOW_NOT_DEPLOYED' },
    example: { path: SLUG_PATH, request: { input: { name: 'ada' } }, response: EXAMPLE_EXECUTION },
  },
  {
    method: 'get', path: '/models', id: 'listModels', summary: 'The models, built-in ones first', needs: 'any valid key', tag: 'Models',
    description: 'A page of the models a step (or a direct run) may use: the built-in ones first, then the deployment’s own in the order its stack declares them. `next_token` is null on the last page.',
    ok: ['200', ref('ModelList'), 'The models'], example: { response: { items: [EXAMPLE_MODEL], next_token: null } },
  },
  {
    method: 'post', path: '/models/{model_id}/run', id: 'runModel', summary: 'Run one model', needs: 'model:run or model:{id}:run', tag: 'Models', body: 'RunModelRequest', idempotent: true,
    description: 'Runs one model with `input` (checked against its input_schema). 422 MODEL_FAILED when the model fails, or would take longer than a synchronous request may.',
    ok: ['200', ref('ModelOutput'), 'The output'], errors: { '404': 'NOT_FOUND', '422': 'MODEL_FAILED' },
    example: { path: { model_id: 'uppercase' }, request: { input: { text: 'hello' } }, response: { model: 'uppercase', output: { text: 'HELLO' } } },
  },
  {
    method: 'get', path: '/executions', id: 'listExecutions', summary: 'Executions, newest first', needs: 'execution:read', tag: 'Executions',
    description: 'A page of the executions in the caller’s workspaces, newest first (by creation time), optionally of one workflow or one status. `next_token` is null on the last page.',
    ok: ['200', ref('ExecutionList'), 'A page of executions'], example: { response: { items: [EXAMPLE_FAILED_EXECUTION, EXAMPLE_EXECUTION], next_token: null } },
  },
  {
    method: 'get', path: '/executions/{execution_id}', id: 'getExecution', summary: 'An execution', needs: 'execution:read', tag: 'Executions',
    description: 'One execution: its status, input, output, `error` and `failure` when it FAILED, its times, and its webhook’s delivery.',
    ok: ['200', ref('Execution'), 'The execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND' }, example: { path: EXECUTION_PATH, response: EXAMPLE_FAILED_EXECUTION },
  },
  {
    method: 'post', path: '/executions/{execution_id}/cancel', id: 'cancelExecution', summary: 'Cancel an execution in flight', needs: 'execution:cancel', tag: 'Executions',
    description: 'Cancels a QUEUED or RUNNING execution: 200 CANCELLED, also when it already was (a retried cancel is harmless). A cancelled execution never becomes SUCCEEDED. 409 EXECUTION_FINISHED once it SUCCEEDED or FAILED.',
    ok: ['200', ref('Execution'), 'The cancelled execution'], errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND', '409': 'EXECUTION_FINISHED' },
    example: { path: EXECUTION_PATH, response: { ...EXAMPLE_EXECUTION, status: 'CANCELLED', output: null } },
  },
  {
    method: 'post', path: '/executions/{execution_id}/webhook/redeliver', id: 'redeliverWebhook',
    summary: 'Send the execution’s webhook again now (same webhook-id), its retry schedule restarted', needs: 'execution:read and webhook:receive', tag: 'Executions',
    description: 'Sends the ended execution’s webhook again now, with the same webhook-id, and restarts its retry schedule (`attempts` keeps counting). 404 when the run asked for no webhook; 409 EXECUTION_NOT_FINISHED while it is in flight.',
    ok: ['202', ref('Execution'), 'Accepted: the execution, its webhook pending and due now'],
    errors: { '403': 'WORKSPACE_DENIED', '404': 'NOT_FOUND (also: the execution asked for no webhook)', '409': 'EXECUTION_NOT_FINISHED' },
    example: {
      path: EXECUTION_PATH,
      response: { ...EXAMPLE_FAILED_EXECUTION, webhook: { status: 'pending', attempts: 1, last_attempt_at: '2026-03-01T12:00:00.300Z', last_response_status: 204, next_attempt_at: '2026-03-01T13:00:00.000Z' } },
    },
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

/** A delay of the retry schedule in words: `1 min`, `2 h`. */
function delayWords(seconds: number): string {
  return seconds % 3600 === 0 ? `${seconds / 3600} h` : seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
}

/** The retry schedule in words, from the schedule the sender uses (webhook-schedule.ts), so the two cannot differ. */
export function retryScheduleWords(schedule: readonly number[] = DEFAULT_RETRY_SCHEDULE_SECONDS): string {
  const words = schedule.map(delayWords);
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} and ${words.at(-1)!}`;
}

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
            `${retryScheduleWords()} later (each ±20 %, within a minute of being due: ${DEFAULT_RETRY_SCHEDULE_SECONDS.length + 1} attempts in all), then given up (the execution’s webhook.status: failed). ` +
            'POST /executions/{execution_id}/webhook/redeliver sends it again.',
          tags: ['Webhooks'],
          parameters: WEBHOOK_HEADERS,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: ref('WebhookPayload'),
                example: {
                  type,
                  timestamp: EXAMPLE_EXECUTION.finished_at,
                  data: (({ webhook: _w, ...data }) => data)(status === 'FAILED' ? EXAMPLE_FAILED_EXECUTION : status === 'CANCELLED' ? { ...EXAMPLE_EXECUTION, status, output: null } : EXAMPLE_EXECUTION),
                },
              },
            },
          },
          responses: { '2XX': { description: 'Delivered' }, default: { description: 'Not delivered: tried again later' } },
        },
      },
    ]),
  );
}

// ——— The audit trail (API.md §7): its schemas and its one operation, added to the document below. ———

const EXAMPLE_AUDIT_EVENT = {
  event_id: 'evt_7Hq2Lm9Xc4Vb8Nz1Kd5R',
  account_id: 'acct_acme',
  action: 'key.updated',
  occurred_at: AT,
  actor: { kind: 'key', key_id: 'key_Adm1n0Key2Example3A' },
  target: { kind: 'key', id: KEY_ID },
  changes: { name: { from: 'CI', to: 'CI deploy' } },
  request_id: 'c0a8012e-6b7f-4b8e-9f3a-2d1e5c7b9a40',
  source_ip: '203.0.113.7',
  user_agent: 'curl/8.5.0',
};

const AUDIT_SCHEMAS: Record<string, Schema> = {
  AuditEvent: {
    type: 'object',
    required: ['event_id', 'account_id', 'action', 'occurred_at', 'actor', 'target', 'changes', 'request_id', 'source_ip', 'user_agent'],
    properties: {
      event_id: { type: 'string', pattern: '^evt_[0-9A-Za-z]{20}$' },
      account_id: { type: 'string' },
      // Extensible since 1.3.0 (webhook_secret.created was the first action added): a reader shows an action it does not know as it is.
      action: extensible(AUDIT_ACTIONS, 'What changed. An extensible enum: these are the actions today; a new kind of change may add one, so show any other as it is.'),
      occurred_at: TIME,
      actor: {
        type: 'object',
        required: ['kind'],
        description: 'A key (`key_id`), a person (`subject`, `email`), an operator (the admin CLI) or the system (housekeeping, or a run’s webhook making the account’s first webhook secret).',
        properties: { kind: { enum: ['key', 'person', 'operator', 'system'] }, key_id: { type: 'string' }, subject: { type: 'string' }, email: PERSON_EMAIL },
      },
      target: {
        type: 'object',
        required: ['kind', 'id'],
        description: 'A key (its key_id), the account or its webhook secret (the account id), a member (their subject).',
        properties: { kind: { enum: ['key', 'account', 'webhook_secret', 'member'] }, id: { type: 'string' } },
      },
      changes: {
        type: ['object', 'null'],
        description: 'Each changed field as {from, to} (null where it did not exist before, or no longer does). Never a key, a key hash or a webhook secret.',
        additionalProperties: { type: 'object', required: ['from', 'to'], properties: { from: {}, to: {} } },
      },
      request_id: { type: ['string', 'null'], description: 'The API request that made the change; null for the admin CLI and the system.' },
      source_ip: { type: ['string', 'null'] },
      user_agent: { type: ['string', 'null'], description: 'At most 512 characters.' },
    },
  },
  AuditEventList: page('AuditEvent'),
};

const AUDIT_OPERATIONS: Operation[] = [
  {
    method: 'get', path: '/audit-events', id: 'listAuditEvents', summary: 'The account’s audit trail, newest first', needs: 'audit:read', tag: 'Audit',
    description:
      'A page of the account’s audit events, newest first, optionally filtered (each filter at most once; pass the same filters with next_token). An unknown or repeated parameter, an unknown action, a malformed time or `since` after `until` is 400 naming it.',
    ok: ['200', ref('AuditEventList'), 'A page of events (pass the same filters with next_token; another page’s token, or another account’s, is 400)'],
    example: { response: { items: [EXAMPLE_AUDIT_EVENT], next_token: null } },
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

/** The `WWW-Authenticate` of a 401 (lib/gateway-responses.ts `challenges`). */
const UNAUTHORIZED_HEADERS = {
  ...REQUEST_ID_HEADERS,
  'WWW-Authenticate': {
    schema: { type: 'string' },
    description:
      'No bearer token sent: `ApiKey realm="knouds", Bearer realm="knouds"` (send a key in x-api-key, or a person’s access token). A bearer token refused: `Bearer realm="knouds", error="invalid_token", …` (RFC 6750). The realm is the deployment’s key prefix.',
  },
};

/** The query parameters of an operation: the list the handlers enforce (query-parameters.ts). */
function queryParameters(o: Operation): Schema[] {
  return (ROUTE_QUERY_PARAMETERS[`${o.method.toUpperCase()} ${o.path}`] ?? []).map((p) => ({
    name: p.name,
    in: 'query',
    required: false,
    schema: p.schema,
    ...(p.description ? { description: p.description } : {}),
  }));
}

/** The operations that take no body (RouteDef.noBody): one sent is 400. */
const NO_BODY = new Set(['revokeKey', 'deleteWorkflow', 'cancelExecution', 'redeliverWebhook']);

function operation(o: Operation): Schema {
  const pathParams = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
    ...(o.example.path?.[m[1]!] !== undefined ? { example: o.example.path[m[1]!] } : {}),
  }));
  const query = queryParameters(o);
  const [status, schema, description] = o.ok;
  const okHeaders = {
    ...(o.noKey ? REQUEST_ID_HEADERS : o.idempotent ? { ...RATE_HEADERS, ...REPLAYED_HEADERS } : RATE_HEADERS),
    ...(o.etag ? ETAG_HEADERS : {}),
  };
  const responses: Record<string, unknown> = {
    [status]: schema ? json(schema, description, okHeaders, o.example.response) : { description, headers: okHeaders },
  };
  if (o.path === '/workflows/{slug}/run') {
    responses['202'] = json(ref('QueuedExecution'), 'Async: the queued execution', { ...okHeaders, Location: { schema: { type: 'string' } } }, { execution_id: EXECUTION_ID, status: 'QUEUED' });
  }
  // GET /health is the gateway’s alone (a mock): it cannot refuse a parameter. Every other operation
  // refuses unknown query parameters (400), besides its own validation.
  if (o.path !== '/health') {
    responses['400'] = json(
      ref('Error'),
      `VALIDATION_ERROR, with details${o.idempotent ? ` (an invalid ${IDEMPOTENCY_HEADER} among them)` : ''}; also for a query parameter the operation does not take, or one given more than once${NO_BODY.has(o.id) ? ', and for a body (the operation takes none: send none, `{}` or `null`)' : ''}${o.body ? ', for a string that is not Unicode (a lone surrogate escape), and for a number that cannot be stored (a magnitude of 1e126 or more, or under 1e-130)' : ''}`,
      o.noKey ? REQUEST_ID_HEADERS : RATE_HEADERS,
    );
  }
  if (!o.noKey) {
    responses['401'] = json(ref('Error'), 'UNAUTHORIZED: no credentials, an invalid, revoked or expired key, or a refused bearer token', UNAUTHORIZED_HEADERS);
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
    if (o.ifMatch) responses['412'] = error('PRECONDITION_FAILED: the If-Match does not match the workflow’s ETag (it changed since it was read): read it again, then retry with the new ETag');
    if (o.body) responses['413'] = error('PAYLOAD_TOO_LARGE');
    responses['429'] = json(
      ref('Error'),
      o.path === '/workflows/{slug}/run'
        ? 'RATE_LIMIT_EXCEEDED; or CONCURRENCY_LIMIT_EXCEEDED (with `limit`): the account has its tier’s number of async executions in flight (with ?async=true) or of sync executions running (without); or THROTTLED: the stage’s own limit (all callers together)'
        : o.path === '/models/{model_id}/run'
          ? 'RATE_LIMIT_EXCEEDED; or CONCURRENCY_LIMIT_EXCEEDED (with `limit`): a model that waits (sleep, a deployment’s own model) and the account has its tier’s number of sync runs running; or THROTTLED: the stage’s own limit (all callers together)'
          : 'RATE_LIMIT_EXCEEDED; or THROTTLED: the stage’s own limit (all callers together)',
      { ...RATE_HEADERS, 'Retry-After': { schema: { type: 'integer' } } },
    );
  }
  responses['500'] = json(ref('Error'), 'INTERNAL_ERROR, with request_id', REQUEST_ID_HEADERS);
  const bodyRequired = o.body !== undefined && !['RotateKeyRequest', 'RotateWebhookSecretRequest', 'DeployWorkflowRequest', 'RunWorkflowRequest', 'RunModelRequest'].includes(o.body);
  return {
    operationId: o.id,
    summary: o.summary,
    description: o.description,
    tags: [o.tag],
    ...(o.noKey ? { security: [] } : {}),
    ...(o.needs ? { 'x-knouds-capability': o.needs } : {}),
    parameters: [...pathParams, ...query, ...(o.idempotent ? [IDEMPOTENCY_PARAMETER] : []), ...(o.ifMatch ? [IF_MATCH_PARAMETER] : []), ...(o.noKey ? [] : [ACCOUNT_PARAMETER])],
    ...(o.body
      ? { requestBody: { required: bodyRequired, content: { 'application/json': { schema: ref(o.body), ...(o.example.request !== undefined ? { example: o.example.request } : {}) } } } }
      : {}),
    responses,
  };
}

/**
 * The version of this document, per the policy below: MAJOR is the stage (`/v1`); MINOR grows with
 * each release that adds (1.1.0: `request_id` in every error and `x-request-id` on every answer, 405
 * METHOD_NOT_ALLOWED, `failure` on executions, `limit`/`active` on KEY_LIMIT_REACHED, paged GET
 * /models, the IETF RateLimit headers, extensible enums; 1.2.0: keys' `metadata`, `enabled` and
 * `expires_at` at creation, and workflow versions: GET /workflows/{slug}/versions, `?version=n`,
 * deploy's `{version}`, `latest_version`, ETag and If-Match with 412 PRECONDITION_FAILED; 1.3.0: keys'
 * `rotated_to`, audit actions an extensible enum with `webhook_secret.created`, a rotation's replacement
 * recorded as `key.created` with `rotated_from`); PATCH corrects the document alone.
 */
export const API_VERSION = '1.3.0';

/** The breaking-change policy (API.md §4 "Evolution"), as `info.description` publishes it. */
export const EVOLUTION_POLICY =
  'Versioning. The major version is the stage in the URL (`/v1`). Within it the API only grows: new operations, new optional request fields, ' +
  'headers and query parameters, new response fields and headers, new error codes, new values of an extensible enum (`x-extensible-enum`: error codes, ' +
  'failure codes, capabilities, audit actions) may appear in any release. Clients must ignore response fields they do not know (no response schema here ' +
  'forbids extra fields), and treat an unknown error code by its HTTP status. A breaking change — removing or renaming an operation, a field, a parameter ' +
  'or an enum value; changing a type, a format or a meaning; making something optional required; answering an existing case with another status; or ' +
  'tightening a rule — comes only with a new major version, a new stage (`/v2`), the old one kept. Deprecated fields (`deprecated: true`, like the legacy ' +
  '`scope` of POST /keys) keep working within their major version. Requests stay strict: an unknown body field or query parameter is 400, so a mistyped ' +
  'name never goes unnoticed. `info.version` is MAJOR.MINOR.PATCH: MAJOR the stage, MINOR for each release that adds, PATCH for corrections of this ' +
  'document alone.';

export function buildOpenApiDocument(): Schema {
  const paths: Record<string, Schema> = {};
  for (const o of [...OPERATIONS, ...AUDIT_OPERATIONS]) paths[o.path] = { ...paths[o.path], [o.method]: operation(o) };
  const requestSchemas = Object.fromEntries(Object.entries(REQUEST_SCHEMAS).map(([name, s]) => [name, toJsonSchema2020(s)]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Knouds API',
      version: API_VERSION,
      description:
        'Call workflows and models with API keys, or as a signed-in person. Every request but GET /health and GET /openapi.json carries a key in `x-api-key` or a person’s access token in `Authorization: Bearer`. ' +
        `Presets: ${PRESET_NAMES.join(', ')}; legacy scopes (deprecated): ${SCOPE_NAMES.join(', ')}; expiry in days: ${EXPIRY_DAYS.join(', ')}; ` +
        `rotation grace period up to ${MAX_GRACE_PERIOD_SECONDS} s.\n\n` +
        'Errors: every error is `{error, code, request_id, …}` and every answer carries `x-request-id`; a known path with a method it does not have is 405 ' +
        'METHOD_NOT_ALLOWED with `Allow`; a 401 carries `WWW-Authenticate`. Lists take `limit` and `next_token` and answer `{items, next_token}`, ' +
        '`next_token` null on the last page (never an empty page after it); each says its order.\n\n' +
        EVOLUTION_POLICY,
    },
    servers: [
      { url: 'http://localhost:{port}/v1', description: 'npm start (its PORT)', variables: { port: { default: '3000' } } },
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
