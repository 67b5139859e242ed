/**
 * What IAM checks for one DynamoDB API call, as the Service Authorization Reference and the DynamoDB
 * developer guide describe it: the action of the same name on the table's ARN (`…:table/<name>`), or on
 * the index's (`…:table/<name>/index/<index>`) for a Query or Scan of an index; a `TransactWriteItems`
 * needs `dynamodb:PutItem`, `UpdateItem`, `DeleteItem` or `ConditionCheckItem` for each of its items on
 * that item's table, a `TransactGetItems` `dynamodb:GetItem` for each; `BatchGetItem` and
 * `BatchWriteItem` need their own action on each table they name; `ListTables` and the like need it on `*`.
 *
 * The one condition key computed is `dynamodb:LeadingKeys` (the partition key values a call touches): for
 * the item calls, the batches and each item of a transaction, and for a Query of a table whose key
 * condition names the partition key with `=`. Elsewhere (a Query of an index, a Scan) it is not computed,
 * so a policy that conditions on it there is refused, naming it, rather than guessed.
 */
import type { AccessRequest, ContextValues } from './policy.js';

export interface TableKeys {
  /** The partition key's attribute name. */
  readonly partitionKey: string;
}

export interface DynamoDbTarget {
  readonly region: string;
  readonly accountId: string;
  /** The local table of this name, if the template declares it. */
  table(name: string): TableKeys | undefined;
}

/** One authorization a call needs; `unsupported` when the runner cannot say what IAM would check. */
export interface DynamoDbAccess extends AccessRequest {
  readonly unsupported?: string;
}

type AttributeValue = Record<string, unknown>;
type Body = Record<string, unknown>;

const LEADING_KEYS = 'dynamodb:leadingkeys';
const NO_CONTEXT: ReadonlyMap<string, ContextValues> = new Map();

/** A key attribute's value as IAM compares it (a string, a number's text, a binary's base64). */
function keyText(value: unknown): string | undefined {
  const v = value as AttributeValue | undefined;
  if (!v || typeof v !== 'object') return undefined;
  for (const type of ['S', 'N', 'B'] as const) if (typeof v[type] === 'string') return v[type];
  return undefined;
}

const leadingKeys = (values: (string | undefined)[]): ReadonlyMap<string, ContextValues> =>
  values.every((v): v is string => v !== undefined) ? new Map([[LEADING_KEYS, [...new Set(values)]]]) : NO_CONTEXT;

function tableNameOf(value: unknown): string {
  const name = String(value ?? '');
  // TableName may be the table's ARN.
  const m = /^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/([^/]+)$/.exec(name);
  return m ? m[1]! : name;
}

/** The partition key value a Query's key condition fixes with `=`, if it can be read. */
function queryPartitionValue(body: Body, partitionKey: string): string | undefined {
  const legacy = body['KeyConditions'] as Record<string, { ComparisonOperator?: string; AttributeValueList?: unknown[] }> | undefined;
  if (legacy) {
    const c = legacy[partitionKey];
    return c?.ComparisonOperator === 'EQ' ? keyText(c.AttributeValueList?.[0]) : undefined;
  }
  const expression = body['KeyConditionExpression'];
  if (typeof expression !== 'string') return undefined;
  const names = (body['ExpressionAttributeNames'] ?? {}) as Record<string, string>;
  const values = (body['ExpressionAttributeValues'] ?? {}) as Record<string, unknown>;
  const name = (token: string) => (token.startsWith('#') ? names[token] : token);
  for (const part of expression.split(/\s+AND\s+/i)) {
    const m = /^\s*\(*\s*([#\w.-]+|:[\w]+)\s*=\s*([#\w.-]+|:[\w]+)\s*\)*\s*$/.exec(part);
    if (!m) continue;
    const [left, right] = [m[1]!, m[2]!];
    if (right.startsWith(':') && name(left) === partitionKey) return keyText(values[right]);
    if (left.startsWith(':') && name(right) === partitionKey) return keyText(values[left]);
  }
  return undefined;
}

/** The authorizations `operation` (e.g. `PutItem`) with this request body needs. */
export function dynamoDbAccess(operation: string, body: Body, target: DynamoDbTarget): DynamoDbAccess[] {
  const tableArn = (name: string) => `arn:aws:dynamodb:${target.region}:${target.accountId}:table/${name}`;
  const partitionOf = (table: string, item: unknown) => {
    const keys = target.table(table);
    return keys ? keyText((item as Record<string, unknown> | undefined)?.[keys.partitionKey]) : undefined;
  };
  const itemAccess = (action: string, tableValue: unknown, item: unknown): DynamoDbAccess => {
    const table = tableNameOf(tableValue);
    return { action: `dynamodb:${action}`, resource: tableArn(table), context: leadingKeys([partitionOf(table, item)]) };
  };
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
    case 'UpdateItem':
      return [itemAccess(operation, body['TableName'], body['Key'])];
    case 'PutItem':
      return [itemAccess(operation, body['TableName'], body['Item'])];
    case 'Query':
    case 'Scan': {
      const table = tableNameOf(body['TableName']);
      const index = body['IndexName'];
      const resource = typeof index === 'string' ? `${tableArn(table)}/index/${index}` : tableArn(table);
      const keys = target.table(table);
      const value = operation === 'Query' && typeof index !== 'string' && keys ? queryPartitionValue(body, keys.partitionKey) : undefined;
      return [{ action: `dynamodb:${operation}`, resource, context: value === undefined ? NO_CONTEXT : leadingKeys([value]) }];
    }
    case 'TransactWriteItems':
      return ((body['TransactItems'] ?? []) as Record<string, Body>[]).map((entry) => {
        const [kind, item] = Object.entries(entry)[0] ?? ['', {}];
        const action = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind];
        if (!action) return { action: 'dynamodb:TransactWriteItems', resource: '*', context: NO_CONTEXT, unsupported: `a transaction item of kind ${kind}` };
        return itemAccess(action, item['TableName'], kind === 'Put' ? item['Item'] : item['Key']);
      });
    case 'TransactGetItems':
      return ((body['TransactItems'] ?? []) as { Get?: Body }[]).map((entry) => itemAccess('GetItem', entry.Get?.['TableName'], entry.Get?.['Key']));
    case 'BatchGetItem':
      return Object.entries((body['RequestItems'] ?? {}) as Record<string, { Keys?: unknown[] }>).map(([name, request]) => {
        const table = tableNameOf(name);
        return { action: 'dynamodb:BatchGetItem', resource: tableArn(table), context: leadingKeys((request.Keys ?? []).map((k) => partitionOf(table, k))) };
      });
    case 'BatchWriteItem':
      return Object.entries((body['RequestItems'] ?? {}) as Record<string, { PutRequest?: { Item?: unknown }; DeleteRequest?: { Key?: unknown } }[]>).map(
        ([name, writes]) => {
          const table = tableNameOf(name);
          const values = writes.map((w) => partitionOf(table, w.PutRequest?.Item ?? w.DeleteRequest?.Key));
          return { action: 'dynamodb:BatchWriteItem', resource: tableArn(table), context: leadingKeys(values) };
        },
      );
    case 'ExecuteStatement':
    case 'BatchExecuteStatement':
    case 'ExecuteTransaction':
      // The action (PartiQLSelect, PartiQLInsert, …) and table depend on the statement's text.
      return [{ action: `dynamodb:${operation}`, resource: '*', context: NO_CONTEXT, unsupported: `PartiQL (${operation})` }];
    default: {
      // Table-level calls (DescribeTable, UpdateTimeToLive, …) name their table; account-level ones (ListTables) do not.
      const name = body['TableName'] ?? body['ResourceArn'];
      const resource = typeof name === 'string' ? (name.startsWith('arn:') ? name : tableArn(name)) : '*';
      return [{ action: `dynamodb:${operation}`, resource, context: NO_CONTEXT }];
    }
  }
}
