/**
 * The REQUEST authorizer. Budget: one strongly consistent GetItem on sha256(key), nothing else.
 * A malformed key or bad checksum is refused with no database read. Any failure refuses the request:
 * `Unauthorized` (401) for a key that is missing, malformed, unknown, revoked or expired; any other
 * error (DynamoDB failing) propagates, which API Gateway turns into a 500 AUTHORIZER_FAILURE. Never Allow.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { hashApiKey, parseApiKey } from '../shared/api-key.js';
import { encodeCaller } from '../shared/caller.js';
import { covers } from '../shared/capabilities.js';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { countMetric, log, METRIC, startInvocation } from '../shared/log.js';
import { KeysRepository, type KeyRecord } from '../shared/repositories/keys.js';
import { rateLimitFor, settingsFromEnv, TIER_NAMES, type Settings, type TierName } from '../shared/settings.js';

const settings = settingsFromEnv();
// Only the keys table: the authorizer never touches accounts, and has no grant on that table either.
const keys = new KeysRepository(createDocumentClient(), { keys: requireEnv(TABLE_ENV.keys) });

type Refusal = 'missing' | 'malformed' | 'unknown' | 'revoked' | 'expired' | 'environment';

function refuse(reason: Refusal, keyId?: string): never {
  log('info', 'authorizer decision', { decision: 'deny', reason, ...(keyId ? { key_id: keyId } : {}) });
  countMetric(METRIC.authorizerDecisions, ['reason', reason]);
  // The exact message API Gateway maps to 401 UNAUTHORIZED.
  throw new Error('Unauthorized');
}

function headerValue(headers: Record<string, string | undefined> | null, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

/** `arn:aws:execute-api:region:account:api-id/stage/*` — valid for every route, so cached policies never 403 another route. */
function apiWideResource(methodArn: string): string {
  const [base, stage] = methodArn.split('/');
  return `${base}/${stage}/*`;
}

/** Each tier's ceiling as a set, built once per cold start rather than per request. */
function ceilingsOf(s: Settings): Record<TierName, ReadonlySet<string>> {
  const out = {} as Record<TierName, ReadonlySet<string>>;
  for (const t of TIER_NAMES) out[t] = new Set(s.tiers[t].ceiling);
  return out;
}
const ceilings = ceilingsOf(settings);

export function evaluate(
  record: KeyRecord | undefined,
  environment: 'live' | 'test',
  now: number,
  tierCeilings: Record<TierName, ReadonlySet<string>>,
) {
  if (!record) return { refusal: 'unknown' as const };
  if (record.revoked_at) return { refusal: 'revoked' as const };
  if (record.expires_at && now >= Date.parse(record.expires_at)) return { refusal: 'expired' as const };
  if (record.environment !== environment) return { refusal: 'environment' as const };
  const ceiling = tierCeilings[record.tier];
  const capabilities = record.capabilities.filter((c) => covers(ceiling, c));
  return { capabilities };
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  startInvocation();
  const apiKey = headerValue(event.headers, 'x-api-key');
  if (!apiKey) refuse('missing');
  const parsed = parseApiKey(apiKey, settings.keyPrefix);
  if (!parsed) refuse('malformed');

  let record: KeyRecord | undefined;
  try {
    record = await keys.getByHash(hashApiKey(apiKey));
  } catch (error) {
    // Refused: the error reaches API Gateway (500). Counted and logged without the key or its hash.
    countMetric(METRIC.authorizerDecisions, ['reason', 'error']);
    log('error', 'authorizer decision', { decision: 'error', error: (error as Error).name });
    throw error;
  }
  const verdict = evaluate(record, parsed.environment, Date.now(), ceilings);
  if (!record || !verdict.capabilities) refuse(verdict.refusal ?? 'unknown', record?.key_id);

  log('info', 'authorizer decision', { decision: 'allow', key_id: record.key_id, account_id: record.account_id });
  countMetric(METRIC.authorizerDecisions, ['reason', 'allowed']);
  return {
    principalId: record.key_id,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiWideResource(event.methodArn) }],
    },
    context: encodeCaller({
      keyId: record.key_id,
      accountId: record.account_id,
      tier: record.tier,
      environment: record.environment,
      name: record.name,
      prefix: record.prefix,
      createdAt: record.created_at,
      expiresAt: record.expires_at ?? null,
      capabilities: verdict.capabilities,
      workspaces: record.workspaces,
      rateLimit: rateLimitFor(settings, record.tier, record.environment),
    }),
  };
}
