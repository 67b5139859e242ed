/** The metrics the functions publish (log.ts) and the stack's alarms and dashboard read (lib/monitoring.ts). */
export const METRIC = {
  authorizerDecisions: 'AuthorizerDecisions',
  rateLimited: 'RateLimited',
  serverErrors: 'ServerErrors',
  executionsFinished: 'ExecutionsFinished',
  webhookDeliveries: 'WebhookDeliveries',
  webhookFailures: 'WebhookFailures',
} as const;

export const METRICS_NAMESPACE_ENV = 'POWERTOOLS_METRICS_NAMESPACE';
