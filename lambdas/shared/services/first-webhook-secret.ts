/**
 * An account's first webhook secret, made on first use (API.md §4), and its webhook_secret.created event
 * (API.md §7). Apart from the secret's routes (services/webhook-secrets.ts) so that a sender that makes
 * the secret (the worker) does not bundle their request validators.
 */
import type { FirstWebhookSecret } from '../repositories/accounts.js';
import { newAuditEvent, type AuditActor, type AuditRepository, type RequestMeta } from '../repositories/audit.js';
import { newWebhookSecret } from '../webhooks.js';

/**
 * The account's first secret, made by `actor`'s use of it, with its webhook_secret.created event (which,
 * like a rotation's, holds no secret: `changes` is null).
 */
export function firstWebhookSecret(audit: AuditRepository, accountId: string, actor: AuditActor, now: Date, request?: RequestMeta): FirstWebhookSecret {
  return {
    make: newWebhookSecret,
    event: () =>
      audit.putItem(
        newAuditEvent({
          accountId,
          action: 'webhook_secret.created',
          actor,
          target: { kind: 'webhook_secret', id: accountId },
          changes: null,
          ...(request ? { request } : {}),
          now,
        }),
      ),
  };
}
