/** Keys Lambda: the /keys routes. */
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { authenticatedHandler, json, type Route } from '../shared/http.js';
import { UsageRepository } from '../shared/repositories/usage.js';

const doc = createDocumentClient();
const usage = new UsageRepository(doc, requireEnv(TABLE_ENV.usage));

/** GET /keys/verify: the calling key, from the authorizer context; its only I/O is the counter write. */
const verify: Route = async ({ caller, hit }) =>
  json(200, {
    key_id: caller.keyId,
    name: caller.name,
    prefix: caller.prefix,
    environment: caller.environment,
    capabilities: caller.capabilities,
    workspaces: caller.workspaces,
    account_id: caller.accountId,
    tier: caller.tier,
    created_at: caller.createdAt,
    expires_at: caller.expiresAt,
    last_used: hit.now.toISOString(),
    rate_limit: { limit: hit.limit, remaining: hit.remaining, reset: hit.reset },
  });

export const handler = authenticatedHandler(usage, {
  'GET /keys/verify': verify,
});
