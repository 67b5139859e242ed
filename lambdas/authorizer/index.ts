/**
 * The REQUEST authorizer, for API keys and people.
 * - `x-api-key` (decides a request carrying both): one strongly consistent GetItem on sha256(key),
 *   nothing else; a malformed key or bad checksum is refused with no database read.
 * - `Authorization: Bearer <access token>`: a person's session (sessions.ts, loaded only then): the
 *   token verified against the identity provider's keys, then at most two consistent reads (the
 *   membership, the account). An API key sent as a Bearer token is refused without a read.
 * Any failure refuses the request with a 401 of one of two kinds, so that the answer speaks of
 * `Authorization: Bearer` only when the request sent one (API.md §3): a missing, malformed, unknown,
 * revoked, expired or disabled key (or no credentials at all) throws `Unauthorized`, which API Gateway answers
 * with the UNAUTHORIZED gateway response (`WWW-Authenticate: ApiKey …, Bearer …`); a refused bearer
 * token (invalid, an API key sent as one, sessions off) returns a Deny, which the stack's ACCESS_DENIED
 * gateway response answers with 401 and `WWW-Authenticate: Bearer …, error="invalid_token"` (RFC 6750
 * §3.1; lib/gateway-responses.ts). This authorizer denies nothing else: every allow covers the whole API.
 * Any other error (DynamoDB or the provider's keys failing) propagates, which API Gateway turns into a
 * 500 AUTHORIZER_FAILURE. A person with no membership in
 * the account asked for is let through with a refusal in the context (caller.ts), which every handler
 * answers with 403 NOT_A_MEMBER (or 400) before doing anything.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { hashApiKey, KEY_CAPABILITIES_CONTEXT, KEY_METADATA_CONTEXT, parseApiKey } from '../shared/api-key.js';
import { ACCOUNT_HEADER, encodeCaller, encodeRefusal, type AuthorizerContext } from '../shared/caller.js';
import { inForce } from '../shared/capabilities.js';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { IDENTITY_PROVIDER_ENV, identityProviderFromEnv } from '../shared/identity-provider.js';
// Types only: the module itself is imported when the first session needs it.
import type { Placement, Sessions } from './sessions.js';
import { requireEnv } from '../shared/env.js';
import { countMetric, log, METRIC, startInvocation } from '../shared/log.js';
import { KeysRepository, type KeyRecord } from '../shared/repositories/keys.js';
import { rateLimitFor, settingsFromEnv, TIER_NAMES, type Settings, type TierName } from '../shared/settings.js';

const settings = settingsFromEnv();
const doc = createDocumentClient();
// The key path reads the keys table only.
const keys = new KeysRepository(doc, { keys: requireEnv(TABLE_ENV.keys) });
// Sessions are off (only keys accepted) in a function given no provider: a stack always gives one. Its
// settings are read by the first session, so a mistake in them cannot stop API keys from working.
const sessionsConfigured = Boolean(process.env[IDENTITY_PROVIDER_ENV.issuer]);

/** The session path, built on the first request that needs it (a key-only container never loads it). */
let sessions: Promise<Sessions> | undefined;
function sessionPath() {
  sessions ??= import('./sessions.js').then(({ createSessions }) =>
    createSessions(doc, { memberships: requireEnv(TABLE_ENV.memberships), accounts: requireEnv(TABLE_ENV.accounts) }, identityProviderFromEnv(), settings),
  );
  return sessions;
}

type Refusal =
  | 'missing'
  | 'malformed'
  | 'unknown'
  | 'revoked'
  | 'expired'
  | 'disabled'
  | 'environment'
  | 'key_as_bearer'
  | 'sessions_off'
  | 'invalid_token';

function refuse(reason: Refusal, keyId?: string): never {
  log('info', 'authorizer decision', { decision: 'deny', reason, ...(keyId ? { key_id: keyId } : {}) });
  countMetric(METRIC.authorizerDecisions, ['reason', reason]);
  // The exact message API Gateway maps to 401 UNAUTHORIZED.
  throw new Error('Unauthorized');
}

/** A refused `Authorization: Bearer`: a Deny of the whole API, answered 401 "invalid_token" (see above). */
function refuseBearer(reason: Refusal, methodArn: string, detail?: string): APIGatewayAuthorizerResult {
  log('info', 'authorizer decision', { decision: 'deny', reason, ...(detail ? { detail } : {}) });
  countMetric(METRIC.authorizerDecisions, ['reason', reason]);
  return {
    principalId: 'refused',
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: apiWideResource(methodArn) }] },
  };
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
  // Disabled by PATCH {"enabled": false}: refused while it keeps its slot (absent on older keys: enabled).
  if (record.enabled === false) return { refusal: 'disabled' as const };
  if (record.environment !== environment) return { refusal: 'environment' as const };
  return { capabilities: inForce(record.capabilities, tierCeilings[record.tier]) };
}

function allow(principalId: string, methodArn: string, context: AuthorizerContext): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiWideResource(methodArn) }],
    },
    context,
  };
}

async function session(event: APIGatewayRequestAuthorizerEvent, authorization: string): Promise<APIGatewayAuthorizerResult> {
  const value = authorization.trim();
  // Another scheme (Basic, …) sent no bearer token: refused like a missing key.
  if (!/^Bearer(\s|$)/i.test(value)) refuse('malformed');
  const bearer = /^Bearer +([^ ]+)$/i.exec(value);
  if (!bearer) return refuseBearer('malformed', event.methodArn);
  const token = bearer[1]!;
  // An API key belongs in x-api-key (the 401's message says so); it is never looked up from here.
  if (token.startsWith(`${settings.keyPrefix}_`)) return refuseBearer('key_as_bearer', event.methodArn);
  if (!sessionsConfigured) return refuseBearer('sessions_off', event.methodArn);
  const path = await sessionPath();
  let placed: Placement;
  try {
    placed = await path.place(token, headerValue(event.headers, ACCOUNT_HEADER.toLowerCase()), event.httpMethod === 'GET' && event.resource === '/me');
  } catch (error) {
    if ((error as Error).name === 'InvalidSessionToken') return refuseBearer('invalid_token', event.methodArn, (error as Error).message);
    countMetric(METRIC.authorizerDecisions, ['reason', 'error']);
    log('error', 'authorizer decision', { decision: 'error', error: (error as Error).name });
    throw error;
  }
  if ('refusal' in placed) {
    log('info', 'authorizer decision', { decision: 'refer', reason: placed.refusal.code, subject: placed.subject });
    countMetric(METRIC.authorizerDecisions, ['reason', 'not_placed']);
    // Counted per person against the free tier's live limit: they act for no account.
    return allow(`person:${placed.subject}`, event.methodArn, encodeRefusal(placed.refusal, placed.subject, rateLimitFor(settings, 'free', 'live')));
  }
  const { caller } = placed;
  log('info', 'authorizer decision', { decision: 'allow', subject: caller.subject, account_id: caller.accountId, role: caller.role });
  countMetric(METRIC.authorizerDecisions, ['reason', 'allowed']);
  return allow(`person:${caller.subject}`, event.methodArn, encodeCaller(caller));
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  startInvocation();
  const apiKey = headerValue(event.headers, 'x-api-key');
  // A request with an x-api-key header is decided by it (API.md §1), an empty one too: never by a token beside it.
  if (apiKey === undefined) {
    const authorization = headerValue(event.headers, 'authorization');
    if (authorization) return session(event, authorization);
    refuse('missing');
  }
  if (apiKey === '') refuse('missing');
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
  return allow(
    record.key_id,
    event.methodArn,
    // + the key's metadata, for GET /keys/verify (which reads nothing but this context): JSON, `{}` for older
    // keys; and its own capabilities where some are out of force (the key's object shows them all).
    {
      [KEY_METADATA_CONTEXT]: JSON.stringify(record.metadata ?? {}),
      ...(verdict.capabilities.length !== record.capabilities.length ? { [KEY_CAPABILITIES_CONTEXT]: JSON.stringify(record.capabilities) } : {}),
      ...encodeCaller({
        kind: 'key',
        keyId: record.key_id,
        counterId: record.key_id,
        accountId: record.account_id,
        tier: record.tier,
        environment: record.environment,
        name: record.name,
        prefix: record.prefix,
        createdAt: record.created_at,
        expiresAt: record.expires_at ?? null,
        createdBy: record.created_by ?? null,
        rotatedTo: record.rotated_to ?? null,
        capabilities: verdict.capabilities,
        workspaces: record.workspaces,
        rateLimit: rateLimitFor(settings, record.tier, record.environment),
      }),
    },
  );
}
