/**
 * List prices (us-east-1, on-demand, no free tier, no Savings Plans), as read on PRICES_READ, and the
 * cost of one million requests from what the bench measured per request. Sources: AWS's pricing pages
 * for Lambda, API Gateway, DynamoDB and CloudFront, as quoted by stored copies of public pages (this
 * machine cannot browse aws.amazon.com): Lambda's Arm price and request price as tabulated in
 * git.mcrn.ar/mariano/lambda_local_runner docs/lambdas-md/lambda-13-cost.md and cloudchipr.com/blog/aws-lambda-pricing;
 * DynamoDB's on-demand prices after the 1 November 2024 cut as quoted by
 * airbyte.com/data-engineering-resources/dynamodb-pricing. API Gateway REST ($3.50 per million, first
 * 333 million a month) and CloudFront ($0.0100 per 10,000 HTTPS requests, North America) are the
 * published list prices as known on that date, not re-read from a page.
 */
export const PRICES_READ = '2026-11-30';

export const PRICES = {
  /** Lambda, Arm (Graviton), first 7.5 billion GB-s a month. */
  lambdaPerGbSecond: 0.0000133334,
  lambdaPerRequest: 0.2 / 1e6,
  /** API Gateway REST API, first 333 million requests a month. */
  apiGatewayRestPerRequest: 3.5 / 1e6,
  /** DynamoDB on-demand (standard table class). */
  dynamoDbPerReadUnit: 0.125 / 1e6,
  dynamoDbPerWriteUnit: 0.625 / 1e6,
  /** CloudFront HTTPS requests, United States/Canada/Europe. */
  cloudFrontPerRequest: 0.01 / 10_000,
} as const;

export interface Measured {
  /** DynamoDB read and write request units per request. */
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Per function: invocations and billed ms (rounded up per invocation) per request, at its memory size. */
  readonly functions: readonly { id: string; invocations: number; billedMs: number; memoryMb: number }[];
  readonly apiRequests: number;
  readonly cloudFrontRequests: number;
}

/** Dollars per million requests, by service. */
export function costPerMillion(m: Measured): { lambda: number; apiGateway: number; dynamoDb: number; cloudFront: number; total: number } {
  const million = 1e6;
  const lambda =
    million *
    m.functions.reduce((sum, f) => sum + f.invocations * PRICES.lambdaPerRequest + (f.billedMs / 1000) * (f.memoryMb / 1024) * PRICES.lambdaPerGbSecond, 0);
  const apiGateway = million * m.apiRequests * PRICES.apiGatewayRestPerRequest;
  const dynamoDb = million * (m.readUnits * PRICES.dynamoDbPerReadUnit + m.writeUnits * PRICES.dynamoDbPerWriteUnit);
  const cloudFront = million * m.cloudFrontRequests * PRICES.cloudFrontPerRequest;
  return { lambda, apiGateway, dynamoDb, cloudFront, total: lambda + apiGateway + dynamoDb + cloudFront };
}
