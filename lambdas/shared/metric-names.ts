/** The metrics the functions publish (log.ts) and the stack's alarms and dashboard read (lib/monitoring.ts). */
export const METRIC = {
  authorizerDecisions: 'AuthorizerDecisions',
  rateLimited: 'RateLimited',
  serverErrors: 'ServerErrors',
  executionsFinished: 'ExecutionsFinished',
  /** Webhooks delivered: an attempt answered 2xx. */
  webhookDeliveries: 'WebhookDeliveries',
  /** Attempts that got no 2xx (each may be retried). */
  webhookFailedAttempts: 'WebhookFailedAttempts',
  /** Webhooks that finally failed: the last attempt of their schedule got no 2xx. */
  webhookFailures: 'WebhookFailures',
  /** Housekeeping, per run: keys whose slot it released (published every run, 0 included). */
  housekeepingReleasedKeys: 'HousekeepingReleasedKeys',
  /** Housekeeping, per run: overdue runs it failed "timed out" (every run, 0 included). */
  housekeepingFailedExecutions: 'HousekeepingFailedExecutions',
  /** Housekeeping runs that stopped on an error (the next run continues). */
  housekeepingErrors: 'HousekeepingErrors',
} as const;

export const METRICS_NAMESPACE_ENV = 'POWERTOOLS_METRICS_NAMESPACE';
