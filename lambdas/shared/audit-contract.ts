/**
 * The audit trail's actions (API.md §7), apart from the repository so the OpenAPI document can name them
 * without bundling DynamoDB code. `webhook_secret.created` (the account's first secret, made on first use)
 * is an addition to API.md's list: without it that change would be the one change with no event.
 */
export const AUDIT_ACTIONS = [
  'key.created',
  'key.updated',
  'key.rotated',
  'key.revoked',
  'key.expired',
  'webhook_secret.created',
  'webhook_secret.rotated',
  'account.created',
  'account.tier_changed',
  'member.added',
  'member.role_changed',
  'member.removed',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export function isAuditAction(value: unknown): value is AuditAction {
  return typeof value === 'string' && (AUDIT_ACTIONS as readonly string[]).includes(value);
}
