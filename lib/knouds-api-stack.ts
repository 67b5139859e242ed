import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  MockIntegration,
  PassthroughBehavior,
  RequestAuthorizer,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { TABLE_ENV } from '../lambdas/shared/ddb.js';
import { resolveSettings, SETTINGS_ENV, type SettingsOverrides } from '../lambdas/shared/settings.js';
import { DataStore } from './data-store.js';
import { addGatewayResponses } from './gateway-responses.js';
import { KnoudsFunction } from './knouds-function.js';
import { STACK_OUTPUTS } from './outputs.js';

export interface KnoudsApiStackProps extends StackProps, SettingsOverrides {
  /**
   * The API stage, the first segment of every path.
   * @default 'v1'
   */
  readonly stageName?: string;
  /**
   * How long API Gateway caches an authorizer decision per key. Anything above zero delays revocation,
   * edits, expiry and tier changes by up to this long (API.md promises "the next request").
   * @default Duration.seconds(0) — no cache
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Removal policy of every table.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Stage-wide throttling, in front of the per-key limits (requests per second, and burst).
   * @default { rateLimit: 1000, burstLimit: 2000 }
   */
  readonly throttling?: { readonly rateLimit: number; readonly burstLimit: number };
  /**
   * Retention of function and access logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Create the account-wide role that lets API Gateway write access logs. Turn off when the
   * account already has one (it is a per-region account setting).
   * @default true
   */
  readonly cloudWatchRole?: boolean;
}

export { STACK_OUTPUTS };

export class KnoudsApiStack extends Stack {
  readonly api: RestApi;
  readonly data: DataStore;

  constructor(scope: Construct, id: string, props: KnoudsApiStackProps = {}) {
    super(scope, id, props);
    // Validate everything up front, with the bad value in the message.
    const settings = resolveSettings(props);
    const stageName = props.stageName ?? 'v1';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) throw new Error(`stageName must be alphanumeric, got '${stageName}'`);
    const cacheTtl = props.authorizerCacheTtl ?? Duration.seconds(0);
    if (cacheTtl.toSeconds() > 3600) throw new Error(`authorizerCacheTtl must be at most 3600 s, got ${cacheTtl.toSeconds()}`);
    const throttling = props.throttling ?? { rateLimit: 1000, burstLimit: 2000 };
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    this.data = new DataStore(this, 'Data', { removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN });
    const { keysTable, accountsTable, usageTable, workflowsTable, executionsTable } = this.data;
    const settingsEnv = { [SETTINGS_ENV]: JSON.stringify(settings) };

    // The authorizer reads key records, and only that: GetItem on the keys table.
    const authorizerFn = new KnoudsFunction(this, 'AuthorizerFunction', {
      lambda: 'authorizer',
      description: 'Knouds API: resolves x-api-key to a capability context',
      logRetention,
      environment: { ...settingsEnv, [TABLE_ENV.keys]: keysTable.tableName },
    });
    keysTable.grant(authorizerFn, 'dynamodb:GetItem');

    const keysFn = new KnoudsFunction(this, 'KeysFunction', {
      lambda: 'keys',
      description: 'Knouds API: /keys',
      logRetention,
      environment: {
        ...settingsEnv,
        [TABLE_ENV.keys]: keysTable.tableName,
        [TABLE_ENV.accounts]: accountsTable.tableName,
        [TABLE_ENV.usage]: usageTable.tableName,
      },
    });
    // Key records and pointers: read, query the by-account index, write in transactions.
    keysTable.grant(keysFn, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    // Accounts: the tier and the active-key count, changed only inside the key transactions.
    accountsTable.grant(keysFn, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    // Usage: the per-request counter (UpdateItem) and the usage figures (Query).
    usageTable.grant(keysFn, 'dynamodb:UpdateItem', 'dynamodb:Query');

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const authorizer = new RequestAuthorizer(this, 'ApiKeyAuthorizer', {
      handler: authorizerFn,
      identitySources: [IdentitySource.header('x-api-key')],
      resultsCacheTtl: cacheTtl,
    });

    this.api = new RestApi(this, 'Api', {
      restApiName: `${id}`,
      description: 'Knouds API',
      cloudWatchRole: props.cloudWatchRole ?? true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        throttlingRateLimit: throttling.rateLimit,
        throttlingBurstLimit: throttling.burstLimit,
      },
      defaultMethodOptions: { authorizer, authorizationType: AuthorizationType.CUSTOM },
    });
    addGatewayResponses(this.api);

    // GET /health: the gateway alone (a mock integration), no key.
    this.api.root.addResource('health').addMethod(
      'GET',
      new MockIntegration({
        passthroughBehavior: PassthroughBehavior.NEVER,
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
        integrationResponses: [
          { statusCode: '200', responseTemplates: { 'application/json': '{"status": "ok"}' } },
        ],
      }),
      { authorizationType: AuthorizationType.NONE, authorizer: undefined, methodResponses: [{ statusCode: '200' }] },
    );

    const keysIntegration = new LambdaIntegration(keysFn);
    const keys = this.api.root.addResource('keys');
    keys.addMethod('GET', keysIntegration);
    keys.addMethod('POST', keysIntegration);
    keys.addResource('verify').addMethod('GET', keysIntegration);
    const key = keys.addResource('{key_id}');
    key.addMethod('GET', keysIntegration);
    key.addMethod('PATCH', keysIntegration);
    key.addMethod('DELETE', keysIntegration);
    key.addResource('rotate').addMethod('POST', keysIntegration);
    key.addResource('usage').addMethod('GET', keysIntegration);

    const outputs: Record<string, string> = {
      [STACK_OUTPUTS.apiUrl]: this.api.url,
      [STACK_OUTPUTS.keysTable]: keysTable.tableName,
      [STACK_OUTPUTS.accountsTable]: accountsTable.tableName,
      [STACK_OUTPUTS.usageTable]: usageTable.tableName,
      [STACK_OUTPUTS.workflowsTable]: workflowsTable.tableName,
      [STACK_OUTPUTS.executionsTable]: executionsTable.tableName,
      [STACK_OUTPUTS.settings]: JSON.stringify(settings),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}
