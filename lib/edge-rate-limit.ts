import type { Stage } from 'aws-cdk-lib/aws-apigateway';
import { CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

export interface EdgeRateLimitProps {
  /** The API stage the web ACL protects. */
  readonly stage: Stage;
  /**
   * Requests one `x-api-key` value may make per minute before AWS WAF blocks it at the edge, ahead of
   * the authorizer and the functions (at least 10, WAF's smallest rate limit).
   */
  readonly requestsPerMinute: number;
}

/** The 429 body WAF answers, in the contract's shape (API.md §3). */
export const EDGE_THROTTLED_BODY = JSON.stringify({
  error: 'Too many requests for this API key; retry after the time in the Retry-After header',
  code: 'THROTTLED',
});

/**
 * An AWS WAF web ACL on the stage with one rate-based rule keyed on the `x-api-key` header: a key far
 * past its own limit is refused by WAF, before it costs a Lambda invocation or a DynamoDB write. It is a
 * coarse defence in front of the exact per-key limit the functions keep (WAF counts over its own
 * window, approximately, and per key value whether or not the key is valid), so set it well above the
 * highest tier's limit. Requests without the header are not counted by this rule.
 */
export class EdgeRateLimit extends Construct {
  readonly webAcl: CfnWebACL;

  constructor(scope: Construct, id: string, props: EdgeRateLimitProps) {
    super(scope, id);
    if (!Number.isInteger(props.requestsPerMinute) || props.requestsPerMinute < 10 || props.requestsPerMinute > 2_000_000_000) {
      throw new Error(`edgeRateLimit.requestsPerMinute must be an integer from 10 to 2000000000, got ${props.requestsPerMinute}`);
    }
    const visibility = (metricName: string) => ({ cloudWatchMetricsEnabled: true, metricName, sampledRequestsEnabled: false });
    this.webAcl = new CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('KnoudsEdge'),
      customResponseBodies: { THROTTLED: { contentType: 'APPLICATION_JSON', content: EDGE_THROTTLED_BODY } },
      rules: [
        {
          name: 'PerApiKeyRate',
          priority: 0,
          statement: {
            rateBasedStatement: {
              limit: props.requestsPerMinute,
              evaluationWindowSec: 60,
              aggregateKeyType: 'CUSTOM_KEYS',
              customKeys: [{ header: { name: 'x-api-key', textTransformations: [{ priority: 0, type: 'NONE' }] } }],
            },
          },
          action: {
            block: {
              customResponse: {
                responseCode: 429,
                customResponseBodyKey: 'THROTTLED',
                responseHeaders: [{ name: 'Retry-After', value: '60' }],
              },
            },
          },
          visibilityConfig: visibility('KnoudsEdgePerApiKeyRate'),
        },
      ],
    });
    new CfnWebACLAssociation(this, 'Association', { resourceArn: props.stage.stageArn, webAclArn: this.webAcl.attrArn });
  }
}
