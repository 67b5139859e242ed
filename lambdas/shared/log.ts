/**
 * Structured logs and metrics, on Powertools for AWS Lambda: one JSON line per log event (Logger) and
 * CloudWatch metrics as embedded-metric-format lines (Metrics). Callers pass structured fields; nothing
 * here ever receives a key, a key hash, a secret or a full header set.
 *
 * Environment (set by the stack's props): `POWERTOOLS_LOG_LEVEL` (DEBUG, INFO, WARN, ERROR; `LOG_LEVEL`
 * overrides it), `POWERTOOLS_LOGGER_SAMPLE_RATE` (the share of invocations logged at DEBUG),
 * `POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC, METRICS_NAMESPACE_ENV } from './metric-names.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

const SERVICE = process.env['POWERTOOLS_SERVICE_NAME'] ?? 'knouds-api';
// `LOG_LEVEL` first: the local runner's `functionEnv` overrides the template's level with it.
const level = (process.env['LOG_LEVEL'] || process.env['POWERTOOLS_LOG_LEVEL'] || 'INFO').toUpperCase();

export const logger = new Logger({
  serviceName: SERVICE,
  logLevel: (['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(level) ? level : 'INFO') as 'INFO',
});

/** At the start of each invocation: redraws the debug-sampling decision (`logSampleRate` is per request). */
export function startInvocation(): void {
  logger.refreshSampleRateCalculation();
}

export function log(lvl: Level, message: string, fields: Record<string, unknown> = {}): void {
  logger[lvl](message, fields);
}

export { METRIC, METRICS_NAMESPACE_ENV };

const IN_FUNCTION = process.env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined;
const metrics = new Metrics({ namespace: process.env[METRICS_NAMESPACE_ENV] ?? 'Knouds', serviceName: SERVICE });

/**
 * Counts `count` events (one by default) now, in one EMF line, with an optional extra dimension
 * (`reason`, `status`, …) beside the service dimension every metric carries.
 */
export function countMetric(name: (typeof METRIC)[keyof typeof METRIC], dimension?: [string, string], count = 1): void {
  // Only inside a function (Lambda, or the local runner's): not in the admin CLI or the tests' own process.
  if (!IN_FUNCTION) return;
  // Added and published at once on the one Metrics instance (`publishStoredMetrics` clears the metric and
  // the dimension): `singleMetric()` built a new Metrics, with a Console of its own, on every call (about
  // 8 % of the authorizer's CPU per request in a profile).
  try {
    if (dimension) metrics.addDimension(dimension[0], dimension[1]);
    metrics.addMetric(name, MetricUnit.Count, count);
    metrics.publishStoredMetrics();
  } finally {
    // Also when adding threw (publishStoredMetrics clears only what it published): nothing carries over.
    metrics.clearMetrics();
    metrics.clearDimensions();
  }
}
