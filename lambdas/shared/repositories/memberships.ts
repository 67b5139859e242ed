import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RoleName } from '../capabilities.js';
import { cancellationReasons, transactWrite } from '../ddb.js';
import type { TransactItem } from './audit.js';
import { ConflictError } from '../errors.js';

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
  /**
   * Lower case. `null` for a person added by subject alone (a deployer's own identity provider, whose
   * tokens name the person by `sub`): the attribute is then absent.
   */
  readonly email: string | null;
  readonly added_at: string;
  readonly updated_at: string;
}

/** A stored membership, its absent email as `null`. */
const membershipOf = (item: Record<string, unknown>): MembershipRecord => ({ ...(item as unknown as MembershipRecord), email: typeof item['email'] === 'string' ? item['email'] : null });

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
    return out.Item ? membershipOf(out.Item) : undefined;
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
    return (out.Items ?? []).map(membershipOf);
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
      items.push(...(out.Items ?? []).map(membershipOf));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /**
   * Adds a person to an account, with `audit` (the Put of its member.added event) in the same
   * transaction. Create-only: an existing membership with another role is 409 ALREADY_EXISTS (change it
   * with `setRole`); the same one again (a retry whose answer was lost) is answered with what is stored,
   * and writes nothing (its event was written with it).
   */
  async add(subject: string, accountId: string, email: string | null, role: RoleName, now: Date, audit: TransactItem): Promise<MembershipRecord> {
    const record: MembershipRecord = {
      subject,
      account_id: accountId,
      role,
      email: email?.toLowerCase() ?? null,
      added_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    // No email: no attribute (never a null one, which the index and the readers would have to tell apart).
    const { email: stored, ...rest } = record;
    const item = stored === null ? rest : record;
    try {
      await transactWrite(this.doc, {
        TransactItems: [{ Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(subject)' } }, audit],
      });
      return record;
    } catch (error) {
      if (cancellationReasons(error)?.[0] !== 'ConditionalCheckFailed') throw error;
    }
    const existing = await this.get(subject, accountId);
    if (existing && existing.role === role) return existing;
    throw new ConflictError('ALREADY_EXISTS', `${email ?? `subject ${subject}`} is already a member of '${accountId}'${existing ? ` as ${existing.role}` : ''}`);
  }

  /**
   * Changes a member's role, with `audit` (its member.role_changed event's Put) in the same transaction,
   * on condition that the membership still has the role it was read with (so the event's `from` is the
   * role it replaced). Returns the membership as changed; undefined when it changed or went meanwhile
   * (read it again).
   */
  async setRole(member: MembershipRecord, role: RoleName, now: Date, audit: TransactItem): Promise<MembershipRecord | undefined> {
    try {
      await transactWrite(this.doc, {
        TransactItems: [
          {
            Update: {
              TableName: this.table,
              Key: { subject: member.subject, account_id: member.account_id },
              UpdateExpression: 'SET #r = :r, updated_at = :now',
              ConditionExpression: 'attribute_exists(subject) AND #r = :before',
              ExpressionAttributeNames: { '#r': 'role' },
              ExpressionAttributeValues: { ':r': role, ':before': member.role, ':now': now.toISOString() },
            },
          },
          audit,
        ],
      });
      return { ...member, role, updated_at: now.toISOString() };
    } catch (error) {
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') return undefined;
      throw error;
    }
  }

  /**
   * Removes a membership, with `audit` (its member.removed event's Put) in the same transaction, on
   * condition that it still has the role it was read with. False when it changed or went meanwhile (read
   * it again: a retried removal then finds none).
   */
  async remove(member: MembershipRecord, audit: TransactItem): Promise<boolean> {
    try {
      await transactWrite(this.doc, {
        TransactItems: [
          {
            Delete: {
              TableName: this.table,
              Key: { subject: member.subject, account_id: member.account_id },
              ConditionExpression: 'attribute_exists(subject) AND #r = :role',
              ExpressionAttributeNames: { '#r': 'role' },
              ExpressionAttributeValues: { ':role': member.role },
            },
          },
          audit,
        ],
      });
      return true;
    } catch (error) {
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') return false;
      throw error;
    }
  }
}
