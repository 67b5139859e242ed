/**
 * The console deployed (API.md §6 "Where the console lives", issue #17): a CloudFront distribution serving
 * the console from a private bucket and sending /v1/* to the API on the same origin. Nothing local can show
 * what CloudFront does with this configuration, so the traps are pinned here, in the template: the API
 * origin's path and policies, the console's routes without error responses that would also swallow the
 * API's 403 and 404, the headers, the deploy-time /config.json, and the absence of a dependency cycle.
 */
import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { App, Fn, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { type CfnDistribution, Distribution } from 'aws-cdk-lib/aws-cloudfront';
import { RestApiOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import type { CfnUserPoolClient } from 'aws-cdk-lib/aws-cognito';
import type { ConsoleConfig as LocalConsoleConfig } from '../local-runner/console-site.js';
import { consoleSecurityHeaderFields } from '../lib/console-security.js';
import { ASSET_CACHE_CONTROL, CONSOLE_ROUTES_FUNCTION_CODE, type ConsoleConfig, PAGE_CACHE_CONTROL, providerOrigins } from '../lib/console.js';
import { Identity } from '../lib/identity.js';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';
import { STACK_OUTPUTS } from '../lib/outputs.js';

type Json = unknown;
type Resource = { Type: string; Properties: Record<string, Json> };
type Behavior = Record<string, Json> & { PathPattern?: string; TargetOriginId: string };

// The managed policies' ids, as CloudFront publishes them.
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

/** The stack's template. Template.fromStack refuses a template with a dependency cycle, as CloudFormation would. */
function build(props: KnoudsApiStackProps = {}, extend?: (stack: KnoudsApiStack) => void) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new KnoudsApiStack(app, 'TestStack', props);
  extend?.(stack);
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, Resource>; Outputs: Record<string, { Value: Json }> };
  return { app, stack, template, resources: json.Resources, outputs: json.Outputs };
}
type Built = ReturnType<typeof build>;

const ofType = (b: Built, type: string) => Object.entries(b.resources).filter(([, r]) => r.Type === type);
const only = (b: Built, type: string): [string, Resource] => {
  const found = ofType(b, type);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const distributionConfig = (b: Built) => only(b, 'AWS::CloudFront::Distribution')[1].Properties['DistributionConfig'] as Record<string, Json>;
const behaviors = (b: Built) => {
  const config = distributionConfig(b);
  return { default: config['DefaultCacheBehavior'] as Behavior, others: (config['CacheBehaviors'] ?? []) as Behavior[] };
};
const behavior = (b: Built, pattern: string) => {
  const found = behaviors(b).others.filter((x) => x.PathPattern === pattern);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const originOf = (b: Built, x: Behavior) => (distributionConfig(b)['Origins'] as Record<string, Json>[]).find((o) => o['Id'] === x.TargetOriginId)!;
const logicalIdOf = (b: Built, type: string) => only(b, type)[0];

/** A template string (a literal or an Fn::Join) with each reference written `${Ref}` / `${Id.Attr}`. */
function render(value: Json): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, Json>;
  if ('Ref' in v) return `\${${String(v['Ref'])}}`;
  if ('Fn::GetAtt' in v) return `\${${(v['Fn::GetAtt'] as string[]).join('.')}}`;
  if ('Fn::Join' in v) {
    const [sep, parts] = v['Fn::Join'] as [string, Json[]];
    return parts.map(render).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** The resources a template value refers to (Ref, Fn::GetAtt, Fn::Sub), pseudo parameters left out. */
function references(value: Json, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) references(v, into);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref' && typeof v === 'string') {
        if (!v.startsWith('AWS::')) into.add(v);
      }
      else if (k === 'Fn::GetAtt') into.add(Array.isArray(v) ? String(v[0]) : String(v).split('.')[0]!);
      else if (k === 'Fn::Sub') {
        const text = Array.isArray(v) ? String(v[0]) : String(v);
        for (const m of text.matchAll(/\$\{([^}!]+)\}/g)) into.add(m[1]!.split('.')[0]!);
        references(Array.isArray(v) ? v[1] : undefined, into);
      } else references(v, into);
    }
  }
  return into;
}

/**
 * /config.json as the deployment writes it: the file of the deployment's second source (read from the
 * synthesized assembly), each deploy-time marker replaced by the template value it stands for. A field with
 * markers becomes the list of its literal parts and values.
 */
function deployedConfig(b: Built): Record<string, Json> {
  const [, deployment] = only(b, 'Custom::CDKBucketDeployment');
  const keys = deployment.Properties['SourceObjectKeys'] as string[];
  const markers = deployment.Properties['SourceMarkers'] as Record<string, Json>[];
  expect(keys).toHaveLength(2);
  expect(markers[0]).toEqual({});
  const assembly = b.app.synth();
  const manifest = JSON.parse(readFileSync(path.join(assembly.directory, `${b.stack.stackName}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
  };
  const file = Object.values(manifest.files).find((f) => Object.values(f.destinations).some((d) => d.objectKey === keys[1]))!;
  const raw = JSON.parse(readFileSync(path.join(assembly.directory, file.source.path, 'config.json'), 'utf8')) as Record<string, string>;
  return Object.fromEntries(
    Object.entries(raw).map(([field, text]) => {
      const parts = text.split(/(<<marker:0xbaba:\d+>>)/).filter((p) => p !== '');
      const values = parts.map((p) => (p in markers[1]! ? markers[1]![p] : p));
      return [field, values.length === 1 && typeof values[0] === 'string' ? values[0] : values];
    }),
  );
}

const byo = { issuer: 'https://login.example.com/oauth2/default', clientId: '0oa1example' };

describe('the console on CloudFront (default: Cognito)', () => {
  const b = build();
  const distribution = () => logicalIdOf(b, 'AWS::CloudFront::Distribution');
  const domainName = () => ({ 'Fn::GetAtt': [distribution(), 'DomainName'] });

  it('keeps the bucket private: public access blocked, no website hosting, TLS 1.2 and HTTPS only', () => {
    const [bucketId, bucket] = only(b, 'AWS::S3::Bucket');
    expect(bucketId).toMatch(/^ConsoleBucket/);
    expect(bucket.Properties['PublicAccessBlockConfiguration']).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties['WebsiteConfiguration']).toBeUndefined();
    const [, policy] = only(b, 'AWS::S3::BucketPolicy');
    const statements = (policy.Properties['PolicyDocument'] as { Statement: Record<string, Json>[] }).Statement;
    const denies = statements.filter((s) => s['Effect'] === 'Deny').map((s) => s['Condition']);
    expect(denies).toEqual([{ Bool: { 'aws:SecureTransport': 'false' } }, { NumericLessThan: { 's3:TlsVersion': 1.2 } }]);
  });

  it('lets only CloudFront read it, through the origin access control, for this distribution only', () => {
    const [, policy] = only(b, 'AWS::S3::BucketPolicy');
    const allows = (policy.Properties['PolicyDocument'] as { Statement: Record<string, Json>[] }).Statement.filter((s) => s['Effect'] === 'Allow');
    const bucketId = logicalIdOf(b, 'AWS::S3::Bucket');
    const cloudFront = allows.filter((s) => JSON.stringify(s['Principal']).includes('cloudfront'));
    expect(cloudFront).toEqual([
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Principal: { Service: 'cloudfront.amazonaws.com' },
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/*']] },
        Condition: {
          StringEquals: {
            'AWS:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudfront::', { Ref: 'AWS::AccountId' }, ':distribution/', { Ref: distribution() }]] },
          },
        },
      },
    ]);
    // The only other reader: the CDK's auto-delete function (empties the bucket when the stack goes). Nobody anonymous.
    expect(allows.filter((s) => !cloudFront.includes(s)).map((s) => JSON.stringify(s['Principal']))).toEqual([expect.stringContaining('CustomS3AutoDeleteObjectsCustomResourceProviderRole')]);
    for (const s of allows) expect(s['Principal']).not.toEqual('*');
    const [oacId, oac] = only(b, 'AWS::CloudFront::OriginAccessControl');
    expect(oac.Properties['OriginAccessControlConfig']).toMatchObject({ OriginAccessControlOriginType: 's3', SigningBehavior: 'always', SigningProtocol: 'sigv4' });
    const site = originOf(b, behaviors(b).default);
    expect(site).toMatchObject({ DomainName: { 'Fn::GetAtt': [bucketId, 'RegionalDomainName'] }, OriginAccessControlId: { 'Fn::GetAtt': [oacId, 'Id'] }, S3OriginConfig: { OriginAccessIdentity: '' } });
  });

  it('serves index.html at /, over HTTPS (http redirected); replaces no error answer, and caches none', () => {
    const config = distributionConfig(b);
    expect(config['DefaultRootObject']).toBe('index.html');
    // No page and no status of its own: distribution-wide 403/404 → index.html would also replace the API's
    // JSON 403 and 404 under /v1/*. But a TTL of 0 for every status CloudFront caches (10 s by default,
    // `no-store` ignored on a 5xx): else one caller's 500 under /v1 was every caller's for 10 s.
    expect(config['CustomErrorResponses']).toEqual(
      [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504].map((ErrorCode) => ({ ErrorCode, ErrorCachingMinTTL: 0 })),
    );
    expect(behaviors(b).default).toMatchObject({ ViewerProtocolPolicy: 'redirect-to-https', AllowedMethods: ['GET', 'HEAD'] });
  });

  it('sends /v1/* to the API as it is: its own host, no origin path (RestApiOrigin’s /<stage> would make /v1/v1/…), HTTPS and TLS 1.2', () => {
    const api = behavior(b, '/v1/*');
    const origin = originOf(b, api);
    const restApi = logicalIdOf(b, 'AWS::ApiGateway::RestApi');
    expect(origin['DomainName']).toEqual({ 'Fn::Join': ['', [{ Ref: restApi }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] });
    expect(origin['OriginPath'] ?? '').toBe('');
    expect(origin['CustomOriginConfig']).toEqual({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'], OriginReadTimeout: 30 });
    // Only the RestApi: not its stage, whose deployment reaches the authorizer and so the Cognito client.
    expect([...references(origin)]).toEqual([restApi]);
  });

  it('/v1/*: every method, never cached, every viewer header but Host (Authorization, x-api-key, Knouds-Account, Idempotency-Key) and query string, HTTPS only, no function', () => {
    const api = behavior(b, '/v1/*');
    expect(api).toMatchObject({
      AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
      CachePolicyId: CACHING_DISABLED,
      OriginRequestPolicyId: ALL_VIEWER_EXCEPT_HOST_HEADER,
      ViewerProtocolPolicy: 'https-only',
    });
    expect(api['FunctionAssociations']).toBeUndefined();
    expect(api['LambdaFunctionAssociations']).toBeUndefined();
    // Behaviours are matched in order: the API's before nothing that could take /v1/ paths.
    expect(behaviors(b).others.map((x) => x.PathPattern)).toEqual(['/assets/*', '/v1/*']);
  });

  it('/v1/*: HSTS, nosniff and no referrer on the API’s answers, as on the pages; its own Cache-Control, Content-Type and frames left alone', () => {
    const api = behavior(b, '/v1/*');
    const policy = b.resources[(api['ResponseHeadersPolicyId'] as { Ref: string }).Ref]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Record<string, Json>>;
    const pages = b.resources[(behaviors(b).default['ResponseHeadersPolicyId'] as { Ref: string }).Ref]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Record<string, Json>>;
    const { StrictTransportSecurity, ContentTypeOptions, ReferrerPolicy } = pages['SecurityHeadersConfig']!;
    expect(policy['SecurityHeadersConfig']).toEqual({ StrictTransportSecurity, ContentTypeOptions, ReferrerPolicy });
    expect(StrictTransportSecurity).toMatchObject({ AccessControlMaxAgeSec: 63_072_000, IncludeSubdomains: true, Override: true });
    expect(policy['CustomHeadersConfig']).toBeUndefined();
  });

  it('follows the stage name: /<stageName>/* and the api_url', () => {
    const prod = build({ stageName: 'prod' });
    expect(behaviors(prod).others.map((x) => x.PathPattern)).toEqual(['/assets/*', '/prod/*']);
    expect(deployedConfig(prod)['api_url']).toEqual(['https://', { 'Fn::GetAtt': [logicalIdOf(prod, 'AWS::CloudFront::Distribution'), 'DomainName'] }, '/prod']);
  });

  it('gives the console’s routes index.html by a viewer-request function on the console’s behaviour only', () => {
    const [fnId, fn] = only(b, 'AWS::CloudFront::Function');
    expect(fn.Properties['FunctionCode']).toBe(CONSOLE_ROUTES_FUNCTION_CODE);
    expect(fn.Properties['FunctionConfig']).toMatchObject({ Runtime: 'cloudfront-js-2.0' });
    expect(behaviors(b).default['FunctionAssociations']).toEqual([{ EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': [fnId, 'FunctionARN'] } }]);
    expect(behavior(b, '/assets/*')['FunctionAssociations']).toBeUndefined();
  });

  it('pages: the console’s CSP (Cognito’s issuer and login domain may be fetched), HSTS and the other security headers, revalidated on every load', () => {
    const policyId = (behaviors(b).default['ResponseHeadersPolicyId'] as { Ref: string }).Ref;
    const config = b.resources[policyId]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Record<string, Json>>;
    const security = config['SecurityHeadersConfig']!;
    const csp = render((security['ContentSecurityPolicy'] as { ContentSecurityPolicy: Json }).ContentSecurityPolicy);
    const domain = logicalIdOf(b, 'AWS::Cognito::UserPoolDomain');
    expect(csp).toBe(
      consoleSecurityHeaderFields([`https://cognito-idp.\${AWS::Region}.\${AWS::URLSuffix}`, `https://\${${domain}}.auth.\${AWS::Region}.amazoncognito.com`])['content-security-policy'],
    );
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' https://cognito-idp.\${AWS::Region}.\${AWS::URLSuffix} https://\${${domain}}.auth.\${AWS::Region}.amazoncognito.com;`);
    expect(security).toEqual({
      ContentSecurityPolicy: { ContentSecurityPolicy: expect.anything(), Override: true },
      StrictTransportSecurity: { AccessControlMaxAgeSec: 63072000, IncludeSubdomains: true, Override: true },
      FrameOptions: { FrameOption: 'DENY', Override: true },
      ContentTypeOptions: { Override: true },
      ReferrerPolicy: { ReferrerPolicy: 'no-referrer', Override: true },
    });
    expect(config['CustomHeadersConfig']).toEqual({ Items: [{ Header: 'Cache-Control', Value: PAGE_CACHE_CONTROL, Override: true }] });
    expect(PAGE_CACHE_CONTROL).toBe('no-cache');
  });

  it('index.html and /config.json are never stale after a deployment; the hashed /assets/* are cached for good', () => {
    // The console's behaviour (index.html, /config.json, routes) is not cached at the edge; browsers revalidate.
    expect(behaviors(b).default['CachePolicyId']).toBe(CACHING_DISABLED);
    const assets = behavior(b, '/assets/*');
    expect(assets).toMatchObject({ CachePolicyId: CACHING_OPTIMIZED, ViewerProtocolPolicy: 'redirect-to-https', AllowedMethods: ['GET', 'HEAD'] });
    expect(originOf(b, assets)).toBe(originOf(b, behaviors(b).default));
    const policy = b.resources[(assets['ResponseHeadersPolicyId'] as { Ref: string }).Ref]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Record<string, Json>>;
    expect(policy['CustomHeadersConfig']).toEqual({ Items: [{ Header: 'Cache-Control', Value: ASSET_CACHE_CONTROL, Override: true }] });
    expect(ASSET_CACHE_CONTROL).toMatch(/max-age=31536000.*immutable/);
    // The same security headers on the assets.
    const pages = b.resources[(behaviors(b).default['ResponseHeadersPolicyId'] as { Ref: string }).Ref]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Json>;
    expect(policy['SecurityHeadersConfig']).toEqual(pages['SecurityHeadersConfig']);
  });

  it('names its account-wide CloudFront resources with the region, so one account can hold the stack in two regions', () => {
    const names = [
      ...ofType(b, 'AWS::CloudFront::ResponseHeadersPolicy').map(([, r]) => (r.Properties['ResponseHeadersPolicyConfig'] as { Name: Json }).Name),
      (only(b, 'AWS::CloudFront::OriginAccessControl')[1].Properties['OriginAccessControlConfig'] as { Name: Json }).Name,
      only(b, 'AWS::CloudFront::Function')[1].Properties['Name'],
    ].map(render);
    expect(names).toHaveLength(5);
    for (const name of names) expect(name).toContain('${AWS::Region}');
    expect(new Set(names).size).toBe(5);
  });

  it('writes /config.json at deployment: the API on the same origin, Cognito’s issuer and the console’s client, the redirect and sign-out URIs, and Cognito’s /logout', () => {
    const pool = logicalIdOf(b, 'AWS::Cognito::UserPool');
    const client = logicalIdOf(b, 'AWS::Cognito::UserPoolClient');
    const domain = logicalIdOf(b, 'AWS::Cognito::UserPoolDomain');
    expect(deployedConfig(b)).toEqual({
      api_url: ['https://', domainName(), '/v1'],
      issuer: ['https://cognito-idp.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: pool }],
      client_id: [{ Ref: client }],
      redirect_uri: ['https://', domainName(), '/auth/callback'],
      post_logout_redirect_uri: ['https://', domainName(), '/'],
      scope: 'openid email profile',
      end_session_endpoint: ['https://', { Ref: domain }, '.auth.', { Ref: 'AWS::Region' }, '.amazoncognito.com/logout'],
    });
    // The issuer is exactly the one the authorizer verifies tokens against (and the stack outputs).
    expect(b.outputs[STACK_OUTPUTS.identityIssuer]!.Value).toEqual({
      'Fn::Join': ['', ['https://cognito-idp.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: pool }]],
    });
  });

  it('deploys the build and /config.json together (prune: a file of an earlier build goes), into the console bucket', () => {
    const [, deployment] = only(b, 'Custom::CDKBucketDeployment');
    expect(deployment.Properties).toMatchObject({ Prune: true, DestinationBucketName: { Ref: logicalIdOf(b, 'AWS::S3::Bucket') } });
    expect(deployment.Properties['DistributionId']).toBeUndefined();
  });

  it('outputs ConsoleUrl and the redirect URI', () => {
    expect(b.outputs[STACK_OUTPUTS.consoleUrl]!.Value).toEqual({ 'Fn::Join': ['', ['https://', domainName(), '/']] });
    expect(b.outputs[STACK_OUTPUTS.consoleRedirectUri]!.Value).toEqual({ 'Fn::Join': ['', ['https://', domainName(), '/auth/callback']] });
  });

  it('points the Cognito client’s callback and sign-out URLs at the console, and only there', () => {
    const [, client] = only(b, 'AWS::Cognito::UserPoolClient');
    expect(client.Properties['CallbackURLs']).toEqual([{ 'Fn::Join': ['', ['https://', domainName(), '/auth/callback']] }]);
    expect(client.Properties['LogoutURLs']).toEqual([{ 'Fn::Join': ['', ['https://', domainName(), '/']] }]);
  });

  it('adds the userPool prop’s URLs after the console’s (an empty list: the console’s only)', () => {
    const more = build({ userPool: { callbackUrls: ['http://localhost:5173/auth/callback'], signOutUrls: [] } });
    const [, client] = only(more, 'AWS::Cognito::UserPoolClient');
    const dn = { 'Fn::GetAtt': [logicalIdOf(more, 'AWS::CloudFront::Distribution'), 'DomainName'] };
    expect(client.Properties['CallbackURLs']).toEqual([{ 'Fn::Join': ['', ['https://', dn, '/auth/callback']] }, 'http://localhost:5173/auth/callback']);
    expect(client.Properties['LogoutURLs']).toEqual([{ 'Fn::Join': ['', ['https://', dn, '/']] }]);
    expect(() => build({ userPool: { callbackUrls: ['http://console.example.com/cb'] } })).toThrow(/userPool\.callbackUrls must use https/);
  });

  it('has no dependency cycle: the distribution needs the RestApi, not its stage', () => {
    // build() synthesized it through Template.fromStack, which refuses a cycle (see the RestApiOrigin test below).
    expect(() => Template.fromStack(b.stack)).not.toThrow();
    const dependsOnStage = JSON.stringify(only(b, 'AWS::CloudFront::Distribution')[1]).includes(logicalIdOf(b, 'AWS::ApiGateway::Stage'));
    expect(dependsOnStage).toBe(false);
  });
});

describe('why the API origin is not RestApiOrigin', () => {
  /** The console's Cognito client pointed at a distribution whose origin is `RestApiOrigin(api)`. */
  const withRestApiOrigin = (stack: KnoudsApiStack) => {
    const dist = new Distribution(stack, 'Trap', { defaultBehavior: { origin: new RestApiOrigin(stack.api) } });
    (stack.identity.consoleClient!.node.defaultChild as CfnUserPoolClient).callbackUrLs = [`https://${dist.distributionDomainName}/auth/callback`];
  };

  it('would close a dependency cycle: client → distribution → stage → deployment → method → authorizer → its function → client', () => {
    let message = '';
    // CloudFormation validation also reports the cycle on console.error: kept out of the test output, and checked.
    const reported = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    let said: string;
    try {
      build({ console: false }, withRestApiOrigin);
    } catch (error) {
      message = String(error);
    } finally {
      said = reported.mock.calls.map((args) => args.map(String).join(' ')).join('\n');
      reported.mockRestore();
    }
    expect(said).toMatch(/Circular dependency/);
    expect(message).toMatch(/dependency cycle: IdentityConsoleClient\w+ -> Trap\w+ -> ApiDeploymentStagev1\w+ -> ApiDeployment\w+ -> Api\w+ -> ApiKeyAuthorizer\w+ -> AuthorizerFunction\w+ -> IdentityConsoleClient/);
  });

  it('and its origin path is /<stage>, so /v1/keys would reach /v1/v1/keys', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new KnoudsApiStack(app, 'TestStack', { console: false });
    const dist = new Distribution(stack, 'Trap', { defaultBehavior: { origin: new RestApiOrigin(stack.api) } });
    const resources = Template.fromStack(stack).toJSON()['Resources'] as Record<string, Resource>;
    const config = resources[stack.getLogicalId(dist.node.defaultChild as CfnDistribution)]!.Properties['DistributionConfig'] as { Origins: Record<string, Json>[] };
    const originPath = config.Origins[0]!['OriginPath'] as { 'Fn::Join': [string, Json[]] };
    expect(originPath['Fn::Join'][1][0]).toBe('/');
    // The stage's name, read from the stage URL: the stage itself (and what it depends on) becomes a dependency.
    const stage = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ApiGateway::Stage')![0];
    expect([...references(originPath)]).toContain(stage);
  });
});

describe('the console: false prop', () => {
  const off = build({ console: false });

  it('leaves out the bucket, the distribution, the deployment (and the CDK’s functions for it) and the outputs', () => {
    for (const type of ['AWS::S3::Bucket', 'AWS::CloudFront::Distribution', 'AWS::CloudFront::Function', 'AWS::CloudFront::ResponseHeadersPolicy', 'AWS::CloudFront::OriginAccessControl', 'Custom::CDKBucketDeployment', 'Custom::S3AutoDeleteObjects']) {
      expect({ type, count: ofType(off, type).length }).toEqual({ type, count: 0 });
    }
    expect(ofType(off, 'AWS::Lambda::Function').map(([id]) => id).filter((id) => id.startsWith('Custom'))).toEqual([]);
    expect(off.outputs[STACK_OUTPUTS.consoleUrl]).toBeUndefined();
    expect(off.outputs[STACK_OUTPUTS.consoleRedirectUri]).toBeUndefined();
    expect(off.stack.console).toBeUndefined();
  });

  it('keeps the Cognito client’s localhost defaults, or the userPool prop’s URLs', () => {
    expect(only(off, 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: ['http://localhost:3000/auth/callback'],
      LogoutURLs: ['http://localhost:3000/'],
    });
    const mine = build({ console: false, userPool: { callbackUrls: ['https://console.example.com/auth/callback'], signOutUrls: ['https://console.example.com/'] } });
    expect(only(mine, 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: ['https://console.example.com/auth/callback'],
      LogoutURLs: ['https://console.example.com/'],
    });
    expect(() => build({ console: false, userPool: { callbackUrls: [] } })).toThrow(/userPool\.callbackUrls must hold at least one URL/);
  });
});

describe('the console with the deployer’s own provider', () => {
  const own = build({ identityProvider: byo });

  it('writes its issuer and client id into /config.json, without an end_session_endpoint (its discovery has one)', () => {
    const dn = { 'Fn::GetAtt': [logicalIdOf(own, 'AWS::CloudFront::Distribution'), 'DomainName'] };
    expect(deployedConfig(own)).toEqual({
      api_url: ['https://', dn, '/v1'],
      issuer: byo.issuer,
      client_id: byo.clientId,
      redirect_uri: ['https://', dn, '/auth/callback'],
      post_logout_redirect_uri: ['https://', dn, '/'],
      scope: 'openid email profile',
    });
    expect(ofType(own, 'AWS::Cognito::UserPoolClient')).toEqual([]);
  });

  it('lets the console fetch from the issuer’s origin (CSP), and outputs the redirect URI to register with the provider', () => {
    const policyId = (behaviors(own).default['ResponseHeadersPolicyId'] as { Ref: string }).Ref;
    const security = (own.resources[policyId]!.Properties['ResponseHeadersPolicyConfig'] as Record<string, Record<string, Json>>)['SecurityHeadersConfig']!;
    expect(render((security['ContentSecurityPolicy'] as { ContentSecurityPolicy: Json }).ContentSecurityPolicy)).toContain("connect-src 'self' https://login.example.com;");
    const dn = { 'Fn::GetAtt': [logicalIdOf(own, 'AWS::CloudFront::Distribution'), 'DomainName'] };
    expect(own.outputs[STACK_OUTPUTS.consoleRedirectUri]!.Value).toEqual({ 'Fn::Join': ['', ['https://', dn, '/auth/callback']] });
  });

  it('takes an issuer known only at deployment: its origin by CloudFormation’s functions', () => {
    const stack = new Stack(new App(), 'Tokens');
    const identity = new Identity(stack, 'Identity', { identityProvider: { issuer: Fn.importValue('SharedIssuer'), clientId: 'c' } });
    expect(stack.resolve(providerOrigins(identity))).toEqual([
      { 'Fn::Join': ['', ['https://', { 'Fn::Select': [2, { 'Fn::Split': ['/', { 'Fn::ImportValue': 'SharedIssuer' }] }] }]] },
    ]);
  });
});

describe('the routes function (its code run against sample CloudFront events)', () => {
  const handler = vm.runInNewContext(`${CONSOLE_ROUTES_FUNCTION_CODE}\nhandler`) as (event: unknown) => { uri: string; querystring?: unknown };
  const run = (uri: string, querystring: Record<string, { value: string }> = {}) =>
    handler({ version: '1.0', context: { eventType: 'viewer-request' }, viewer: { ip: '192.0.2.1' }, request: { method: 'GET', uri, querystring, headers: {}, cookies: {} } });

  it.each([
    ['/', '/index.html'],
    ['/keys', '/index.html'],
    ['/keys/', '/index.html'],
    ['/webhooks', '/index.html'],
    ['/audit', '/index.html'],
    ['/keys/key_01HZX3', '/index.html'],
    ['/auth/callback', '/index.html'],
    ['/index.html', '/index.html'],
    ['/config.json', '/config.json'],
    ['/assets/index-B1a2c3.js', '/assets/index-B1a2c3.js'],
    ['/assets/index-D4e5f6.css', '/assets/index-D4e5f6.css'],
    ['/favicon.svg', '/favicon.svg'],
  ])('%s → %s', (uri, expected) => {
    expect(run(uri).uri).toBe(expected);
  });

  it('keeps the query string (the code and state of a sign-in)', () => {
    const request = run('/auth/callback', { code: { value: 'abc' }, state: { value: 'xyz' } });
    expect(request).toMatchObject({ uri: '/index.html', querystring: { code: { value: 'abc' }, state: { value: 'xyz' } } });
  });
});

describe('/config.json types', () => {
  it('the local runner’s config is the deployed one without end_session_endpoint', () => {
    const local: LocalConsoleConfig = {
      api_url: 'http://localhost:3000/v1',
      issuer: 'http://localhost:3000/oidc',
      client_id: 'knouds-console',
      redirect_uri: 'http://localhost:3000/auth/callback',
      post_logout_redirect_uri: 'http://localhost:3000/',
      scope: 'openid email profile',
    };
    // Compiles only while every field of the runner's type is one of the deployed type's.
    const deployed: ConsoleConfig = local;
    expect(Object.keys(deployed).sort()).toEqual(['api_url', 'client_id', 'issuer', 'post_logout_redirect_uri', 'redirect_uri', 'scope']);
  });
});
