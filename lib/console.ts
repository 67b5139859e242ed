/**
 * The console (API.md §6): the web application in `console/`, built by Vite when the stack synthesizes
 * (local asset bundling: no Docker) and deployed into a private S3 bucket, served by a CloudFront
 * distribution that also sends `/v1/*` to the API, so the console and the API share one origin (no CORS).
 * `/config.json` is written beside the build at deploy time. The local runner serves the same asset, read
 * from the template (and writes its own `/config.json` for the local provider).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Aws, DockerImage, Duration, Fn, Names, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IRestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  Function as CloudFrontFunction,
  FunctionCode,
  FunctionEventType,
  FunctionRuntime,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestPolicy,
  OriginSslPolicy,
  ResponseHeadersPolicy,
  S3OriginAccessControl,
  Signing,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { BlockPublicAccess, Bucket, BucketEncryption, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { ASSET_CACHE_CONTROL, consoleSecurityHeaders, PAGE_CACHE_CONTROL } from './console-security.js';
import type { Identity } from './identity.js';
import { PROJECT_ROOT } from './knouds-function.js';
import type { ConsoleConfig } from '../console/src/lib/config-shape.js';

/** The console's sources (a Vite project). */
export const CONSOLE_DIR = path.join(PROJECT_ROOT, 'console');

/** Where the provider sends the browser back with the code, below the console's origin. */
export const CONSOLE_CALLBACK_PATH = '/auth/callback';
/** What the console asks the provider for. */
export const CONSOLE_SCOPE = 'openid email profile';

/**
 * What the console reads from `GET /config.json`. The local runner serves the same fields for its own
 * provider (local-runner/console-site.ts); deployed, the file is written into the bucket. Defined once,
 * beside the console that reads it.
 */
export type { ConsoleConfig };

/**
 * The CloudFront Function (viewer request, the console's behaviour only) that gives the console's own routes
 * (`/keys`, `/webhooks`, `/audit`, `/auth/callback`, …) its `index.html`: a path whose last segment has no
 * dot is a route, not a file. Not distribution-wide error responses (403/404 → index.html): those would also
 * replace the API's own JSON 403 and 404 under `/v1/*`. The query string is kept (the code of a sign-in).
 * cloudfront-js-2.0; test/console-hosting.test.ts runs this very text against sample events.
 */
export const CONSOLE_ROUTES_FUNCTION_CODE = `function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var last = uri.substring(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
`;

export { ASSET_CACHE_CONTROL, PAGE_CACHE_CONTROL } from './console-security.js';
/** Strict-Transport-Security max-age: two years. */
export const HSTS_MAX_AGE = Duration.days(730);

/** The status codes whose answers CloudFront caches for a while unless told otherwise (its Developer Guide, "HTTP 4xx and 5xx status codes that CloudFront caches"). */
export const CACHED_ERROR_STATUSES = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504] as const;

/** The built console: `vite build` of `console/`, run by the CDK's local bundling into the asset folder. */
export function consoleAsset() {
  return Source.asset(CONSOLE_DIR, {
    exclude: ['dist', 'node_modules'],
    bundling: {
      // Never pulled: the local bundler below always builds.
      image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:24'),
      local: {
        tryBundle(outputDir: string): boolean {
          const vite = path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
          execFileSync(process.execPath, [vite, 'build', CONSOLE_DIR, '--outDir', outputDir, '--emptyOutDir'], {
            cwd: PROJECT_ROOT,
            stdio: ['ignore', process.stderr, process.stderr],
          });
          return true;
        },
      },
    },
  });
}

/**
 * The origins the console's OpenID Connect library fetches from (its CSP's connect-src): Cognito's issuer
 * (discovery, keys) and the managed login domain (token endpoint); or the deployer's provider's issuer origin.
 */
export function providerOrigins(identity: Identity): string[] {
  if (identity.userPool && identity.domain) {
    return [`https://cognito-idp.${Stack.of(identity).region}.${Aws.URL_SUFFIX}`, identity.domain.baseUrl()];
  }
  const issuer = identity.config.issuer;
  // `https://host/path` → `https://host`; for a deploy-time value, the same with CloudFormation's functions.
  return [Token.isUnresolved(issuer) ? `https://${Fn.select(2, Fn.split('/', issuer))}` : new URL(issuer).origin];
}

export interface KnoudsConsoleProps {
  /** The API whose stage the distribution serves under `/<stageName>/*`. */
  readonly api: IRestApi;
  /** The API's stage, the first segment of its paths (`v1`). */
  readonly stageName: string;
  /** People's identity provider: the console's issuer and client. */
  readonly identity: Identity;
  /** @default RemovalPolicy.DESTROY (the bucket holds only the build, written again by every deployment) */
  readonly removalPolicy?: RemovalPolicy;
}

export class KnoudsConsole extends Construct {
  readonly bucket: Bucket;
  readonly distribution: Distribution;
  /** `https://<distribution domain>/`: the stack output ConsoleUrl. */
  readonly url: string;
  /** `https://<distribution domain>`, no trailing slash. */
  readonly origin: string;
  /** Where the provider sends the browser back with the code (the console's client must allow it). */
  readonly redirectUri: string;
  /** Where the provider sends the browser after signing out. */
  readonly postLogoutRedirectUri: string;
  /** What `/config.json` holds (deploy-time values as tokens). */
  readonly config: ConsoleConfig;

  constructor(scope: Construct, id: string, props: KnoudsConsoleProps) {
    super(scope, id);
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(props.stageName)) throw new Error(`stageName must be alphanumeric, got '${props.stageName}'`);
    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });

    // Names of CloudFront's policies, functions and origin access controls are unique in the account, across
    // regions: the region in each name lets the same stack be deployed to two regions of one account.
    // (`<stack>-<path>-<hash>-<what>-<region>`: a region's name is at most 14 characters.)
    const accountUniqueName = (what: string, maxLength: number) =>
      `${Names.uniqueResourceName(this, { maxLength: maxLength - what.length - 16, separator: '-' })}-${what}-${Aws.REGION}`;

    // The bucket stays private: CloudFront reads it through an origin access control (SigV4-signed
    // requests), which the bucket policy allows for this distribution only (its ARN as the SourceArn).
    const oac = new S3OriginAccessControl(this, 'OriginAccessControl', {
      signing: Signing.SIGV4_ALWAYS,
      description: 'Knouds API console: CloudFront reads the console bucket',
      originAccessControlName: accountUniqueName('oac', 64),
    });
    const siteOrigin = S3BucketOrigin.withOriginAccessControl(this.bucket, { originAccessControl: oac });

    // The API origin is built from the RestApi's id, not with RestApiOrigin (which takes `api.url`): the URL
    // names the stage, so the distribution would depend on the stage → deployment → methods → authorizer →
    // authorizer function, whose environment holds the Cognito client id, and that client's callback URLs
    // are this distribution's: a dependency cycle CloudFormation refuses. RestApiOrigin would also set the
    // origin path to `/<stage>`, sending `/v1/keys` to `/v1/v1/keys`. Here the path is kept as the viewer
    // sent it, and API Gateway reads the stage from its first segment.
    const apiOrigin = new HttpOrigin(`${props.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}`, {
      protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [OriginSslPolicy.TLS_V1_2],
      // API Gateway ends every request at 29 s: CloudFront waits longer than that (its default, 30 s).
      readTimeout: Duration.seconds(30),
    });

    const routes = new CloudFrontFunction(this, 'Routes', {
      comment: 'Knouds API console: its own routes (paths without a file extension) get index.html',
      code: FunctionCode.fromInline(CONSOLE_ROUTES_FUNCTION_CODE),
      runtime: FunctionRuntime.JS_2_0,
    });

    const headers = consoleSecurityHeaders(providerOrigins(props.identity));
    const securityHeadersBehavior = {
      contentSecurityPolicy: { contentSecurityPolicy: headers.contentSecurityPolicy, override: true },
      strictTransportSecurity: { accessControlMaxAge: HSTS_MAX_AGE, includeSubdomains: true, override: true },
      frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
      contentTypeOptions: { override: true },
      referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
    };
    const headersPolicy = (policyId: string, comment: string, cacheControl: string) => {
      return new ResponseHeadersPolicy(this, policyId, {
        responseHeadersPolicyName: accountUniqueName(policyId.toLowerCase(), 128),
        comment,
        securityHeadersBehavior,
        customHeadersBehavior: { customHeaders: [{ header: 'Cache-Control', value: cacheControl, override: true }] },
      });
    };

    this.distribution = new Distribution(this, 'Distribution', {
      comment: `Knouds API: the console, and the API under /${props.stageName}`,
      defaultRootObject: 'index.html',
      httpVersion: HttpVersion.HTTP2_AND_3,
      // Errors are not cached. CloudFront keeps a GET's 4xx/5xx for 10 s by default, whatever the cache
      // policy, and ignores `no-store` on all but 404, 410, 414 and 501: one caller's 500 or 504 under
      // /v1 would be answered to every caller of that path at the edge (the cache key of CachingDisabled
      // holds no header), and a missing console file would stay missing after a deployment.
      errorResponses: CACHED_ERROR_STATUSES.map((httpStatus) => ({ httpStatus, ttl: Duration.seconds(0) })),
      // index.html, /config.json and the console's routes: never cached by CloudFront (a deployment shows
      // at once, no invalidation to wait for), revalidated by browsers.
      defaultBehavior: {
        origin: siteOrigin,
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_DISABLED,
        responseHeadersPolicy: headersPolicy('PageHeaders', 'Knouds API console: security headers, pages revalidated', PAGE_CACHE_CONTROL),
        functionAssociations: [{ eventType: FunctionEventType.VIEWER_REQUEST, function: routes }],
      },
      additionalBehaviors: {
        // The build's content-hashed files: cached for good, at the edge and in browsers.
        '/assets/*': {
          origin: siteOrigin,
          viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: CachePolicy.CACHING_OPTIMIZED,
          responseHeadersPolicy: headersPolicy('AssetHeaders', 'Knouds API console: security headers, hashed assets cached for good', ASSET_CACHE_CONTROL),
        },
        // The API, as it is: every method, every header but Host (API Gateway refuses a Host that is not its
        // own) with Authorization, x-api-key, Knouds-Account and Idempotency-Key, every query string, and no
        // cache (with caching disabled, an origin request policy may forward Authorization). HTTPS only: a
        // redirect would come after the key already crossed the network in clear.
        [`/${props.stageName}/*`]: {
          origin: apiOrigin,
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          // HSTS on the API's answers too (the console's origin is theirs), and nosniff; the API's own
          // Cache-Control and Content-Type are kept as they are.
          responseHeadersPolicy: new ResponseHeadersPolicy(this, 'ApiHeaders', {
            responseHeadersPolicyName: accountUniqueName('apiheaders', 128),
            comment: 'Knouds API: security headers on the API’s answers under the console’s origin',
            securityHeadersBehavior: {
              strictTransportSecurity: securityHeadersBehavior.strictTransportSecurity,
              contentTypeOptions: securityHeadersBehavior.contentTypeOptions,
              referrerPolicy: securityHeadersBehavior.referrerPolicy,
            },
          }),
        },
      },
    });

    this.origin = `https://${this.distribution.distributionDomainName}`;
    this.url = `${this.origin}/`;
    this.redirectUri = `${this.origin}${CONSOLE_CALLBACK_PATH}`;
    this.postLogoutRedirectUri = this.url;
    const { identity } = props;
    this.config = {
      api_url: `${this.origin}/${props.stageName}`,
      issuer: identity.config.issuer,
      client_id: identity.config.clientId,
      redirect_uri: this.redirectUri,
      post_logout_redirect_uri: this.postLogoutRedirectUri,
      scope: CONSOLE_SCOPE,
      ...(identity.domain ? { end_session_endpoint: `${identity.domain.baseUrl()}/logout` } : {}),
    };

    new BucketDeployment(this, 'Deployment', {
      // The build, and /config.json with this deployment's values (filled in by the deployment function).
      sources: [consoleAsset(), Source.jsonData('config.json', this.config)],
      destinationBucket: this.bucket,
      prune: true,
    });

    this.acknowledgeNagFindings();
  }

  private acknowledgeNagFindings(): void {
    const stack = Stack.of(this);
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'The bucket holds only the console’s public build output, written by the deployment; reads go through CloudFront, whose logs are the deployer’s choice.',
    });
    const acknowledge = (id: string, reason: string) => Validations.of(this.distribution).acknowledge({ id, reason });
    acknowledge(
      'AwsSolutions-CFR1',
      'No geo restriction: the console serves the deployer’s own people, wherever they work; the API behind /v1 is reachable worldwide anyway (its regional endpoint).',
    );
    acknowledge(
      'AwsSolutions-CFR2',
      'No WAF web ACL by default (as for the API, APIG3): a web ACL for CloudFront must live in us-east-1 and costs per rule and request; the API keeps its exact per-key limits and stage throttling behind /v1.',
    );
    acknowledge(
      'AwsSolutions-CFR3',
      'No CloudFront access log: every API request through /v1/* is in the stage’s access log with its request id; the rest are the console’s static files, and a log bucket (with ACLs CloudFront needs) is the deployer’s choice.',
    );
    acknowledge(
      'AwsSolutions-CFR4',
      'The distribution has no custom domain, so it serves the default *.cloudfront.net certificate, whose security policy CloudFront fixes (TLSv1); a custom domain with an ACM certificate and TLSv1.2_2021 is the deployer’s to add. Origins use TLS 1.2.',
    );
    // The CDK's own deployment function (one per stack): copies the built asset into the bucket at deploy time.
    const handler = stack.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
    if (handler) {
      const reason = 'The CDK’s BucketDeployment function: it runs only at deploy time, copies the console’s asset from the CDK asset bucket into the console bucket, and its runtime and policy are the CDK’s.';
      for (const id of [
        'AwsSolutions-L1',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AwsSolutions-IAM5[Action::s3:Abort*]',
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
        'AwsSolutions-IAM5[Action::s3:GetBucket*]',
        'AwsSolutions-IAM5[Action::s3:GetObject*]',
        'AwsSolutions-IAM5[Action::s3:List*]',
        `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/*]`,
        // The CDK's asset bucket, as the bootstrap names it (the region a token, or fixed by the stack's env).
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
        ...(Token.isUnresolved(stack.region) ? [] : [`AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-${stack.region}/*]`]),
      ]) {
        Validations.of(handler).acknowledge({ id, reason });
      }
    }
  }
}
