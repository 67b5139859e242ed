/** Run by test/log.test.ts in a fresh process: counts in a row, one of them refused, as a function makes them. */
import { countMetric, METRIC } from '../../lambdas/shared/log.js';

countMetric(METRIC.authorizerDecisions, ['reason', 'allowed']);
countMetric(METRIC.serverErrors);
try {
  // Refused by Powertools (not a number) after its dimension was added.
  countMetric(METRIC.executionsFinished, ['status', 'FAILED'], 'many' as unknown as number);
} catch (error) {
  process.stderr.write(`refused: ${(error as Error).message}\n`);
}
countMetric(METRIC.rateLimited);
countMetric(METRIC.executionsFinished, ['status', 'SUCCEEDED'], 2);
