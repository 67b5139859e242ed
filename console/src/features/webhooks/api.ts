/** The webhooks feature's calls: the account's signing secret. */
import { api, type Schemas } from '../../api/client';
import { call } from '../../api/errors';

export type WebhookSecret = Schemas['WebhookSecret'];

export function getSecret(): Promise<WebhookSecret> {
  return call(api().GET('/webhooks/secret'));
}

export function rotateSecret(graceSeconds: number): Promise<WebhookSecret> {
  return call(api().POST('/webhooks/secret/rotate', { body: { grace_period_seconds: graceSeconds } }));
}
