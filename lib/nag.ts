/**
 * The cdk-nag AwsSolutions findings this stack keeps on purpose, each acknowledged on the construct it
 * concerns with the reason. `test/nag.test.ts` fails on any finding without one, and `bin/app.ts` runs the
 * same checks on every synth.
 */
import { Validations, type Stack } from 'aws-cdk-lib';
import type { Method } from 'aws-cdk-lib/aws-apigateway';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Queue } from 'aws-cdk-lib/aws-sqs';

export function acknowledgeNagFindings(
  stack: Stack,
  parts: { deadLetters: Queue; publicMethods: Method[]; methodNotAllowed?: Method[]; tracedFunctions?: IFunction[] },
): void {
  Validations.of(parts.deadLetters).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: 'This queue is the worker’s dead-letter destination; a dead-letter queue of its own would only move the same failed events one hop further.',
  });
  for (const method of parts.publicMethods) {
    const reason = `${method.httpMethod} ${method.resource.path} answers without a key by contract (API.md §4; /openapi.json describes the API): it reaches no data.`;
    Validations.of(method).acknowledge({ id: 'AwsSolutions-APIG4', reason });
    Validations.of(method).acknowledge({ id: 'AwsSolutions-COG4', reason });
  }
  for (const method of parts.methodNotAllowed ?? []) {
    const reason = `ANY ${method.resource.path} answers 405 METHOD_NOT_ALLOWED to the methods the path does not have (API.md §3), from a mock integration: it reaches no function and no data.`;
    Validations.of(method).acknowledge({ id: 'AwsSolutions-APIG4', reason });
    Validations.of(method).acknowledge({ id: 'AwsSolutions-COG4', reason });
  }
  const api = stack.node.findChild('Api');
  Validations.of(api).acknowledge({
    id: 'AwsSolutions-COG4',
    reason:
      'One Lambda REQUEST authorizer decides every caller (API.md §1): machines by API key, people by an access token of the stack’s ' +
      'identity provider, which is the Cognito user pool or the deployer’s own OpenID Connect provider; a Cognito authorizer can do neither keys nor another provider.',
  });
  Validations.of(api).acknowledge({
    id: 'AwsSolutions-APIG3',
    reason: 'No WAF web ACL by default: stage throttling and exact per-key rate limits bound abuse, and a web ACL (with its cost) is the deployer’s choice: the edgeRateLimit prop adds one keyed on x-api-key, or attach one outside this stack.',
  });
  for (const fn of parts.tracedFunctions ?? []) {
    if (!fn.role) continue;
    Validations.of(fn.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'The tracing prop: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so X-Ray active tracing needs Resource "*" (the statement Lambda’s own Tracing.ACTIVE adds); the statement has only those two actions.',
    });
  }
  const cloudWatchRole = api.node.tryFindChild('CloudWatchRole');
  if (cloudWatchRole) {
    Validations.of(cloudWatchRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: 'The account-level role API Gateway writes its access and execution logs with; AWS’s managed policy is the documented one for it and reaches CloudWatch Logs only. Off with the cloudWatchRole prop.',
    });
  }
}
