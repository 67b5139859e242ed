import { GetCommand, ScanCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { cancellationReasons, conflictBackoff, isConditionalCheckFailed, isTransactionConflict, transactWrite, TRANSACTION_CONFLICT_RETRIES } from '../ddb.js';
import { ConflictError, IdempotencyInProgressError, NotFoundError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import type { TierName } from '../settings.js';
import type { TransactItem } from './audit.js';

/** Accounts table item (partition key `account_id`). */
export interface AccountRecord {
  readonly account_id: string;
  readonly tier: TierName;
  /** Keys created and not revoked; the key-limit transaction keeps it exact under concurrency. */
  readonly active_keys: number;
  readonly created_at: string;
  readonly updated_at: string;
}

/** The sealed webhook secret's attribute on the account item (see secret-box.ts). */
export const SECRET_ATTRIBUTE = 'webhook_secret_sealed';
/** Where releases before sealing kept the secret in the clear; read once, sealed and removed. */
const LEGACY_SECRET_ATTRIBUTE = 'webhook_secret';
/** The secret a rotation with a grace period replaced (sealed), and until when (epoch ms) it still signs. */
export const PREVIOUS_SECRET_ATTRIBUTE = 'webhook_previous_secret_sealed';
const PREVIOUS_UNTIL_ATTRIBUTE = 'webhook_previous_until';
/** The id of the last rotation, so a retried rotation (its first answer lost) is not applied twice. */
const ROTATION_ATTRIBUTE = 'webhook_rotation_id';
/**
 * The condition of sealing an earlier release's plaintext secret in place: still the value read (an
 * earlier release still running during a deploy may write it again), and nothing sealed yet.
 */
const PLAINTEXT_NOT_YET_SEALED = `${LEGACY_SECRET_ATTRIBUTE} = :legacy AND attribute_not_exists(${SECRET_ATTRIBUTE})`;

/** An account as housekeeping's scan reads it. */
export interface ScannedAccount {
  readonly account_id: string;
  readonly active_keys: number;
  /**
   * It still holds a webhook secret an earlier release kept in the clear (see `sealPlaintextSecret`);
   * false unless the scan was asked to look (`plaintextSecrets`).
   */
  readonly plaintext_secret: boolean;
}

/**
 * How an account's first webhook secret is made, when a caller may make it: the secret, and the Put of
 * its webhook_secret.created event (by whoever's use made it). `make` may throw for a caller that may
 * only open an existing secret.
 */
export interface FirstWebhookSecret {
  make(): string;
  event(): TransactItem;
}

/** The secrets that sign an account's webhooks now: the current one, and the one it replaced while its grace lasts. */
export interface WebhookSecrets {
  readonly current: string;
  readonly previous?: { readonly secret: string; readonly until: Date };
}

export { ACCOUNT_ID_PATTERN } from '../account-id.js';

export interface AccountsRepositoryOptions {
  /**
   * The caller may open secrets but not seal them (its role has kms:Decrypt only: the workflows function).
   * A secret an earlier release kept in the clear is then used as it is, not sealed in place (which
   * would fail); housekeeping seals it (`sealPlaintextSecret`). @default false
   */
  readonly openOnly?: boolean;
}

export class AccountsRepository {
  /** `box` seals the webhook secrets; without it they cannot be read or written. */
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly box?: SecretBox,
    private readonly options: AccountsRepositoryOptions = {},
  ) {}

  async get(accountId: string): Promise<AccountRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId }, ConsistentRead: true }),
    );
    return out.Item as AccountRecord | undefined;
  }

  /**
   * Create-only: 409 ALREADY_EXISTS when the id is taken. `audit` (the Put of its account.created event)
   * is written in the same transaction.
   */
  async create(accountId: string, tier: TierName, now: Date, audit: TransactItem): Promise<AccountRecord> {
    const record: AccountRecord = {
      account_id: accountId,
      tier,
      active_keys: 0,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    try {
      await transactWrite(this.doc, {
        TransactItems: [
          {
            Put: {
              TableName: this.table,
              // The keys holding a slot, kept by KeysRepository (see there).
              Item: { ...record, slot_keys: {}, slot_rev: 0 },
              ConditionExpression: 'attribute_not_exists(account_id)',
            },
          },
          audit,
        ],
      });
    } catch (error) {
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') {
        throw new ConflictError('ALREADY_EXISTS', `Account '${accountId}' already exists`);
      }
      throw error;
    }
    return record;
  }

  /**
   * The account's webhook signing secret, made on first use (see `webhookSecrets`). Stored sealed
   * (`webhook_secret_sealed`), never in the clear.
   */
  async webhookSecret(accountId: string, first: FirstWebhookSecret): Promise<string> {
    return (await this.webhookSecrets(accountId, first, new Date())).current;
  }

  /**
   * The secrets signing the account's webhooks at `now`: the current one, and the one a rotation replaced
   * while its grace period lasts. One consistent read; an account without a secret gets `first.make()`,
   * with `first.event()` (its webhook_secret.created event's Put) in the same transaction, on condition
   * it still has none: of two first uses one writes and the other's condition fails, so both read the
   * one secret and there is one event. A transaction cancelled by another on the account item
   * (`TransactionConflict`) took no effect: the secret is read again (another first use may have made
   * it) before the write is sent again. A write whose answer was lost is answered as a success when the
   * SDK sends it again (the same client token; DynamoDB Local honours it too); should its condition fail
   * instead, the read finds the one secret it made.
   */
  async webhookSecrets(accountId: string, first: FirstWebhookSecret, now: Date): Promise<WebhookSecrets> {
    let sealed: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const existing = await this.readSecrets(accountId, now);
      if (existing) return existing;
      sealed ??= await this.sealer().seal(first.make(), accountId);
      try {
        await this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.table,
                  Key: { account_id: accountId },
                  UpdateExpression: `SET ${SECRET_ATTRIBUTE} = :s`,
                  // Refused when the account is missing or a first use got there first: the read tells which.
                  ConditionExpression: `attribute_exists(account_id) AND attribute_not_exists(${SECRET_ATTRIBUTE}) AND attribute_not_exists(${LEGACY_SECRET_ATTRIBUTE})`,
                  ExpressionAttributeValues: { ':s': sealed },
                },
              },
              first.event(),
            ],
          }),
        );
        break;
      } catch (error) {
        if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') break;
        if (!isTransactionConflict(error) || attempt >= TRANSACTION_CONFLICT_RETRIES) throw error;
        await conflictBackoff(attempt);
      }
    }
    const secrets = await this.readSecrets(accountId, now);
    if (!secrets) throw new NotFoundError(`Account '${accountId}' does not exist`);
    return secrets;
  }

  /**
   * Replaces the secret. With `graceSeconds` > 0 the one it replaces keeps signing until then (beside the
   * new one); with 0 it stops at once, and so does any secret still in an earlier rotation's grace. One
   * write, keyed by `rotationId`: the SDK retrying it after a lost answer finds it applied and changes
   * nothing (a second application would make the new secret its own "previous" and end the old one's
   * grace). An account that never had a secret simply gets one. `audit` (the Put of its
   * webhook_secret.rotated event, which holds no secret) is written in the same transaction: a retried
   * rotation that finds itself applied finds its event written too.
   */
  async rotateWebhookSecret(
    accountId: string,
    secret: string,
    graceSeconds: number,
    now: Date,
    rotationId: string,
    audit: TransactItem,
    keep?: (rotated: WebhookSecrets) => TransactItem | undefined,
  ): Promise<WebhookSecrets> {
    const sealed = await this.sealer().seal(secret, accountId);
    const until = now.getTime() + graceSeconds * 1000;
    for (let attempt = 0; ; attempt++) {
      // Seals a secret an earlier release kept in the clear, so the copy below has something to copy.
      const { secrets: before, rotation: seen } = await this.readSecretsAsOf(accountId, now);
      const keepPrevious = graceSeconds > 0 && before !== undefined;
      const rotated: WebhookSecrets = { current: secret, ...(keepPrevious && before ? { previous: { secret: before.current, until: new Date(until) } } : {}) };
      // With a grace, "nothing to keep" holds only while there is still no secret (a first use may make one meanwhile).
      const applied = await this.applyRotation(accountId, sealed, keepPrevious, graceSeconds > 0, until, rotationId, seen, audit, keep?.(rotated));
      if (applied === 'raced' && attempt < TRANSACTION_CONFLICT_RETRIES) continue;
      if (applied === 'raced') throw new Error('the webhook secret kept being rotated meanwhile');
      return rotated;
    }
  }

  /**
   * The rotation's one write. With a grace it is conditioned on the rotation `seen` when the secrets were
   * read: the secret it keeps as previous must be the one that was read, else two rotations at once
   * would answer a `previous` that no longer signs ('raced': read again). 'applied' also when this very
   * rotation was applied before (the SDK's retry after a lost answer). With a grace and no secret read
   * (`graced`, not `keepPrevious`) it is conditioned on there still being none: a secret a first use made
   * meanwhile, already handed out, is kept in its grace, not replaced at once ('raced': read again).
   */
  private async applyRotation(
    accountId: string,
    sealed: string,
    keepPrevious: boolean,
    graced: boolean,
    until: number,
    rotationId: string,
    seen: string | undefined,
    audit: TransactItem,
    keep: TransactItem | undefined,
  ): Promise<'applied' | 'raced'> {
    const asRead = seen === undefined ? `attribute_not_exists(${ROTATION_ATTRIBUTE})` : `${ROTATION_ATTRIBUTE} = :seen`;
    const rotation: TransactWriteCommandInput = {
      TransactItems: [
        {
          Update: {
            TableName: this.table,
            Key: { account_id: accountId },
            UpdateExpression: keepPrevious
              ? `SET ${PREVIOUS_SECRET_ATTRIBUTE} = ${SECRET_ATTRIBUTE}, ${PREVIOUS_UNTIL_ATTRIBUTE} = :until, ${SECRET_ATTRIBUTE} = :s, ${ROTATION_ATTRIBUTE} = :r`
              : `SET ${SECRET_ATTRIBUTE} = :s, ${ROTATION_ATTRIBUTE} = :r REMOVE ${PREVIOUS_SECRET_ATTRIBUTE}, ${PREVIOUS_UNTIL_ATTRIBUTE}, ${LEGACY_SECRET_ATTRIBUTE}`,
            ConditionExpression: keepPrevious
              ? `attribute_exists(${SECRET_ATTRIBUTE}) AND ${asRead}`
              : `attribute_exists(account_id) AND (attribute_not_exists(${ROTATION_ATTRIBUTE}) OR ${ROTATION_ATTRIBUTE} <> :r)${graced ? ` AND attribute_not_exists(${SECRET_ATTRIBUTE})` : ''}`,
            ExpressionAttributeValues: { ':s': sealed, ':r': rotationId, ...(keepPrevious ? { ':until': until, ...(seen === undefined ? {} : { ':seen': seen }) } : {}) },
          },
        },
        audit,
        // The request's answer for its Idempotency-Key, kept with the rotation (services/idempotency.ts keepingItem).
        ...(keep ? [keep] : []),
      ],
    };
    try {
      // Cancelled by another transaction on the account item (a first use, a run's counter): sent again.
      // An unknown outcome (no answer, a transaction still in progress) is settled by the account's
      // rotation id: sent again with its token, never as a second rotation that would end the grace of
      // the secret this one kept.
      await transactWrite(this.doc, rotation, async (once) => (await this.rotationIdOf(accountId, once)) === rotationId);
    } catch (error) {
      // Another attempt holds the request's Idempotency-Key by now (this one outlived its lease): no rotation.
      if (keep && cancellationReasons(error)?.[2] === 'ConditionalCheckFailed') throw new IdempotencyInProgressError();
      if (cancellationReasons(error)?.[0] !== 'ConditionalCheckFailed') throw error;
      const after = await this.rotationIdOf(accountId);
      if (after === undefined) throw new NotFoundError(`Account '${accountId}' does not exist`);
      // This rotation, already applied; else (with a grace) another rotation since the read.
      if (after === rotationId) return 'applied';
      if (graced) return 'raced';
      throw new Error('the webhook secret rotation was refused', { cause: error });
    }
    return 'applied';
  }

  /** The account's last webhook secret rotation's id (consistent read): null when none, undefined when the account is not there. */
  private async rotationIdOf(accountId: string, doc: DynamoDBDocumentClient = this.doc): Promise<string | null | undefined> {
    const out = await doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId }, ConsistentRead: true, ProjectionExpression: `account_id, ${ROTATION_ATTRIBUTE}` }),
    );
    if (!out.Item) return undefined;
    const id = out.Item[ROTATION_ATTRIBUTE];
    return typeof id === 'string' ? id : null;
  }

  /**
   * Housekeeping: one page of the accounts (a Scan, eventually consistent), of one segment of a parallel
   * scan when `segment` says so, with only its id and its key count, and with `plaintextSecrets` (only
   * the housekeeping function, which seals them) whether it still holds a webhook secret an earlier
   * release kept in the clear. `start`: the previous page's `next`.
   */
  async scanPage(
    limit: number,
    start?: Record<string, unknown>,
    segment?: { readonly segment: number; readonly of: number },
    { plaintextSecrets = false }: { readonly plaintextSecrets?: boolean } = {},
  ): Promise<{ items: ScannedAccount[]; next?: Record<string, unknown> }> {
    const out = await this.doc.send(
      new ScanCommand({
        TableName: this.table,
        // The plaintext of an earlier release comes back with the page (a projection cannot test for an
        // attribute without reading it): only whether it is there is kept.
        ...(plaintextSecrets
          ? { ProjectionExpression: 'account_id, active_keys, #legacy', ExpressionAttributeNames: { '#legacy': LEGACY_SECRET_ATTRIBUTE } }
          : { ProjectionExpression: 'account_id, active_keys' }),
        Limit: limit,
        ...(segment ? { Segment: segment.segment, TotalSegments: segment.of } : {}),
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const items = (out.Items ?? []).map((i) => ({
      account_id: String(i['account_id']),
      active_keys: Number(i['active_keys'] ?? 0),
      plaintext_secret: typeof i[LEGACY_SECRET_ATTRIBUTE] === 'string',
    }));
    return { items, ...(out.LastEvaluatedKey ? { next: out.LastEvaluatedKey } : {}) };
  }

  /**
   * Housekeeping: seals in place the webhook secret an earlier release kept in the clear (the same
   * secret: receivers keep verifying) and removes the plaintext: 'sealed'. When a sealed secret is there
   * too (an earlier release, rolled back to, wrote the plaintext beside it), the sealed one is the one in
   * force (every reader takes it): the plaintext is only removed, 'removed'. 'none' when a read, a
   * rotation or another run got there first. One consistent read, one conditional write (on the
   * plaintext as read); sealing needs kms:Encrypt, never kms:Decrypt.
   */
  async sealPlaintextSecret(accountId: string): Promise<'sealed' | 'removed' | 'none'> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId }, ConsistentRead: true, ProjectionExpression: `${LEGACY_SECRET_ATTRIBUTE}, ${SECRET_ATTRIBUTE}` }),
    );
    const legacy = out.Item?.[LEGACY_SECRET_ATTRIBUTE];
    if (typeof legacy !== 'string') return 'none';
    if (out.Item?.[SECRET_ATTRIBUTE] === undefined) return (await this.sealInPlace(accountId, legacy)) ? 'sealed' : 'none';
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId },
          UpdateExpression: `REMOVE ${LEGACY_SECRET_ATTRIBUTE}`,
          ConditionExpression: `${LEGACY_SECRET_ATTRIBUTE} = :legacy AND attribute_exists(${SECRET_ATTRIBUTE})`,
          ExpressionAttributeValues: { ':legacy': legacy },
        }),
      );
      return 'removed';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'none';
      throw error;
    }
  }

  private sealer(): SecretBox {
    if (!this.box) throw new Error('AccountsRepository: no SecretBox for webhook secrets');
    return this.box;
  }

  private async readSecrets(accountId: string, now: Date): Promise<WebhookSecrets | undefined> {
    return (await this.readSecretsAsOf(accountId, now)).secrets;
  }

  /** The secrets in force, and the id of the rotation that made the current one (none before the first). */
  private async readSecretsAsOf(accountId: string, now: Date): Promise<{ secrets?: WebhookSecrets; rotation?: string }> {
    const box = this.sealer();
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { account_id: accountId },
        ConsistentRead: true,
        ProjectionExpression: `${SECRET_ATTRIBUTE}, ${LEGACY_SECRET_ATTRIBUTE}, ${PREVIOUS_SECRET_ATTRIBUTE}, ${PREVIOUS_UNTIL_ATTRIBUTE}, ${ROTATION_ATTRIBUTE}`,
      }),
    );
    const rotationAttribute = out.Item?.[ROTATION_ATTRIBUTE];
    const rotation = typeof rotationAttribute === 'string' ? { rotation: rotationAttribute } : {};
    const sealed = out.Item?.[SECRET_ATTRIBUTE];
    if (typeof sealed === 'string') {
      const previous = out.Item?.[PREVIOUS_SECRET_ATTRIBUTE];
      const until = out.Item?.[PREVIOUS_UNTIL_ATTRIBUTE];
      // A grace period that has ended leaves its secret in the item until the next rotation: it no longer signs.
      const inGrace = typeof previous === 'string' && typeof until === 'number' && until > now.getTime();
      const [current, before] = await Promise.all([box.open(sealed, accountId), inGrace ? box.open(previous, accountId) : undefined]);
      return { secrets: { current, ...(before !== undefined ? { previous: { secret: before, until: new Date(until as number) } } : {}) }, ...rotation };
    }
    const legacy = out.Item?.[LEGACY_SECRET_ATTRIBUTE];
    if (typeof legacy !== 'string') return rotation;
    // Written in the clear by an earlier release. A caller that may not seal signs with it as it is
    // (housekeeping seals it); any other seals it in place (the same secret, so receivers keep
    // verifying), unless a concurrent read, housekeeping or a rotation got there first.
    if (this.options.openOnly) return { secrets: { current: legacy }, ...rotation };
    await this.sealInPlace(accountId, legacy);
    return this.readSecretsAsOf(accountId, now);
  }

  /** Seals `legacy`, the plaintext secret read, in its place; false when PLAINTEXT_NOT_YET_SEALED refused it. */
  private async sealInPlace(accountId: string, legacy: string): Promise<boolean> {
    const sealed = await this.sealer().seal(legacy, accountId);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId },
          // The plaintext goes in the same write.
          UpdateExpression: `SET ${SECRET_ATTRIBUTE} = :s REMOVE ${LEGACY_SECRET_ATTRIBUTE}`,
          ConditionExpression: PLAINTEXT_NOT_YET_SEALED,
          ExpressionAttributeValues: { ':s': sealed, ':legacy': legacy },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
