/**
 * Template tests: the stack synthesized in-process without bundling (asset hashes differ, nothing else),
 * checked for the tables, the API, the authorizer, the gateway error bodies and least-privilege IAM.
 */
import { App, type CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { buildOpenApiDocument } from '../lambdas/shared/openapi.js';
import type { Construct } from 'constructs';
import { environmentSize, variableBytes } from '../lib/environment-size.js';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';
import { templateResources, type Resource } from './support/template.js';
import { SYNC_BUDGET_MS, SYNC_OUTCOME_RESERVE_MS } from '../lambdas/shared/run-budget.js';


function synth(props: KnoudsApiStackProps = {}): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new KnoudsApiStack(app, 'TestStack', props));
}

const template = synth();
const { resources, ofType, logicalId } = templateResources(template);

/** The stack's own functions (KnoudsFunction), by construct id. */
const OWN_FUNCTIONS = ['AuthorizerFunction', 'ExecutionsFunction', 'HousekeepingFunction', 'KeysFunction', 'OpenApiFunction', 'WebhookSenderFunction', 'WorkerFunction', 'WorkflowsFunction'];
/**
 * The CDK's own deploy-time functions, one per stack, not the stack's: the BucketDeployment's (Python: copies
 * the console into its bucket) and the S3 auto-delete provider's (empties the console bucket when the stack
 * goes). Their runtime, architecture, environment and policy are the CDK's, so "every function" below means
 * every function of the stack's own; a third kind of function in the template fails the first test.
 */
const CDK_FUNCTIONS: Record<string, RegExp> = {
  bucketDeployment: /^CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C[0-9A-F]{8}$/,
  autoDeleteObjects: /^CustomS3AutoDeleteObjectsCustomResourceProviderHandler[0-9A-F]{8}$/,
};
const isCdkFunction = (id: string) => Object.values(CDK_FUNCTIONS).some((re) => re.test(id));
/** Every AWS::Lambda::Function of a template but the CDK's own. */
const ownFunctionsOf = (tpl: Template) =>
  Object.entries(tpl.toJSON()['Resources'] as Record<string, Resource>).filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && !isCdkFunction(id));
/** The roles of the CDK's own functions (their policies are the CDK's). */
const cdkFunctionRoles = (tpl: Template) =>
  Object.entries(tpl.toJSON()['Resources'] as Record<string, Resource>)
    .filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && isCdkFunction(id))
    .map(([, r]) => (r.Properties['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);

const tables = () => ofType('AWS::DynamoDB::GlobalTable');
const table = (name: string) => resources[logicalId('AWS::DynamoDB::GlobalTable', name)]!;

describe('tables', () => {
  it('eight on-demand tables with point-in-time recovery, retained by default', () => {
    expect(tables().map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(
      ['DataAccountsTable', 'DataAuditTable', 'DataExecutionsTable', 'DataIdempotencyTable', 'DataKeysTable', 'DataMembershipsTable', 'DataUsageTable', 'DataWorkflowsTable'],
    );
    for (const [, t] of tables()) {
      expect(t.Properties['BillingMode']).toBe('PAY_PER_REQUEST');
      expect(t.DeletionPolicy).toBe('Retain');
      const replicas = t.Properties['Replicas'] as { PointInTimeRecoverySpecification?: { PointInTimeRecoveryEnabled: boolean } }[];
      expect(replicas.map((r) => r.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled)).toEqual([true]);
    }
  });

  it('memberships: (subject, account_id), and the by-account index of an account’s people', () => {
    const memberships = table('DataMembershipsTable').Properties;
    expect(memberships['KeySchema']).toEqual([
      { AttributeName: 'subject', KeyType: 'HASH' },
      { AttributeName: 'account_id', KeyType: 'RANGE' },
    ]);
    expect(memberships['GlobalSecondaryIndexes']).toEqual([
      expect.objectContaining({
        IndexName: 'by-account',
        KeySchema: [
          { AttributeName: 'account_id', KeyType: 'HASH' },
          { AttributeName: 'subject', KeyType: 'RANGE' },
        ],
      }),
    ]);
  });

  it('are deleted with the stack when removalPolicy says so', () => {
    const destroyed = synth({ removalPolicy: RemovalPolicy.DESTROY }).toJSON()['Resources'] as Record<string, Resource>;
    const policies = Object.values(destroyed)
      .filter((r) => r.Type === 'AWS::DynamoDB::GlobalTable')
      .map((r) => r.DeletionPolicy);
    expect(policies).toEqual(Array(8).fill('Delete'));
  });

  it('audit: (account_id, sk), TTL, and three indexes each partitioned by account and sorted like the table', () => {
    const audit = table('DataAuditTable').Properties;
    expect(audit['KeySchema']).toEqual([
      { AttributeName: 'account_id', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(audit['TimeToLiveSpecification']).toEqual({ AttributeName: 'ttl', Enabled: true });
    expect(audit['GlobalSecondaryIndexes']).toEqual(
      [
        ['by-target', 'target_key'],
        ['by-actor', 'actor_key'],
        ['by-action', 'action_key'],
      ].map(([name, key]) => ({
        IndexName: name,
        KeySchema: [
          { AttributeName: key, KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    );
  });

  it('keys: pk, TTL, the by-account index and the sparse slot index; usage, executions and idempotency records expire by TTL', () => {
    const keys = table('DataKeysTable').Properties;
    expect(keys['KeySchema']).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(keys['TimeToLiveSpecification']).toEqual({ AttributeName: 'ttl', Enabled: true });
    expect(keys['GlobalSecondaryIndexes']).toEqual([
      {
        IndexName: 'by-account',
        KeySchema: [
          { AttributeName: 'account_id', KeyType: 'HASH' },
          { AttributeName: 'created_at', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        // Sparse: only keys holding a slot carry slot_account, so listing active keys reads no history.
        IndexName: 'by-account-slot',
        KeySchema: [
          { AttributeName: 'slot_account', KeyType: 'HASH' },
          { AttributeName: 'created_at', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    expect(table('DataUsageTable').Properties['KeySchema']).toEqual([
      { AttributeName: 'key_id', KeyType: 'HASH' },
      { AttributeName: 'hour', KeyType: 'RANGE' },
    ]);
    expect(table('DataIdempotencyTable').Properties['KeySchema']).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(table('DataIdempotencyTable').Properties['GlobalSecondaryIndexes']).toBeUndefined();
    for (const name of ['DataUsageTable', 'DataExecutionsTable', 'DataIdempotencyTable']) {
      expect(table(name).Properties['TimeToLiveSpecification']).toEqual({ AttributeName: 'ttl', Enabled: true });
    }
    expect(table('DataAccountsTable').Properties['TimeToLiveSpecification']).toBeUndefined();
  });
});

describe('functions', () => {
  it('are the stack’s seven and, besides them, only the CDK’s deploy-time functions of the console (one each)', () => {
    const ids = ofType('AWS::Lambda::Function').map(([id]) => id);
    expect(ownFunctionsOf(template).map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(OWN_FUNCTIONS);
    expect(Object.fromEntries(Object.entries(CDK_FUNCTIONS).map(([name, re]) => [name, ids.filter((id) => re.test(id)).length]))).toEqual({ bucketDeployment: 1, autoDeleteObjects: 1 });
    expect(ids).toHaveLength(OWN_FUNCTIONS.length + 2);
  });

  it('run Node.js 22 or 24 on ARM64, as ESM bundles with source maps', () => {
    const functions = ownFunctionsOf(template);
    expect(functions).toHaveLength(OWN_FUNCTIONS.length);
    for (const [, f] of functions) {
      expect(['nodejs22.x', 'nodejs24.x']).toContain(f.Properties['Runtime']);
      expect(f.Properties['Architectures']).toEqual(['arm64']);
      expect(f.Properties['Handler']).toBe('index.handler');
    }
  });

  it('apply source maps only when the enableSourceMaps prop asks (they slow cold starts)', () => {
    const envs = (tpl: Template) =>
      ownFunctionsOf(tpl).map(([, r]) => (r.Properties['Environment'] as { Variables: Record<string, string> }).Variables['NODE_OPTIONS']);
    expect(envs(template)).toHaveLength(OWN_FUNCTIONS.length);
    expect(new Set(envs(template))).toEqual(new Set([undefined]));
    expect(new Set(envs(synth({ enableSourceMaps: true })))).toEqual(new Set(['--enable-source-maps']));
  });

  it('carry the settings props as KNOUDS_SETTINGS, validated at construction', () => {
    const custom = synth({ keyPrefix: 'acme', maxActiveKeysPerAccount: 3, tiers: { pro: { liveRateLimit: 250 } } });
    const env = (Object.values(custom.toJSON()['Resources'] as Record<string, Resource>).find(
      (r) => r.Type === 'AWS::Lambda::Function',
    )!.Properties['Environment'] as { Variables: Record<string, string> }).Variables;
    const settings = JSON.parse(env['KNOUDS_SETTINGS']!) as Record<string, unknown>;
    expect(settings).toMatchObject({ keyPrefix: 'acme', maxActiveKeysPerAccount: 3, tiers: { pro: { liveRateLimit: 250, testRateLimit: 10 } } });
    expect(() => synth({ keyPrefix: 'Bad Prefix' })).toThrow(/keyPrefix/);
    expect(() => synth({ maxActiveKeysPerAccount: 0 })).toThrow(/maxActiveKeysPerAccount/);
    // A tier change and its audit event share one transaction with every key: at most 98 keys.
    expect(() => synth({ maxActiveKeysPerAccount: 99 })).toThrow(/maxActiveKeysPerAccount must be an integer from 1 to 98, got 99/);
    expect(() => synth({ maxActiveKeysPerAccount: 98 })).not.toThrow();
    expect(() => synth({ auditRetentionDays: 0 })).toThrow(/auditRetentionDays must be an integer from 1 to 3650, got 0/);
    expect(settings['auditRetentionDays']).toBe(365);
    const kept = (Object.values(synth({ auditRetentionDays: 90 }).toJSON()['Resources'] as Record<string, Resource>).find(
      (r) => r.Type === 'AWS::Lambda::Function' && JSON.stringify(r.Properties).includes('KNOUDS_SETTINGS'),
    )!.Properties['Environment'] as { Variables: Record<string, string> }).Variables;
    expect((JSON.parse(kept['KNOUDS_SETTINGS']!) as Record<string, unknown>)['auditRetentionDays']).toBe(90);
    expect(() => synth({ tiers: { pro: { ceiling: ['keys:everything'] } } })).toThrow(/unknown capability/);
  });
});

describe('API', () => {
  it('has stage v1 with access logs and throttling', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 1000,
          ThrottlingBurstLimit: 2000,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
        }),
      ]),
    });
  });

  it('validates requests at the gateway: every keyed method requires its path parameters (not x-api-key: the authorizer answers that with 401)', () => {
    const validators = ofType('AWS::ApiGateway::RequestValidator');
    expect(validators).toHaveLength(1);
    expect(validators[0]![1].Properties).toMatchObject({ ValidateRequestParameters: true, ValidateRequestBody: true });
    const methods = ofType('AWS::ApiGateway::Method').map(([, m]) => m.Properties);
    expect(methods.length).toBeGreaterThanOrEqual(20);
    for (const m of methods.filter((m) => m['AuthorizationType'] === 'CUSTOM')) {
      expect(m['RequestValidatorId']).toEqual({ Ref: validators[0]![0] });
      expect(JSON.stringify(m['RequestParameters'] ?? {})).not.toContain('header');
    }
    const pathParams = methods.flatMap((m) => Object.keys((m['RequestParameters'] as Record<string, boolean> | undefined) ?? {}));
    for (const p of ['key_id', 'slug', 'model_id', 'execution_id']) expect(pathParams).toContain(`method.request.path.${p}`);
  });

  it('synthesizes without the CloudWatch role when the cloudWatchRole prop is off', () => {
    const roles = Object.keys(synth({ cloudWatchRole: false }).findResources('AWS::ApiGateway::Account'));
    expect(roles).toEqual([]);
    expect(Object.keys(template.findResources('AWS::ApiGateway::Account'))).toHaveLength(1);
  });

  it('has a REQUEST authorizer with no identity source (x-api-key or Authorization: it tells which) and no cache', () => {
    const authorizers = ofType('AWS::ApiGateway::Authorizer');
    expect(authorizers).toHaveLength(1);
    const authorizer = authorizers[0]![1];
    expect(authorizer.Properties).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    // An identity source API Gateway requires before calling the authorizer would refuse every session
    // (no x-api-key) or every key (no Authorization).
    expect(authorizer.Properties).not.toHaveProperty('IdentitySource');
    expect(() => synth({ authorizerCacheTtl: Duration.seconds(60) })).toThrow(/authorizerCacheTtl must be 0/);
  });

  it('serves GET /health (a mock) and GET /openapi.json without a key, and every other method through the authorizer', () => {
    const paths = new Map<string, string>();
    for (const [id, r] of ofType('AWS::ApiGateway::Resource')) paths.set(id, String(r.Properties['PathPart']));
    const methods = ofType('AWS::ApiGateway::Method').map(([, m]) => {
      const ref = (m.Properties['ResourceId'] as { Ref?: string }).Ref ?? '';
      return { path: paths.get(ref), method: m.Properties['HttpMethod'], auth: m.Properties['AuthorizationType'], integration: (m.Properties['Integration'] as { Type: string }).Type };
    });
    // ANY: the 405 of each path's other methods (a mock, without credentials; test/method-not-allowed-template.test.ts).
    expect(methods.filter((m) => m.auth === 'NONE' && m.method !== 'ANY')).toEqual([
      { path: 'health', method: 'GET', auth: 'NONE', integration: 'MOCK' },
      { path: 'openapi.json', method: 'GET', auth: 'NONE', integration: 'AWS_PROXY' },
    ]);
    for (const m of methods.filter((x) => x.method === 'ANY')) expect(m).toMatchObject({ auth: 'NONE', integration: 'MOCK' });
    for (const m of methods.filter((x) => x.path !== 'health' && x.path !== 'openapi.json' && x.method !== 'ANY')) {
      expect(m).toMatchObject({ auth: 'CUSTOM', integration: 'AWS_PROXY' });
    }
    expect(methods.map((m) => `${String(m.method)} ${m.path}`)).toEqual(expect.arrayContaining(['GET verify', 'POST keys', 'POST rotate', 'GET usage']));
  });

  describe('gateway responses carry the contract error body', () => {
    const responses = new Map(
      ofType('AWS::ApiGateway::GatewayResponse').map(([, r]) => [String(r.Properties['ResponseType']), r.Properties]),
    );
    const body = (type: string) => {
      const templates = responses.get(type)?.['ResponseTemplates'] as Record<string, string>;
      return JSON.parse(templates['application/json']!.replaceAll('$context.requestId', 'req-1')) as Record<string, unknown>;
    };

    it.each([
      ['UNAUTHORIZED', '401', { code: 'UNAUTHORIZED', request_id: 'req-1' }],
      // The authorizer's Deny of a bearer token (it denies nothing else): 401, RFC 6750 invalid_token.
      ['ACCESS_DENIED', '401', { code: 'UNAUTHORIZED', request_id: 'req-1' }],
      ['MISSING_AUTHENTICATION_TOKEN', '404', { code: 'NOT_FOUND', request_id: 'req-1' }],
      ['THROTTLED', '429', { code: 'THROTTLED', request_id: 'req-1' }],
      ['REQUEST_TOO_LARGE', '413', { code: 'PAYLOAD_TOO_LARGE', request_id: 'req-1' }],
      ['AUTHORIZER_FAILURE', '500', { code: 'INTERNAL_ERROR', request_id: 'req-1' }],
      ['AUTHORIZER_CONFIGURATION_ERROR', '500', { code: 'INTERNAL_ERROR', request_id: 'req-1' }],
      // No status of their own: API Gateway keeps the original one (issue #14).
      ['DEFAULT_4XX', undefined, { code: 'REQUEST_REFUSED', request_id: 'req-1' }],
      ['DEFAULT_5XX', undefined, { code: 'INTERNAL_ERROR', request_id: 'req-1' }],
    ])('%s → %s', (type, status, fields) => {
      expect(responses.get(type)?.['StatusCode']).toBe(status);
      expect(body(type)).toEqual({ error: expect.any(String), ...fields });
      expect((responses.get(type)?.['ResponseParameters'] as Record<string, string>)['gatewayresponse.header.Content-Type']).toBe(
        "'application/json'",
      );
    });

    it('the 401 tells to use x-api-key (and speaks of Authorization: Bearer only when one was refused), and 429s say when to retry', () => {
      expect(body('UNAUTHORIZED')['error']).toMatch(/x-api-key/);
      expect(body('UNAUTHORIZED')['error']).not.toMatch(/Bearer/);
      expect(body('ACCESS_DENIED')['error']).toMatch(/Authorization: Bearer/);
      for (const type of ['THROTTLED', 'QUOTA_EXCEEDED']) {
        expect((responses.get(type)?.['ResponseParameters'] as Record<string, string>)['gatewayresponse.header.Retry-After']).toMatch(/^'\d+'$/);
      }
    });
  });
});

describe('gateway responses: every response type API Gateway has, each with its own status and code', () => {
  const responses = new Map(
    ofType('AWS::ApiGateway::GatewayResponse').map(([, r]) => [String(r.Properties['ResponseType']), r.Properties]),
  );
  const body = (type: string) => {
    const templates = responses.get(type)?.['ResponseTemplates'] as Record<string, string>;
    return JSON.parse(templates['application/json']!.replaceAll('$context.requestId', 'req-1')) as Record<string, unknown>;
  };
  const header = (type: string, name: string) => (responses.get(type)?.['ResponseParameters'] as Record<string, string>)[`gatewayresponse.header.${name}`];
  // Status (undefined: none set, API Gateway keeps the original) and code, per type; the choices are in
  // README.md ("Errors the gateway produces itself").
  const EXPECTED: Record<string, [string | undefined, string]> = {
    ACCESS_DENIED: ['401', 'UNAUTHORIZED'],
    API_CONFIGURATION_ERROR: ['500', 'INTERNAL_ERROR'],
    AUTHORIZER_CONFIGURATION_ERROR: ['500', 'INTERNAL_ERROR'],
    AUTHORIZER_FAILURE: ['500', 'INTERNAL_ERROR'],
    BAD_REQUEST_PARAMETERS: ['400', 'VALIDATION_ERROR'],
    BAD_REQUEST_BODY: ['400', 'VALIDATION_ERROR'],
    EXPIRED_TOKEN: ['403', 'FORBIDDEN'],
    INTEGRATION_FAILURE: ['502', 'INTERNAL_ERROR'],
    INTEGRATION_TIMEOUT: ['504', 'GATEWAY_TIMEOUT'],
    INVALID_API_KEY: ['403', 'FORBIDDEN'],
    INVALID_SIGNATURE: ['403', 'FORBIDDEN'],
    MISSING_AUTHENTICATION_TOKEN: ['404', 'NOT_FOUND'],
    QUOTA_EXCEEDED: ['429', 'THROTTLED'],
    REQUEST_TOO_LARGE: ['413', 'PAYLOAD_TOO_LARGE'],
    RESOURCE_NOT_FOUND: ['404', 'NOT_FOUND'],
    THROTTLED: ['429', 'THROTTLED'],
    UNAUTHORIZED: ['401', 'UNAUTHORIZED'],
    UNSUPPORTED_MEDIA_TYPE: ['415', 'UNSUPPORTED_MEDIA_TYPE'],
    WAF_FILTERED: ['403', 'FORBIDDEN'],
    DEFAULT_4XX: [undefined, 'REQUEST_REFUSED'],
    DEFAULT_5XX: [undefined, 'INTERNAL_ERROR'],
  };

  it('all 21 types have a response of their own, so none falls back to DEFAULT_4XX / DEFAULT_5XX', () => {
    expect([...responses.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s → %j, with the contract body and the request id', (type, [status, code]) => {
    expect({ status: responses.get(type)!['StatusCode'], code: body(type)['code'] }).toEqual({ status, code });
    expect(body(type)).toEqual(expect.objectContaining({ error: expect.any(String), code, request_id: 'req-1' }));
    expect(header(type, 'Content-Type')).toBe("'application/json'");
  });

  it('DEFAULT_4XX and DEFAULT_5XX set no status code (a WAF 403, a 415 or a 502 keeps its status), and DEFAULT_4XX claims no validation error', () => {
    for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX']) expect(responses.get(type)).not.toHaveProperty('StatusCode');
    expect(body('DEFAULT_4XX')).toEqual({ error: 'The request was refused', code: 'REQUEST_REFUSED', request_id: 'req-1' });
    const validation = [...responses.keys()].filter((type) => body(type)['code'] === 'VALIDATION_ERROR');
    expect(validation.sort()).toEqual(['BAD_REQUEST_BODY', 'BAD_REQUEST_PARAMETERS']);
  });

  it('the stage’s 429s answer THROTTLED with Retry-After; an integration timeout answers 504 GATEWAY_TIMEOUT', () => {
    expect(header('THROTTLED', 'Retry-After')).toBe("'1'");
    expect(header('QUOTA_EXCEEDED', 'Retry-After')).toBe("'60'");
    expect(body('THROTTLED')['error']).toMatch(/all callers/);
    expect(body('INTEGRATION_TIMEOUT')).toEqual({ error: expect.any(String), code: 'GATEWAY_TIMEOUT', request_id: 'req-1' });
  });

  it('every code is in the OpenAPI document’s error code enum', () => {
    const doc = buildOpenApiDocument() as { components: { schemas: { Error: { properties: { code: { 'x-extensible-enum': string[] } } } } } };
    const codes = doc.components.schemas.Error.properties.code['x-extensible-enum'];
    for (const [, code] of Object.values(EXPECTED)) expect(codes).toContain(code);
  });
});

describe('least-privilege IAM', () => {
  const policies = ofType('AWS::IAM::Policy').map(([, p]) => p.Properties);
  const statementsOf = (functionPart: string) => {
    const fn = resources[logicalId('AWS::Lambda::Function', functionPart)]!;
    const role = (fn.Properties['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    return policies
      .filter((p) => (p['Roles'] as { Ref: string }[]).some((r) => r.Ref === role))
      .flatMap((p) => (p['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[] }).Statement)
      .map((s) => ({ actions: [s.Action].flat().sort(), resource: JSON.stringify(s.Resource), condition: s.Condition }))
      // Writing its own log group: asserted once for every function below.
      .filter((s) => !s.actions.every((a) => a.startsWith('logs:')));
  };
  const functionIds = ['AuthorizerFunction', 'KeysFunction', 'WorkflowsFunction', 'ExecutionsFunction', 'WorkerFunction', 'WebhookSenderFunction'];

  it('every function has a role of its own that may write only to its own log group, and no managed policy', () => {
    for (const fn of functionIds) {
      const props = resources[logicalId('AWS::Lambda::Function', fn)]!.Properties;
      const role = (props['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      expect(resources[role]!.Properties['ManagedPolicyArns']).toBeUndefined();
      const logGroup = (props['LoggingConfig'] as { LogGroup: { Ref: string } }).LogGroup.Ref;
      const logs = policies
        .filter((p) => (p['Roles'] as { Ref: string }[]).some((r) => r.Ref === role))
        .flatMap((p) => (p['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement)
        .filter((st) => [st.Action].flat().some((a) => a.startsWith('logs:')));
      expect(logs.map((st) => ({ actions: [st.Action].flat().sort(), resource: st.Resource }))).toEqual([
        { actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resource: { 'Fn::GetAtt': [logGroup, 'Arn'] } },
      ]);
    }
  });

  it('a Query reaches the indexes the code queries, by name, and no statement names index/* or a function’s every version', () => {
    const all = JSON.stringify(policies);
    expect(all).not.toMatch(/index\/\*/);
    expect(all).not.toMatch(/:\*"/);
    expect(statementsOf('KeysFunction').find((st) => st.actions.includes('dynamodb:Query') && st.resource.includes('DataKeysTable'))!.resource).toContain('/index/by-account');
    expect(statementsOf('ExecutionsFunction').filter((st) => st.actions.includes('dynamodb:Query')).map((st) => st.resource).join()).toContain('/index/by-workflow');
    // An index's statement is Query alone: no other action is ever checked against an index's ARN.
    for (const fn of ['KeysFunction', 'WorkflowsFunction', 'ExecutionsFunction', 'WorkerFunction', 'WebhookSenderFunction', 'HousekeepingFunction']) {
      for (const st of statementsOf(fn).filter((s) => s.resource.includes('/index/'))) expect({ fn, actions: st.actions }).toEqual({ fn, actions: ['dynamodb:Query'] });
    }
    expect(JSON.stringify(statementsOf('KeysFunction'))).toContain('/index/by-account-slot');
    expect(JSON.stringify(statementsOf('ExecutionsFunction'))).toContain('/index/by-status');
  });
  const keysTable = logicalId('AWS::DynamoDB::GlobalTable', 'DataKeysTable');

  it('the authorizer may GetItem the keys table and, for people, read memberships and accounts; nothing else', () => {
    const statements = statementsOf('AuthorizerFunction');
    const byTable = Object.fromEntries(statements.map((s) => [/Data(\w+?)Table/.exec(s.resource)?.[1] ?? s.resource, s.actions]));
    expect(byTable).toEqual({
      Keys: ['dynamodb:GetItem'],
      // A session: the membership (GetItem, or a Query of the person's own partition), the account's tier.
      Memberships: ['dynamodb:GetItem', 'dynamodb:Query'],
      Accounts: ['dynamodb:GetItem'],
    });
    expect(statements.find((s) => s.resource.includes(keysTable))).toBeDefined();
    // No index of the memberships table: the account's people are not the authorizer's business.
    expect(JSON.stringify(statements)).not.toMatch(/index\//);
  });

  it('the keys function may count usage and manage keys, and nothing else', () => {
    const statements = statementsOf('KeysFunction');
    // The keys table's own statement (no Query), then Query on its two indexes alone: never the table.
    const onKeys = statements.filter((s) => s.resource.includes(keysTable));
    expect(onKeys.map((s) => ({ actions: s.actions, resource: JSON.parse(s.resource) as unknown }))).toEqual([
      // No ConditionCheckItem (here or on the accounts): no transaction checks an item it does not write.
      { actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], resource: { 'Fn::GetAtt': [keysTable, 'Arn'] } },
      {
        actions: ['dynamodb:Query'],
        resource: ['by-account', 'by-account-slot'].map((index) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [keysTable, 'Arn'] }, `/index/${index}`]] })),
      },
    ]);
    const byTable = Object.fromEntries(
      statements
        .filter((s) => !s.resource.includes(keysTable) && !s.resource.includes('/index/'))
        .map((s) => [/Data(\w+?)Table|(WebhookSecretsKey|PageTokenKey)/.exec(s.resource)?.slice(1).find(Boolean) ?? s.resource, s.actions]),
    );
    expect(byTable).toEqual({
      Accounts: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      Usage: ['dynamodb:Query', 'dynamodb:UpdateItem'],
      // Idempotency records of key creations and rotations: take, read, keep the answer, release.
      Idempotency: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      // GET /me: the person's accounts.
      Memberships: ['dynamodb:Query'],
      // Each change's event, put in its transaction (never updated or deleted); GET /audit-events reads.
      Audit: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
      WebhookSecretsKey: ['kms:Decrypt', 'kms:Encrypt'],
      // GET /keys' and GET /audit-events' page tokens.
      PageTokenKey: ['kms:GenerateMac'],
    });
    // The audit indexes it queries, by name (never index/*).
    const audit = statements.find((s) => s.resource.includes('DataAuditTable') && s.resource.includes('/index/'))!;
    expect(audit.resource).toMatch(/index\/by-target/);
    expect(audit.resource).not.toMatch(/index\/\*/);
  });

  it('the OpenAPI function may touch no table, no key and no other function', () => {
    expect(statementsOf('OpenApiFunction')).toEqual([]);
  });

  it('webhook secrets are sealed with a rotating KMS key: the keys function, the worker and the webhook sender seal and open, the workflows function only opens, housekeeping only seals', () => {
    const keyId = logicalId('AWS::KMS::Key', 'WebhookSecretsKey');
    expect(resources[keyId]!.Properties['EnableKeyRotation']).toBe(true);
    expect(resources[keyId]!.DeletionPolicy).toBe('Retain');
    const users: Record<string, string[]> = {
      KeysFunction: ['kms:Decrypt', 'kms:Encrypt'],
      WorkerFunction: ['kms:Decrypt', 'kms:Encrypt'],
      // A run it could not hand to the worker: it opens the account's secret to sign that run's webhook.
      WorkflowsFunction: ['kms:Decrypt'],
      // Retries and redeliveries: it opens the secret, and makes an account's first one when a run ended
      // without its worker on an account that had none.
      WebhookSenderFunction: ['kms:Decrypt', 'kms:Encrypt'],
      // A secret an earlier release kept in the clear, found by its scan, sealed in place.
      HousekeepingFunction: ['kms:Encrypt'],
    };
    const uses = OWN_FUNCTIONS.map((fn) => ({
      fn,
      actions: statementsOf(fn).filter((s) => s.resource.includes(keyId)).map((s) => s.actions),
      env: JSON.stringify((resources[logicalId('AWS::Lambda::Function', fn)]!.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables['WEBHOOK_SECRETS_KEY_ARN'] ?? null),
    }));
    const keyArn = expect.stringContaining(keyId) as unknown;
    expect(uses).toEqual(OWN_FUNCTIONS.map((fn) => (users[fn] ? { fn, actions: [users[fn]], env: keyArn } : { fn, actions: [], env: 'null' })));
    // Every use of the key only with an encryption context that is an account id, and only that.
    const keyStatements = OWN_FUNCTIONS.flatMap((fn) => statementsOf(fn).filter((s) => s.resource.includes(keyId)));
    expect(keyStatements).toHaveLength(5);
    for (const s of keyStatements) {
      expect(s.condition).toEqual({
        'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['account_id'] },
        Null: { 'kms:EncryptionContext:account_id': 'false' },
      });
    }
  });

  it('page tokens are signed with a key derived from a KMS HMAC key that only the functions that list may use, and only for GenerateMac', () => {
    const keyId = logicalId('AWS::KMS::Key', 'PageTokenKey');
    expect(resources[keyId]!.Properties).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', PendingWindowInDays: 7 });
    // It protects nothing kept: deleted with the stack.
    expect(resources[keyId]!.DeletionPolicy).toBe('Delete');
    const listers = ['KeysFunction', 'WorkflowsFunction', 'ExecutionsFunction'];
    const uses = OWN_FUNCTIONS.map((fn) => ({
      fn,
      statements: statementsOf(fn)
        .filter((s) => s.resource.includes(keyId))
        .map((s) => ({ actions: s.actions, resource: JSON.parse(s.resource) as unknown, condition: s.condition })),
      env: JSON.stringify((resources[logicalId('AWS::Lambda::Function', fn)]!.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables['PAGE_TOKEN_KEY_ARN'] ?? null),
    }));
    const keyArn = expect.stringContaining(keyId) as unknown;
    expect(uses).toEqual(
      OWN_FUNCTIONS.map((fn) =>
        listers.includes(fn)
          ? { fn, statements: [{ actions: ['kms:GenerateMac'], resource: { 'Fn::GetAtt': [keyId, 'Arn'] }, condition: undefined }], env: keyArn }
          : { fn, statements: [], env: 'null' },
      ),
    );
  });

  it('the workflows, executions and worker functions get only their tables’ actions', () => {
    const tablesOf = (fn: string) => {
      const byTable: Record<string, string[]> = {};
      for (const s of statementsOf(fn).filter((st) => st.actions.every((a) => a.startsWith('dynamodb:')))) {
        const name = /Data(\w+?)Table/.exec(s.resource)?.[1] ?? s.resource;
        byTable[name] = [...new Set([...(byTable[name] ?? []), ...s.actions])].sort();
      }
      return byTable;
    };
    expect(tablesOf('WorkflowsFunction')).toEqual({
      Usage: ['dynamodb:UpdateItem'],
      Workflows: [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      // Runs, and the account's sync slots (Query reads them: the table only, no index; below, only their partition).
      Executions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
      // The account's webhook secret, read only (see the KMS test), and its in-flight counter of async runs.
      Accounts: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      // Idempotency records of workflow creations and runs.
      Idempotency: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    });
    // The workflows function queries the executions table only in a partition of sync slots (never an account's runs).
    const executionsTable = logicalId('AWS::DynamoDB::GlobalTable', 'DataExecutionsTable');
    const slotQueries = statementsOf('WorkflowsFunction').filter((s) => s.actions.includes('dynamodb:Query') && s.resource.includes(executionsTable));
    expect(slotQueries.map((s) => ({ actions: s.actions, resource: JSON.parse(s.resource) as unknown, condition: s.condition }))).toEqual([
      {
        actions: ['dynamodb:Query'],
        resource: { 'Fn::GetAtt': [executionsTable, 'Arn'] },
        condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['*#sync-slots'] } },
      },
    ]);
    expect(tablesOf('ExecutionsFunction')).toEqual({
      Usage: ['dynamodb:UpdateItem'],
      Executions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
      // A cancel frees the run's in-flight slot.
      Accounts: ['dynamodb:UpdateItem'],
    });
    // The webhook sender: executions read and updated, the secret read (and an account's first one written,
    // with its event); Query on the webhooks-due index only.
    expect(tablesOf('WebhookSenderFunction')).toEqual({
      Executions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
      Accounts: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      Audit: ['dynamodb:PutItem'],
    });
    const senderQueries = statementsOf('WebhookSenderFunction').filter((s) => s.actions.includes('dynamodb:Query'));
    expect(senderQueries.map((q) => ({ actions: q.actions, resource: JSON.parse(q.resource) as unknown }))).toEqual([
      {
        actions: ['dynamodb:Query'],
        resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId('AWS::DynamoDB::GlobalTable', 'DataExecutionsTable'), 'Arn'] }, '/index/webhooks-due']] },
      },
    ]);
    expect(statementsOf('WebhookSenderFunction').filter((s) => s.actions.includes('dynamodb:GetItem')).every((s) => !s.resource.includes('/index/'))).toBe(true);
    // The executions function puts only cancellation signals (partition `<account_id>#signal`), never an
    // execution (its UpdateItem, which cancels and redeliveries need, is on the whole table).
    const puts = statementsOf('ExecutionsFunction').filter((s) => s.actions.includes('dynamodb:PutItem'));
    expect(puts.map((s) => ({ actions: s.actions, condition: s.condition }))).toEqual([
      { actions: ['dynamodb:PutItem'], condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['*#signal'] } } },
    ]);
    expect(tablesOf('WorkerFunction')).toEqual({
      Workflows: ['dynamodb:GetItem'],
      Executions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      Accounts: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      // Only the event of an account's first webhook secret, which a run's webhook may make: puts, never reads.
      Audit: ['dynamodb:PutItem'],
    });
    // Only the workflows function may invoke the worker, only the executions function the webhook sender
    // (a redelivery), and the keys tables are out of everyone's reach but the authorizer's and the keys function's.
    const invokes = (fn: string) => statementsOf(fn).filter((s) => s.actions.includes('lambda:InvokeFunction')).map((s) => ({ actions: s.actions, resource: JSON.parse(s.resource) as unknown }));
    expect(invokes('WorkflowsFunction')).toEqual([{ actions: ['lambda:InvokeFunction'], resource: { 'Fn::GetAtt': [logicalId('AWS::Lambda::Function', 'WorkerFunction'), 'Arn'] } }]);
    expect(invokes('ExecutionsFunction')).toEqual([{ actions: ['lambda:InvokeFunction'], resource: { 'Fn::GetAtt': [logicalId('AWS::Lambda::Function', 'WebhookSenderFunction'), 'Arn'] } }]);
    for (const fn of ['KeysFunction', 'WorkerFunction', 'WebhookSenderFunction', 'AuthorizerFunction']) expect(invokes(fn)).toEqual([]);
    for (const fn of ['WorkflowsFunction', 'ExecutionsFunction', 'WorkerFunction', 'WebhookSenderFunction']) {
      expect(JSON.stringify(statementsOf(fn))).not.toContain(keysTable);
    }
  });

  it('only the keys and workflows functions (the routes that take an Idempotency-Key) know the idempotency table or reach it', () => {
    const idempotencyTable = logicalId('AWS::DynamoDB::GlobalTable', 'DataIdempotencyTable');
    const reach = Object.fromEntries(
      [...functionIds, 'OpenApiFunction'].map((fn) => {
        const env = (resources[logicalId('AWS::Lambda::Function', fn)]!.Properties['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
        return [fn, { env: JSON.stringify(env['IDEMPOTENCY_TABLE'] ?? null).includes(idempotencyTable), granted: JSON.stringify(statementsOf(fn)).includes(idempotencyTable) }];
      }),
    );
    expect(reach).toEqual({
      AuthorizerFunction: { env: false, granted: false },
      KeysFunction: { env: true, granted: true },
      WorkflowsFunction: { env: true, granted: true },
      ExecutionsFunction: { env: false, granted: false },
      WorkerFunction: { env: false, granted: false },
      WebhookSenderFunction: { env: false, granted: false },
      OpenApiFunction: { env: false, granted: false },
    });
  });

  it('no policy of the stack’s own grants a wildcard action (the CDK’s deployment function’s reaches only the console and asset buckets)', () => {
    const cdkRoles = cdkFunctionRoles(template);
    const ofCdk = (p: Record<string, unknown>) => (p['Roles'] as { Ref: string }[]).every((r) => cdkRoles.includes(r.Ref));
    const ours = policies.filter((p) => !ofCdk(p));
    // One policy per function of the stack's own, none of them left out by the filter.
    expect(ours).toHaveLength(OWN_FUNCTIONS.length);
    for (const p of ours) {
      for (const s of (p['PolicyDocument'] as { Statement: { Action: string | string[] }[] }).Statement) {
        for (const action of [s.Action].flat()) expect(action).not.toMatch(/\*/);
      }
    }
    const cdkStatements = policies.filter(ofCdk).flatMap((p) => (p['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement);
    expect(cdkStatements.length).toBeGreaterThan(0);
    for (const st of cdkStatements) {
      expect([st.Action].flat().every((a) => a.startsWith('s3:'))).toBe(true);
      for (const resource of [st.Resource].flat()) expect(JSON.stringify(resource)).toMatch(/ConsoleBucket|cdk-hnb659fds-assets-/);
    }
  });
});

describe('webhook retries', () => {
  const sender = () => logicalId('AWS::Lambda::Function', 'WebhookSenderFunction');

  it('pending webhooks are in a sparse, keys-only index of the executions table: a fixed shard and the due time in epoch ms', () => {
    const executions = table('DataExecutionsTable').Properties;
    expect((executions['GlobalSecondaryIndexes'] as { IndexName: string }[]).map((g) => g.IndexName)).toEqual(['by-workflow', 'by-status', 'webhooks-due']);
    expect((executions['GlobalSecondaryIndexes'] as unknown[])[2]).toEqual({
      IndexName: 'webhooks-due',
      KeySchema: [
        { AttributeName: 'webhook_shard', KeyType: 'HASH' },
        { AttributeName: 'webhook_due', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    });
    expect(executions['AttributeDefinitions']).toEqual(
      expect.arrayContaining([
        { AttributeName: 'webhook_shard', AttributeType: 'S' },
        { AttributeName: 'webhook_due', AttributeType: 'N' },
      ]),
    );
  });

  it('an EventBridge rule runs the sender every minute; a missed event is not retried (the next run finds what is due)', () => {
    const rules = ofType('AWS::Events::Rule').filter(([id]) => id.includes('WebhookSender'));
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [sender(), 'Arn'] }, Id: expect.any(String), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } }],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [sender(), 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [rules[0]![0], 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: sender() }, MaximumRetryAttempts: 0 });
  });

  it('the sender has a minute, the tables it uses and the secrets key; the executions function knows its name', () => {
    const props = resources[sender()]!.Properties;
    expect(props['Timeout']).toBe(60);
    const variables = (props['Environment'] as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(variables).filter((k) => !k.startsWith('POWERTOOLS_')).sort()).toEqual(['ACCOUNTS_TABLE', 'AUDIT_TABLE', 'EXECUTIONS_TABLE', 'KNOUDS_SETTINGS', 'WEBHOOK_SECRETS_KEY_ARN']);
    expect(variables).not.toHaveProperty('WEBHOOK_RETRY_SCHEDULE_SECONDS');
    const executions = resources[logicalId('AWS::Lambda::Function', 'ExecutionsFunction')]!.Properties;
    expect((executions['Environment'] as { Variables: Record<string, unknown> }).Variables['WEBHOOK_SENDER_FUNCTION_NAME']).toEqual({ Ref: sender() });
  });

  it('POST /executions/{execution_id}/webhook/redeliver goes to the executions function', () => {
    const paths = new Map<string, { part: string; parent: unknown }>();
    for (const [id, r] of ofType('AWS::ApiGateway::Resource')) paths.set(id, { part: String(r.Properties['PathPart']), parent: r.Properties['ParentId'] });
    const pathOf = (id: string): string => {
      const node = paths.get(id);
      if (!node) return '';
      return `${pathOf((node.parent as { Ref?: string }).Ref ?? '')}/${node.part}`;
    };
    const method = ofType('AWS::ApiGateway::Method').find(([, m]) => pathOf((m.Properties['ResourceId'] as { Ref: string }).Ref) === '/executions/{execution_id}/webhook/redeliver');
    expect(method?.[1].Properties).toMatchObject({ HttpMethod: 'POST', AuthorizationType: 'CUSTOM', RequestParameters: { 'method.request.path.execution_id': true } });
    expect(JSON.stringify(method?.[1].Properties['Integration'])).toContain(logicalId('AWS::Lambda::Function', 'ExecutionsFunction'));
  });
});

describe('asynchronous runs', () => {
  it('the worker is retried twice, then its event goes to an encrypted dead-letter queue', () => {
    const worker = logicalId('AWS::Lambda::Function', 'WorkerFunction');
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: worker },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('WorkerDeadLetters'), 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    expect(resources[worker]!.Properties['Timeout']).toBe(900);
  });

  it('the worker has reserved concurrency (100 unless workerConcurrency says), and the API’s functions share the rest of the pool', () => {
    const reserved = (tpl: Template) =>
      Object.fromEntries(
        Object.entries(tpl.toJSON()['Resources'] as Record<string, Resource>)
          .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
          .filter(([, r]) => r.Properties['ReservedConcurrentExecutions'] !== undefined)
          .map(([id, r]) => [id.replace(/[0-9A-F]{8}$/, ''), r.Properties['ReservedConcurrentExecutions']]),
      );
    expect(reserved(template)).toEqual({ WorkerFunction: 100 });
    expect(reserved(synth({ workerConcurrency: 25 }))).toEqual({ WorkerFunction: 25 });
    for (const bad of [0, -1, 2.5]) expect(() => synth({ workerConcurrency: bad })).toThrow(/workerConcurrency/);
  });

  it('the tiers’ limits of async and sync runs in flight reach the workflows function (async: pro 10, business 50, enterprise 200, free 0; sync: 10, 50, 100, 0), tier props', () => {
    const settingsOf = (tpl: Template) => {
      const fn = Object.entries(tpl.toJSON()['Resources'] as Record<string, Resource>).find(
        ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('WorkflowsFunction'),
      )![1];
      const env = (fn.Properties['Environment'] as { Variables: Record<string, string> }).Variables;
      return JSON.parse(env['KNOUDS_SETTINGS']!) as { tiers: Record<string, { maxAsyncInFlight: number; maxSyncInFlight: number }> };
    };
    const limits = (tpl: Template) => Object.fromEntries(Object.entries(settingsOf(tpl).tiers).map(([k, v]) => [k, [v.maxAsyncInFlight, v.maxSyncInFlight]]));
    expect(limits(template)).toEqual({ free: [0, 0], pro: [10, 10], business: [50, 50], enterprise: [200, 100] });
    expect(limits(synth({ tiers: { pro: { maxAsyncInFlight: 3 }, business: { maxSyncInFlight: 7 } } }))).toEqual({ free: [0, 0], pro: [3, 10], business: [50, 7], enterprise: [200, 100] });
    expect(() => synth({ tiers: { pro: { maxAsyncInFlight: -1 } } })).toThrow(/maxAsyncInFlight/);
    expect(() => synth({ tiers: { pro: { maxSyncInFlight: 1.5 } } })).toThrow(/maxSyncInFlight/);
  });

  it('the workflows function outlives a sync run’s budget with room to record the outcome (not API Gateway’s 29 s)', () => {
    const timeout = resources[logicalId('AWS::Lambda::Function', 'WorkflowsFunction')]!.Properties['Timeout'] as number;
    expect(SYNC_BUDGET_MS).toBeLessThanOrEqual(25_000);
    expect(SYNC_OUTCOME_RESERVE_MS).toBeGreaterThanOrEqual(15_000);
    expect(timeout * 1000).toBeGreaterThanOrEqual(SYNC_BUDGET_MS + SYNC_OUTCOME_RESERVE_MS);
    expect(timeout).toBeGreaterThan(29);
  });

  it('a custom model is passed to the functions and granted to the workflows and worker functions only', () => {
    const withModel = synth({
      models: (stack) => [
        {
          id: 'summarize',
          description: 'mine',
          inputSchema: { type: 'object' },
          handler: new LambdaFunction(stack, 'SummarizeModel', {
            runtime: Runtime.NODEJS_22_X,
            handler: 'index.handler',
            code: Code.fromInline('exports.handler = async () => ({})'),
          }),
        },
      ],
    }).toJSON()['Resources'] as Record<string, Resource>;
    const fnId = Object.entries(withModel).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('SummarizeModel'))![0];
    const invokers = Object.values(withModel)
      .filter((r) => r.Type === 'AWS::IAM::Policy')
      .filter((r) => JSON.stringify(r.Properties['PolicyDocument']).includes(fnId))
      .map((r) => JSON.stringify(r.Properties['Roles']));
    expect(invokers).toHaveLength(2);
    expect(invokers.join()).toMatch(/WorkflowsFunction/);
    expect(invokers.join()).toMatch(/WorkerFunction/);
    const env = (Object.entries(withModel).find(([id]) => id.startsWith('WorkflowsFunction') && withModel[id]!.Type === 'AWS::Lambda::Function')![1]
      .Properties['Environment'] as { Variables: Record<string, unknown> }).Variables['KNOUDS_MODELS'];
    expect(JSON.stringify(env)).toContain('summarize');
  });

  it('custom models are validated', () => {
    const fake = { functionName: 'x', grantInvoke: () => undefined } as never;
    expect(() => synth({ models: [{ id: 'Bad Id', description: 'x', handler: fake }] })).toThrow(/model id/);
    expect(() => synth({ models: [{ id: 'echo', description: 'x', handler: fake }] })).toThrow(/built-in/);
  });
});

describe('operability', () => {
  it('every function logs through Powertools at the level and sampling the props say, into the stack’s metrics namespace', () => {
    const envOf = (tpl: Template) => ownFunctionsOf(tpl).map(([, r]) => (r.Properties['Environment'] as { Variables: Record<string, string> }).Variables);
    expect(envOf(template)).toHaveLength(OWN_FUNCTIONS.length);
    for (const env of envOf(template)) {
      expect(env).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'knouds-api',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_LOGGER_SAMPLE_RATE: '0',
        POWERTOOLS_METRICS_NAMESPACE: 'Knouds/TestStack',
      });
    }
    for (const env of envOf(synth({ logLevel: 'DEBUG', logSampleRate: 0.05 }))) {
      expect(env).toMatchObject({ POWERTOOLS_LOG_LEVEL: 'DEBUG', POWERTOOLS_LOGGER_SAMPLE_RATE: '0.05' });
    }
    expect(() => synth({ logSampleRate: 2 })).toThrow(/logSampleRate/);
  });

  it('alarms on authorizer errors, the 5xx rate, Lambda throttles, dead letters and the webhook failure rate', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([id, a]) => ({ id, p: a.Properties }));
    expect(alarms.map((a) => a.id.replace(/^Monitoring|[0-9A-F]{8}$/g, '')).sort()).toEqual(
      ['AuthorizerErrors', 'DeadLetters', 'HousekeepingErrors', 'LambdaThrottles', 'ServerErrorRate', 'WebhookFailureRate'].sort(),
    );
    const byId = (name: string) => alarms.find((a) => a.id.includes(name))!.p;
    // The authorizer's own failures, not Lambda's Errors (which count every refused key: it throws 'Unauthorized').
    expect(byId('AuthorizerErrors')).toMatchObject({
      MetricName: 'AuthorizerDecisions',
      Namespace: 'Knouds/TestStack',
      Dimensions: expect.arrayContaining([{ Name: 'reason', Value: 'error' }, { Name: 'service', Value: 'knouds-api' }]),
      Threshold: 5,
      TreatMissingData: 'notBreaching',
    });
    expect(byId('ServerErrorRate')).toMatchObject({ MetricName: '5XXError', Namespace: 'AWS/ApiGateway', Statistic: 'Average', Threshold: 0.01, EvaluationPeriods: 2 });
    expect(byId('DeadLetters')).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 1 });
    const throttles = JSON.stringify(byId('LambdaThrottles')['Metrics']);
    for (const fn of ['AuthorizerFunction', 'KeysFunction', 'WorkflowsFunction', 'ExecutionsFunction', 'WorkerFunction']) expect(throttles).toContain(logicalId('AWS::Lambda::Function', fn));
    const webhooks = JSON.stringify(byId('WebhookFailureRate')['Metrics']);
    expect(webhooks).toContain('"MetricName":"WebhookFailures"');
    expect(webhooks).toContain('"Namespace":"Knouds/TestStack"');
    expect(webhooks).toContain('{"Name":"service","Value":"knouds-api"}');
  });

  it('has a dashboard over the gateway, the authorizer, executions, webhooks and the dead letters', () => {
    const dashboards = ofType('AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]![1].Properties['DashboardBody']);
    for (const title of ['Requests, 4xx and 5xx', 'Authorizer decisions by reason', 'Executions by terminal status', 'Webhooks', 'Throttles and dead letters', 'Alarms']) {
      expect(body).toContain(title);
    }
  });

  it('the monitoring prop turns alarms and the dashboard off, and gives alarms their actions', () => {
    const off = synth({ monitoring: { alarms: false, dashboard: false } });
    expect(Object.keys(off.findResources('AWS::CloudWatch::Alarm'))).toEqual([]);
    expect(Object.keys(off.findResources('AWS::CloudWatch::Dashboard'))).toEqual([]);
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new KnoudsApiStack(app, 'WithActions', {
      monitoring: { alarmActions: [{ bind: () => ({ alarmActionArn: 'arn:aws:sns:eu-west-1:111111111111:oncall' }) }] },
    });
    for (const alarm of Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm['Properties']).toMatchObject({ AlarmActions: ['arn:aws:sns:eu-west-1:111111111111:oncall'], OKActions: ['arn:aws:sns:eu-west-1:111111111111:oncall'] });
    }
  });
});

describe('alarms that can fire: missing data filled, and treated deliberately', () => {
  type Query = {
    Id: string;
    Expression?: string;
    ReturnData?: boolean;
    MetricStat?: { Metric: { MetricName: string; Namespace: string; Dimensions: { Name: string; Value: unknown }[] }; Period: number; Stat: string };
  };
  const alarms = ofType('AWS::CloudWatch::Alarm').map(([id, a]) => [id.replace(/^Monitoring|[0-9A-F]{8}$/g, ''), a.Properties] as const);
  const alarm = (name: string) => alarms.find(([id]) => id === name)![1];
  const queries = (name: string) => alarm(name)['Metrics'] as Query[];
  const inputs = (name: string) =>
    queries(name)
      .filter((q) => q.Expression === undefined)
      .map((q) => ({
        id: q.Id,
        returned: q.ReturnData,
        metric: `${q.MetricStat!.Metric.Namespace} ${q.MetricStat!.Metric.MetricName}`,
        dimensions: q.MetricStat!.Metric.Dimensions,
        period: q.MetricStat!.Period,
        stat: q.MetricStat!.Stat,
      }));
  const expression = (name: string) => queries(name).filter((q) => q.Expression !== undefined);

  /**
   * What the expressions below compute, restated by hand for one period each (FILL(x, 0): a missing
   * value counts as 0). Not a metric-math engine: each is the one expression, written out.
   */
  const fill = (x: number | undefined) => x ?? 0;
  const throttlesSum = (values: (number | undefined)[]) => values.reduce<number>((sum, v) => sum + fill(v), 0);
  const failureShare = (d: number | undefined, f: number | undefined) => (fill(d) + fill(f) > 0 ? fill(f) / (fill(d) + fill(f)) : 0);

  it('Lambda throttles: FILL(t_i, 0) summed over every function’s Throttles, so an idle function no longer hides the others', () => {
    expect(expression('LambdaThrottles')).toEqual([
      expect.objectContaining({ Expression: 'FILL(t0, 0) + FILL(t1, 0) + FILL(t2, 0) + FILL(t3, 0) + FILL(t4, 0) + FILL(t5, 0) + FILL(t6, 0) + FILL(t7, 0)' }),
    ]);
    expect(expression('LambdaThrottles')[0]!.ReturnData ?? true).toBe(true);
    const functions = ['AuthorizerFunction', 'KeysFunction', 'WorkflowsFunction', 'ExecutionsFunction', 'WorkerFunction', 'OpenApiFunction', 'WebhookSenderFunction', 'HousekeepingFunction'];
    expect(inputs('LambdaThrottles')).toEqual(
      functions.map((fn, i) => ({
        id: `t${i}`,
        returned: false,
        metric: 'AWS/Lambda Throttles',
        dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId('AWS::Lambda::Function', fn) } }],
        period: 300,
        stat: 'Sum',
      })),
    );
    expect(alarm('LambdaThrottles')).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1 });
    // Synthetic periods: only the worker invoked and throttled 3 times; nothing invoked at all.
    const periods: (number | undefined)[][] = [
      [undefined, undefined, undefined, undefined, 3, undefined],
      [0, 0, 2, undefined, undefined, undefined],
      [undefined, undefined, undefined, undefined, undefined, undefined],
    ];
    expect(periods.map(throttlesSum)).toEqual([3, 2, 0]);
    expect(periods.map((p) => throttlesSum(p) >= 1)).toEqual([true, true, false]);
  });

  it('webhook failure share: failures over deliveries plus failures, each filled, so 100 % failing is 1.0 (deliveries are never published then)', () => {
    expect(expression('WebhookFailureRate')).toEqual([
      expect.objectContaining({ Expression: 'IF(FILL(d, 0) + FILL(f, 0) > 0, FILL(f, 0) / (FILL(d, 0) + FILL(f, 0)), 0)' }),
    ]);
    const service = [{ Name: 'service', Value: 'knouds-api' }];
    expect(inputs('WebhookFailureRate')).toEqual([
      { id: 'd', returned: false, metric: 'Knouds/TestStack WebhookDeliveries', dimensions: service, period: 900, stat: 'Sum' },
      { id: 'f', returned: false, metric: 'Knouds/TestStack WebhookFailures', dimensions: service, period: 900, stat: 'Sum' },
    ]);
    expect(alarm('WebhookFailureRate')).toMatchObject({ Threshold: 0.1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1 });
    // Synthetic periods (d delivered, f failed): every delivery failing (d never published), all fine,
    // one in ten failing, nothing sent.
    const periods: [number | undefined, number | undefined][] = [
      [undefined, 7],
      [12, undefined],
      [9, 1],
      [undefined, undefined],
    ];
    expect(periods.map(([d, f]) => failureShare(d, f))).toEqual([1, 0, 0.1, 0]);
    expect(periods.map(([d, f]) => failureShare(d, f) >= 0.1)).toEqual([true, false, true, false]);
  });

  it('each alarm says what missing data means: no event is fine, and a silent dead-letter queue keeps its state', () => {
    expect(Object.fromEntries(alarms.map(([id, p]) => [id, p['TreatMissingData']]))).toEqual({
      AuthorizerErrors: 'notBreaching',
      ServerErrorRate: 'notBreaching',
      LambdaThrottles: 'notBreaching',
      DeadLetters: 'ignore',
      WebhookFailureRate: 'notBreaching',
      HousekeepingErrors: 'notBreaching',
    });
  });
});

describe('Lambda’s 4 KB environment limit fails the synth, not the deployment', () => {
  const inline = (stack: Construct, id: string) =>
    new LambdaFunction(stack, id, { runtime: Runtime.NODEJS_24_X, handler: 'index.handler', code: Code.fromInline('exports.handler = async () => ({})') });
  const withModel = (description: string) =>
    synth({ models: (stack) => [{ id: 'big', description, inputSchema: { type: 'object' }, handler: inline(stack, 'BigModel') }] });

  it('custom models whose specs alone pass 4 KB: KNOUDS_MODELS, its size and the limit named', () => {
    expect(() => withModel('x'.repeat(5000))).toThrow(/models: KNOUDS_MODELS \(.*\) takes 5\d{3} bytes, over Lambda's limit of 4096 bytes \(4 KB\)/);
  });

  it('measures as Lambda does: quotes in the JSON escaped, a function name known only at deployment at its longest (64)', () => {
    // 1,000 quotes: 2,000 bytes in the specs' JSON, 4,000 once that JSON is escaped in the variables' JSON.
    expect(() => withModel('"'.repeat(1000))).toThrow(/KNOUDS_MODELS .* takes 4\d{3} bytes/);
    // [{"id":"big","description":"…","input_schema":{"type":"object"},"function_name":"<64>"}], escaped,
    // under "KNOUDS_MODELS": 4096 exactly passes, one more byte does not.
    const overhead = variableBytes('KNOUDS_MODELS', JSON.stringify([{ id: 'big', description: '', input_schema: { type: 'object' }, function_name: 'f'.repeat(64) }]));
    const fits = 'x'.repeat(4096 - overhead);
    // (It passes the models' own check; the function's whole environment is then too large.)
    expect(() => withModel(fits)).toThrow(/WorkflowsFunction\] The function's environment variables take \d+ bytes/);
    expect(() => withModel(`${fits}x`)).toThrow(/KNOUDS_MODELS .* takes 4097 bytes/);
  });

  it('a function whose whole environment passes 4 KB (models that fit alone, plus table names): the function, its size, the limit and its largest variables named', () => {
    let message = '';
    try {
      withModel('x'.repeat(3500));
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/WorkflowsFunction\] The function's environment variables take \d{4} bytes .*over Lambda's limit of 4096 bytes \(4 KB\).* Largest: KNOUDS_MODELS 3\d{3} bytes/);
    expect(message).toMatch(/WorkerFunction\] The function's environment variables take \d{4} bytes/);
  });

  it('the measure is the JSON Lambda measures, with each deploy-time reference at its longest', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new KnoudsApiStack(app, 'Measured');
    const tpl = Template.fromStack(stack).toJSON()['Resources'] as Record<string, Resource>;
    const longest = (ref: { Ref?: string; 'Fn::GetAtt'?: [string, string] }) => {
      const type = tpl[ref.Ref ?? ref['Fn::GetAtt']![0]]!.Type;
      return 'x'.repeat({ 'AWS::DynamoDB::GlobalTable': 255, 'AWS::Lambda::Function': 64, 'AWS::KMS::Key': 128 }[type]!);
    };
    for (const id of ['OpenApiFunction', 'KeysFunction', 'WorkflowsFunction', 'WorkerFunction']) {
      const fn = stack.node.findChild(id) as LambdaFunction;
      const variables = (tpl[stack.resolve((fn.node.defaultChild as CfnResource).logicalId) as string]!.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
      const measured = JSON.stringify(
        Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, typeof v === 'string' ? v : longest(v as { Ref?: string })])),
      );
      expect({ id, bytes: environmentSize(fn).bytes }).toEqual({ id, bytes: Buffer.byteLength(measured) });
      expect(environmentSize(fn).bytes).toBeLessThan(4096);
    }
  });
});

describe('endpoint', () => {
  it('is REGIONAL, not edge-optimized', () => {
    const apis = ofType('AWS::ApiGateway::RestApi');
    expect(apis).toHaveLength(1);
    expect(apis[0]![1].Properties['EndpointConfiguration']).toEqual({ Types: ['REGIONAL'] });
  });
});

describe('table deletion protection', () => {
  const protection = (tpl: Template) =>
    Object.values(tpl.toJSON()['Resources'] as Record<string, Resource>)
      .filter((r) => r.Type === 'AWS::DynamoDB::GlobalTable')
      .map((r) => (r.Properties['Replicas'] as { DeletionProtectionEnabled?: boolean }[]).map((replica) => replica.DeletionProtectionEnabled));

  it('is on for every table by default', () => {
    expect(protection(template)).toEqual(Array(8).fill([true]));
  });

  it('the deletionProtection prop turns it off; removalPolicy DESTROY turns it off unless the prop says otherwise', () => {
    expect(protection(synth({ deletionProtection: false }))).toEqual(Array(8).fill([false]));
    expect(protection(synth({ removalPolicy: RemovalPolicy.DESTROY }))).toEqual(Array(8).fill([false]));
    expect(protection(synth({ removalPolicy: RemovalPolicy.DESTROY, deletionProtection: true }))).toEqual(Array(8).fill([true]));
  });
});

describe('tracing prop', () => {
  const functionsOf = ownFunctionsOf;
  const xrayStatements = (tpl: Template) =>
    Object.values(tpl.toJSON()['Resources'] as Record<string, Resource>)
      .filter((r) => r.Type === 'AWS::IAM::Policy')
      .flatMap((p) => (p.Properties['PolicyDocument'] as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement)
      .filter((st) => [st.Action].flat().some((a) => a.startsWith('xray:')));

  it('is off by default: no function or stage traced, no X-Ray grant', () => {
    expect(functionsOf(template)).toHaveLength(OWN_FUNCTIONS.length);
    for (const [, f] of functionsOf(template)) {
      expect(f.Properties['TracingConfig']).toBeUndefined();
      expect((f.Properties['Environment'] as { Variables: Record<string, string> }).Variables).not.toHaveProperty('POWERTOOLS_TRACE_ENABLED');
    }
    expect(ofType('AWS::ApiGateway::Stage')[0]![1].Properties['TracingEnabled']).toBeUndefined();
    expect(xrayStatements(template)).toEqual([]);
  });

  it('on: X-Ray active tracing for every function and the stage, the Powertools switch, and only X-Ray’s two actions granted', () => {
    const traced = synth({ tracing: true });
    const functions = functionsOf(traced);
    expect(functions.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(OWN_FUNCTIONS);
    for (const [, f] of functions) {
      expect(f.Properties['TracingConfig']).toEqual({ Mode: 'Active' });
      expect((f.Properties['Environment'] as { Variables: Record<string, string> }).Variables).toMatchObject({
        POWERTOOLS_TRACE_ENABLED: 'true',
        POWERTOOLS_SERVICE_NAME: 'knouds-api',
      });
    }
    traced.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true });
    expect(xrayStatements(traced)).toEqual(
      functions.map(() => ({ Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' })),
    );
  });
});

describe('edge rate limit (edgeRateLimit prop)', () => {
  it('off by default: no web ACL', () => {
    expect(Object.keys(template.findResources('AWS::WAFv2::WebACL'))).toEqual([]);
    expect(Object.keys(template.findResources('AWS::WAFv2::WebACLAssociation'))).toEqual([]);
  });

  it('on: a regional web ACL on the stage, one rate-based rule per x-api-key value answering 429 THROTTLED', () => {
    const edged = synth({ edgeRateLimit: { requestsPerMinute: 3000 } });
    edged.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Statement: {
            RateBasedStatement: {
              Limit: 3000,
              EvaluationWindowSec: 60,
              AggregateKeyType: 'CUSTOM_KEYS',
              CustomKeys: [{ Header: { Name: 'x-api-key', TextTransformations: [{ Priority: 0, Type: 'NONE' }] } }],
            },
          },
          Action: {
            Block: { CustomResponse: { ResponseCode: 429, CustomResponseBodyKey: 'THROTTLED', ResponseHeaders: [{ Name: 'Retry-After', Value: '60' }] } },
          },
        }),
      ],
    });
    const body = (Object.values(edged.findResources('AWS::WAFv2::WebACL'))[0] as Resource).Properties['CustomResponseBodies'] as Record<string, { Content: string }>;
    expect(JSON.parse(body['THROTTLED']!.Content)).toMatchObject({ code: 'THROTTLED' });
    const association = Object.values(edged.findResources('AWS::WAFv2::WebACLAssociation'))[0] as Resource;
    expect(JSON.stringify(association.Properties['ResourceArn'])).toMatch(/restapis/);
    expect(JSON.stringify(association.Properties['ResourceArn'])).toMatch(/\/stages\/",\{"Ref":"ApiDeploymentStagev1/);
  });

  it('refuses a limit WAF cannot take', () => {
    expect(() => synth({ edgeRateLimit: { requestsPerMinute: 5 } })).toThrow(/edgeRateLimit.requestsPerMinute must be an integer from 10/);
  });
});

describe('snapshot', () => {
  it('matches, with asset hashes normalized', () => {
    const normalized = JSON.stringify(template.toJSON(), null, 2).replace(/[0-9a-f]{64}(\.zip)?/g, '<asset>');
    expect(JSON.parse(normalized)).toMatchSnapshot();
  });
});
