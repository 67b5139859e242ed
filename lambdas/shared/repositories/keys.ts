import type { Principal } from '../caller.js';
import {
  GetCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { KeyEnvironment } from '../api-key.js';
import { newAuditEvent, SYSTEM_ACTOR, type AuditRepository, type TransactItem } from './audit.js';
import type { Capability } from '../capabilities.js';
import { cancellationReasons, isConditionalCheckFailed, queryPage, TRANSACTION_CONFLICT_RETRIES, transactWrite } from '../ddb.js';
import { decodePageToken, encodePageToken } from '../page-tokens.js';
import { IdempotencyInProgressError, KeyLimitReachedError, NotFoundError, ValidationError } from '../errors.js';
import type { TierName } from '../settings.js';
import type { KeyMetadata } from '../schemas.js';

/**
 * Keys table. Two kinds of item share the partition key `pk`:
 * - `H#<sha256(key)>`: the key record, read by the authorizer with one strongly consistent GetItem;
 * - `K#<key_id>`: an immutable pointer from the public key id to the hash, so key management reads
 *   by id stay strongly consistent (a GSI would be eventually consistent).
 * GSI `by-account` (account_id, created_at) lists an account's keys; pointers carry no account_id, so
 * they stay out of it. The account item names the keys that hold a slot (`slot_keys`, a map of key id to
 * `true`, changed in the same transactions as `active_keys`, each change counted in `slot_rev`): a
 * strongly consistent list of every key that can still authenticate, which a tier change updates
 * atomically (the index lags on AWS). `ttl` (epoch seconds) lets DynamoDB TTL remove expired and revoked keys later;
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
  /** When the key gave up its slot in the account's key count (rotated, or found expired). */
  readonly released_at?: string;
  /** The key that replaced this one by rotation. */
  readonly rotated_to?: string;
  readonly updated_at?: string;
  /**
   * Counts the edits (1 at creation; absent on keys made before it existed): a rotation copies the key
   * as it read it and is conditioned on this, so an edit is never lost to a concurrent rotation; a
   * revocation too, so a key is revoked only by a caller checked against what it holds.
   */
  readonly version?: number;
  /** Who made it (a rotation copies its predecessor's); absent on keys made before it existed. */
  readonly created_by?: Principal;
  /** The owner's string map (a rotation copies it); absent on keys made before it existed: read as `{}`. */
  readonly metadata?: KeyMetadata;
  /**
   * `false`: the authorizer refuses the key (401) while it keeps its slot; absent on keys made before it
   * existed: read as `true`. On the record the authorizer already reads, so the check costs no read.
   */
  readonly enabled?: boolean;
}

interface StoredKey extends KeyRecord {
  readonly pk: string;
  readonly ttl?: number;
  /** The account id while the key holds a slot (KEYS_HOLDING_SLOTS_INDEX). */
  readonly slot_account?: string;
}

export const KEYS_BY_ACCOUNT_INDEX = 'by-account';
/**
 * Sparse GSI (`slot_account`, `created_at`): only key records that hold a slot carry `slot_account` (the
 * account id), removed in the transaction that releases the slot. Listing active keys and finding
 * expired ones to release read at most the key limit's worth of items, whatever the account's history.
 */
export const KEYS_HOLDING_SLOTS_INDEX = 'by-account-slot';

/** A key that still holds a slot past its expiry (or its rotation's grace), not revoked: the slot index's filter, and the release's condition. */
const EXPIRED_HOLDING_SLOT = 'attribute_not_exists(revoked_at) AND attribute_not_exists(released_at) AND expires_at <= :now';
/** How long a revoked key's record stays (for audit) before TTL removes it. */
const REVOKED_RETENTION_SECONDS = 30 * 24 * 3600;

/** An active key: not revoked, not expired (by the clock, `:now`). */
const ACTIVE_CONDITION = 'attribute_not_exists(revoked_at) AND (attribute_not_exists(expires_at) OR expires_at > :now)';

const hashPk = (hash: string) => `H#${hash}`;
const idPk = (keyId: string) => `K#${keyId}`;

function strip(item: Record<string, unknown>): KeyRecord {
  const { pk: _pk, ttl: _ttl, slot_account: _slot, ...record } = item as unknown as StoredKey;
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
    const hash = await this.hashOf(keyId);
    return hash === undefined ? undefined : this.getByHash(hash);
  }

  /** The hash the key's id pointer names (consistent read), or undefined. */
  private async hashOf(keyId: string, doc: DynamoDBDocumentClient = this.doc): Promise<string | undefined> {
    const pointer = await doc.send(new GetCommand({ TableName: this.tables.keys, Key: { pk: idPk(keyId) }, ConsistentRead: true }));
    const hash = pointer.Item?.['key_hash'];
    return typeof hash === 'string' ? hash : undefined;
  }

  /**
   * Stores a new key and counts it against the account's limit in one transaction, so concurrent
   * creates can never exceed `maxActiveKeys`. The account's tier must still be `record.tier`, so a key
   * never carries a tier the account has already left. `audit` (the Put of its key.created event,
   * AuditRepository.putItem) is written in the same transaction, and so is `keep` (the request's answer
   * for its Idempotency-Key, services/idempotency.ts keepingItem): 409 IDEMPOTENCY_IN_PROGRESS when
   * another attempt holds that key by then.
   */
  async create(record: KeyRecord, maxActiveKeys: number, audit: TransactItem, keep?: TransactItem): Promise<void> {
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.accountsTable,
          Key: { account_id: record.account_id },
          UpdateExpression: 'SET active_keys = if_not_exists(active_keys, :zero) + :one, slot_keys.#kid = :true ADD slot_rev :one',
          ConditionExpression: 'attribute_exists(account_id) AND tier = :tier AND (attribute_not_exists(active_keys) OR active_keys < :max)',
          ExpressionAttributeNames: { '#kid': record.key_id },
          ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':true': true, ':tier': record.tier, ':max': maxActiveKeys },
        },
      },
      ...this.newKeyItems(record),
      audit,
      ...(keep ? [keep] : []),
    ];
    try {
      await this.transact(items, record.account_id, record);
    } catch (error) {
      const reasons = cancellationReasons(error);
      // First: a retry holds the Idempotency-Key now, and may have made the key (the account then full).
      if (keep && reasons?.[items.length - 1] === 'ConditionalCheckFailed') throw new IdempotencyInProgressError();
      if (reasons?.[0] === 'ConditionalCheckFailed') throw new KeyCreateConflict();
      throw error;
    }
  }

  /**
   * Marks the key revoked, atomically with freeing its slot (unless the slot was already released, by a
   * rotation or by expiry), with `audit` (its key.revoked event's Put) in the same transaction. The key
   * must still be as `record` was read: unchanged (its `version`) and on the same tier, since whether the
   * caller may revoke it was checked on what it held and what of that was in force. Throws KeyChanged when
   * it is not, or when a concurrent request revoked it, rotated it or released its slot first (read it
   * again: a key that no longer works is 404).
   */
  async revoke(record: KeyRecord, now: Date, audit: TransactItem): Promise<void> {
    const ttl = Math.floor(now.getTime() / 1000) + REVOKED_RETENTION_SECONDS;
    const holdsSlot = !record.released_at;
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.tables.keys,
          Key: { pk: hashPk(record.key_hash) },
          UpdateExpression: 'SET revoked_at = :now, #ttl = :ttl REMOVE slot_account',
          ConditionExpression: `account_id = :acct AND attribute_not_exists(revoked_at) AND ${
            holdsSlot ? 'attribute_not_exists(released_at)' : 'attribute_exists(released_at)'
          } AND tier = :tier AND ${record.version === undefined ? 'attribute_not_exists(version)' : 'version = :version'}`,
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':now': now.toISOString(),
            ':ttl': ttl,
            ':acct': record.account_id,
            ':tier': record.tier,
            ...(record.version === undefined ? {} : { ':version': record.version }),
          },
        },
      },
      {
        Update: {
          TableName: this.tables.keys,
          Key: { pk: idPk(record.key_id) },
          UpdateExpression: 'SET #ttl = :ttl',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':ttl': ttl },
        },
      },
    ];
    if (holdsSlot) items.push(this.releaseSlot(record.account_id, record.key_id));
    items.push(audit);
    try {
      await this.transact(items, record.account_id);
    } catch (error) {
      // Edited, moved to another tier, revoked or rotated by a concurrent request between our read and this write.
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') throw new KeyChanged();
      throw error;
    }
  }

  /**
   * Edits name, capabilities, workspaces, metadata (the whole map) or `enabled` of an active key that has not been rotated, and counts the
   * edit in `version`, with `audit` (its key.updated event's Put) in the same transaction; the authorizer
   * sees the change on the next request (it reads the record with a consistent GetItem). The key must be unchanged since
   * `record` was read (its `version`), so the event's `from` values are what the edit replaced, and still
   * on the tier it was read with: the edit was checked against that tier's ceiling, and a tier change
   * does not count as an edit. Returns the key as edited; undefined when it was edited, moved to another
   * tier, rotated or stopped being active meanwhile (read it again).
   */
  async update(
    record: KeyRecord,
    changes: { name?: string; capabilities?: Capability[]; workspaces?: string[]; metadata?: KeyMetadata; enabled?: boolean },
    now: Date,
    audit: TransactItem,
  ): Promise<KeyRecord | undefined> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':acct': record.account_id, ':now': now.toISOString(), ':tier': record.tier };
    const sets: string[] = [];
    for (const [field, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      sets.push(`#${field} = :${field}`);
    }
    sets.push('updated_at = :now', 'version = if_not_exists(version, :zero) + :one');
    values[':zero'] = 0;
    values[':one'] = 1;
    if (record.version !== undefined) values[':version'] = record.version;
    try {
      await this.transact([
        {
          Update: {
            TableName: this.tables.keys,
            Key: { pk: hashPk(record.key_hash) },
            UpdateExpression: `SET ${sets.join(', ')}`,
            // A rotated key is not edited: its replacement is (the service answers 409 KEY_ROTATED).
            ConditionExpression: `account_id = :acct AND ${ACTIVE_CONDITION} AND attribute_not_exists(rotated_to) AND tier = :tier AND ${
              record.version === undefined ? 'attribute_not_exists(version)' : 'version = :version'
            }`,
            ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
            ExpressionAttributeValues: values,
          },
        },
        audit,
      ]);
    } catch (error) {
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') return undefined;
      throw error;
    }
    const defined = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    return { ...record, ...defined, updated_at: now.toISOString(), version: (record.version ?? 0) + 1 };
  }

  /**
   * Replaces `old` by `next` in one transaction; `old` can be rotated once, and the account's tier must
   * still be `next.tier`. Without a grace period `old` is revoked and its slot passes to `next` (so a
   * rotation works at the key limit). With one, `old` keeps working, and keeps its slot, until `graceEnd`
   * (its expiry is brought forward), so `next` takes a slot of its own: on a full account that is refused
   * like a create. A key still in its grace holds no `ttl` (it holds a slot); its slot is released, and
   * its TTL set, once the grace is over (releaseExpired).
   * Throws KeyCreateConflict when the account condition fails (tier changed, or full), KeyChanged when
   * `old` is no longer as it was read (edited, revoked, expired or rotated meanwhile). `audit`
   * (the Puts of its events: `old`'s key.rotated and `next`'s key.created) is written in the same
   * transaction, and so is `keep`, as in `create`.
   */
  async rotate(
    old: KeyRecord,
    next: KeyRecord,
    graceEnd: Date | undefined,
    now: Date,
    maxActiveKeys: number,
    audit: readonly TransactItem[],
    keep?: TransactItem,
  ): Promise<void> {
    const oldExpiry = graceExpiry(old, graceEnd);
    const revokedTtl = Math.floor(now.getTime() / 1000) + REVOKED_RETENTION_SECONDS;
    const names = { '#old': old.key_id, '#next': next.key_id };
    const account: TransactItem = oldExpiry
      ? {
          Update: {
            TableName: this.accountsTable,
            Key: { account_id: next.account_id },
            UpdateExpression: 'SET active_keys = active_keys + :one, slot_keys.#next = :true ADD slot_rev :one',
            ConditionExpression: 'attribute_exists(account_id) AND tier = :tier AND active_keys < :max',
            ExpressionAttributeNames: { '#next': next.key_id },
            ExpressionAttributeValues: { ':one': 1, ':true': true, ':tier': next.tier, ':max': maxActiveKeys },
          },
        }
      : {
          Update: {
            TableName: this.accountsTable,
            Key: { account_id: next.account_id },
            UpdateExpression: 'SET slot_keys.#next = :true REMOVE slot_keys.#old ADD slot_rev :one',
            ConditionExpression: 'attribute_exists(account_id) AND tier = :tier',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':one': 1, ':true': true, ':tier': next.tier },
          },
        };
    const oldUpdate = oldExpiry
      ? {
          UpdateExpression: 'SET rotated_to = :next, expires_at = :exp, updated_at = :now',
          ExpressionAttributeValues: { ':exp': oldExpiry },
        }
      : {
          UpdateExpression: 'SET released_at = :now, rotated_to = :next, revoked_at = :now, updated_at = :now, #ttl = :ttl REMOVE slot_account',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':ttl': revokedTtl },
        };
    const items: TransactItem[] = [
      account,
      {
        Update: {
          TableName: this.tables.keys,
          Key: { pk: hashPk(old.key_hash) },
          UpdateExpression: oldUpdate.UpdateExpression,
          // Unchanged since it was read (`version`), so the replacement carries every edit.
          ConditionExpression: `account_id = :acct AND ${ACTIVE_CONDITION} AND attribute_not_exists(released_at) AND attribute_not_exists(rotated_to) AND ${
            old.version === undefined ? 'attribute_not_exists(version)' : 'version = :version'
          }`,
          ...('ExpressionAttributeNames' in oldUpdate ? { ExpressionAttributeNames: oldUpdate.ExpressionAttributeNames } : {}),
          ExpressionAttributeValues: {
            ...oldUpdate.ExpressionAttributeValues,
            ':acct': old.account_id,
            ':now': now.toISOString(),
            ':next': next.key_id,
            ...(old.version === undefined ? {} : { ':version': old.version }),
          },
        },
      },
      ...(oldExpiry ? [] : [this.pointerTtl(old.key_id, revokedTtl)]),
      ...this.newKeyItems(next),
      ...audit,
      ...(keep ? [keep] : []),
    ];
    try {
      await this.transact(items, next.account_id, next);
    } catch (error) {
      const reasons = cancellationReasons(error);
      // First: a retry holds the Idempotency-Key now, and may have rotated the key itself.
      if (keep && reasons?.[items.length - 1] === 'ConditionalCheckFailed') throw new IdempotencyInProgressError();
      if (reasons?.[0] === 'ConditionalCheckFailed') throw new KeyCreateConflict();
      if (reasons?.[1] === 'ConditionalCheckFailed') throw new KeyChanged();
      throw error;
    }
  }

  /**
   * Expired keys still hold their slot in `active_keys` until released. Releases each expired key of the
   * account exactly once (a conditional transaction per key, with its `key.expired` event in `audit`).
   * Returns how many such keys it found: all of them are released when it returns, by this call or by a
   * concurrent one.
   */
  async releaseExpired(accountId: string, now: Date, audit: AuditRepository): Promise<number> {
    return (await this.releaseExpiredKeys(accountId, now, audit)).found;
  }

  /** A page of the account's keys that still hold a slot past their expiry or grace (the slot index). */
  private expiredHoldingSlots(accountId: string, now: Date, start: Record<string, unknown> | undefined) {
    return {
      TableName: this.tables.keys,
      IndexName: KEYS_HOLDING_SLOTS_INDEX,
      KeyConditionExpression: 'slot_account = :acct',
      FilterExpression: EXPIRED_HOLDING_SLOT,
      ExpressionAttributeValues: { ':acct': accountId, ':now': now.toISOString() },
      ExclusiveStartKey: start,
    };
  }

  /**
   * How many of the account's keys still hold a slot past their expiry (or their rotation's grace): keys
   * that no longer work but whose slot a create on a full account or housekeeping has not released yet.
   * Read from the slot index (eventually consistent on AWS, so a release of the last second may be missed
   * or counted twice; never used for a decision, only to say how many keys are active).
   */
  async countExpiredHoldingSlots(accountId: string, now: Date): Promise<number> {
    let count = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new QueryCommand({ ...this.expiredHoldingSlots(accountId, now, start), Select: 'COUNT' }));
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
    return count;
  }

  /**
   * Releases the slots of the account's keys past their expiry (a rotated key's expiry is the end of its
   * grace), oldest first, each in its own transaction that sets the key's `released_at` and `ttl` (and
   * its pointer's), takes it out of the slot index, gives its slot back and writes its `key.expired`
   * event (by the system actor) in `audit`, on condition it still holds the slot: each key is released,
   * and its event written, once, whoever else is releasing it (a create on a full account, another
   * housekeeping run). `take` is asked before each release and stops the call when it says no (a bound
   * on the work of a run); `onRelease` hears of each key its own transaction released, as it happens (a
   * later failure throws, and what was released before is still known). `found`: the keys it tried;
   * `released`: those its own transaction released; `more`: `take` stopped it with more to look at. A
   * failure other than a lost condition throws, and leaves each key released or not, never half.
   */
  async releaseExpiredKeys(
    accountId: string,
    now: Date,
    audit: AuditRepository,
    { take = () => true, onRelease }: { take?: () => boolean; onRelease?: (keyId: string) => void } = {},
  ): Promise<{ found: number; released: number; more: boolean }> {
    // Released, an expired key's items are kept as long as a revoked key's (for audit), then TTL removes them.
    const releasedTtl = Math.floor(now.getTime() / 1000) + REVOKED_RETENTION_SECONDS;
    let found = 0;
    let released = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new QueryCommand(this.expiredHoldingSlots(accountId, now, start)));
      for (const item of page.Items ?? []) {
        if (!take()) return { found, released, more: true };
        found++;
        try {
          await this.transact([
            {
              Update: {
                TableName: this.tables.keys,
                Key: { pk: item['pk'] },
                UpdateExpression: 'SET released_at = :now, #ttl = :ttl REMOVE slot_account',
                // Still one the query found: holding its slot past its expiry (nobody released or revoked it since).
                ConditionExpression: EXPIRED_HOLDING_SLOT,
                ExpressionAttributeNames: { '#ttl': 'ttl' },
                ExpressionAttributeValues: { ':now': now.toISOString(), ':ttl': releasedTtl },
              },
            },
            this.pointerTtl(String(item['key_id']), releasedTtl),
            this.releaseSlot(accountId, String(item['key_id'])),
            audit.putItem(expiredEvent(accountId, String(item['key_id']), now)),
          ], accountId);
          released++;
          onRelease?.(String(item['key_id']));
        } catch (error) {
          // Released or revoked concurrently, or removed by TTL: its slot is not ours to free. Anything
          // else (a conflict that outlasted the retries) must not pass for a release.
          if (!cancellationReasons(error)?.includes('ConditionalCheckFailed')) throw error;
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return { found, released, more: false };
  }

  /**
   * One transaction (transactWrite). DynamoDB cancels a transaction that touches an item another
   * transaction is writing (`TransactionConflict`, e.g. parallel creates on one account); those are
   * retried with jittered backoff. Condition failures are the caller's to interpret. An account whose
   * item has no slot map yet (made before it existed) gets one, and the transaction is sent again.
   */
  private async transact(items: TransactItem[], slotAccount?: string, newKey?: KeyRecord): Promise<void> {
    // A new key's plaintext exists only in this request: an unknown outcome is settled by reading the key
    // (settleTransaction), never assumed not to have happened.
    const landed = newKey ? async (once: DynamoDBDocumentClient) => (await this.hashOf(newKey.key_id, once)) === newKey.key_hash : undefined;
    try {
      await transactWrite(this.doc, { TransactItems: items }, landed);
    } catch (error) {
      if (!slotAccount || !isMissingSlotMap(error)) throw error;
      await this.addSlotMap(slotAccount);
      await transactWrite(this.doc, { TransactItems: items }, landed);
    }
  }

  /**
   * The record (under its hash) and the id pointer of a new key, without `ttl`: a key that holds a slot
   * in the account's count must not vanish before its slot is released (TTL deleting an expired key's
   * record would leak the slot for good). Revoke, rotate and release set `ttl` as they free the slot.
   */
  private newKeyItems(record: KeyRecord): TransactItem[] {
    return [
      {
        Put: {
          TableName: this.tables.keys,
          Item: { ...record, pk: hashPk(record.key_hash), slot_account: record.account_id },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Put: {
          TableName: this.tables.keys,
          Item: { pk: idPk(record.key_id), key_hash: record.key_hash },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ];
  }

  /** Sets the id pointer's `ttl` (as its record's is set) once the key's slot is free. */
  private pointerTtl(keyId: string, ttl: number): TransactItem {
    return {
      Update: {
        TableName: this.tables.keys,
        Key: { pk: idPk(keyId) },
        UpdateExpression: 'SET #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':ttl': ttl },
      },
    };
  }

  private releaseSlot(accountId: string, keyId: string): TransactItem {
    return {
      Update: {
        TableName: this.accountsTable,
        Key: { account_id: accountId },
        UpdateExpression: 'SET active_keys = active_keys - :one REMOVE slot_keys.#kid ADD slot_rev :one',
        ConditionExpression: 'active_keys > :zero',
        ExpressionAttributeNames: { '#kid': keyId },
        ExpressionAttributeValues: { ':one': 1, ':zero': 0 },
      },
    };
  }

  /** The keys of the account that hold a slot, by the index (which lags on AWS): for accounts made before `slot_keys`. */
  private async slotHoldersByIndex(accountId: string): Promise<{ keyId: string; pk: string }[]> {
    const holders: { keyId: string; pk: string }[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tables.keys,
          IndexName: KEYS_BY_ACCOUNT_INDEX,
          KeyConditionExpression: 'account_id = :acct',
          FilterExpression: 'attribute_not_exists(revoked_at) AND attribute_not_exists(released_at)',
          ExpressionAttributeValues: { ':acct': accountId },
          ProjectionExpression: 'key_id, pk',
          ExclusiveStartKey: start,
        }),
      );
      holders.push(...(page.Items ?? []).map((i) => ({ keyId: String(i['key_id']), pk: String(i['pk']) })));
      start = page.LastEvaluatedKey;
    } while (start);
    return holders;
  }

  /**
   * An account made before `slot_keys` existed gets the map on its first key change (a nested path
   * cannot be set in a map that is not there), filled from the index with its slot-holding keys, which
   * also join the slot index (`slot_account`).
   */
  private async addSlotMap(accountId: string): Promise<void> {
    const holders = await this.slotHoldersByIndex(accountId);
    for (const { pk } of holders) {
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tables.keys,
            Key: { pk },
            UpdateExpression: 'SET slot_account = :acct',
            ConditionExpression: 'account_id = :acct AND attribute_not_exists(revoked_at) AND attribute_not_exists(released_at)',
            ExpressionAttributeValues: { ':acct': accountId },
          }),
        );
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error; // released meanwhile
      }
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.accountsTable,
          Key: { account_id: accountId },
          UpdateExpression: 'SET slot_keys = :map ADD slot_rev :one',
          ConditionExpression: 'attribute_exists(account_id) AND attribute_not_exists(slot_keys)',
          ExpressionAttributeValues: { ':map': Object.fromEntries(holders.map((h) => [h.keyId, true])), ':one': 1 },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error; // added concurrently, or no such account
    }
  }

  /**
   * Changes the account's tier and copies it onto every key that holds a slot (every key that can still
   * authenticate), in one transaction: no key keeps the old tier, whatever fails. The account's
   * `slot_rev` and tier must be unchanged since the account was read, so a key created or released, or
   * another tier change, meanwhile makes it read again (no event with a stale `from`); a concurrent create waits for the tier (its own condition) or is in the list.
   * `audit(from)` is the Put of the change's account.tier_changed event (from the tier the account had),
   * written in the same transaction; undefined (no event) when the tier does not change.
   * Returns the account's key ids that were brought to the tier.
   */
  async setAccountTier(
    accountId: string,
    tier: TierName,
    now: Date,
    audit: (from: TierName) => TransactItem | undefined,
  ): Promise<string[]> {
    for (let attempt = 0; ; attempt++) {
      const out = await this.doc.send(
        new GetCommand({ TableName: this.accountsTable, Key: { account_id: accountId }, ConsistentRead: true }),
      );
      const account = out.Item;
      if (!account) throw new NotFoundError(`Account '${accountId}' does not exist`);
      const slotKeys = account['slot_keys'] as Record<string, unknown> | undefined;
      if (!slotKeys) {
        await this.addSlotMap(accountId);
        continue;
      }
      const hashes = await Promise.all(
        Object.keys(slotKeys).map(async (keyId) => {
          const pointer = await this.doc.send(
            new GetCommand({ TableName: this.tables.keys, Key: { pk: idPk(keyId) }, ConsistentRead: true }),
          );
          return pointer.Item?.['key_hash'] as string | undefined;
        }),
      );
      const rev = account['slot_rev'] as number | undefined;
      const from = account['tier'] as TierName;
      // Already at the tier: nothing to write, so nothing to record (every key is on the account's tier).
      if (from === tier) return Object.keys(slotKeys);
      const recorded = audit(from);
      try {
        await this.transact([
          {
            Update: {
              TableName: this.accountsTable,
              Key: { account_id: accountId },
              UpdateExpression: 'SET tier = :tier, updated_at = :now',
              // The tier as read, too: a concurrent change makes this one read again, so each event's `from` is true.
              ConditionExpression: `${rev === undefined ? 'attribute_not_exists(slot_rev)' : 'slot_rev = :rev'} AND tier = :from`,
              ExpressionAttributeValues: { ':tier': tier, ':from': from, ':now': now.toISOString(), ...(rev === undefined ? {} : { ':rev': rev }) },
            },
          },
          ...hashes
            .filter((hash): hash is string => typeof hash === 'string')
            .map(
              (hash): TransactItem => ({
                Update: {
                  TableName: this.tables.keys,
                  Key: { pk: hashPk(hash) },
                  UpdateExpression: 'SET tier = :tier',
                  ConditionExpression: 'account_id = :acct',
                  ExpressionAttributeValues: { ':tier': tier, ':acct': accountId },
                },
              }),
            ),
          ...(recorded ? [recorded] : []),
        ]);
        return Object.keys(slotKeys);
      } catch (error) {
        // A key was created or released, or the tier changed, between the read and the write: read again.
        if (!cancellationReasons(error)?.includes('ConditionalCheckFailed') || attempt >= TRANSACTION_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /**
   * A page of the account's keys that are neither revoked nor expired at `now`, oldest first, with
   * exactly `limit` items unless it is the last page; read from the slot index, so at most the key limit
   * of items whatever the account's history. The token names the page's last key (its
   * `created_at` and `key_id`, never its hash) and is only valid for the account that received it.
   */
  async listActive(accountId: string, now: Date, limit: number, nextToken?: string): Promise<KeyPage> {
    const page = await queryPage(
      this.doc,
      {
        TableName: this.tables.keys,
        IndexName: KEYS_HOLDING_SLOTS_INDEX,
        KeyConditionExpression: 'slot_account = :acct',
        FilterExpression: 'attribute_not_exists(revoked_at) AND (attribute_not_exists(expires_at) OR expires_at > :now)',
        ExpressionAttributeValues: { ':acct': accountId, ':now': now.toISOString() },
      },
      limit,
      nextToken ? await this.startAfter(accountId, nextToken) : undefined,
    );
    const items = page.items.map(strip);
    const last = items.at(-1);
    // A token only when another key follows (queryPage reads one past the page): no empty last page.
    return { items, nextToken: page.more && last ? await encodePageToken('keys', accountId, { c: last.created_at, k: last.key_id }) : null };
  }

  /** The index position just after the key a page token names. */
  private async startAfter(accountId: string, token: string): Promise<Record<string, unknown>> {
    const position = await decodePageToken('keys', token, accountId, { c: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, k: /^key_[0-9A-Za-z]{20}$/ });
    const record = await this.findById(position.k);
    if (!record || record.account_id !== accountId || record.created_at !== position.c) {
      throw ValidationError.field('next_token', 'is not a valid page token (or its key is gone): list again from the start');
    }
    return { slot_account: accountId, created_at: record.created_at, pk: hashPk(record.key_hash) };
  }
}

/** The `key.expired` event of a slot released at `now` (API.md §7): by the system, the release its one change. */
function expiredEvent(accountId: string, keyId: string, now: Date) {
  return newAuditEvent({
    accountId,
    action: 'key.expired',
    actor: SYSTEM_ACTOR,
    target: { kind: 'key', id: keyId },
    changes: { released_at: { from: null, to: now.toISOString() } },
    now,
  });
}

/**
 * When a key rotated with a grace period stops: at the grace's end, or at its own expiry if that comes
 * first. Undefined without a grace period (the key stops at once).
 */
export function graceExpiry(old: KeyRecord, graceEnd: Date | undefined): string | undefined {
  return graceEnd && old.expires_at && Date.parse(old.expires_at) <= graceEnd.getTime() ? old.expires_at : graceEnd?.toISOString();
}

/** A transaction set a path inside `slot_keys` on an account that has no such map yet. */
function isMissingSlotMap(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationException' && /document path/i.test(error.message);
}

/** The key a rotation or a revocation read changed before its write: read it again. */
export class KeyChanged extends Error {
  constructor() {
    super('key changed since it was read');
    this.name = 'KeyChanged';
  }
}

/** The create transaction's account condition failed: tier changed, account missing, or limit reached. */
export class KeyCreateConflict extends Error {
  constructor() {
    super('key create condition failed');
    this.name = 'KeyCreateConflict';
  }
}

/** 409 KEY_LIMIT_REACHED: `max` keys allowed, `active` holding a slot (API.md §3). */
export function keyLimitReached(max: number, active: number): KeyLimitReachedError {
  return new KeyLimitReachedError(max, active);
}
