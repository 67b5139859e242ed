import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../ddb.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import type { TierName } from '../settings.js';

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

export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export class AccountsRepository {
  /** `box` seals the webhook secrets; without it they cannot be read or written. */
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly box?: SecretBox,
  ) {}

  async get(accountId: string): Promise<AccountRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId }, ConsistentRead: true }),
    );
    return out.Item as AccountRecord | undefined;
  }

  /** Create-only: 409 ALREADY_EXISTS when the id is taken. */
  async create(accountId: string, tier: TierName, now: Date): Promise<AccountRecord> {
    const record: AccountRecord = {
      account_id: accountId,
      tier,
      active_keys: 0,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          // The keys holding a slot, kept by KeysRepository (see there).
          Item: { ...record, slot_keys: {}, slot_rev: 0 },
          ConditionExpression: 'attribute_not_exists(account_id)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) {
        throw new ConflictError('ALREADY_EXISTS', `Account '${accountId}' already exists`);
      }
      throw error;
    }
    return record;
  }

  /**
   * The account's webhook signing secret, made on first use (a conditional write, so two first uses
   * agree on one secret). Stored sealed (`webhook_secret_sealed`), never in the clear.
   */
  async webhookSecret(accountId: string, make: () => string): Promise<string> {
    const existing = await this.readSecret(accountId);
    if (existing) return existing;
    // Refused when the account is missing or a concurrent first use won: the read below tells which.
    await this.writeSecret(accountId, make(), `attribute_exists(account_id) AND attribute_not_exists(${SECRET_ATTRIBUTE})`);
    const secret = await this.readSecret(accountId);
    if (!secret) throw new NotFoundError(`Account '${accountId}' does not exist`);
    return secret;
  }

  async rotateWebhookSecret(accountId: string, secret: string): Promise<void> {
    if (!(await this.writeSecret(accountId, secret, 'attribute_exists(account_id)'))) {
      throw new NotFoundError(`Account '${accountId}' does not exist`);
    }
  }

  private sealer(): SecretBox {
    if (!this.box) throw new Error('AccountsRepository: no SecretBox for webhook secrets');
    return this.box;
  }

  private async readSecret(accountId: string): Promise<string | undefined> {
    const box = this.sealer();
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { account_id: accountId },
        ConsistentRead: true,
        ProjectionExpression: `${SECRET_ATTRIBUTE}, ${LEGACY_SECRET_ATTRIBUTE}`,
      }),
    );
    const sealed = out.Item?.[SECRET_ATTRIBUTE];
    if (typeof sealed === 'string') return box.open(sealed, accountId);
    const legacy = out.Item?.[LEGACY_SECRET_ATTRIBUTE];
    if (typeof legacy !== 'string') return undefined;
    // Written in the clear by an earlier release: seal it in place (the same secret, so receivers keep
    // verifying), unless a concurrent read or a rotation got there first.
    await this.writeSecret(accountId, legacy, `attribute_exists(${LEGACY_SECRET_ATTRIBUTE}) AND attribute_not_exists(${SECRET_ATTRIBUTE})`);
    return this.readSecret(accountId);
  }

  /** False when `condition` refused the write. */
  private async writeSecret(accountId: string, secret: string, condition: string): Promise<boolean> {
    const sealed = await this.sealer().seal(secret, accountId);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId },
          // A plaintext secret of an earlier release goes in the same write.
          UpdateExpression: `SET ${SECRET_ATTRIBUTE} = :s REMOVE ${LEGACY_SECRET_ATTRIBUTE}`,
          ConditionExpression: condition,
          ExpressionAttributeValues: { ':s': sealed },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
