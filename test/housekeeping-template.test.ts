/**
 * Housekeeping in the template (API.md §7, issue #18 item 3): its function, the EventBridge rule that
 * runs it every `sweepInterval`, its least-privilege role, its alarm and its dashboard row. Synthesized
 * in-process without bundling, as test/stack.test.ts does.
 */
import { App, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';
import { templateResources } from './support/template.js';
import { HOUSEKEEPING_RESERVE_MS, HOUSEKEEPING_TIMEOUT_SECONDS, QUEUED_DEADLINE_MS } from '../lambdas/shared/run-budget.js';


function synth(props: KnoudsApiStackProps = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const template = Template.fromStack(new KnoudsApiStack(app, 'TestStack', props));
  return { template, ...templateResources(template) };
}

const base = synth();
const { resources, ofType, logicalId } = base;
const housekeepingFn = logicalId('AWS::Lambda::Function', 'HousekeepingFunction');
const housekeepingRule = () => ofType('AWS::Events::Rule').find(([id]) => id.includes('HousekeepingSchedule'))!;
const tableId = (name: string) => logicalId('AWS::DynamoDB::GlobalTable', `Data${name}Table`);
const tableArn = (name: string) => ({ 'Fn::GetAtt': [tableId(name), 'Arn'] });
const indexArn = (name: string, index: string) => ({ 'Fn::Join': ['', [tableArn(name), `/index/${index}`]] });

/** The role's statements, but for writing its own log group (the same for every function). */
function statements(t = base, fn = housekeepingFn) {
  const role = ((t.resources[fn]!.Properties['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'])[0];
  return t
    .ofType('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties['Roles'] as { Ref: string }[]).some((r) => r.Ref === role))
    .flatMap(([, p]) => (p.Properties['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown; Effect: string }[] }).Statement)
    .map((s) => ({ effect: s.Effect, actions: [s.Action].flat().sort(), resources: [s.Resource].flat() }))
    .filter((s) => !s.actions.every((a) => a.startsWith('logs:')));
}

describe('the housekeeping function', () => {
  it('is a function of its own: the housekeeping bundle, a 2-minute timeout, the tables it uses and the settings, no retry of a failed run', () => {
    const props = resources[housekeepingFn]!.Properties;
    expect(props).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], Timeout: HOUSEKEEPING_TIMEOUT_SECONDS, Handler: 'index.handler' });
    expect(HOUSEKEEPING_TIMEOUT_SECONDS * 1000).toBeGreaterThan(HOUSEKEEPING_RESERVE_MS * 2);
    const variables = (props['Environment'] as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(variables).sort()).toEqual(
      [
        'ACCOUNTS_TABLE',
        'AUDIT_TABLE',
        'EXECUTIONS_TABLE',
        'KEYS_TABLE',
        'KNOUDS_SETTINGS',
        'POWERTOOLS_LOGGER_SAMPLE_RATE',
        'POWERTOOLS_LOG_LEVEL',
        'POWERTOOLS_METRICS_NAMESPACE',
        'POWERTOOLS_SERVICE_NAME',
        // The key a secret an earlier release kept in the clear is sealed with.
        'WEBHOOK_SECRETS_KEY_ARN',
      ].sort(),
    );
    expect(variables['AUDIT_TABLE']).toEqual({ Ref: tableId('Audit') });
    expect(JSON.parse(String(variables['KNOUDS_SETTINGS']))).toMatchObject({ auditRetentionDays: 365 });
    base.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: housekeepingFn }, MaximumRetryAttempts: 0 });
  });

  it('may scan and read the accounts, query three indexes by name, change keys, accounts and runs, put audit events, and seal with the secrets key; nothing else', () => {
    const got = statements();
    expect(got.every((s) => s.effect === 'Allow')).toBe(true);
    expect(got.map(({ actions, resources: r }) => ({ actions, resources: r }))).toEqual(
      expect.arrayContaining([
        { actions: ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'], resources: [tableArn('Accounts')] },
        { actions: ['kms:Encrypt'], resources: [{ 'Fn::GetAtt': [logicalId('AWS::KMS::Key', 'WebhookSecretsKey'), 'Arn'] }] },
        { actions: ['dynamodb:PutItem'], resources: [tableArn('Audit')] },
        { actions: ['dynamodb:UpdateItem'], resources: [tableArn('Keys')] },
        { actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], resources: [tableArn('Executions')] },
        {
          actions: ['dynamodb:Query'],
          resources: [indexArn('Keys', 'by-account-slot'), indexArn('Keys', 'by-account'), indexArn('Executions', 'by-status')],
        },
      ]),
    );
    expect(got).toHaveLength(6);
    const all = JSON.stringify(got);
    // No kms:Decrypt (it sends no webhook: the sender does), no function to invoke, no wildcard, no other table.
    expect(all).not.toMatch(/kms:Decrypt|lambda:|"\*"|index\/\*|DeleteItem|BatchWriteItem/);
    for (const other of ['Usage', 'Workflows', 'Memberships', 'Idempotency']) expect(all).not.toContain(tableId(other));
  });
});

describe('its schedule (sweepInterval)', () => {
  it('runs every 5 minutes by default, the scheduled event not retried nor kept past the interval', () => {
    const [ruleId, rule] = housekeepingRule();
    expect(rule.Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [housekeepingFn, 'Arn'] }, Id: expect.any(String), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 } }],
    });
    base.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [housekeepingFn, 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
  });

  it.each([
    [Duration.minutes(1), 'rate(1 minute)', 60],
    [Duration.minutes(15), 'rate(15 minutes)', 900],
    [Duration.hours(1), 'rate(1 hour)', 3600],
    [Duration.days(2), 'rate(2 days)', 86_400],
  ])('sweepInterval %s → %s (an event kept at most %i s)', (sweepInterval, expression, maxAge) => {
    const t = synth({ sweepInterval });
    const rule = t.ofType('AWS::Events::Rule').find(([id]) => id.includes('HousekeepingSchedule'))![1];
    expect(rule.Properties).toMatchObject({ ScheduleExpression: expression, Targets: [{ RetryPolicy: { MaximumEventAgeInSeconds: maxAge } }] });
  });

  it.each([Duration.seconds(30), Duration.seconds(90), Duration.millis(60_500), Duration.minutes(0)])('refuses %s: whole minutes, at least one', (sweepInterval) => {
    expect(() => synth({ sweepInterval })).toThrow(/sweepInterval must be a whole number of minutes, at least one/);
  });
});

describe('its alarm and dashboard', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm').map(([id, a]) => ({ id, p: a.Properties }));

  it('alarms when a run fails: the function’s Errors ≥ 1 in 5 minutes, no data being no failure', () => {
    const alarm = alarms().find((a) => a.id.includes('HousekeepingErrors'))!;
    expect(alarm.p).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: housekeepingFn } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(String(alarm.p['AlarmDescription'])).toMatch(/housekeeping run failed/i);
  });

  it('counts the function among the throttled ones, and has no alarm when alarms are off', () => {
    const throttles = JSON.stringify(alarms().find((a) => a.id.includes('LambdaThrottles'))!.p['Metrics']);
    expect(throttles).toContain(housekeepingFn);
    const quiet = synth({ monitoring: { alarms: false } });
    expect(quiet.ofType('AWS::CloudWatch::Alarm')).toEqual([]);
  });

  it('has a dashboard row with its released keys, failed executions and errors', () => {
    const body = JSON.stringify(ofType('AWS::CloudWatch::Dashboard')[0]![1].Properties['DashboardBody']);
    expect(body).toContain('Housekeeping: released keys, failed executions, errors');
    for (const metric of ['HousekeepingReleasedKeys', 'HousekeepingFailedExecutions', 'HousekeepingErrors']) expect(body).toContain(metric);
  });
});

describe('the deadlines it applies match the stack', () => {
  it('a QUEUED run is overdue only once its worker event can no longer start it: the event’s maximum age and the worker’s timeout, and a margin', () => {
    const worker = logicalId('AWS::Lambda::Function', 'WorkerFunction');
    const timeout = resources[worker]!.Properties['Timeout'] as number;
    const config = ofType('AWS::Lambda::EventInvokeConfig').find(([, c]) => JSON.stringify(c.Properties['FunctionName']).includes(worker))![1];
    const maxAge = config.Properties['MaximumEventAgeInSeconds'] as number;
    expect(maxAge).toBe(3600);
    expect(QUEUED_DEADLINE_MS).toBeGreaterThan((maxAge + timeout) * 1000);
    expect(QUEUED_DEADLINE_MS).toBe(76 * 60_000);
  });
});
