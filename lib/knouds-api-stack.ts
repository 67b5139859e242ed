import { CfnOutput, type CfnResource, Duration, Lazy, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  type CfnMethod,
  AuthorizationType,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  MockIntegration,
  PassthroughBehavior,
  RequestAuthorizer,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction as LambdaTarget } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type CfnFunction, type IFunction, Tracing } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { SLUG_PATTERN } from '../lambdas/shared/capabilities.js';
import { TABLE_ENV } from '../lambdas/shared/ddb.js';
import { WEBHOOK_SENDER_FUNCTION_ENV, WORKER_FUNCTION_ENV } from '../lambdas/shared/env.js';
import { EXECUTIONS_BY_STATUS_INDEX, EXECUTIONS_BY_WORKFLOW_INDEX, SIGNAL_PARTITION_SUFFIX, SYNC_SLOTS_PARTITION_SUFFIX, WEBHOOKS_DUE_INDEX } from '../lambdas/shared/repositories/executions.js';
import {
  HOUSEKEEPING_TIMEOUT_SECONDS,
  SYNC_BUDGET_MS,
  SYNC_OUTCOME_RESERVE_MS,
  WEBHOOK_SENDER_INTERVAL_MINUTES,
  WEBHOOK_SENDER_TIMEOUT_SECONDS,
  WORKER_MAX_EVENT_AGE_SECONDS,
  WORKER_TIMEOUT_SECONDS,
  WORKFLOWS_TIMEOUT_SECONDS,
} from '../lambdas/shared/run-budget.js';
import { KEYS_BY_ACCOUNT_INDEX, KEYS_HOLDING_SLOTS_INDEX } from '../lambdas/shared/repositories/keys.js';
import { AUDIT_BY_ACTION_INDEX, AUDIT_BY_ACTOR_INDEX, AUDIT_BY_TARGET_INDEX } from '../lambdas/shared/repositories/audit.js';
import { BUILT_IN_MODEL_IDS, MODELS_ENV } from '../lambdas/shared/models/registry.js';
import { METRICS_NAMESPACE_ENV } from '../lambdas/shared/metric-names.js';
import { SECRETS_KEY_ARN_ENV } from '../lambdas/shared/secret-box.js';
import { PAGE_TOKEN_KEY_ACTION, PAGE_TOKEN_KEY_ARN_ENV } from '../lambdas/shared/page-tokens.js';
import { resolveSettings, SETTINGS_ENV, type SettingsOverrides } from '../lambdas/shared/settings.js';
import { DataStore } from './data-store.js';
import { boundedFunctionName, LAMBDA_ENVIRONMENT_LIMIT_BYTES, validateEnvironmentSize, variableBytes } from './environment-size.js';
import { KnoudsConsole } from './console.js';
import { EdgeRateLimit } from './edge-rate-limit.js';
import { addGatewayResponses, REQUEST_ID_HEADER_MAPPING } from './gateway-responses.js';
import { addMethodNotAllowed } from './method-not-allowed.js';
import { Identity, type ExternalIdentityProvider, type UserPoolOptions } from './identity.js';
import { KnoudsFunction, SOURCE_MAPS_CONTEXT } from './knouds-function.js';
import { Monitoring, type MonitoringOptions } from './monitoring.js';
import { acknowledgeNagFindings } from './nag.js';
import { STACK_OUTPUTS } from './outputs.js';

/** A model backed by the deployer's own Lambda function, invoked synchronously with `{input}`. */
export interface CustomModel {
  /** The model id (`[a-z0-9][a-z0-9-]{0,62}`), distinct from the built-ins. */
  readonly id: string;
  readonly description: string;
  /** JSON Schema of the model's input. @default {} (anything) */
  readonly inputSchema?: Record<string, unknown>;
  /** Returns the model's output for `{input}`; a thrown error fails the step with its message. */
  readonly handler: IFunction;
}

export interface KnoudsApiStackProps extends StackProps, SettingsOverrides {
  /**
   * Models added to the five built-ins, each backed by a Lambda function of the deployer's: a list, or a
   * function that makes them in this stack (`(stack) => [{ id, description, handler: new Function(stack, …) }]`).
   * @default none
   */
  readonly models?: readonly CustomModel[] | ((stack: Construct) => readonly CustomModel[]);
  /**
   * The API stage, the first segment of every path.
   * @default 'v1'
   */
  readonly stageName?: string;
  /**
   * How long API Gateway caches an authorizer decision. Must be zero: a cache needs identity sources
   * that every request carries, and people's requests carry no `x-api-key` (API.md §1); a cache would
   * also delay revocation, edits, expiry, tier and membership changes (API.md promises "the next request").
   * @default Duration.seconds(0) — no cache
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Removal policy of every table, and of the Cognito user pool.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * DynamoDB deletion protection on every table (and Cognito's on the user pool): nothing deletes a table
   * (the console, the API, a stack update that would replace it, the stack's deletion) until it is turned off.
   * @default true — but false when `removalPolicy` is `RemovalPolicy.DESTROY`
   */
  readonly deletionProtection?: boolean;
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
   * The functions' log level (Powertools Logger): one JSON line per request at INFO.
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * The share of invocations (0–1) logged at DEBUG whatever `logLevel` says (Powertools log sampling).
   * @default 0
   */
  readonly logSampleRate?: number;
  /**
   * Alarms (authorizer errors, 5xx rate, Lambda throttles, dead letters, webhook failure rate) and a
   * CloudWatch dashboard. @default both on, no alarm actions
   */
  readonly monitoring?: MonitoringOptions;
  /**
   * Map stack traces in the functions' logs back to the TypeScript sources (`NODE_OPTIONS=--enable-source-maps`).
   * Costs each cold start about 15–20 ms (measured by `npm run bench`).
   * @default false
   */
  readonly enableSourceMaps?: boolean;
  /**
   * AWS X-Ray active tracing of every function and of the API stage, and `POWERTOOLS_TRACE_ENABLED=true`
   * in the functions' environment. The bundles carry no tracer: traces show API Gateway and each
   * function's own segments (initialization, invocation), not the DynamoDB calls inside them.
   * @default false
   */
  readonly tracing?: boolean;
  /**
   * An edge defence: an AWS WAF web ACL on the stage with a rate-based rule keyed on the `x-api-key`
   * header, refusing (429 THROTTLED) a key value past `requestsPerMinute` before it costs a Lambda
   * invocation or a DynamoDB write. Coarse (WAF counts approximately, over its own window): set it well
   * above the highest tier's per-key limit, which the functions keep exactly. WAF is billed per web ACL,
   * rule and request.
   * @default none — stage throttling and the exact per-key limits only
   */
  readonly edgeRateLimit?: { readonly requestsPerMinute: number };
  /**
   * Reserved concurrency of the worker, the function that runs asynchronous executions (up to 15 minutes
   * each). It is both a guarantee and a cap: at most this many runs execute at once, whatever the
   * tenants start, and the rest of the account's Lambda pool (its concurrency limit, 1000 by default,
   * less this) stays with the API's functions (authorizer, keys, workflows, executions), which are left
   * unreserved so they share it. Events past the cap wait in Lambda's queue for the worker (up to an hour,
   * then the dead-letter queue), and the tiers' `maxAsyncInFlight` bounds what one account can put there.
   * Lambda refuses a reservation that leaves less than 100 unreserved in the account (deployment fails),
   * so the account's limit must be at least this plus 100.
   * @default 100
   */
  readonly workerConcurrency?: number;
  /**
   * Create the account-wide role that lets API Gateway write access logs. Turn off when the
   * account already has one (it is a per-region account setting).
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /**
   * People sign in with this existing OpenID Connect provider (`{ issuer, clientId, audience?, jwksUri? }`)
   * instead of the stack's Cognito user pool, which is then not created. The API takes its RFC 9068 JWT
   * access tokens whose `aud` is `audience`.
   * @default none — a Cognito user pool (see `userPool`)
   */
  readonly identityProvider?: ExternalIdentityProvider;
  /**
   * The Cognito user pool's managed login domain prefix, the console's callback and sign-out URLs, and
   * threat protection. Not with `identityProvider`.
   * @default see UserPoolOptions (lib/identity.ts)
   */
  readonly userPool?: UserPoolOptions;
  /**
   * The console (API.md §6) on a CloudFront distribution: the built web application from a private S3
   * bucket (origin access control), `/config.json` written at deploy time, and `/<stageName>/*` sent to the
   * API, so the console and the API share one origin. Its URL is the output `ConsoleUrl`; the Cognito
   * client's callback and sign-out URLs point at it (with `identityProvider`, register the output
   * `ConsoleRedirectUri` and `ConsoleUrl` with your provider). `false` leaves out the bucket, the
   * distribution, the deployment and those outputs.
   * @default true
   */
  readonly console?: boolean;
  /**
   * How often housekeeping runs (API.md §7): an EventBridge rule invokes the housekeeping function, which
   * releases the slots of keys past their expiry or their rotation's grace and fails runs still QUEUED or
   * RUNNING past their deadline ("timed out"). An expired key's slot is back within one interval.
   * Whole minutes, at least one.
   * @default Duration.minutes(5)
   */
  readonly sweepInterval?: Duration;
}

export { STACK_OUTPUTS };

export class KnoudsApiStack extends Stack {
  readonly api: RestApi;
  readonly data: DataStore;
  /** People's identity provider: the Cognito user pool, or the deployer's. */
  readonly identity: Identity;
  readonly monitoring: Monitoring;
  /** The KMS key that seals webhook secrets at rest. */
  readonly secretsKey: Key;
  /** The KMS HMAC key the functions that list derive their page tokens' MAC key from. */
  readonly pageTokenKey: Key;
  /** The console's bucket and distribution, unless the `console` prop is false. */
  readonly console?: KnoudsConsole;

  constructor(scope: Construct, id: string, props: KnoudsApiStackProps = {}) {
    super(scope, id, props);
    // Before any child exists: read by every KnoudsFunction of this stack as it is created.
    if (props.enableSourceMaps) {
      this.node.setContext(SOURCE_MAPS_CONTEXT, true);
    }
    // Validate everything up front, with the bad value in the message.
    const settings = resolveSettings(props);
    const stageName = props.stageName ?? 'v1';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) throw new Error(`stageName must be alphanumeric, got '${stageName}'`);
    const cacheTtl = props.authorizerCacheTtl ?? Duration.seconds(0);
    if (cacheTtl.toSeconds() !== 0) {
      throw new Error(
        `authorizerCacheTtl must be 0, got ${cacheTtl.toSeconds()} s: API Gateway caches only on identity sources every request carries, and people's sessions carry no x-api-key (a cache would also delay revocation and membership changes)`,
      );
    }
    const throttling = props.throttling ?? { rateLimit: 1000, burstLimit: 2000 };
    const tracing = props.tracing ?? false;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const models = typeof props.models === 'function' ? props.models(this) : (props.models ?? []);
    for (const m of models) {
      if (!SLUG_PATTERN.test(m.id)) throw new Error(`model id must match ${SLUG_PATTERN}, got '${m.id}'`);
      if (BUILT_IN_MODEL_IDS.includes(m.id)) throw new Error(`model id '${m.id}' is a built-in model`);
    }
    if (new Set(models.map((m) => m.id)).size !== models.length) throw new Error('model ids must be unique');
    const sweepInterval = props.sweepInterval ?? Duration.minutes(5);
    if (sweepInterval.isUnresolved() || sweepInterval.toMilliseconds() % 60_000 !== 0 || sweepInterval.toMilliseconds() < 60_000) {
      throw new Error(`sweepInterval must be a whole number of minutes, at least one, got ${sweepInterval.toHumanString()}`);
    }
    const workerConcurrency = props.workerConcurrency ?? 100;
    if (!Number.isInteger(workerConcurrency) || workerConcurrency < 1) throw new Error(`workerConcurrency must be a positive integer, got ${workerConcurrency}`);

    this.data = new DataStore(this, 'Data', {
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.deletionProtection === undefined ? {} : { deletionProtection: props.deletionProtection }),
    });
    const { keysTable, accountsTable, usageTable, workflowsTable, executionsTable, membershipsTable, idempotencyTable, auditTable } = this.data;
    // The console is made after the API (its distribution sends /v1/* there), the Cognito client before it
    // (the authorizer is told its id): the client takes the console's URLs as values resolved at synthesis.
    const deployConsole = props.console ?? true;
    const consoleValue = (what: 'redirectUri' | 'postLogoutRedirectUri') =>
      Lazy.string({
        produce: () => {
          if (!this.console) throw new Error('the console was not built');
          return this.console[what];
        },
      });
    this.identity = new Identity(this, 'Identity', {
      ...(props.identityProvider ? { identityProvider: props.identityProvider } : {}),
      ...(props.userPool ? { userPool: props.userPool } : {}),
      ...(deployConsole ? { console: { callbackUrl: consoleValue('redirectUri'), signOutUrl: consoleValue('postLogoutRedirectUri') } } : {}),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.deletionProtection === undefined ? {} : { deletionProtection: props.deletionProtection }),
    });
    const settingsEnv = { [SETTINGS_ENV]: JSON.stringify(settings) };
    // Webhook secrets are sealed with this key (the account id as encryption context) before they reach
    // the accounts table; the keys function, the worker and the webhook sender may seal and open them, the
    // workflows function only open them, housekeeping only seal them (a plaintext one of an earlier release).
    this.secretsKey = new Key(this, 'WebhookSecretsKey', {
      description: 'Knouds API: seals the accounts’ webhook signing secrets',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    const secretsEnv = { [SECRETS_KEY_ARN_ENV]: this.secretsKey.keyArn };
    /** `actions` on the secrets key, only with an encryption context that is an account id and nothing else. */
    const grantSecrets = (fn: IFunction, actions: string[]) => {
      fn.addToRolePolicy(
        new PolicyStatement({
          actions,
          resources: [this.secretsKey.keyArn],
          conditions: {
            'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['account_id'] },
            Null: { 'kms:EncryptionContext:account_id': 'false' },
          },
        }),
      );
    };
    // Page tokens carry an HMAC, so a token the API did not issue is 400 whatever position it names. The
    // MAC key is never stored: each container of a function that lists derives it once, with GenerateMac
    // over a fixed label (lambdas/shared/page-tokens.ts); no other role of the stack may use this key. It
    // protects nothing kept: deleted with the stack (after KMS's shortest waiting period), it only ends
    // the tokens in flight.
    this.pageTokenKey = new Key(this, 'PageTokenKey', {
      description: 'Knouds API: derives the key that signs page tokens (next_token)',
      keySpec: KeySpec.HMAC_256,
      keyUsage: KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    const pageTokenEnv = { [PAGE_TOKEN_KEY_ARN_ENV]: this.pageTokenKey.keyArn };
    const grantPageTokens = (fn: IFunction) => {
      fn.addToRolePolicy(new PolicyStatement({ actions: [PAGE_TOKEN_KEY_ACTION], resources: [this.pageTokenKey.keyArn] }));
    };
    /**
     * `actions` on one table, and (for Query only) on the indexes the code queries, named: never the
     * `index/*` wildcard that `table.grant` adds. `queriesTable: false`: the code queries only those
     * indexes, never the table itself, so Query gets the indexes alone (a statement of its own).
     */
    const grantTable = (table: ITableV2, fn: IFunction, actions: string[], indexes: string[] = [], { queriesTable = true } = {}) => {
      const indexArns = indexes.map((i) => `${table.tableArn}/index/${i}`);
      const queries = actions.includes('dynamodb:Query');
      if (queries && !queriesTable) {
        const others = actions.filter((a) => a !== 'dynamodb:Query');
        if (others.length) fn.addToRolePolicy(new PolicyStatement({ actions: others, resources: [table.tableArn] }));
        fn.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Query'], resources: indexArns }));
        return;
      }
      fn.addToRolePolicy(new PolicyStatement({ actions, resources: [table.tableArn] }));
      // The indexes get Query alone: no other action is ever checked against an index's ARN.
      if (queries && indexArns.length > 0) fn.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Query'], resources: indexArns }));
    };
    /** `actions` on the table's items only in partitions whose key ends with `suffix` (`dynamodb:LeadingKeys`). */
    const grantInPartitions = (table: ITableV2, fn: IFunction, actions: string[], suffix: string) => {
      fn.addToRolePolicy(
        new PolicyStatement({ actions, resources: [table.tableArn], conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`*${suffix}`] } } }),
      );
    };
    /** `lambda:InvokeFunction` on the function itself (not `:*`, its every version and alias). */
    const grantInvoke = (target: IFunction, caller: IFunction) => {
      caller.addToRolePolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [target.functionArn] }));
    };
    /** The table-name variables a function reads (grants are given beside each function). */
    const tableEnv = (...names: (keyof typeof TABLE_ENV)[]) =>
      Object.fromEntries(names.map((n) => [TABLE_ENV[n], this.data[`${n}Table`].tableName]));

    // The authorizer reads key records (GetItem on the keys table) and, for people, their membership
    // (GetItem, or a Query of the person's partition) and the account's tier (GetItem).
    const authorizerFn = new KnoudsFunction(this, 'AuthorizerFunction', {
      lambda: 'authorizer',
      description: 'Knouds API: resolves x-api-key or a session token to a capability context',
      logRetention,
      // The identity provider's issuer, keys and token profile, for people's access tokens.
      environment: { ...settingsEnv, ...tableEnv('keys', 'memberships', 'accounts'), ...this.identity.authorizerEnvironment },
    });
    grantTable(keysTable, authorizerFn, ['dynamodb:GetItem']);
    grantTable(membershipsTable, authorizerFn, ['dynamodb:GetItem', 'dynamodb:Query']);
    grantTable(accountsTable, authorizerFn, ['dynamodb:GetItem']);

    const keysFn = new KnoudsFunction(this, 'KeysFunction', {
      lambda: 'keys',
      description: 'Knouds API: /keys',
      logRetention,
      environment: { ...settingsEnv, ...secretsEnv, ...pageTokenEnv, ...tableEnv('keys', 'accounts', 'usage', 'memberships', 'idempotency', 'audit') },
    });
    grantSecrets(keysFn, ['kms:Encrypt', 'kms:Decrypt']);
    // GET /keys and GET /audit-events.
    grantPageTokens(keysFn);
    // GET /me: the person's accounts (a Query of their own partition).
    grantTable(membershipsTable, keysFn, ['dynamodb:Query']);
    // Key records and pointers: read, query the by-account index, write in transactions.
    // Keys are listed and counted through the two indexes only (the table's own key is the key's hash).
    // No ConditionCheckItem, here or on the accounts: no transaction checks an item it does not write.
    grantTable(keysTable, keysFn, ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], [KEYS_BY_ACCOUNT_INDEX, KEYS_HOLDING_SLOTS_INDEX], { queriesTable: false });
    // Accounts: the tier and the active-key count, changed only inside the key transactions.
    grantTable(accountsTable, keysFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // Usage: the per-request counter (UpdateItem) and the usage figures (Query).
    grantTable(usageTable, keysFn, ['dynamodb:UpdateItem', 'dynamodb:Query']);
    // Idempotency records of key creations and rotations: take (a conditional put), read, keep the
    // answer (a conditional update), release (a conditional delete). Only the keys and workflows
    // functions have routes that take an Idempotency-Key.
    const idempotencyActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
    grantTable(idempotencyTable, keysFn, idempotencyActions);
    // The audit trail: each key and webhook-secret change puts its event in the change's transaction
    // (create-only, never updated or deleted: TTL removes events); GET /audit-events queries the table and
    // its three indexes and reads the event a page token names.
    grantTable(auditTable, keysFn, ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'], [AUDIT_BY_TARGET_INDEX, AUDIT_BY_ACTOR_INDEX, AUDIT_BY_ACTION_INDEX]);

    const modelSpecs = (functionName: (m: CustomModel) => string) =>
      JSON.stringify(models.map((m) => ({ id: m.id, description: m.description, input_schema: m.inputSchema ?? {}, function_name: functionName(m) })));
    const modelsEnv = { [MODELS_ENV]: modelSpecs((m) => m.handler.functionName) };
    // Lambda allows 4 KB for all of a function's environment variables together; the models' specs alone
    // must fit (each function's whole environment is measured again at synth: validateEnvironmentSize).
    const modelsBytes = variableBytes(MODELS_ENV, modelSpecs((m) => boundedFunctionName(m.handler.functionName)));
    if (modelsBytes > LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
      throw new Error(
        `models: ${MODELS_ENV} (the custom models' ids, descriptions, input schemas and function names) takes ${modelsBytes} bytes, ` +
          `over Lambda's limit of ${LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes (4 KB) for all of a function's environment variables together; ` +
          'shorten the descriptions or input schemas, or deploy fewer models',
      );
    }

    // Asynchronous runs: the worker, invoked asynchronously; Lambda retries twice, then the event goes
    // to the dead-letter queue.
    const deadLetters = new Queue(this, 'WorkerDeadLetters', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const workerFn = new KnoudsFunction(this, 'WorkerFunction', {
      lambda: 'worker',
      description: 'Knouds API: runs asynchronous executions and sends their webhooks',
      logRetention,
      timeout: Duration.seconds(WORKER_TIMEOUT_SECONDS),
      // The settings: how long an account's first webhook secret's event is kept (auditRetentionDays).
      environment: { ...settingsEnv, ...modelsEnv, ...secretsEnv, ...tableEnv('workflows', 'executions', 'accounts', 'audit') },
      // Its own share of the account's pool, never more: ten-minute runs cannot take the authorizer's.
      reservedConcurrentExecutions: workerConcurrency,
      retryAttempts: 2,
      maxEventAge: Duration.seconds(WORKER_MAX_EVENT_AGE_SECONDS),
      onFailure: new SqsDestination(deadLetters),
    });
    grantTable(workflowsTable, workerFn, ['dynamodb:GetItem']);
    grantTable(executionsTable, workerFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // The webhook secret, and (in a run's terminal transaction) the account's in-flight counter.
    grantTable(accountsTable, workerFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // The webhook_secret.created event of an account's first secret, which a run's webhook may make.
    grantTable(auditTable, workerFn, ['dynamodb:PutItem']);
    grantSecrets(workerFn, ['kms:Encrypt', 'kms:Decrypt']);

    // API Gateway ends a request at 29 s; sync runs stop their steps after SYNC_BUDGET_MS (25 s) and
    // the function lives on past the gateway's limit to record the outcome (the final write, retried).
    if (WORKFLOWS_TIMEOUT_SECONDS * 1000 < SYNC_BUDGET_MS + SYNC_OUTCOME_RESERVE_MS) throw new Error('the workflows function would time out before recording a sync run');
    const workflowsFn = new KnoudsFunction(this, 'WorkflowsFunction', {
      lambda: 'workflows',
      description: 'Knouds API: /workflows and /models',
      logRetention,
      timeout: Duration.seconds(WORKFLOWS_TIMEOUT_SECONDS),
      environment: {
        ...modelsEnv,
        ...secretsEnv,
        ...pageTokenEnv,
        // The tiers' limits of async runs in flight and of sync runs running at once.
        ...settingsEnv,
        ...tableEnv('usage', 'workflows', 'executions', 'accounts', 'idempotency'),
        [WORKER_FUNCTION_ENV]: workerFn.functionName,
      },
    });
    grantTable(usageTable, workflowsFn, ['dynamodb:UpdateItem']);
    grantTable(workflowsTable, workflowsFn, ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']);
    grantTable(executionsTable, workflowsFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    // A sync run reads its account's sync slots: a Query, only of a slot partition (no index, no run).
    grantInPartitions(executionsTable, workflowsFn, ['dynamodb:Query'], SYNC_SLOTS_PARTITION_SUFFIX);
    // A run it cannot hand to the worker, it fails and sends the webhook of: it opens the account's
    // existing secret (never makes one, so no kms:Encrypt). It writes the accounts table only inside an
    // async run's transactions: the in-flight counter, taken with the put and freed with a failure.
    grantTable(accountsTable, workflowsFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    grantSecrets(workflowsFn, ['kms:Decrypt']);
    // GET /workflows, /workflows/{slug}/versions and /models.
    grantPageTokens(workflowsFn);
    // Idempotency records of workflow creations and runs (as for the keys function above).
    grantTable(idempotencyTable, workflowsFn, idempotencyActions);
    grantInvoke(workerFn, workflowsFn);
    for (const m of models) {
      grantInvoke(m.handler, workflowsFn);
      grantInvoke(m.handler, workerFn);
    }

    // Webhook retries: a function run every minute by an EventBridge rule, which sends every webhook due
    // (the pending ones in the executions table's sparse `webhooks-due` index), and which the executions
    // function invokes asynchronously to send a redelivered one at once. It reads and updates executions,
    // queries only that index, and opens the accounts' webhook secrets. It makes an account's first one
    // when a run ended without its worker (housekeeping's timeout, a hand-off that failed) on an account
    // that had none: the secret's conditional write and its webhook_secret.created event, as the worker does.
    const webhookSenderFn = new KnoudsFunction(this, 'WebhookSenderFunction', {
      lambda: 'webhook-sender',
      description: 'Knouds API: sends the webhooks due (every minute) and redelivered ones',
      logRetention,
      timeout: Duration.seconds(WEBHOOK_SENDER_TIMEOUT_SECONDS),
      // The settings: how long an account's first webhook secret's event is kept (auditRetentionDays).
      environment: { ...settingsEnv, ...secretsEnv, ...tableEnv('executions', 'accounts', 'audit') },
      // A failed run is not retried: the next minute's run finds what it left due.
      retryAttempts: 0,
    });
    grantTable(executionsTable, webhookSenderFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    webhookSenderFn.addToRolePolicy(
      new PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${executionsTable.tableArn}/index/${WEBHOOKS_DUE_INDEX}`] }),
    );
    grantTable(accountsTable, webhookSenderFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    grantTable(auditTable, webhookSenderFn, ['dynamodb:PutItem']);
    grantSecrets(webhookSenderFn, ['kms:Encrypt', 'kms:Decrypt']);
    new Rule(this, 'WebhookSenderSchedule', {
      description: 'Knouds API: the webhook sender, every minute',
      schedule: Schedule.rate(Duration.minutes(WEBHOOK_SENDER_INTERVAL_MINUTES)),
      // A scheduled event not delivered within the minute is replaced by the next one.
      targets: [new LambdaTarget(webhookSenderFn, { retryAttempts: 0, maxEventAge: Duration.minutes(WEBHOOK_SENDER_INTERVAL_MINUTES) })],
    });

    // Housekeeping (API.md §7): a function run every `sweepInterval` by an EventBridge rule, which
    // releases the slots of expired keys (and of rotated keys past their grace) and fails overdue runs.
    // It scans the accounts table (ids, key counts, and whether a plaintext secret is there), queries the
    // keys' slot index and the executions' status index, and changes keys, accounts and executions only in
    // conditional writes and transactions (a release with its audit event).
    // It sends no webhook (the terminal write marks it pending: the sender delivers it), so it opens no
    // secret; it seals (kms:Encrypt only) a secret an earlier release kept in the clear, found by its scan.
    const housekeepingFn = new KnoudsFunction(this, 'HousekeepingFunction', {
      lambda: 'housekeeping',
      description: 'Knouds API: housekeeping (expired keys’ slots, overdue executions), on a schedule',
      logRetention,
      timeout: Duration.seconds(HOUSEKEEPING_TIMEOUT_SECONDS),
      // The settings: how long the `key.expired` events are kept (auditRetentionDays).
      environment: { ...settingsEnv, ...secretsEnv, ...tableEnv('keys', 'accounts', 'executions', 'audit') },
      // A failed run is not retried: the next scheduled run continues where it stopped.
      retryAttempts: 0,
    });
    // GetItem: the plaintext secret, read consistently before it is sealed.
    grantTable(accountsTable, housekeepingFn, ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem']);
    grantSecrets(housekeepingFn, ['kms:Encrypt']);
    // A release's `key.expired` event, in the release's transaction (create-only).
    grantTable(auditTable, housekeepingFn, ['dynamodb:PutItem']);
    grantTable(keysTable, housekeepingFn, ['dynamodb:UpdateItem']);
    grantTable(executionsTable, housekeepingFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // Queries reach only the indexes: the slot index (and, for an account from before the slot map, the
    // account index that rebuilds it) and the executions' status index.
    housekeepingFn.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [
          `${keysTable.tableArn}/index/${KEYS_HOLDING_SLOTS_INDEX}`,
          `${keysTable.tableArn}/index/${KEYS_BY_ACCOUNT_INDEX}`,
          `${executionsTable.tableArn}/index/${EXECUTIONS_BY_STATUS_INDEX}`,
        ],
      }),
    );
    new Rule(this, 'HousekeepingSchedule', {
      description: `Knouds API: housekeeping, every ${sweepInterval.toHumanString()}`,
      schedule: Schedule.rate(sweepInterval),
      // A scheduled event not delivered within the interval is replaced by the next one (EventBridge
      // keeps an event at most a day).
      targets: [
        new LambdaTarget(housekeepingFn, {
          retryAttempts: 0,
          maxEventAge: Duration.seconds(Math.min(sweepInterval.toSeconds(), 24 * 3600)),
        }),
      ],
    });

    const executionsFn = new KnoudsFunction(this, 'ExecutionsFunction', {
      lambda: 'executions',
      description: 'Knouds API: /executions',
      logRetention,
      environment: { ...pageTokenEnv, ...tableEnv('usage', 'executions', 'accounts'), [WEBHOOK_SENDER_FUNCTION_ENV]: webhookSenderFn.functionName },
    });
    // GET /executions.
    grantPageTokens(executionsFn);
    // A redelivery asks the sender to send at once.
    grantInvoke(webhookSenderFn, executionsFn);
    grantTable(usageTable, executionsFn, ['dynamodb:UpdateItem']);
    // A cancel frees the run's in-flight slot: the account's counter, in the cancel's transaction.
    grantTable(accountsTable, executionsFn, ['dynamodb:UpdateItem']);
    grantTable(executionsTable, executionsFn, ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], [EXECUTIONS_BY_WORKFLOW_INDEX, EXECUTIONS_BY_STATUS_INDEX]);
    // The cancel's signal item (in the cancel's transaction): a put, only under an account's signal partition.
    grantInPartitions(executionsTable, executionsFn, ['dynamodb:PutItem'], SIGNAL_PARTITION_SUFFIX);

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const authorizer = new RequestAuthorizer(this, 'ApiKeyAuthorizer', {
      handler: authorizerFn,
      // None: a request carries x-api-key or Authorization, and the authorizer tells a missing one (401).
      identitySources: [],
      resultsCacheTtl: cacheTtl,
    });
    // CDK writes an empty string; API Gateway documents the property as optional without a cache, and
    // leaving it out is the form every tool (CloudFormation, the console, Serverless) deploys.
    (authorizer.node.defaultChild as CfnResource).addPropertyDeletionOverride('IdentitySource');

    this.api = new RestApi(this, 'Api', {
      restApiName: `${id}`,
      description: 'Knouds API',
      // Regional, not edge-optimized: clients reach the region directly, and a CloudFront distribution
      // or a WAF web ACL, if wanted, is the deployer's own to put in front.
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      ...(props.cloudWatchRole === false ? { cloudWatchRole: false } : { cloudWatchRole: true, cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN }),
      deployOptions: {
        stageName,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        throttlingRateLimit: throttling.rateLimit,
        throttlingBurstLimit: throttling.burstLimit,
        // Execution logs for errors only, never request or response bodies (they carry keys and secrets).
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        ...(tracing ? { tracingEnabled: true } : {}),
      },
      defaultMethodOptions: { authorizer, authorizationType: AuthorizationType.CUSTOM },
    });
    addGatewayResponses(this.api, settings.keyPrefix);
    if (props.edgeRateLimit) {
      new EdgeRateLimit(this, 'EdgeRateLimit', { stage: this.api.deploymentStage, requestsPerMinute: props.edgeRateLimit.requestsPerMinute });
    }

    // GET /health: the gateway alone (a mock integration), no key.
    const healthMethod = this.api.root.addResource('health').addMethod(
      'GET',
      new MockIntegration({
        passthroughBehavior: PassthroughBehavior.NEVER,
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
        integrationResponses: [
          {
            statusCode: '200',
            responseParameters: {
              'method.response.header.x-request-id': REQUEST_ID_HEADER_MAPPING['x-request-id'],
              'method.response.header.X-Content-Type-Options': "'nosniff'",
            },
            responseTemplates: { 'application/json': '{"status": "ok"}' },
          },
        ],
      }),
      {
        authorizationType: AuthorizationType.NONE,
        authorizer: undefined,
        methodResponses: [{ statusCode: '200', responseParameters: { 'method.response.header.x-request-id': true, 'method.response.header.X-Content-Type-Options': true } }],
      },
    );

    // GET /openapi.json: the API description, no key (a function that reads no table).
    const openApiFn = new KnoudsFunction(this, 'OpenApiFunction', {
      lambda: 'openapi',
      description: 'Knouds API: GET /openapi.json',
      logRetention,
    });
    const openApiMethod = this.api.root
      .addResource('openapi.json')
      .addMethod('GET', new LambdaIntegration(openApiFn), { authorizationType: AuthorizationType.NONE, authorizer: undefined });

    const keysIntegration = new LambdaIntegration(keysFn);
    const keys = this.api.root.addResource('keys');
    keys.addMethod('GET', keysIntegration);
    keys.addMethod('POST', keysIntegration);
    keys.addResource('verify').addMethod('GET', keysIntegration);
    this.api.root.addResource('me').addMethod('GET', keysIntegration);
    const key = keys.addResource('{key_id}');
    key.addMethod('GET', keysIntegration);
    key.addMethod('PATCH', keysIntegration);
    key.addMethod('DELETE', keysIntegration);
    key.addResource('rotate').addMethod('POST', keysIntegration);
    key.addResource('usage').addMethod('GET', keysIntegration);

    const workflowsIntegration = new LambdaIntegration(workflowsFn);
    const workflows = this.api.root.addResource('workflows');
    workflows.addMethod('GET', workflowsIntegration);
    workflows.addMethod('POST', workflowsIntegration);
    const workflow = workflows.addResource('{slug}');
    for (const method of ['GET', 'PUT', 'DELETE']) workflow.addMethod(method, workflowsIntegration);
    workflow.addResource('deploy').addMethod('POST', workflowsIntegration);
    // Workflow versions (API.md §4): newest first, read by the workflows function (a Query it already may make).
    workflow.addResource('versions').addMethod('GET', workflowsIntegration);
    workflow.addResource('run').addMethod('POST', workflowsIntegration);
    const modelsResource = this.api.root.addResource('models');
    modelsResource.addMethod('GET', workflowsIntegration);
    modelsResource.addResource('{model_id}').addResource('run').addMethod('POST', workflowsIntegration);

    const executionsIntegration = new LambdaIntegration(executionsFn);
    const executions = this.api.root.addResource('executions');
    executions.addMethod('GET', executionsIntegration);
    const execution = executions.addResource('{execution_id}');
    execution.addMethod('GET', executionsIntegration);
    execution.addResource('cancel').addMethod('POST', executionsIntegration);
    execution.addResource('webhook').addResource('redeliver').addMethod('POST', executionsIntegration);

    const secret = this.api.root.addResource('webhooks').addResource('secret');
    secret.addMethod('GET', keysIntegration);
    secret.addResource('rotate').addMethod('POST', keysIntegration);
    // The audit trail (API.md §7): read by the keys function, which writes most of it.
    this.api.root.addResource('audit-events').addMethod('GET', keysIntegration);

    // Request validation at the gateway: every authenticated method declares its path parameters as
    // required. Not the x-api-key header: the authorizer's identity source already answers a missing one
    // with the contract's 401, where a validator could answer 400 first. Body validation is on, but no
    // method declares a model: the handlers validate bodies against the same JSON Schemas
    // (lambdas/shared/schemas.ts), so that errors carry the contract's `details`, which a gateway response
    // cannot.
    const validator = this.api.addRequestValidator('RequestValidator', { validateRequestParameters: true, validateRequestBody: true });
    for (const method of this.api.methods) {
      if (method.resource.path === '/health' || method.resource.path === '/openapi.json') continue;
      const cfn = method.node.defaultChild as CfnMethod;
      cfn.requestValidatorId = validator.requestValidatorId;
      const pathParams = [...method.resource.path.matchAll(/\{(\w+)\}/g)].map((m) => [`method.request.path.${m[1]}`, true]);
      if (pathParams.length > 0) cfn.requestParameters = Object.fromEntries(pathParams);
    }

    // Every known path answers its other methods with 405 and `Allow` (after the validator: no checks on those).
    const methodNotAllowed = addMethodNotAllowed(this.api);

    // Logs and metrics of every function (Powertools): level, sampling, service and namespace.
    const logLevel = props.logLevel ?? 'INFO';
    const sampleRate = props.logSampleRate ?? 0;
    if (!(sampleRate >= 0 && sampleRate <= 1)) throw new Error(`logSampleRate must be from 0 to 1, got ${sampleRate}`);
    const service = 'knouds-api';
    const namespace = `Knouds/${id}`;
    const functions = { authorizerFn, keysFn, workflowsFn, executionsFn, workerFn, openApiFn, webhookSenderFn, housekeepingFn };
    for (const fn of Object.values(functions)) {
      fn.addEnvironment('POWERTOOLS_SERVICE_NAME', service);
      fn.addEnvironment('POWERTOOLS_LOG_LEVEL', logLevel);
      fn.addEnvironment('POWERTOOLS_LOGGER_SAMPLE_RATE', String(sampleRate));
      fn.addEnvironment(METRICS_NAMESPACE_ENV, namespace);
      if (tracing) {
        // What `tracing: Tracing.ACTIVE` does at construction, here in one place for every function.
        (fn.node.defaultChild as CfnFunction).tracingConfig = { mode: Tracing.ACTIVE };
        fn.addToRolePolicy(new PolicyStatement({ actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] }));
        fn.addEnvironment('POWERTOOLS_TRACE_ENABLED', 'true');
      }
      validateEnvironmentSize(fn);
    }
    this.monitoring = new Monitoring(this, 'Monitoring', {
      ...props.monitoring,
      api: this.api,
      functions: Object.fromEntries(Object.entries(functions).map(([k, fn]) => [k, fn])),
      deadLetters,
      housekeeping: housekeepingFn,
      namespace,
      service,
    });

    if (deployConsole) this.console = new KnoudsConsole(this, 'Console', { api: this.api, stageName, identity: this.identity });

    new CfnOutput(this, 'WorkerDeadLetterQueueUrl', { value: deadLetters.queueUrl });
    acknowledgeNagFindings(this, { deadLetters, publicMethods: [healthMethod, openApiMethod], methodNotAllowed, tracedFunctions: tracing ? Object.values(functions) : [] });

    const outputs: Record<string, string> = {
      [STACK_OUTPUTS.apiUrl]: this.api.url,
      [STACK_OUTPUTS.keysTable]: keysTable.tableName,
      [STACK_OUTPUTS.accountsTable]: accountsTable.tableName,
      [STACK_OUTPUTS.usageTable]: usageTable.tableName,
      [STACK_OUTPUTS.workflowsTable]: workflowsTable.tableName,
      [STACK_OUTPUTS.executionsTable]: executionsTable.tableName,
      [STACK_OUTPUTS.membershipsTable]: membershipsTable.tableName,
      [STACK_OUTPUTS.idempotencyTable]: idempotencyTable.tableName,
      [STACK_OUTPUTS.auditTable]: auditTable.tableName,
      [STACK_OUTPUTS.settings]: JSON.stringify(settings),
      ...this.identity.outputs,
      ...(this.console
        ? {
            [STACK_OUTPUTS.consoleUrl]: this.console.url,
            // What a deployer's own provider must allow as the console's redirect URI (Cognito's client already does).
            [STACK_OUTPUTS.consoleRedirectUri]: this.console.redirectUri,
          }
        : {}),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}
