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
} as const;

export const METRICS_NAMESPACE_ENV = 'POWERTOOLS_METRICS_NAMESPACE';
