/**
 * Keys Lambda: every /keys route (API.md §4 "Keys"), GET /me, the account's webhook secret, and the
 * account's audit trail (GET /audit-events, API.md §7), which records the changes these routes make.
 */
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { authenticatedHandler, json, type ProxyEvent, type RouteDef } from '../shared/http.js';
import { AuditRepository, type RequestMeta } from '../shared/repositories/audit.js';
import { listAuditEvents } from '../shared/services/audit.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { IdempotencyRepository } from '../shared/repositories/idempotency.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { KEY_CAPABILITIES_CONTEXT, KEY_METADATA_CONTEXT } from '../shared/api-key.js';
import { KeysRepository } from '../shared/repositories/keys.js';
import { UsageRepository } from '../shared/repositories/usage.js';
import { MembershipsRepository } from '../shared/repositories/memberships.js';
import { NotFoundError } from '../shared/errors.js';
import { isCapability, type Capability } from '../shared/capabilities.js';
import { me, type MeDeps } from '../shared/services/me.js';
import { parseDaysParam, parsePageParams } from '../shared/schemas.js';
import {
  createKey,
  getKey,
  keyUsage,
  listKeys,
  revokeKey,
  rotateKey,
  updateKey,
  type CreatedKey,
  type KeyServiceDeps,
} from '../shared/services/keys.js';
import { settingsFromEnv } from '../shared/settings.js';
import { getWebhookSecret, rotateWebhookSecret, type WebhookSecretView } from '../shared/services/webhook-secrets.js';

const doc = createDocumentClient();
const usage = new UsageRepository(doc, requireEnv(TABLE_ENV.usage));
const accountsTable = requireEnv(TABLE_ENV.accounts);
const settings = settingsFromEnv();
const deps: KeyServiceDeps & MeDeps = {
  keys: new KeysRepository(doc, { keys: requireEnv(TABLE_ENV.keys), accounts: accountsTable }),
  accounts: new AccountsRepository(doc, accountsTable, secretBoxFromEnv()),
  memberships: new MembershipsRepository(doc, requireEnv(TABLE_ENV.memberships)),
  usage,
  audit: new AuditRepository(doc, requireEnv(TABLE_ENV.audit), settings.auditRetentionDays),
  settings,
};

/** Where a request came from, for its audit event: API Gateway's request id, the client's address and user agent. */
function requestMeta(event: ProxyEvent): RequestMeta {
  const agent = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'user-agent')?.[1];
  return {
    request_id: event.requestContext?.requestId ?? null,
    source_ip: event.requestContext?.identity?.sourceIp ?? null,
    user_agent: agent ?? event.requestContext?.identity?.userAgent ?? null,
  };
}

/**
 * The calling key's metadata, which the authorizer passes beside the caller (KEY_METADATA_CONTEXT): `{}`
 * from an authorizer deployed before it did. Anything else is a defect, never a guess.
 */
function metadataOf(event: ProxyEvent): Record<string, string> {
  const raw = (event.requestContext?.authorizer as Record<string, unknown> | null | undefined)?.[KEY_METADATA_CONTEXT];
  if (raw === undefined) return {};
  const value: unknown = JSON.parse(String(raw));
  if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new Error('authorizer context key_metadata is not a string map');
  }
  return Object.fromEntries(Object.entries(value as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The calling key's own capabilities: those the authorizer passes (KEY_CAPABILITIES_CONTEXT) when some are
 * out of force under the tier's ceiling, else the caller's (all in force).
 */
function ownCapabilities(event: ProxyEvent, inForce: readonly Capability[]): readonly Capability[] {
  const raw = (event.requestContext?.authorizer as Record<string, unknown> | null | undefined)?.[KEY_CAPABILITIES_CONTEXT];
  if (raw === undefined) return inForce;
  const value: unknown = JSON.parse(String(raw));
  if (!Array.isArray(value) || !value.every((c) => typeof c === 'string' && isCapability(c))) {
    throw new Error('authorizer context key_capabilities is not a capability list');
  }
  return value as Capability[];
}

/** Past this, 413: room for the largest body the contract allows (see the handler). */
export const KEYS_MAX_BODY_BYTES = 160 * 1024;

const created = ({ key, apiKey }: CreatedKey) => json(201, { ...key, api_key: apiKey });
const rotatedSecret = (secrets: WebhookSecretView) => json(200, secrets);

const routes: Record<string, RouteDef> = {
  /** The calling key, from the authorizer context: its only I/O is the counter write. */
  'GET /me': {
    handle: async ({ caller, hit }) => json(200, await me(deps, caller, hit)),
  },
  'GET /keys/verify': {
    handle: async ({ caller, hit, event }) => {
      // People have no calling key: this route is for keys (a person asks GET /me).
      if (caller.kind !== 'key') throw new NotFoundError('There is no calling key: GET /keys/verify is for API keys; a signed-in person asks GET /me');
      return json(200, {
        key_id: caller.keyId,
        name: caller.name,
        prefix: caller.prefix,
        environment: caller.environment,
        // The key's own, as GET /keys/{id} shows them; GET /me shows those in force.
        capabilities: ownCapabilities(event, caller.capabilities),
        workspaces: caller.workspaces,
        account_id: caller.accountId,
        tier: caller.tier,
        created_at: caller.createdAt,
        expires_at: caller.expiresAt,
        created_by: caller.createdBy,
        metadata: metadataOf(event),
        // The authorizer lets no disabled key through.
        enabled: true,
        rotated_to: caller.rotatedTo,
        last_used: hit.now.toISOString(),
        rate_limit: { limit: hit.limit, remaining: hit.remaining, reset: hit.reset },
      });
    },
  },
  'POST /keys': {
    needs: 'keys:write',
    // A replay never shows the plaintext: it is not kept (API.md §1, §4).
    idempotent: { omit: ['api_key'] },
    // The answer is kept by the key's own transaction (keepAs): a request that dies after the key
    // committed is replayed to its retry, which never makes a second key.
    handle: async ({ caller, grant, body, event, keepAs }) => created(await createKey(deps, caller.accountId, body(), grant, requestMeta(event), keepAs(created))),
  },
  'GET /keys': {
    needs: 'keys:read',
    handle: async ({ caller, event }) => {
      const { limit, nextToken } = parsePageParams(event.queryStringParameters);
      return json(200, await listKeys(deps, caller.accountId, limit, nextToken));
    },
  },
  'GET /keys/{key_id}': {
    needs: 'keys:read',
    handle: async ({ caller, param }) => json(200, await getKey(deps, caller.accountId, param('key_id'))),
  },
  'PATCH /keys/{key_id}': {
    needs: 'keys:write',
    handle: async ({ caller, grant, param, body, event }) =>
      json(200, await updateKey(deps, caller.accountId, param('key_id'), body(), grant, requestMeta(event))),
  },
  'DELETE /keys/{key_id}': {
    needs: 'keys:write',
    noBody: true,
    handle: async ({ caller, grant, param, event }) => {
      await revokeKey(deps, caller.accountId, param('key_id'), grant, requestMeta(event));
      return { statusCode: 204, headers: {}, body: '' };
    },
  },
  'POST /keys/{key_id}/rotate': {
    needs: 'keys:write',
    idempotent: { omit: ['api_key'] },
    handle: async ({ caller, grant, param, body, event, keepAs }) =>
      created(await rotateKey(deps, caller.accountId, param('key_id'), body(), grant, requestMeta(event), keepAs(created))),
  },
  'GET /webhooks/secret': {
    needs: 'keys:read',
    // Made on first use: by this caller, which the secret's webhook_secret.created event records.
    handle: async ({ caller, grant, event }) => json(200, await getWebhookSecret(deps, caller.accountId, grant.principal, requestMeta(event))),
  },
  'POST /webhooks/secret/rotate': {
    needs: 'keys:write',
    // A retry after a lost answer must not rotate again: that would end the grace of the secret the
    // receivers still use. A replay has no `secret` (never kept): GET /webhooks/secret reads it.
    idempotent: { omit: ['secret'] },
    handle: async ({ caller, grant, body, event, keepAs }) =>
      rotatedSecret(await rotateWebhookSecret(deps, caller.accountId, body(), grant.principal, requestMeta(event), keepAs(rotatedSecret))),
  },
  'GET /keys/{key_id}/usage': {
    needs: 'keys:read',
    handle: async ({ caller, param, event }) =>
      json(200, await keyUsage(deps, caller.accountId, param('key_id'), parseDaysParam(event.queryStringParameters))),
  },
  'GET /audit-events': {
    needs: 'audit:read',
    handle: async ({ caller, event }) => {
      // Every value of each parameter, so a repeated one is refused rather than one of them read.
      const single = event.queryStringParameters ?? {};
      const query = event.multiValueQueryStringParameters ?? Object.fromEntries(Object.entries(single).map(([k, v]) => [k, v === undefined ? undefined : [v]]));
      return json(200, await listAuditEvents(deps, caller.accountId, query));
    },
  },
};

export const handler = authenticatedHandler(usage, routes, {
  // The largest body the contract allows is a key's metadata at its limits (20 entries of 40 + 500
  // characters) as an encoder that escapes all but ASCII writes it (Python's json.dumps by default): 12
  // bytes for a character outside the BMP (`\ud83d\ude00`), about 131 KB with the name.
  maxBodyBytes: KEYS_MAX_BODY_BYTES,
  idempotency: { records: new IdempotencyRepository(doc, requireEnv(TABLE_ENV.idempotency)) },
});
