/** The webhooks feature's calls: the account's signing secret. */
import { api, type Schemas } from '../../api/client';
import { call } from '../../api/errors';

export type WebhookSecret = Schemas['WebhookSecret'];

export function getSecret(): Promise<WebhookSecret> {
  return call(api().GET('/webhooks/secret'));
}

/**
 * One Idempotency-Key per opening of the dialog: a retry after a lost answer does not rotate again (which
 * would end the grace of the secret receivers still use). Its replay has no secret: it is read then.
 */
export async function rotateSecret(graceSeconds: number, idempotencyKey: string): Promise<WebhookSecret> {
  const rotated = await call(
    api().POST('/webhooks/secret/rotate', { body: { grace_period_seconds: graceSeconds }, params: { header: { 'Idempotency-Key': idempotencyKey } } }),
  );
  // The secret and until when the one it replaced signs, read together (another rotation may have come since).
  return rotated.secret === undefined ? getSecret() : { ...rotated, secret: rotated.secret };
}
