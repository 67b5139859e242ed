import {
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { KeyEnvironment } from '../api-key.js';
import type { Capability } from '../capabilities.js';
import { cancellationReasons, isConditionalCheckFailed } from '../ddb.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { TierName } from '../settings.js';

/**
 * Keys table. Two kinds of item share the partition key `pk`:
 * - `H#<sha256(key)>`: the key record, read by the authorizer with one strongly consistent GetItem;
 * - `K#<key_id>`: an immutable pointer from the public key id to the hash, so key management reads
 *   by id stay strongly consistent (a GSI would be eventually consistent).
 * GSI `by-account` (account_id, created_at) lists an account's keys; pointers carry no account_id, so
 * they stay out of it. `ttl` (epoch seconds) lets DynamoDB TTL remove expired and revoked keys later;
 * the authorizer never relies on it and checks `expires_at` against the clock.
 */
export interface KeyRecord {
  readonly key_id: string;
  readonly key_hash: string;
  readonly account_id: string;
  readonly name: string;
  readonly prefix: string;
  readonly environment: KeyEnvironment;
  readonly capabilities: Capability[];
  readonly workspaces: string[];
  /** The account's tier, copied onto each key so the authorizer needs one read; kept in step by setTier. */
  readonly tier: TierName;
  readonly created_at: string;
  readonly expires_at?: string;
  readonly revoked_at?: string;
}

interface StoredKey extends KeyRecord {
  readonly pk: string;
  readonly ttl?: number;
}

export const KEYS_BY_ACCOUNT_INDEX = 'by-account';
/** How long a revoked key's record stays (for audit) before TTL removes it. */
const REVOKED_RETENTION_SECONDS = 30 * 24 * 3600;

const hashPk = (hash: string) => `H#${hash}`;
const idPk = (keyId: string) => `K#${keyId}`;

function strip(item: Record<string, unknown>): KeyRecord {
  const { pk: _pk, ttl: _ttl, ...record } = item as unknown as StoredKey;
  return record;
}

export interface KeyPage {
  readonly items: KeyRecord[];
  readonly nextToken: string | null;
}

export class KeysRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tables: { readonly keys: string; readonly accounts?: string },
  ) {}

  /** Writes that count keys need the accounts table; the authorizer's read-only repository has none. */
  private get accountsTable(): string {
    if (!this.tables.accounts) throw new Error('this KeysRepository was built without the accounts table');
    return this.tables.accounts;
  }

  /** The authorizer's one read. */
  async getByHash(hash: string): Promise<KeyRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tables.keys, Key: { pk: hashPk(hash) }, ConsistentRead: true }),
    );
    return out.Item ? strip(out.Item) : undefined;
  }

  /** A key of this account by id, or undefined (also when another account owns it). */
  async getById(accountId: string, keyId: string): Promise<KeyRecord | undefined> {
    const record = await this.findById(keyId);
    return record && record.account_id === accountId ? record : undefined;
  }

  /** A key by id whatever its account: for operators (the admin CLI), never for API callers. */
  async findById(keyId: string): Promise<KeyRecord | undefined> {
    const pointer = await this.doc.send(
      new GetCommand({ TableName: this.tables.keys, Key: { pk: idPk(keyId) }, ConsistentRead: true }),
    );
    const hash = pointer.Item?.['key_hash'];
    return typeof hash === 'string' ? this.getByHash(hash) : undefined;
  }

  /**
   * Stores a new key and counts it against the account's limit in one transaction, so concurrent
   * creates can never exceed `maxActiveKeys`. The account's tier must still be `record.tier`, so a key
   * never carries a tier the account has already left.
   */
  async create(record: KeyRecord, maxActiveKeys: number): Promise<void> {
    const ttl = record.expires_at ? Math.floor(Date.parse(record.expires_at) / 1000) : undefined;
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.accountsTable,
                Key: { account_id: record.account_id },
                UpdateExpression: 'SET active_keys = if_not_exists(active_keys, :zero) + :one',
                ConditionExpression:
                  'attribute_exists(account_id) AND tier = :tier AND (attribute_not_exists(active_keys) OR active_keys < :max)',
                ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':tier': record.tier, ':max': maxActiveKeys },
              },
            },
            {
              Put: {
                TableName: this.tables.keys,
                Item: { ...record, pk: hashPk(record.key_hash), ttl },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.tables.keys,
                Item: { pk: idPk(record.key_id), key_hash: record.key_hash, ttl },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (reasons?.[0] === 'ConditionalCheckFailed') throw new KeyCreateConflict();
      throw error;
    }
  }

  /** Marks the key revoked and frees its slot, atomically; 404 if it is not this account's active key. */
  async revoke(accountId: string, keyId: string, now: Date): Promise<void> {
    const record = await this.getById(accountId, keyId);
    if (!record || record.revoked_at) throw new NotFoundError(`Key '${keyId}' not found`);
    const ttl = Math.floor(now.getTime() / 1000) + REVOKED_RETENTION_SECONDS;
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tables.keys,
                Key: { pk: hashPk(record.key_hash) },
                UpdateExpression: 'SET revoked_at = :now, #ttl = :ttl',
                ConditionExpression: 'account_id = :acct AND attribute_not_exists(revoked_at)',
                ExpressionAttributeNames: { '#ttl': 'ttl' },
                ExpressionAttributeValues: { ':now': now.toISOString(), ':ttl': ttl, ':acct': accountId },
              },
            },
            {
              Update: {
                TableName: this.tables.keys,
                Key: { pk: idPk(keyId) },
                UpdateExpression: 'SET #ttl = :ttl',
                ExpressionAttributeNames: { '#ttl': 'ttl' },
                ExpressionAttributeValues: { ':ttl': ttl },
              },
            },
            {
              Update: {
                TableName: this.accountsTable,
                Key: { account_id: accountId },
                UpdateExpression: 'SET active_keys = active_keys - :one',
                ConditionExpression: 'active_keys > :zero',
                ExpressionAttributeValues: { ':one': 1, ':zero': 0 },
              },
            },
          ],
        }),
      );
    } catch (error) {
      // Revoked by a concurrent request between our read and this write: same outcome for the caller.
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') {
        throw new NotFoundError(`Key '${keyId}' not found`);
      }
      throw error;
    }
  }

  /** The account's keys that are neither revoked nor expired at `now`, oldest first. */
  async listActive(accountId: string, now: Date, limit: number, nextToken?: string): Promise<KeyPage> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tables.keys,
        IndexName: KEYS_BY_ACCOUNT_INDEX,
        KeyConditionExpression: 'account_id = :acct',
        FilterExpression: 'attribute_not_exists(revoked_at) AND (attribute_not_exists(expires_at) OR expires_at > :now)',
        ExpressionAttributeValues: { ':acct': accountId, ':now': now.toISOString() },
        Limit: limit,
        ExclusiveStartKey: nextToken ? decodeToken(nextToken, accountId) : undefined,
      }),
    );
    return {
      items: (out.Items ?? []).map(strip),
      nextToken: out.LastEvaluatedKey ? encodeToken(out.LastEvaluatedKey) : null,
    };
  }

  /** Copies a new tier onto every key of the account (at most the key limit plus revoked/expired ones). */
  async propagateTier(accountId: string, tier: TierName): Promise<void> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tables.keys,
          IndexName: KEYS_BY_ACCOUNT_INDEX,
          KeyConditionExpression: 'account_id = :acct',
          ExpressionAttributeValues: { ':acct': accountId },
          ProjectionExpression: 'pk',
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        try {
          await this.doc.send(
            new UpdateCommand({
              TableName: this.tables.keys,
              Key: { pk: item['pk'] },
              UpdateExpression: 'SET tier = :tier',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':tier': tier },
            }),
          );
        } catch (error) {
          if (!isConditionalCheckFailed(error)) throw error; // removed by TTL meanwhile: nothing to update
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }
}

/** The create transaction's account condition failed: tier changed, account missing, or limit reached. */
export class KeyCreateConflict extends Error {
  constructor() {
    super('key create condition failed');
    this.name = 'KeyCreateConflict';
  }
}

export function keyLimitReached(max: number): ConflictError {
  return new ConflictError('KEY_LIMIT_REACHED', `The account already holds the maximum of ${max} active keys`);
}

function encodeToken(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A page token is only ever valid for the account that received it. */
function decodeToken(token: string, accountId: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && (value as Record<string, unknown>)['account_id'] === accountId) {
      return value as Record<string, unknown>;
    }
  } catch {
    // not base64url JSON: reported below
  }
  throw ValidationError.field('next_token', 'is not a valid page token');
}
