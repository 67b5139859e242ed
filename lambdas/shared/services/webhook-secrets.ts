/**
 * The account's webhook signing secret (API.md §4): read it, and rotate it with a grace period during
 * which the secret it replaced keeps signing too, so receivers can switch without missing a delivery.
 */
import { randomUUID } from 'node:crypto';
import type { AccountsRepository, WebhookSecrets } from '../repositories/accounts.js';
import { parseRotateWebhookSecretBody } from '../schemas.js';
import { newWebhookSecret } from '../webhooks.js';

export interface WebhookSecretDeps {
  readonly accounts: AccountsRepository;
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

const clock = (deps: WebhookSecretDeps) => deps.now?.() ?? new Date();

/** GET /webhooks/secret: made on first use. */
export async function getWebhookSecret(deps: WebhookSecretDeps, accountId: string): Promise<WebhookSecretView> {
  return view(await deps.accounts.webhookSecrets(accountId, newWebhookSecret, clock(deps)));
}

/** POST /webhooks/secret/rotate: body `{grace_period_seconds}` (0–604800, default 0). */
export async function rotateWebhookSecret(deps: WebhookSecretDeps, accountId: string, rawBody: unknown): Promise<WebhookSecretView> {
  const { grace_period_seconds: grace = 0 } = parseRotateWebhookSecretBody(rawBody);
  return view(await deps.accounts.rotateWebhookSecret(accountId, newWebhookSecret(), grace, clock(deps), randomUUID()));
}
