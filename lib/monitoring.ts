/**
 * Alarms and a dashboard for the on-call engineer: what the gateway and the functions report to
 * CloudWatch on their own, and the metrics the functions publish in embedded metric format
 * (lambdas/shared/log.ts: authorizer decisions by reason, 429s, 5xx, executions by terminal status,
 * webhooks delivered, failed attempts, and webhooks that finally failed; housekeeping's releases,
 * timed-out runs and errors).
 */
import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TreatMissingData,
  type IAlarmAction,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC } from '../lambdas/shared/metric-names.js';

export interface MonitoringOptions {
  /** Create the alarms. @default true */
  readonly alarms?: boolean;
  /** Create the CloudWatch dashboard. @default true */
  readonly dashboard?: boolean;
  /** What an alarm does when it fires and when it clears (an SNS topic, say). @default none: state only */
  readonly alarmActions?: IAlarmAction[];
  /** 5xx share of requests above which the 5xx alarm fires. @default 0.01 (1 %) */
  readonly serverErrorRate?: number;
  /** Share of webhooks finally failed (every attempt of their schedule) above which the webhook alarm fires. @default 0.1 (10 %) */
  readonly webhookFailureRate?: number;
}

/** The sum of the functions' Throttles metrics `t0`…`t<n-1>`, each missing period counted as 0. */
export const throttlesExpression = (functions: number): string =>
  Array.from({ length: functions }, (_, i) => `FILL(t${i}, 0)`).join(' + ');

/** Finally failed webhooks `f` over all that came to an end `d + f`, missing periods counted as 0; 0 when none did. */
export const WEBHOOK_FAILURE_RATE_EXPRESSION = 'IF(FILL(d, 0) + FILL(f, 0) > 0, FILL(f, 0) / (FILL(d, 0) + FILL(f, 0)), 0)';

export interface MonitoringProps extends MonitoringOptions {
  readonly api: RestApi;
  readonly functions: Record<string, IFunction>;
  readonly deadLetters: Queue;
  /** The housekeeping function (API.md §7): an alarm when a run fails. @default none */
  readonly housekeeping?: IFunction;
  /** The functions' EMF namespace and service dimension. */
  readonly namespace: string;
  readonly service: string;
}

export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard?: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const five = Duration.minutes(5);
    const emf = (name: string, statistic = 'Sum') =>
      new Metric({ namespace: props.namespace, metricName: name, dimensionsMap: { service: props.service }, statistic, period: five });
    const byDimension = (name: string, dimension: string, label: string) =>
      new MathExpression({
        expression: `SEARCH('{${props.namespace},${dimension},service} MetricName="${name}"', 'Sum', 300)`,
        label,
        period: five,
      });

    const serverErrorRate = props.api.metricServerError({ statistic: 'Average', period: five });
    // Lambda publishes Throttles only for a function that was invoked in the period, and metric math
    // drops a period where any term has no data point: without FILL, one idle function would hide every
    // other function's throttles.
    const throttles = new MathExpression({
      expression: throttlesExpression(Object.keys(props.functions).length),
      usingMetrics: Object.fromEntries(Object.values(props.functions).map((fn, i) => [`t${i}`, fn.metricThrottles({ period: five })])),
      label: 'Lambda throttles, all functions',
      period: five,
    });
    const dlqDepth = props.deadLetters.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: five });
    // `d` counts delivered webhooks, `f` webhooks whose last scheduled attempt failed (after more than a
    // day of retries); each is published only when it happens. When every one fails, `d` has no data
    // point, so `d` is filled with 0 (and `f` likewise) and the share is f / (d + f) = 1, not a missing
    // value. Failed attempts (a receiver down for a while, retried later) are on the dashboard, not here.
    const webhookFailureRate = new MathExpression({
      expression: WEBHOOK_FAILURE_RATE_EXPRESSION,
      usingMetrics: { d: emf(METRIC.webhookDeliveries), f: emf(METRIC.webhookFailures) },
      label: 'webhook failure share',
      period: Duration.minutes(15),
    });

    if (props.alarms ?? true) {
      const alarm = (
        name: string,
        metric: IMetric,
        threshold: number,
        description: string,
        treatMissingData: TreatMissingData,
        evaluationPeriods = 1,
      ) => {
        const a = new Alarm(this, name, {
          metric,
          threshold,
          evaluationPeriods,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData,
          alarmDescription: description,
        });
        for (const action of props.alarmActions ?? []) {
          a.addAlarmAction(action);
          a.addOkAction(action);
        }
        this.alarms.push(a);
        return a;
      };
      // Not Lambda's Errors metric: the authorizer refuses a bad key by throwing 'Unauthorized', which
      // Lambda counts as an error, so every mistyped key would count. Its own decision metric with
      // reason=error counts only the failures (DynamoDB failing or throttling); a crash or timeout of the
      // authorizer is a 500 and reaches the 5xx-rate alarm.
      alarm(
        'AuthorizerErrors',
        new Metric({
          namespace: props.namespace,
          metricName: METRIC.authorizerDecisions,
          dimensionsMap: { service: props.service, reason: 'error' },
          statistic: 'Sum',
          period: five,
        }),
        5,
        'The authorizer could not read a key 5 or more times in 5 minutes (DynamoDB failing or throttling): those requests got 500.',
        // Published only when the authorizer fails: no data is no failure.
        TreatMissingData.NOT_BREACHING,
      );
      alarm(
        'ServerErrorRate',
        serverErrorRate,
        props.serverErrorRate ?? 0.01,
        'At least 1 % of requests answered 5xx in two 5-minute periods in a row.',
        // No data is no requests.
        TreatMissingData.NOT_BREACHING,
        2,
      );
      alarm(
        'LambdaThrottles',
        throttles,
        1,
        'A function was throttled by Lambda (account or reserved concurrency): requests failed with 5xx.',
        // No data at all is no function invoked, so none throttled.
        TreatMissingData.NOT_BREACHING,
      );
      alarm(
        'DeadLetters',
        dlqDepth,
        1,
        'An asynchronous run failed three times and its event is in the worker dead-letter queue.',
        // SQS stops publishing a queue's metrics after six hours without activity, even with messages in
        // it: a gap keeps the alarm's state (an alarm stays in ALARM until the queue is seen empty).
        TreatMissingData.IGNORE,
      );
      alarm(
        'WebhookFailureRate',
        webhookFailureRate,
        props.webhookFailureRate ?? 0.1,
        'At least 10 % of the webhooks that came to an end in 15 minutes failed every attempt of their schedule (over more than a day): receivers lose events.',
        // No data is no delivery attempted.
        TreatMissingData.NOT_BREACHING,
      );
      if (props.housekeeping) {
        alarm(
          'HousekeepingErrors',
          props.housekeeping.metricErrors({ statistic: 'Sum', period: five }),
          1,
          'A housekeeping run failed. Either it stopped on an error or timed out (expired keys may keep their slots and overdue runs their in-flight slots until a run succeeds), or it did all else but could not seal a webhook secret an earlier release kept in the clear (KMS or DynamoDB refused: check the function’s kms:Encrypt grant and the key). Its log says which, and names the accounts.',
          // No data is no run in the period (the interval may be longer): nothing failed.
          TreatMissingData.NOT_BREACHING,
        );
      }
    }

    if (props.dashboard ?? true) {
      const fnMetrics = (f: (fn: IFunction) => IMetric) => Object.values(props.functions).map(f);
      this.dashboard = new Dashboard(this, 'Dashboard', {
        defaultInterval: Duration.hours(3),
        widgets: [
          [
            new GraphWidget({
              title: 'Requests, 4xx and 5xx',
              left: [props.api.metricCount({ period: five }), props.api.metricClientError({ period: five }), props.api.metricServerError({ period: five })],
              width: 8,
            }),
            new GraphWidget({
              title: 'Latency (gateway)',
              left: [props.api.metricLatency({ statistic: 'p50', period: five }), props.api.metricLatency({ statistic: 'p99', period: five })],
              width: 8,
            }),
            new GraphWidget({ title: 'Authorizer decisions by reason', left: [byDimension(METRIC.authorizerDecisions, 'reason', 'decisions')], width: 8 }),
          ],
          [
            new GraphWidget({ title: 'Rate limited (429) and server errors (5xx)', left: [emf(METRIC.rateLimited), emf(METRIC.serverErrors)], width: 8 }),
            new GraphWidget({ title: 'Executions by terminal status', left: [byDimension(METRIC.executionsFinished, 'status', 'executions')], width: 8 }),
            new GraphWidget({
              title: 'Webhooks: delivered, failed attempts, finally failed',
              left: [emf(METRIC.webhookDeliveries), emf(METRIC.webhookFailedAttempts), emf(METRIC.webhookFailures)],
              right: [webhookFailureRate],
              width: 8,
            }),
          ],
          [
            new GraphWidget({ title: 'Function errors', left: fnMetrics((fn) => fn.metricErrors({ period: five })), width: 8 }),
            new GraphWidget({ title: 'Function duration p99', left: fnMetrics((fn) => fn.metricDuration({ statistic: 'p99', period: five })), width: 8 }),
            new GraphWidget({ title: 'Throttles and dead letters', left: [throttles], right: [dlqDepth], width: 8 }),
          ],
          ...(props.housekeeping
            ? [
                [
                  new GraphWidget({
                    title: 'Housekeeping: released keys, failed executions, errors',
                    left: [emf(METRIC.housekeepingReleasedKeys), emf(METRIC.housekeepingFailedExecutions)],
                    right: [emf(METRIC.housekeepingErrors), props.housekeeping.metricErrors({ statistic: 'Sum', period: five })],
                    width: 24,
                  }),
                ],
              ]
            : []),
          ...(this.alarms.length > 0 ? [[new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })]] : []),
        ],
      });
    }
  }
}
