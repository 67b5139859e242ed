import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { TransactItem } from './audit.js';
import { isConditionalCheckFailed } from '../ddb.js';

/**
 * Idempotency table (`pk` = `<account_id>#<sha256(Idempotency-Key) hex>`): one item per key a caller sent
 * with a request that may take it (API.md §4 "Retries and idempotency"). The caller's raw key is never
 * stored, nor is any plaintext API key (the service leaves it out of the answer it keeps).
 *
 * An item is first `in_progress`, held by one attempt (`owner`, a random id per request) with a lease
 * (`lease_until`, epoch ms) lasting past the moment that attempt is certainly gone; then `complete`, with
 * the answer (`status`, `headers`, `body` gzipped), or deleted so that a retry runs the request again.
 * Every write after the first names the owner, so a write whose answer was lost and that the SDK sends
 * again meets its own result. `expires_at` (epoch ms) ends the record's life (24 h); `ttl` (epoch s) lets
 * DynamoDB delete it later, so reads treat `expires_at <= now` as absent.
 */
export interface IdempotencyRecord {
  readonly pk: string;
  readonly state: 'in_progress' | 'complete';
  readonly owner: string;
  /** sha256 of the request (method, path, relevant query, caller, canonical body). */
  readonly fingerprint: string;
  readonly lease_until: number;
  readonly expires_at: number;
  readonly created_at: string;
  readonly status?: number;
  readonly headers?: Record<string, string>;
  /** The answer's body, gzipped. */
  readonly body?: Uint8Array;
}

export interface StoredAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Gzipped. */
  readonly body: Uint8Array;
}

/** Attribute names used in expressions (`owner`, `status` and `state` are DynamoDB reserved words). */
const NAMES = { '#state': 'state', '#owner': 'owner', '#lease': 'lease_until', '#exp': 'expires_at', '#status': 'status' } as const;

export class IdempotencyRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Puts `record` (in progress) unless a live record holds its key: true when written. A record counts
   * as absent once it has expired, and an in-progress one once its lease has passed (its attempt is
   * gone). False when the condition failed, which includes this very put landing earlier with its answer
   * lost (the caller reads the record and compares the owner).
   */
  async begin(record: IdempotencyRecord, nowMs: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...record, ttl: Math.ceil(record.expires_at / 1000) },
          ConditionExpression: 'attribute_not_exists(pk) OR #exp <= :now OR (#state = :in_progress AND #lease < :now)',
          ExpressionAttributeNames: { '#exp': NAMES['#exp'], '#state': NAMES['#state'], '#lease': NAMES['#lease'] },
          ExpressionAttributeValues: { ':now': nowMs, ':in_progress': 'in_progress' },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** The record as stored (strongly consistent), expired or not. */
  async get(pk: string): Promise<IdempotencyRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true }));
    if (!out.Item) return undefined;
    const { ttl: _ttl, ...record } = out.Item;
    return record as IdempotencyRecord;
  }

  /**
   * Keeps the answer on the record `owner` holds: true when written (also when the SDK resends it after
   * a lost answer: the condition names only the owner), false when the record is no longer `owner`'s.
   */
  async complete(pk: string, owner: string, answer: StoredAnswer, now: Date): Promise<boolean> {
    try {
      await this.doc.send(new UpdateCommand(this.completeItem(pk, owner, answer, now).Update));
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /**
   * The write `complete` makes, as a transaction's item: the work's own transaction keeps its answer, so
   * a request that dies after its work committed is replayed, never run again. The transaction is
   * cancelled (this item's condition failing) when the record is no longer `owner`'s.
   */
  completeItem(pk: string, owner: string, answer: StoredAnswer, now: Date): TransactItem & { Update: UpdateCommandInput } {
    return {
      Update: {
        TableName: this.table,
        Key: { pk },
        UpdateExpression: 'SET #state = :complete, #status = :status, headers = :headers, body = :body, completed_at = :now',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#state': NAMES['#state'], '#status': NAMES['#status'], '#owner': NAMES['#owner'] },
        ExpressionAttributeValues: {
          ':complete': 'complete',
          ':status': answer.status,
          ':headers': answer.headers,
          ':body': answer.body,
          ':now': now.toISOString(),
          ':owner': owner,
        },
      },
    };
  }

  /**
   * Deletes the record `owner` holds, so a retry runs the request again. Nothing happens when the record
   * is not `owner`'s, or is gone (this delete landed before, its answer lost), or is complete: the work's
   * own transaction kept its answer (completeItem), so the work was done, whatever this request then
   * answered (a 500 on an outcome it could not learn), and a retry gets the replay.
   */
  async release(pk: string, owner: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk },
          ConditionExpression: '#owner = :owner AND #state = :in_progress',
          ExpressionAttributeNames: { '#owner': NAMES['#owner'], '#state': NAMES['#state'] },
          ExpressionAttributeValues: { ':owner': owner, ':in_progress': 'in_progress' },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
}
