import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/**
 * A DocumentClient with the marshalling options the whole codebase uses. Lambdas call it once at
 * module scope (one client per cold start); the admin CLI and the local runner pass their own config.
 * The endpoint comes from the standard `AWS_ENDPOINT_URL_DYNAMODB` when set, so the same bundle talks to
 * DynamoDB Local without a "local mode" branch.
 */
export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(config), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/** The table names a repository needs; Lambdas read them from their environment. */
export interface TableNames {
  readonly keys: string;
  readonly accounts: string;
  readonly usage: string;
  readonly workflows: string;
  readonly executions: string;
}

export const TABLE_ENV: Readonly<Record<keyof TableNames, string>> = {
  keys: 'KEYS_TABLE',
  accounts: 'ACCOUNTS_TABLE',
  usage: 'USAGE_TABLE',
  workflows: 'WORKFLOWS_TABLE',
  executions: 'EXECUTIONS_TABLE',
};

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** For a TransactionCanceledException: the reason code of each item, in request order. */
export function cancellationReasons(error: unknown): string[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as Error & { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

/**
 * One page of a Query with a FilterExpression, filled up to `limit` items (DynamoDB applies `Limit`
 * before the filter, so a single call can return fewer). `more` says whether items may follow.
 */
export async function queryPage(
  doc: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'Limit' | 'ExclusiveStartKey'>,
  limit: number,
  start?: Record<string, unknown>,
): Promise<{ items: Record<string, unknown>[]; more: boolean }> {
  const items: Record<string, unknown>[] = [];
  let from = start;
  do {
    const out = await doc.send(new QueryCommand({ ...input, Limit: limit - items.length, ExclusiveStartKey: from }));
    items.push(...(out.Items ?? []));
    from = out.LastEvaluatedKey;
  } while (from && items.length < limit);
  return { items, more: from !== undefined };
}
