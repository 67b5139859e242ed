/**
 * The account's webhook signing secret (API.md §4): read it, and rotate it with a grace period during
 * which the secret it replaced keeps signing too, so receivers can switch without missing a delivery.
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../caller.js';
import { EnvironmentDeniedError } from '../errors.js';
import type { KeyEnvironment } from '../api-key.js';
import type { AccountsRepository, WebhookSecrets } from '../repositories/accounts.js';
import { newAuditEvent, type AuditRepository, type RequestMeta } from '../repositories/audit.js';
import { parseRotateWebhookSecretBody } from '../schemas.js';
import { newWebhookSecret } from '../webhooks.js';
import { actorOf } from './audit.js';
import { firstWebhookSecret } from './first-webhook-secret.js';

export interface WebhookSecretDeps {
  readonly accounts: AccountsRepository;
  /** Where a rotation records its event (API.md §7). */
  readonly audit: AuditRepository;
  readonly now?: () => Date;
}

/** The answer of both routes: the secret, and until when the one before it still signs (`null` when it does not). */
export interface WebhookSecretView {
  readonly secret: string;
  readonly previous_secret_expires_at: string | null;
}

const view = (secrets: WebhookSecrets): WebhookSecretView => ({
  secret: secrets.current,
  previous_secret_expires_at: secrets.previous?.until.toISOString() ?? null,
});

const clock = (deps: Pick<WebhookSecretDeps, 'now'>) => deps.now?.() ?? new Date();

/**
 * The account has one secret, and it signs live runs' webhooks: a test key may neither read it (it could
 * sign a forged live webhook) nor rotate it (it would stop live receivers verifying), as it may not manage
 * a live key (403 ENVIRONMENT_DENIED, `environment` "live"). Live keys and people may.
 */
function assertLive(environment: KeyEnvironment): void {
  if (environment === 'test') {
    throw new EnvironmentDeniedError('live', 'A test key cannot read or rotate the webhook secret, which signs live runs’ webhooks: use a live key or the console');
  }
}

/**
 * GET /webhooks/secret: made on first use, by the caller (`principal`; an operator when absent), which its
 * event records. `environment`: the calling key's (a person's and an operator's are live).
 */
export async function getWebhookSecret(
  deps: WebhookSecretDeps,
  accountId: string,
  principal?: Principal,
  request?: RequestMeta,
  environment: KeyEnvironment = 'live',
): Promise<WebhookSecretView> {
  assertLive(environment);
  const now = clock(deps);
  return view(await deps.accounts.webhookSecrets(accountId, firstWebhookSecret(deps.audit, accountId, actorOf(principal), now, request), now));
}

/**
 * POST /webhooks/secret/rotate (not by a test key: `environment`, as above): body `{grace_period_seconds}` (0–604800, default 0). Its
 * webhook_secret.rotated event (by `principal`, an operator when absent) is written with it and holds no
 * secret: `changes` is null.
 */
export async function rotateWebhookSecret(
  deps: WebhookSecretDeps,
  accountId: string,
  rawBody: unknown,
  principal?: Principal,
  request?: RequestMeta,
  environment: KeyEnvironment = 'live',
): Promise<WebhookSecretView> {
  assertLive(environment);
  const { grace_period_seconds: grace = 0 } = parseRotateWebhookSecretBody(rawBody);
  const now = clock(deps);
  const event = newAuditEvent({
    accountId,
    action: 'webhook_secret.rotated',
    actor: actorOf(principal),
    target: { kind: 'webhook_secret', id: accountId },
    changes: null,
    ...(request ? { request } : {}),
    now,
  });
  return view(await deps.accounts.rotateWebhookSecret(accountId, newWebhookSecret(), grace, now, randomUUID(), deps.audit.putItem(event)));
}
