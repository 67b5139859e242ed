import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RoleName } from '../capabilities.js';
import { isConditionalCheckFailed } from '../ddb.js';
import { ConflictError, NotFoundError } from '../errors.js';

/**
 * Memberships table: one item per person and account (`subject`, `account_id`) holding the person's role
 * there and their email (the identity provider's access tokens need not carry it). The authorizer reads
 * it consistently on every session request, so a removal or a role change applies from the person's
 * next request. GSI `by-account` lists an account's people (eventually consistent: listing only).
 */
export const MEMBERSHIPS_BY_ACCOUNT_INDEX = 'by-account';

export interface MembershipRecord {
  readonly subject: string;
  readonly account_id: string;
  readonly role: RoleName;
  /** Lower case. */
  readonly email: string;
  readonly added_at: string;
  readonly updated_at: string;
}

/** How many accounts the authorizer reads to place a person who names none: one is enough to decide, two to refuse. */
const PLACE_LIMIT = 2;

export class MembershipsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The person's membership in one account (consistent). */
  async get(subject: string, accountId: string): Promise<MembershipRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { subject, account_id: accountId }, ConsistentRead: true }));
    return out.Item as MembershipRecord | undefined;
  }

  /**
   * Up to `limit` of the person's memberships, by account id (consistent; one Query). The authorizer asks
   * for two: none, exactly one, or "several".
   */
  async ofPerson(subject: string, limit = PLACE_LIMIT): Promise<MembershipRecord[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'subject = :s',
        ExpressionAttributeValues: { ':s': subject },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (out.Items ?? []) as MembershipRecord[];
  }

  /** Every membership of an account, by subject (the GSI: eventually consistent). */
  async ofAccount(accountId: string): Promise<MembershipRecord[]> {
    const items: MembershipRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: MEMBERSHIPS_BY_ACCOUNT_INDEX,
          KeyConditionExpression: 'account_id = :a',
          ExpressionAttributeValues: { ':a': accountId },
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((out.Items ?? []) as MembershipRecord[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /**
   * Adds a person to an account. Create-only: an existing membership with another role is 409
   * ALREADY_EXISTS (change it with `setRole`); the same one again (a retry whose answer was lost) is
   * answered with what is stored.
   */
  async add(subject: string, accountId: string, email: string, role: RoleName, now: Date): Promise<MembershipRecord> {
    const record: MembershipRecord = {
      subject,
      account_id: accountId,
      role,
      email: email.toLowerCase(),
      added_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    try {
      await this.doc.send(new PutCommand({ TableName: this.table, Item: record, ConditionExpression: 'attribute_not_exists(subject)' }));
      return record;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
    const existing = await this.get(subject, accountId);
    if (existing && existing.role === role) return existing;
    throw new ConflictError('ALREADY_EXISTS', `${email} is already a member of '${accountId}'${existing ? ` as ${existing.role}` : ''}`);
  }

  /** Changes a member's role; 404 when not a member. Returns the role it had. */
  async setRole(subject: string, accountId: string, role: RoleName, now: Date): Promise<{ before: RoleName; after: MembershipRecord }> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { subject, account_id: accountId },
          UpdateExpression: 'SET #r = :r, updated_at = :now',
          ConditionExpression: 'attribute_exists(subject)',
          ExpressionAttributeNames: { '#r': 'role' },
          ExpressionAttributeValues: { ':r': role, ':now': now.toISOString() },
          ReturnValues: 'ALL_OLD',
        }),
      );
      const before = out.Attributes as MembershipRecord;
      return { before: before.role, after: { ...before, role, updated_at: now.toISOString() } };
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new NotFoundError(`No such member of '${accountId}'`);
      throw error;
    }
  }

  /** Removes a membership; true when there was one (a retried removal finds none and is harmless). */
  async remove(subject: string, accountId: string): Promise<boolean> {
    const out = await this.doc.send(
      new DeleteCommand({ TableName: this.table, Key: { subject, account_id: accountId }, ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes !== undefined;
  }
}
