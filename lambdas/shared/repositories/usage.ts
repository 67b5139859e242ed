import { QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed, isThrottled, singleAttemptClient } from '../ddb.js';
import { log } from '../log.js';

/**
 * Usage table: one item per key per UTC hour (`key_id`, `hour` = YYYY-MM-DDTHH). A single conditional
 * UpdateItem per request counts the request in its fixed one-minute window (attribute `m<minute of
 * hour>`), refuses it when the window is full (exact under concurrency: DynamoDB serialises writes to an
 * item), and in the same write bumps `requests` (the hour's total) and `last_used`. An hour item stays
 * under 1 KB (60 counters), so every write costs one write unit; a day item would grow to 1,440
 * counters and cost up to 14. Today's and this month's totals are sums over a key's hour items (one
 * Query on the key's partition). Items expire by TTL (`ttl`) after USAGE_RETENTION_DAYS.
 *
 * Usage is what customers are billed on, so a request is counted at most once: the counter write is
 * never repeated when its answer is lost (a timeout, a 5xx, a cut connection), because it may have
 * landed; the request then fails with 500 (and was perhaps counted once). Only throttling, which
 * surely changed nothing, is retried. `last_used` never moves back: a write whose clock is behind the
 * stored value (functions' clocks differ by milliseconds) puts the later value back.
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

const THROTTLE_RETRIES = 3;

export class UsageRepository {
  /** The counter's own client: one attempt per call (see above). */
  private readonly counter: DynamoDBDocumentClient;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {
    this.counter = singleAttemptClient(doc);
  }

  async hit(keyId: string, accountId: string, limit: number, now: Date): Promise<Hit> {
    const { hour, minuteAttr, reset } = windowOf(now);
    const hourStart = Date.parse(`${hour}:00:00Z`) / 1000;
    const at = now.toISOString();
    for (let attempt = 0; ; attempt++) {
      let out: { Attributes?: Record<string, unknown> };
      try {
        out = await this.counter.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { key_id: keyId, hour },
            UpdateExpression: 'ADD #m :one, requests :one SET last_used = :now, account_id = :acct, #ttl = :ttl',
            ConditionExpression: 'attribute_not_exists(#m) OR #m < :limit',
            ExpressionAttributeNames: { '#m': minuteAttr, '#ttl': 'ttl' },
            ExpressionAttributeValues: {
              ':one': 1,
              ':now': at,
              ':acct': accountId,
              ':ttl': hourStart + USAGE_RETENTION_DAYS * 86_400,
              ':limit': limit,
            },
            // The item as it was (under 1 KB): this request's count is the old one plus one.
            ReturnValues: 'ALL_OLD',
          }),
        );
      } catch (error) {
        if (isConditionalCheckFailed(error)) return { admitted: false, limit, remaining: 0, reset, now };
        if (!isThrottled(error) || attempt >= THROTTLE_RETRIES) throw error;
        await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** attempt));
        continue;
      }
      // Counted: nothing after this may send the counter's write again (it would count the request twice).
      const count = Number(out.Attributes?.[minuteAttr] ?? 0) + 1;
      const previous = out.Attributes?.['last_used'];
      if (typeof previous === 'string' && previous > at) await this.keepLastUsed(keyId, hour, previous);
      return { admitted: true, limit, remaining: Math.max(0, limit - count), reset, now };
    }
  }

  /**
   * Puts back a later `last_used` that a write with an earlier clock replaced (rare: clocks a few ms
   * apart). Best effort, never throws: the request is counted already, and a failure here (throttling on
   * a hot key's item, say) must neither count it again nor fail it; `last_used` is then a few ms early.
   */
  private async keepLastUsed(keyId: string, hour: string, later: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { key_id: keyId, hour },
          UpdateExpression: 'SET last_used = :later',
          ConditionExpression: 'last_used < :later',
          ExpressionAttributeValues: { ':later': later },
        }),
      );
    } catch (error) {
      // An even later one is there already; anything else is logged and left.
      if (!isConditionalCheckFailed(error)) log('warn', 'a later last_used could not be put back', { key_id: keyId, hour, error: error instanceof Error ? error.name : String(error) });
    }
  }

  /** Today's and this month's totals (UTC) and the last use: one Query over this month's hour items. */
  /**
   * Today's and this month's totals, the newest `last_used`, and the requests of each of the last `days`
   * UTC days (oldest first, today last, zeros included): one Query over the key's hour items from the
   * earlier of the month's start and the first of those days (at most 90 days × 24 items).
   */
  async summary(
    keyId: string,
    now: Date,
    days = 30,
  ): Promise<{ requestsToday: number; requestsThisMonth: number; lastUsed: string | null; daily: { date: string; requests: number }[] }> {
    const { hour } = windowOf(now);
    const today = hour.slice(0, 10);
    const month = hour.slice(0, 7);
    const dates: string[] = [];
    for (let i = days - 1; i >= 0; i--) dates.push(new Date(Date.parse(`${today}T00:00:00Z`) - i * 86_400_000).toISOString().slice(0, 10));
    const byDate = new Map(dates.map((d) => [d, 0]));
    const from = dates[0]! < `${month}-01` ? dates[0]! : `${month}-01`;
    let requestsToday = 0;
    let requestsThisMonth = 0;
    let lastUsed: string | null = null;
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'key_id = :k AND #h BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#h': 'hour' },
          ExpressionAttributeValues: { ':k': keyId, ':from': `${from}T00`, ':to': hour },
          ProjectionExpression: '#h, requests, last_used',
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        const n = Number(item['requests'] ?? 0);
        const date = String(item['hour']).slice(0, 10);
        if (date.startsWith(month)) requestsThisMonth += n;
        if (date === today) requestsToday += n;
        const day = byDate.get(date);
        if (day !== undefined) byDate.set(date, day + n);
        const used = item['last_used'] as string | undefined;
        if (used && (!lastUsed || used > lastUsed)) lastUsed = used;
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return {
      requestsToday,
      requestsThisMonth,
      lastUsed: lastUsed ?? (await this.lastUsed(keyId)),
      daily: dates.map((date) => ({ date, requests: byDate.get(date)! })),
    };
  }

  /** When the key was last used (any time in the retention period), from its newest hour item. */
  async lastUsed(keyId: string): Promise<string | null> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'key_id = :k',
        ExpressionAttributeValues: { ':k': keyId },
        ProjectionExpression: 'last_used',
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    return (out.Items?.[0]?.['last_used'] as string | undefined) ?? null;
  }
}
