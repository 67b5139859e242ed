/**
 * The account's webhook signing secret (API.md §4): read it, and rotate it with a grace period during
 * which the secret it replaced keeps signing too, so receivers can switch without missing a delivery.
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../caller.js';
import type { AccountsRepository, WebhookSecrets } from '../repositories/accounts.js';
import { newAuditEvent, type AuditRepository, type RequestMeta, type TransactItem } from '../repositories/audit.js';
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

/** GET /webhooks/secret: made on first use, by the caller (`principal`; an operator when absent), which its event records. */
export async function getWebhookSecret(
  deps: WebhookSecretDeps,
  accountId: string,
  principal?: Principal,
  request?: RequestMeta,
): Promise<WebhookSecretView> {
  const now = clock(deps);
  return view(await deps.accounts.webhookSecrets(accountId, firstWebhookSecret(deps.audit, accountId, actorOf(principal), now, request), now));
}

/**
 * POST /webhooks/secret/rotate: body `{grace_period_seconds}` (0–604800, default 0). Its
 * webhook_secret.rotated event (by `principal`, an operator when absent) is written with it and holds no
 * secret: `changes` is null.
 */
export async function rotateWebhookSecret(
  deps: WebhookSecretDeps,
  accountId: string,
  rawBody: unknown,
  principal?: Principal,
  request?: RequestMeta,
  keep?: (rotated: WebhookSecretView) => TransactItem | undefined,
): Promise<WebhookSecretView> {
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
  // With an Idempotency-Key, the answer is kept with the rotation (http.ts keepAs): a request that dies
  // after it committed is replayed, never rotated again (which would end the grace of the secret it kept).
  return view(await deps.accounts.rotateWebhookSecret(accountId, newWebhookSecret(), grace, now, randomUUID(), deps.audit.putItem(event), keep && ((rotated) => keep(view(rotated)))));
}
