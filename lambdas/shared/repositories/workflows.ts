import {
  BatchWriteCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { cancellationReasons, decodePageToken, encodePageToken, isConditionalCheckFailed, queryPage } from '../ddb.js';
import { SLUG_PATTERN } from '../capabilities.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Definition } from '../workflow-definition.js';

/**
 * Workflows table (`account_id`, `sk`): a head item `W#<slug>` (name, workspace, latest and deployed
 * versions) and one immutable item per version `V#<slug>#<000001>` holding the definition. Every read
 * names the caller's account, so another account's workflow is simply not found.
 */
export interface WorkflowHead {
  readonly account_id: string;
  readonly slug: string;
  readonly name: string;
  readonly description: string;
  readonly workspace_id: string;
  readonly version: number;
  readonly deployed_version: number | null;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface WorkflowVersion {
  readonly slug: string;
  readonly version: number;
  readonly definition: Definition;
  readonly created_at: string;
}

const headSk = (slug: string) => `W#${slug}`;
const versionSk = (slug: string, version: number) => `V#${slug}#${String(version).padStart(6, '0')}`;

function strip<T>(item: Record<string, unknown>): T {
  const { sk: _sk, ...rest } = item;
  return rest as T;
}

export class WorkflowsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getHead(accountId: string, slug: string): Promise<WorkflowHead | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, sk: headSk(slug) }, ConsistentRead: true }),
    );
    // A head without a version is being deleted.
    return out.Item && out.Item['version'] !== undefined ? strip<WorkflowHead>(out.Item) : undefined;
  }

  async getVersion(accountId: string, slug: string, version: number): Promise<WorkflowVersion | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, sk: versionSk(slug, version) }, ConsistentRead: true }),
    );
    return out.Item ? strip<WorkflowVersion>(out.Item) : undefined;
  }

  /** Head and version 1 together; 409 ALREADY_EXISTS when the slug is taken in the account. */
  async create(head: WorkflowHead, definition: Definition): Promise<void> {
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { ...head, sk: headSk(head.slug) },
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: this.versionItem(head.account_id, head.slug, 1, definition, head.created_at),
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (cancellationReasons(error)?.includes('ConditionalCheckFailed')) {
        throw new ConflictError('ALREADY_EXISTS', `A workflow '${head.slug}' already exists`);
      }
      throw error;
    }
  }

  /**
   * A new version on top of `seen` (optimistic: a concurrent update makes this one retry), with the
   * head's name and description. The deployed version does not change.
   */
  async addVersion(
    seen: WorkflowHead,
    changes: { name: string; description: string },
    definition: Definition,
    now: Date,
  ): Promise<WorkflowHead | undefined> {
    const version = seen.version + 1;
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: { account_id: seen.account_id, sk: headSk(seen.slug) },
                UpdateExpression: 'SET version = :v, #name = :name, description = :desc, updated_at = :now',
                ConditionExpression: 'version = :seen',
                ExpressionAttributeNames: { '#name': 'name' },
                ExpressionAttributeValues: {
                  ':v': version,
                  ':seen': seen.version,
                  ':name': changes.name,
                  ':desc': changes.description,
                  ':now': now.toISOString(),
                },
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: this.versionItem(seen.account_id, seen.slug, version, definition, now.toISOString()),
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (cancellationReasons(error)?.includes('ConditionalCheckFailed')) return undefined;
      throw error;
    }
    return { ...seen, ...changes, version, updated_at: now.toISOString() };
  }

  /** Pins the current version as deployed; undefined when the workflow is gone. */
  async deploy(accountId: string, slug: string, now: Date): Promise<WorkflowHead | undefined> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, sk: headSk(slug) },
          UpdateExpression: 'SET deployed_version = version, updated_at = :now',
          ConditionExpression: 'attribute_exists(sk)',
          ExpressionAttributeValues: { ':now': now.toISOString() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? strip<WorkflowHead>(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /** Deletes the head (404 when absent), then its versions. */
  async delete(accountId: string, slug: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, sk: headSk(slug) },
          UpdateExpression: 'REMOVE version',
          ConditionExpression: 'attribute_exists(sk)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new NotFoundError(`Workflow '${slug}' not found`);
      throw error;
    }
    // The head goes last, so a failure half-way leaves a workflow that can be deleted again.
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'account_id = :a AND begins_with(sk, :p)',
          ExpressionAttributeValues: { ':a': accountId, ':p': `V#${slug}#` },
          ProjectionExpression: 'account_id, sk',
          ExclusiveStartKey: start,
        }),
      );
      const keys = page.Items ?? [];
      for (let i = 0; i < keys.length; i += 25) {
        let requests: Record<string, unknown>[] | undefined = keys.slice(i, i + 25).map((k) => ({ DeleteRequest: { Key: k } }));
        for (let attempt = 0; requests && requests.length > 0 && attempt < 5; attempt++) {
          const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests as never } }));
          requests = out.UnprocessedItems?.[this.table] as Record<string, unknown>[] | undefined;
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
    await this.doc.send(
      new TransactWriteCommand({
        TransactItems: [{ Delete: { TableName: this.table, Key: { account_id: accountId, sk: headSk(slug) } } }],
      }),
    );
  }

  /** A page of the account's workflows in slug order, optionally only those in `workspaces`. */
  async list(
    accountId: string,
    workspaces: readonly string[] | undefined,
    limit: number,
    nextToken?: string,
  ): Promise<{ items: WorkflowHead[]; nextToken: string | null }> {
    const filter = workspaces ? workspaces.map((_, i) => `:w${i}`) : [];
    const page = await queryPage(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'account_id = :a AND begins_with(sk, :p)',
        ExpressionAttributeValues: {
          ':a': accountId,
          ':p': 'W#',
          ...Object.fromEntries((workspaces ?? []).map((w, i) => [`:w${i}`, w])),
        },
        // Heads being deleted have no version.
        FilterExpression: ['attribute_exists(version)', ...(workspaces ? [`workspace_id IN (${filter.join(', ')})`] : [])].join(' AND '),
      },
      limit,
      nextToken ? { account_id: accountId, sk: headSk(decodePageToken(nextToken, accountId, { s: SLUG_PATTERN }).s) } : undefined,
    );
    const items = page.items.map((i) => strip<WorkflowHead>(i));
    const last = items.at(-1);
    return { items, nextToken: page.more && last ? encodePageToken(accountId, { s: last.slug }) : null };
  }

  private versionItem(accountId: string, slug: string, version: number, definition: Definition, createdAt: string) {
    return { account_id: accountId, sk: versionSk(slug, version), slug, version, definition, created_at: createdAt };
  }
}
