/**
 * Request body schemas (JSON Schema, validated with Ajv): the one place request shapes are defined,
 * used by the HTTP handlers and the admin CLI alike.
 */
import type { Ajv as AjvClass, ErrorObject, JSONSchemaType, Options } from 'ajv';
import { ValidationError, type FieldError } from './errors.js';
import { PRESET_NAMES, SCOPE_NAMES, type PresetName, type ScopeName } from './capabilities.js';
import type { KeyEnvironment } from './api-key.js';
import { MAX_STEPS, STEP_ID_PATTERN } from './workflow-definition.js';

/** Ajv's options for the request schemas: the same at build time (lib/request-validators.ts) and at run time. */
export const REQUEST_SCHEMA_OPTIONS: Options = { allErrors: true, strict: true, strictRequired: false };

export const EXPIRY_DAYS = [7, 30, 60, 90, 180, 365] as const;

/** A POST /keys body as the schema admits it: an optional field may come as null, which counts as left out. */
export interface CreateKeyBody {
  name: string;
  capabilities?: string[] | null;
  preset?: PresetName | null;
  scope?: ScopeName | null;
  workspaces?: string[] | null;
  expires_in_days?: (typeof EXPIRY_DAYS)[number] | null;
  /** An exact expiry instead of `expires_in_days` (not both): in the future, at most MAX_EXPIRY_DAYS ahead. */
  expires_at?: string | null;
  environment?: KeyEnvironment | null;
  metadata?: KeyMetadata | null;
  enabled?: boolean | null;
}

/** A key's metadata (API.md §4): a string map of at most 20 entries, keys 1–40 and values 0–500 characters. */
export type KeyMetadata = Record<string, string>;
export const MAX_METADATA_ENTRIES = 20;
export const MAX_METADATA_KEY_LENGTH = 40;
export const MAX_METADATA_VALUE_LENGTH = 500;
/** Metadata keys refused: the members of every JavaScript object (`Object.prototype`'s own names). */
export const RESERVED_METADATA_KEYS = [
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  'toString',
  'valueOf',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
];
/** `expires_at` may be at most this far ahead (as `expires_in_days` at most). */
export const MAX_EXPIRY_DAYS = 365;
/** RFC 3339 date-time with `Z` or an offset (ISO-8601's profile the API speaks); checked for a real instant by the service. */
export const DATE_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$';

export const WORKSPACE_PATTERN = '^(\\*|[A-Za-z0-9][A-Za-z0-9_-]{0,63})$';

const NAME = { type: 'string', minLength: 1, maxLength: 100 } as const;
const CAPABILITIES = { type: 'array', nullable: true, items: { type: 'string' }, minItems: 1, maxItems: 100 } as const;
const WORKSPACES = {
  type: 'array',
  nullable: true,
  items: { type: 'string', pattern: WORKSPACE_PATTERN },
  minItems: 1,
  maxItems: 100,
  uniqueItems: true,
} as const;

const METADATA = {
  type: 'object',
  nullable: true,
  description: `A string map: at most ${MAX_METADATA_ENTRIES} entries, keys 1–${MAX_METADATA_KEY_LENGTH} characters (not the names of JavaScript's object members: ${RESERVED_METADATA_KEYS.join(', ')}), values up to ${MAX_METADATA_VALUE_LENGTH}.`,
  maxProperties: MAX_METADATA_ENTRIES,
  // The names of JavaScript's object members are refused: readers of the map (DynamoDB's own marshalling
  // among them: `toString` made it throw, `__proto__` is taken as the prototype) treat them as members.
  propertyNames: { type: 'string', minLength: 1, maxLength: MAX_METADATA_KEY_LENGTH, not: { enum: RESERVED_METADATA_KEYS } },
  additionalProperties: { type: 'string', maxLength: MAX_METADATA_VALUE_LENGTH },
  required: [],
} as const;

/** `field` is in the body and not null. */
const given = (field: string, type: 'array' | 'string') => ({ required: [field], properties: { [field]: { type } } }) as const;

const createKeySchema: JSONSchemaType<CreateKeyBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: NAME,
    capabilities: CAPABILITIES,
    preset: { type: 'string', nullable: true, enum: [...PRESET_NAMES, null] },
    // Still accepted in /v1 (API.md §2 "Legacy scopes"); new clients give `capabilities` or a `preset`.
    scope: {
      type: 'string',
      nullable: true,
      enum: [...SCOPE_NAMES, null],
      deprecated: true,
      description: 'Deprecated: a legacy scope (each includes the one before). Still accepted in /v1; give `capabilities` or a `preset` instead.',
    },
    workspaces: WORKSPACES,
    expires_in_days: { type: 'integer', nullable: true, enum: [...EXPIRY_DAYS, null] },
    expires_at: {
      type: 'string',
      nullable: true,
      maxLength: 40,
      pattern: DATE_TIME_PATTERN,
      description: `An exact expiry instead of \`expires_in_days\` (not both): an ISO-8601 date-time with \`Z\` or an offset, in the future, at most ${MAX_EXPIRY_DAYS} days ahead. The key is refused from that instant.`,
    },
    environment: { type: 'string', nullable: true, enum: ['live', 'test', null] },
    metadata: METADATA,
    enabled: { type: 'boolean', nullable: true, description: 'Default true. A key made disabled holds its slot and is refused (401) until enabled.' },
  },
  // An optional field given as null is not given (the OpenAPI document types each as `… | null`).
  oneOf: [given('capabilities', 'array'), given('preset', 'string'), given('scope', 'string')],
  // Both given (neither null) is refused. `type: 'object'` inside, so that a body that is not an object
  // fails only its own `type` check rather than this one too.
  not: { type: 'object', required: ['expires_in_days', 'expires_at'], properties: { expires_in_days: { type: 'integer' }, expires_at: { type: 'string' } } },
};

export interface UpdateKeyBody {
  name?: string;
  capabilities?: string[];
  workspaces?: string[];
  /** Replaces the whole map (`{}` clears it). */
  metadata?: KeyMetadata;
  enabled?: boolean;
}

const updateKeySchema: JSONSchemaType<UpdateKeyBody> = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { ...NAME, nullable: true },
    capabilities: CAPABILITIES,
    workspaces: WORKSPACES,
    metadata: { ...METADATA, description: `${METADATA.description} Replaces the key's whole map (\`{}\` clears it).` },
    enabled: { type: 'boolean', nullable: true, description: 'false: the key is refused (401) from its next request and keeps its slot; true: it works again.' },
  },
};

export const MAX_GRACE_PERIOD_SECONDS = 86_400;

export interface RotateKeyBody {
  grace_period_seconds?: number;
}

const rotateKeySchema: JSONSchemaType<RotateKeyBody> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    grace_period_seconds: { type: 'integer', nullable: true, minimum: 0, maximum: MAX_GRACE_PERIOD_SECONDS },
  },
};

export const MAX_WEBHOOK_SECRET_GRACE_SECONDS = 604_800;

export interface RotateWebhookSecretBody {
  grace_period_seconds?: number;
}

const rotateWebhookSecretSchema: JSONSchemaType<RotateWebhookSecretBody> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    grace_period_seconds: { type: 'integer', nullable: true, minimum: 0, maximum: MAX_WEBHOOK_SECRET_GRACE_SECONDS },
  },
};

function toFieldErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
  // A body that is not an object: that alone, not what the object's own checks make of it.
  if (errors?.some((e) => e.keyword === 'type' && e.instancePath === '')) return [{ field: 'body', message: 'must be a JSON object' }];
  const out: FieldError[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'minProperties' && e.instancePath === '') {
      out.push({ field: 'body', message: 'give at least one of name, capabilities, workspaces, metadata, enabled' });
      continue;
    }
    // POST /keys: `expires_at` and `expires_in_days` together.
    if (e.keyword === 'not' && e.schemaPath === '#/not') {
      out.push({ field: 'expires_at', message: 'give expires_at or expires_in_days, not both' });
      continue;
    }
    if (e.keyword === 'propertyNames') continue; // its own error (below) names the key
    const { propertyName } = e as ErrorObject & { propertyName?: string };
    if (propertyName !== undefined) {
      const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      out.push({
        field: path,
        message: RESERVED_METADATA_KEYS.includes(propertyName)
          ? `key '${propertyName}' is reserved (a name every JavaScript object has): use another name`
          : `key '${propertyName}' must be 1 to ${MAX_METADATA_KEY_LENGTH} characters`,
      });
      continue;
    }
    if (e.keyword === 'pattern' && e.params['pattern'] === DATE_TIME_PATTERN) {
      out.push({ field: e.instancePath.replace(/^\//, '').replace(/\//g, '.'), message: 'must be an ISO-8601 date-time with Z or an offset (e.g. 2026-03-01T12:00:00Z)' });
      continue;
    }
    if (e.keyword === 'maxProperties') {
      out.push({ field: e.instancePath.replace(/^\//, '').replace(/\//g, '.'), message: `must hold at most ${String(e.params['limit'])} entries` });
      continue;
    }
    if (e.keyword === 'type' && e.instancePath === '') {
      out.push({ field: 'body', message: 'must be a JSON object' });
      continue;
    }
    if (e.keyword === 'oneOf') {
      out.push({ field: 'capabilities', message: 'give exactly one of capabilities, preset or scope' });
      continue;
    }
    if (e.schemaPath.startsWith('#/oneOf/')) continue; // summarised by oneOf
    const missing = e.keyword === 'required' ? String(e.params['missingProperty']) : undefined;
    const extra = e.keyword === 'additionalProperties' ? String(e.params['additionalProperty']) : undefined;
    const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const field = [path, missing ?? extra].filter(Boolean).join('.') || 'body';
    const message = extra
      ? 'is not a known field'
      : e.keyword === 'enum'
        ? `must be one of ${(e.params['allowedValues'] as unknown[]).filter((v) => v !== null).join(', ')}`
        : (e.message ?? 'is not valid');
    out.push({ field, message });
  }
  return out;
}

function check<T>(validate: Validator, body: unknown): T {
  if (validate(body)) return body as T;
  const details = toFieldErrors(validate.errors);
  const first = details[0];
  throw new ValidationError(details, first ? `${first.field}: ${first.message}` : 'The request body is not valid');
}

export const parseCreateKeyBody = (body: unknown): CreateKeyBody => check(validator('CreateKeyRequest'), body);
export const parseUpdateKeyBody = (body: unknown): UpdateKeyBody => check(validator('UpdateKeyRequest'), body);
export const parseRotateKeyBody = (body: unknown): RotateKeyBody => check(validator('RotateKeyRequest'), body);
export const parseRotateWebhookSecretBody = (body: unknown): RotateWebhookSecretBody => check(validator('RotateWebhookSecretRequest'), body ?? {});

/** `?limit=` (1–100, default 50) and `?next_token=` of every list (API.md §4). */
export function parsePageParams(query: Record<string, string | undefined> | null): { limit: number; nextToken?: string } {
  const raw = query?.['limit'];
  let limit = 50;
  if (raw !== undefined) {
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 100) {
      throw ValidationError.field('limit', 'must be an integer from 1 to 100');
    }
    limit = Number(raw);
  }
  const nextToken = query?.['next_token'];
  if (nextToken !== undefined && (nextToken === '' || nextToken.length > 2048)) {
    throw ValidationError.field('next_token', 'is not a valid page token');
  }
  return { limit, ...(nextToken !== undefined ? { nextToken } : {}) };
}

/** `?days=` of a key's usage (API.md §4): an integer from 1 to 90, default 30. */
export function parseDaysParam(query: Record<string, string | undefined> | null): number {
  const raw = query?.['days'];
  if (raw === undefined) return 30;
  if (!/^\d{1,2}$/.test(raw) || Number(raw) < 1 || Number(raw) > 90) throw ValidationError.field('days', 'must be an integer from 1 to 90');
  return Number(raw);
}

/**
 * `?async=` of a workflow run (API.md §4): `true` or `false`, once; absent is `false`. Anything else
 * (`1`, an empty value, the parameter twice) is 400 VALIDATION_ERROR naming `async`.
 */
export function parseAsyncParam(
  multi: Record<string, string[] | undefined> | null | undefined,
  single: Record<string, string | undefined> | null | undefined,
): boolean {
  const values = multi?.['async'] ?? (single?.['async'] !== undefined ? [single['async']] : []);
  if (values.length === 0) return false;
  if (values.length > 1) throw ValidationError.field('async', 'must be given once, as true or false');
  if (values[0] === 'true') return true;
  if (values[0] === 'false') return false;
  throw ValidationError.field('async', 'must be true or false');
}

// ——— Workflows, runs, models ———

/**
 * `?version=` of GET /workflows/{slug} (API.md §4 "Workflow versions"): absent (the latest), or a
 * positive integer given once; anything else is 400 VALIDATION_ERROR naming `version`.
 */
export function parseVersionParam(
  multi: Record<string, string[] | undefined> | null | undefined,
  single: Record<string, string | undefined> | null | undefined,
): number | undefined {
  const values = multi?.['version'] ?? (single?.['version'] !== undefined ? [single['version']] : []);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw ValidationError.field('version', 'must be given once');
  if (!/^[1-9][0-9]{0,8}$/.test(values[0] ?? '')) throw ValidationError.field('version', 'must be a positive integer (a version number)');
  return Number(values[0]);
}

export interface DefinitionBody {
  input_schema: Record<string, unknown>;
  steps: { id: string; model: string; input: unknown }[];
  output: string;
}

const definitionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['input_schema', 'steps', 'output'],
  properties: {
    // `additionalProperties: true` says nothing more to a validator; it tells generated clients that a
    // schema is an open map (openapi-typescript types a bare `type: object` as an empty one).
    input_schema: { type: 'object', additionalProperties: true },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_STEPS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'model', 'input'],
        properties: {
          id: { type: 'string', pattern: STEP_ID_PATTERN.source },
          model: { type: 'string', minLength: 1, maxLength: 63 },
          input: {},
        },
      },
    },
    output: { type: 'string', pattern: '^\\$\\.' },
  },
} as const;

export const SLUG_SCHEMA_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

export interface CreateWorkflowBody {
  slug: string;
  name: string;
  definition: DefinitionBody;
  workspace_id?: string;
  description?: string;
}

export interface UpdateWorkflowBody {
  definition: DefinitionBody;
  name?: string;
  description?: string;
}

/** POST /workflows/{slug}/deploy: the version to deploy (default: the latest). */
export interface DeployWorkflowBody {
  version?: number;
}

export interface RunBody {
  input?: unknown;
  webhook_url?: string;
}

const DESCRIPTION = { type: 'string', maxLength: 1000 } as const;

const createWorkflowSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['slug', 'name', 'definition'],
  properties: {
    slug: { type: 'string', pattern: SLUG_SCHEMA_PATTERN },
    name: NAME,
    definition: definitionSchema,
    workspace_id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
    description: DESCRIPTION,
  },
} as const;
const updateWorkflowSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['definition'],
  properties: { definition: definitionSchema, name: NAME, description: DESCRIPTION },
} as const;
const deployWorkflowSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'integer', minimum: 1, description: 'The version to deploy, one of the workflow’s (default: the latest); an older one rolls back to it.' },
  },
} as const;
const runSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { input: {}, webhook_url: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const;
const modelRunSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { input: {} },
} as const;

/**
 * Every request body schema by name: what the handlers validate with, and what the OpenAPI document
 * (openapi.ts) publishes, so the two cannot drift.
 */
export const REQUEST_SCHEMAS: Readonly<Record<string, object>> = {
  CreateKeyRequest: createKeySchema,
  UpdateKeyRequest: updateKeySchema,
  RotateKeyRequest: rotateKeySchema,
  RotateWebhookSecretRequest: rotateWebhookSecretSchema,
  CreateWorkflowRequest: createWorkflowSchema,
  UpdateWorkflowRequest: updateWorkflowSchema,
  DeployWorkflowRequest: deployWorkflowSchema,
  RunWorkflowRequest: runSchema,
  RunModelRequest: modelRunSchema,
};

export const parseCreateWorkflowBody = (body: unknown): CreateWorkflowBody => check(validator('CreateWorkflowRequest'), body);
export const parseUpdateWorkflowBody = (body: unknown): UpdateWorkflowBody => check(validator('UpdateWorkflowRequest'), body);
export const parseDeployWorkflowBody = (body: unknown): DeployWorkflowBody => check(validator('DeployWorkflowRequest'), body ?? {});
export const parseRunBody = (body: unknown): RunBody => check(validator('RunWorkflowRequest'), body ?? {});
export const parseModelRunBody = (body: unknown): { input?: unknown } => check(validator('RunModelRequest'), body ?? {});

// ——— How the validators are compiled ———

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * In a function's bundle the validators of REQUEST_SCHEMAS are Ajv standalone code generated at build time
 * (lib/request-validators.ts writes it; the bundler injects it as `__knoudsRequestValidators` and defines
 * `KNOUDS_PREBUILT_VALIDATORS`, which drops the branch below, Ajv with it): a cold start compiles nothing.
 * Elsewhere (tests, the admin CLI, the local runner's own process) Ajv compiles each schema here on first use.
 */
declare const KNOUDS_PREBUILT_VALIDATORS: true;
declare const __knoudsRequestValidators: Readonly<Record<string, Validator>>;
const validator: (name: string) => Validator =
  typeof KNOUDS_PREBUILT_VALIDATORS !== 'undefined' ? (name) => __knoudsRequestValidators[name]! : await runtimeValidators();

async function runtimeValidators(): Promise<(name: string) => Validator> {
  // A specifier the bundler does not follow: in a bundle this function is dropped, and a followed
  // `import('ajv')` would still put Ajv in a chunk every cold start loads.
  const ajvModule = ['ajv'].join('');
  const { Ajv } = (await import(ajvModule)) as { Ajv: typeof AjvClass };
  const ajv = new Ajv(REQUEST_SCHEMA_OPTIONS);
  const compiled = new Map<string, Validator>();
  return (name) => {
    let found = compiled.get(name);
    if (!found) {
      const schema = REQUEST_SCHEMAS[name];
      if (!schema) throw new Error(`no request schema named ${name}`);
      found = ajv.compile(schema);
      compiled.set(name, found);
    }
    return found;
  };
}
