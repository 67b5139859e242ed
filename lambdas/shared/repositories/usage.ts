import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../ddb.js';

/**
 * Usage table: one item per key per UTC hour (`key_id`, `hour` = YYYY-MM-DDTHH). A single conditional
 * UpdateItem per request counts the request in its fixed one-minute window (attribute `m<minute of
 * hour>`), refuses it when the window is full (exact under concurrency: DynamoDB serialises writes to an
 * item), and in the same write bumps `requests` (the hour's total) and `last_used`. An hour item stays
 * under 1 KB (60 counters), so every write costs one write unit; a day item would grow to 1,440
 * counters and cost up to 14. Today's and this month's totals are sums over a key's hour items (one
 * Query on the key's partition). Items expire by TTL (`ttl`) after USAGE_RETENTION_DAYS.
 */
export const USAGE_RETENTION_DAYS = 400;

export interface Hit {
  readonly admitted: boolean;
  readonly limit: number;
  /** Requests left in this window after this one (0 when refused). */
  readonly remaining: number;
  /** When the window ends, Unix epoch seconds. */
  readonly reset: number;
  readonly now: Date;
}

export function windowOf(now: Date): { hour: string; minuteAttr: string; reset: number } {
  const epochMinute = Math.floor(now.getTime() / 60_000);
  return {
    hour: now.toISOString().slice(0, 13),
    minuteAttr: `m${epochMinute % 60}`,
    reset: (epochMinute + 1) * 60,
  };
}

export class UsageRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async hit(keyId: string, accountId: string, limit: number, now: Date): Promise<Hit> {
    const { hour, minuteAttr, reset } = windowOf(now);
    const hourStart = Date.parse(`${hour}:00:00Z`) / 1000;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { key_id: keyId, hour },
          UpdateExpression: 'ADD #m :one, requests :one SET last_used = :now, account_id = :acct, #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#m) OR #m < :limit',
          ExpressionAttributeNames: { '#m': minuteAttr, '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':now': now.toISOString(),
            ':acct': accountId,
            ':ttl': hourStart + USAGE_RETENTION_DAYS * 86_400,
            ':limit': limit,
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const count = Number(out.Attributes?.[minuteAttr] ?? limit);
      return { admitted: true, limit, remaining: Math.max(0, limit - count), reset, now };
    } catch (error) {
      if (isConditionalCheckFailed(error)) return { admitted: false, limit, remaining: 0, reset, now };
      throw error;
    }
  }
}
