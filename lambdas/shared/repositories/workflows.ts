import {
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { cancellationReasons, isConditionalCheckFailed, queryPage, transactWrite } from '../ddb.js';
import { decodePageToken, encodePageToken } from '../page-tokens.js';
import { SLUG_PATTERN } from '../capabilities.js';
import type { Principal } from '../caller.js';
import { ApiError, ConflictError, IdempotencyInProgressError, ValidationError } from '../errors.js';
import type { Definition } from '../workflow-definition.js';

/**
 * 412 PRECONDITION_FAILED (API.md §3): an `If-Match` that no longer matches the workflow (it changed
 * since it was read). Lives here, beside the conditional writes that detect it.
 */
export class PreconditionFailedError extends ApiError {
  readonly status = 412;
  readonly code = 'PRECONDITION_FAILED';
  constructor(slug: string) {
    super(`Workflow '${slug}' has changed since it was read (If-Match no longer matches its ETag): read it again (GET /workflows/${slug}) and retry with the new ETag`);
  }
}

/**
 * Workflows table (`account_id`, `sk`): a head item `W#<slug>` (name, workspace, latest and deployed
 * versions) and one immutable item per version `V#<slug>#<000001>` holding the definition, and (from
 * API 1.2.0 on) the name and description it was saved with and who saved it. Every read names the
 * caller's account, so another account's workflow is simply not found.
 *
 * A head without `version` (and with `deleting: true`) belongs to a workflow being deleted: every read
 * treats it as gone, and a DELETE or a POST of its slug finishes the deletion (see `delete`).
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
  /** Absent on versions saved before versions recorded them (the head's are the latest version's). */
  readonly name?: string;
  readonly description?: string;
  /** Who saved it; absent on versions saved before it was recorded. */
  readonly created_by?: Principal;
}

/**
 * The state of a head that a conditional write requires (an `If-Match`, or what a retry loop read):
 * the same workflow (`created_at`), at the same latest version, and, when `deployed` is true, with the
 * same deployed version.
 */
export interface Expected {
  readonly head: WorkflowHead;
  /** Also require the deployed version as read (an If-Match names it). */
  readonly deployed: boolean;
}

/** A head as stored: `version` is absent while the workflow is being deleted. */
export type StoredHead = Omit<WorkflowHead, 'version'> & { readonly version?: number; readonly deleting?: boolean };

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** Versions deleted per transaction (100 actions: these and one on the head). */
const DELETE_PAGE = 99;
/**
 * How long a delete keeps going (pages, retried conflicts, concurrent changes) before it fails (500),
 * leaving a workflow being deleted that the next DELETE or POST resumes; well inside the 29 s a request
 * may last, even when the calls after it hang until the SDK gives up on them.
 */
const DELETE_BUDGET_MS = 10_000;
/** How many times a create finishes a deletion that holds its slug before giving up with 409. */
const CREATE_ATTEMPTS = 3;

const headSk = (slug: string) => `W#${slug}`;
const versionSk = (slug: string, version: number) => `V#${slug}#${String(version).padStart(6, '0')}`;

/**
 * The condition that a head still has the deployed version `head` was read with (null is stored as
 * DynamoDB's NULL, or absent).
 */
function deployedCondition(head: Pick<WorkflowHead, 'deployed_version'>): { condition: string; values: Record<string, unknown> } {
  if (head.deployed_version == null) {
    return { condition: '(attribute_not_exists(deployed_version) OR attribute_type(deployed_version, :null_type))', values: { ':null_type': 'NULL' } };
  }
  return { condition: 'deployed_version = :d_seen', values: { ':d_seen': head.deployed_version } };
}

/**
 * The condition that a head is still as `expected` names it: the same workflow (`created_at`), at the
 * same latest version, and (an If-Match) with the same deployed version.
 */
function stateCondition(expected: Expected): { condition: string; values: Record<string, unknown> } {
  const { head } = expected;
  const deployed = expected.deployed ? deployedCondition(head) : undefined;
  return {
    condition: ['created_at = :c_seen', 'version = :v_seen', ...(deployed ? [deployed.condition] : [])].join(' AND '),
    values: { ':c_seen': head.created_at, ':v_seen': head.version, ...deployed?.values },
  };
}

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

  /** The head, live or being deleted; undefined when there is none. */
  async findHead(accountId: string, slug: string): Promise<StoredHead | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, sk: headSk(slug) }, ConsistentRead: true }),
    );
    return out.Item ? strip<StoredHead>(out.Item) : undefined;
  }

  /**
   * Head and version 1 together; 409 ALREADY_EXISTS when a workflow of that slug exists in the account.
   * A slug held by a workflow being deleted (or by versions a delete left without their head before such
   * deletes were resumable) is freed first: the create finishes that deletion, then tries again.
   */
  async create(head: WorkflowHead, definition: Definition, createdBy: Principal, keep?: TransactItem): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await transactWrite(this.doc, {
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
                Item: this.versionItem(head.account_id, head.slug, 1, { definition, name: head.name, description: head.description, created_by: createdBy }, head.created_at),
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
            // The request's answer for its Idempotency-Key, kept with the workflow (services/idempotency.ts keepingItem).
            ...(keep ? [keep] : []),
          ],
        });
        return;
      } catch (error) {
        const reasons = cancellationReasons(error);
        // Another attempt holds the request's Idempotency-Key by now (this one outlived its lease).
        if (keep && reasons?.[2] === 'ConditionalCheckFailed') throw new IdempotencyInProgressError();
        if (!reasons?.includes('ConditionalCheckFailed')) throw error;
      }
      const existing = await this.findHead(head.account_id, head.slug);
      if (existing?.version !== undefined || attempt >= CREATE_ATTEMPTS) {
        throw new ConflictError('ALREADY_EXISTS', `A workflow '${head.slug}' already exists`);
      }
      await this.purge(head.account_id, head.slug, existing);
    }
  }

  /**
   * A new version on top of the head `expected` names (optimistic: the transaction holds only while the
   * head is still that workflow at that version, and, for an If-Match, at that deployed version), with
   * the head's new name and description. The deployed version does not change. Undefined when the head
   * is no longer as expected (the caller reads it again, or answers 412).
   */
  async addVersion(
    expected: Expected,
    changes: { name: string; description: string },
    definition: Definition,
    now: Date,
    createdBy: Principal,
  ): Promise<WorkflowHead | undefined> {
    const seen = expected.head;
    const version = seen.version + 1;
    const state = stateCondition(expected);
    try {
      await transactWrite(this.doc, {
        TransactItems: [
          {
            Update: {
              TableName: this.table,
              Key: { account_id: seen.account_id, sk: headSk(seen.slug) },
              UpdateExpression: 'SET version = :v, #name = :name, description = :desc, updated_at = :now',
              ConditionExpression: state.condition,
              ExpressionAttributeNames: { '#name': 'name' },
              ExpressionAttributeValues: {
                ...state.values,
                ':v': version,
                ':name': changes.name,
                ':desc': changes.description,
                ':now': now.toISOString(),
              },
            },
          },
          {
            Put: {
              TableName: this.table,
              Item: this.versionItem(seen.account_id, seen.slug, version, { definition, ...changes, created_by: createdBy }, now.toISOString()),
              ConditionExpression: 'attribute_not_exists(sk)',
            },
          },
        ],
      });
    } catch (error) {
      if (cancellationReasons(error)?.includes('ConditionalCheckFailed')) return undefined;
      throw error;
    }
    return { ...seen, ...changes, version, updated_at: now.toISOString() };
  }

  /**
   * Pins a version as deployed: `version` (one of the head's, 1 to its latest), or, without one, the
   * latest at the time of the write. With `expected` (an If-Match), only while the head is as read.
   * Undefined when the condition fails: the workflow is gone, or (with `expected`) has changed.
   */
  async deploy(accountId: string, slug: string, now: Date, options: { version?: number; expected?: Expected } = {}): Promise<WorkflowHead | undefined> {
    const state = options.expected ? stateCondition(options.expected) : undefined;
    const pinned = options.version !== undefined;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, sk: headSk(slug) },
          UpdateExpression: pinned ? 'SET deployed_version = :n, updated_at = :now' : 'SET deployed_version = version, updated_at = :now',
          // Not on a head being deleted (it has no version to deploy); a pinned version must be one of its own.
          ConditionExpression: ['attribute_exists(version)', ...(pinned ? ['version >= :n'] : []), ...(state ? [state.condition] : [])].join(' AND '),
          ExpressionAttributeValues: { ':now': now.toISOString(), ...(pinned ? { ':n': options.version } : {}), ...state?.values },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? strip<WorkflowHead>(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /**
   * A page of the versions of the workflow `head` was read from, newest first (a consistent query of its
   * `V#<slug>#` items, cut at 1 MB like every list). The token names the workflow (its slug and
   * `created_at`, as its ETags do) and the last version returned, for that account: once the workflow is
   * deleted and created again under the same slug, its tokens are refused rather than resumed inside the
   * new workflow's versions.
   */
  async listVersions(
    head: Pick<WorkflowHead, 'account_id' | 'slug' | 'created_at'>,
    limit: number,
    nextToken?: string,
  ): Promise<{ items: WorkflowVersion[]; nextToken: string | null }> {
    const { account_id: accountId, slug } = head;
    const start = nextToken
      ? await decodePageToken('workflow-versions', nextToken, accountId, { w: SLUG_PATTERN, c: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, n: /^\d{1,9}$/ })
      : undefined;
    if (start && start.w !== slug) throw ValidationError.field('next_token', 'is not a valid page token (it belongs to another list)');
    if (start && start.c !== head.created_at) {
      throw ValidationError.field('next_token', 'is not a valid page token (its workflow was deleted since): list again from the start');
    }
    const page = await queryPage(
      this.doc,
      {
        TableName: this.table,
        KeyConditionExpression: 'account_id = :a AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':a': accountId, ':p': `V#${slug}#` },
        ScanIndexForward: false,
        ConsistentRead: true,
      },
      limit,
      start ? { account_id: accountId, sk: versionSk(slug, Number(start.n)) } : undefined,
    );
    const items = page.items.map((i) => strip<WorkflowVersion & { account_id?: string }>(i)).map(({ account_id: _a, ...v }) => v);
    const last = items.at(-1);
    return { items, nextToken: page.more && last ? await encodePageToken('workflow-versions', accountId, { w: slug, c: head.created_at, n: String(last.version) }) : null };
  }

  /**
   * Deletes the workflow whose head was read as `seen` (live, or being deleted by an earlier call that
   * failed half-way) with all its versions. Returns once that workflow is gone, whoever finished it: a
   * concurrent DELETE, or a POST that found it half-deleted (and may since have created a new workflow of
   * the same slug, which this never touches). Throws (500) when DynamoDB keeps failing; what it leaves
   * is a workflow being deleted, which a retry or a POST of the slug finishes.
   *
   * `ifMatch` (a live head whose ETag the request's If-Match matched): the write that commits the
   * deletion (the one transaction, or the mark) also requires the deployed version as read, and a head
   * found changed (another version, or another version deployed) before that write is 412
   * PRECONDITION_FAILED, with nothing deleted.
   */
  async delete(seen: StoredHead, ifMatch = false): Promise<void> {
    await this.purge(seen.account_id, seen.slug, seen, ifMatch);
  }

  /**
   * The deletion itself, in pages of versions read with a consistent query of the base table, each page
   * one transaction with a condition on the head:
   * - every version fits one page (the usual case): the head (still `version = seen`, so no version was
   *   added since the query) and the versions go in one transaction; nothing is ever half-deleted;
   * - otherwise the head is first marked (`deleting`, `version` removed: reads see it gone, updates and
   *   deploys fail their conditions), then each page goes with a condition that the head is still that
   *   marked head (same `created_at`), the last page with the head itself.
   * The head condition is what keeps a stale page from deleting a new workflow's versions: once a POST
   * has finished the deletion and created the slug again, the head's `created_at` differs and the stale
   * transaction is cancelled. With no head at all (versions left behind by an old delete) the condition
   * is that there still is none. Conflicting transactions are retried with jittered backoff within
   * DELETE_BUDGET_MS; every write is idempotent, so the SDK's retry of a write whose answer was lost
   * is harmless.
   */
  private async purge(accountId: string, slug: string, seen: StoredHead | undefined, ifMatch = false): Promise<void> {
    const key = { account_id: accountId, sk: headSk(slug) };
    const deadline = Date.now() + DELETE_BUDGET_MS;
    let head = seen;
    let conflicts = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`deleting workflow '${slug}' did not finish within ${DELETE_BUDGET_MS} ms`);
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'account_id = :a AND begins_with(sk, :p)',
          ExpressionAttributeValues: { ':a': accountId, ':p': `V#${slug}#` },
          ProjectionExpression: 'account_id, sk',
          ConsistentRead: true,
          Limit: DELETE_PAGE + 1,
        }),
      );
      const items = page.Items ?? [];
      if (!head && items.length === 0) return;
      const last = items.length <= DELETE_PAGE && !page.LastEvaluatedKey;
      const versions: TransactItem[] = items
        .slice(0, DELETE_PAGE)
        .map((k) => ({ Delete: { TableName: this.table, Key: { account_id: k['account_id'], sk: k['sk'] } } }));
      try {
        if (head?.version !== undefined && !last) head = await this.mark(head, ifMatch);
        await this.doc.send(new TransactWriteCommand({ TransactItems: [this.guard(key, head, last, ifMatch), ...versions] }));
        if (last) return;
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (isConditionalCheckFailed(error) || reasons?.[0] === 'ConditionalCheckFailed') {
          // The head is not as read: a version was added, another call marked the head or finished the
          // deletion, or a POST created the slug again. Carry on only while it is the same workflow.
          if (head) {
            const read = head;
            head = await this.sameWorkflow(head);
            // An If-Match holds the state it matched: a live head changed since is 412, nothing deleted.
            if (ifMatch && read.version !== undefined && head?.version !== undefined && !sameState(read, head)) throw new PreconditionFailedError(slug);
            if (!head) return;
          } else {
            head = await this.findHead(accountId, slug);
            if (head?.version !== undefined) return;
          }
        } else if (reasons?.includes('TransactionConflict') || (error instanceof Error && error.name === 'TransactionConflictException')) {
          await backoff(conflicts++);
        } else {
          throw error;
        }
      }
    }
  }

  /**
   * The transaction's action on the head: it holds only while the head is as read. A live head goes with
   * the last page (and only when no version was added since); a marked one is touched by each page and
   * goes with the last; where there is no head, there must still be none (a no-op delete).
   */
  private guard(key: Record<string, string>, head: StoredHead | undefined, last: boolean, ifMatch: boolean): TransactItem {
    if (!head) return { Delete: { TableName: this.table, Key: key, ConditionExpression: 'attribute_not_exists(sk)' } };
    if (head.version !== undefined) {
      const state = stateCondition({ head: head as WorkflowHead, deployed: ifMatch });
      return { Delete: { TableName: this.table, Key: key, ConditionExpression: state.condition, ExpressionAttributeValues: state.values } };
    }
    const ConditionExpression = 'created_at = :c AND attribute_not_exists(version)';
    if (last) return { Delete: { TableName: this.table, Key: key, ConditionExpression, ExpressionAttributeValues: { ':c': head.created_at } } };
    return {
      Update: {
        TableName: this.table,
        Key: key,
        UpdateExpression: 'SET deleting = :t',
        ConditionExpression,
        ExpressionAttributeValues: { ':c': head.created_at, ':t': true },
      },
    };
  }

  /**
   * Marks a live head as being deleted (ConditionalCheckFailed when it is no longer as read; with
   * `ifMatch`, also when another version has been deployed since).
   */
  private async mark(head: StoredHead, ifMatch: boolean): Promise<StoredHead> {
    const deployed = ifMatch ? deployedCondition(head) : undefined;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { account_id: head.account_id, sk: headSk(head.slug) },
        UpdateExpression: 'SET deleting = :t REMOVE version',
        // Also true when the mark is already there: the SDK may retry a mark whose answer was lost.
        ConditionExpression: ['created_at = :c AND (version = :v OR attribute_not_exists(version))', ...(deployed ? [deployed.condition] : [])].join(' AND '),
        ExpressionAttributeValues: { ':c': head.created_at, ':v': head.version, ':t': true, ...deployed?.values },
      }),
    );
    const { version: _v, ...rest } = head;
    return { ...rest, deleting: true };
  }

  /** The head as it is now, if it still belongs to the workflow `head` was read from (same `created_at`). */
  private async sameWorkflow(head: StoredHead): Promise<StoredHead | undefined> {
    const now = await this.findHead(head.account_id, head.slug);
    return now && now.created_at === head.created_at ? now : undefined;
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
      nextToken ? { account_id: accountId, sk: headSk((await decodePageToken('workflows', nextToken, accountId, { s: SLUG_PATTERN })).s) } : undefined,
    );
    const items = page.items.map((i) => strip<WorkflowHead>(i));
    // After the last item, or where the reading stopped when the filter matched little (a short page).
    const after = page.resumeAfter ? String(page.resumeAfter['sk']).slice('W#'.length) : items.at(-1)?.slug;
    return { items, nextToken: page.more && after ? await encodePageToken('workflows', accountId, { s: after }) : null };
  }

  private versionItem(
    accountId: string,
    slug: string,
    version: number,
    content: { definition: Definition; name: string; description: string; created_by: Principal },
    createdAt: string,
  ) {
    return { account_id: accountId, sk: versionSk(slug, version), slug, version, ...content, created_at: createdAt };
  }
}

/** The same latest and deployed versions (of the same workflow). */
function sameState(a: StoredHead, b: StoredHead): boolean {
  return a.created_at === b.created_at && a.version === b.version && (a.deployed_version ?? null) === (b.deployed_version ?? null);
}

/** Full jitter, growing from 20 ms to at most 1 s. */
function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 20 * 2 ** attempt)));
}
