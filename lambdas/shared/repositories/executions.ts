import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomBase62 } from '../api-key.js';
import { decodePageToken, encodePageToken, isConditionalCheckFailed, queryPage } from '../ddb.js';
import { ValidationError } from '../errors.js';
import { countMetric, METRIC } from '../log.js';

/**
 * Executions table (`account_id`, `execution_id`), GSI `by-workflow` (`account_workflow`,
 * `execution_id`). Ids sort by creation time, so descending queries list newest first. The status
 * moves only by conditional writes: QUEUED → RUNNING → SUCCEEDED | FAILED, and QUEUED | RUNNING →
 * CANCELLED; a terminal status fails every later condition, so it is never overwritten and a cancel
 * beats a finishing step.
 */
import { EXECUTION_STATUSES, TERMINAL, type ExecutionStatus } from '../execution-status.js';

export { EXECUTION_STATUSES, TERMINAL, type ExecutionStatus };

export interface ExecutionRecord {
  readonly account_id: string;
  readonly execution_id: string;
  readonly workflow_slug: string;
  readonly workflow_version: number;
  readonly workspace_id: string;
  readonly status: ExecutionStatus;
  readonly input: unknown;
  readonly output?: unknown;
  readonly error?: string;
  readonly created_at: string;
  readonly started_at?: string;
  readonly finished_at?: string;
  readonly key_id: string;
  readonly webhook_url?: string;
  readonly async: boolean;
}

/** How long a finished execution stays readable before TTL removes it. */
export const EXECUTION_RETENTION_DAYS = 90;

/** GSI (`account_workflow`, `execution_id`): an account's executions of one workflow. */
export const EXECUTIONS_BY_WORKFLOW_INDEX = 'by-workflow';

/** `exe_` + 9 base62 characters of milliseconds since the epoch (sortable) + 12 random ones. */
/** What newExecutionId makes: `exe_`, 9 base62 characters of time, 12 random ones. */
export const EXECUTION_ID_PATTERN = /^exe_[0-9A-Za-z]{21}$/;

export function newExecutionId(now: Date): string {
  const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let n = now.getTime();
  let time = '';
  for (let i = 0; i < 9; i++) {
    time = BASE62[n % 62] + time;
    n = Math.floor(n / 62);
  }
  return `exe_${time}${randomBase62(12)}`;
}

const accountWorkflow = (accountId: string, slug: string) => `${accountId}#${slug}`;

function strip(item: Record<string, unknown>): ExecutionRecord {
  const { account_workflow: _aw, ttl: _ttl, ...rest } = item;
  return rest as unknown as ExecutionRecord;
}

export class ExecutionsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(record: ExecutionRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...record, account_workflow: accountWorkflow(record.account_id, record.workflow_slug) },
        ConditionExpression: 'attribute_not_exists(execution_id)',
      }),
    );
  }

  async get(accountId: string, executionId: string): Promise<ExecutionRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, execution_id: executionId }, ConsistentRead: true }),
    );
    return out.Item ? strip(out.Item) : undefined;
  }

  /** The status only, strongly consistent: what a running step polls to notice a cancel. */
  async status(accountId: string, executionId: string): Promise<ExecutionStatus | undefined> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { account_id: accountId, execution_id: executionId },
        ConsistentRead: true,
        ProjectionExpression: '#s',
        ExpressionAttributeNames: { '#s': 'status' },
      }),
    );
    return out.Item?.['status'] as ExecutionStatus | undefined;
  }

  /** QUEUED → RUNNING; undefined when it was not QUEUED (cancelled, or already taken). */
  async start(accountId: string, executionId: string, now: Date): Promise<ExecutionRecord | undefined> {
    return this.transition(accountId, executionId, ['QUEUED'], 'SET #s = :to, started_at = :now', { ':to': 'RUNNING', ':now': now.toISOString() });
  }

  /** RUNNING → SUCCEEDED | FAILED; undefined when it is no longer RUNNING (a cancel won). */
  async finish(
    accountId: string,
    executionId: string,
    outcome: { status: 'SUCCEEDED'; output: unknown } | { status: 'FAILED'; error: string },
    now: Date,
    from: readonly ExecutionStatus[] = ['RUNNING'],
  ): Promise<ExecutionRecord | undefined> {
    const ttl = Math.floor(now.getTime() / 1000) + EXECUTION_RETENTION_DAYS * 86_400;
    return outcome.status === 'SUCCEEDED'
      ? this.transition(accountId, executionId, from, 'SET #s = :to, #out = :out, finished_at = :now, #ttl = :ttl', {
          ':to': 'SUCCEEDED',
          ':out': outcome.output ?? null,
          ':now': now.toISOString(),
          ':ttl': ttl,
        })
      : this.transition(accountId, executionId, from, 'SET #s = :to, #err = :err, finished_at = :now, #ttl = :ttl', {
          ':to': 'FAILED',
          ':err': outcome.error,
          ':now': now.toISOString(),
          ':ttl': ttl,
        });
  }

  /** QUEUED | RUNNING → CANCELLED; undefined when it had already finished (or does not exist). */
  async cancel(accountId: string, executionId: string, now: Date): Promise<ExecutionRecord | undefined> {
    const ttl = Math.floor(now.getTime() / 1000) + EXECUTION_RETENTION_DAYS * 86_400;
    return this.transition(accountId, executionId, ['QUEUED', 'RUNNING'], 'SET #s = :to, finished_at = :now, #ttl = :ttl', {
      ':to': 'CANCELLED',
      ':now': now.toISOString(),
      ':ttl': ttl,
    });
  }

  private async transition(
    accountId: string,
    executionId: string,
    from: readonly ExecutionStatus[],
    update: string,
    values: Record<string, unknown>,
  ): Promise<ExecutionRecord | undefined> {
    const names: Record<string, string> = { '#s': 'status' };
    if (update.includes('#out')) names['#out'] = 'output';
    if (update.includes('#err')) names['#err'] = 'error';
    if (update.includes('#ttl')) names['#ttl'] = 'ttl';
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, execution_id: executionId },
          UpdateExpression: update,
          ConditionExpression: `attribute_exists(execution_id) AND #s IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ...values, ...Object.fromEntries(from.map((s, i) => [`:from${i}`, s])) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const record = out.Attributes ? strip(out.Attributes) : undefined;
      // Counted where the terminal transition happens, so each execution is counted once.
      if (record && TERMINAL.includes(record.status)) countMetric(METRIC.executionsFinished, ['status', record.status]);
      return record;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /** Newest first; optionally one workflow's, one status, only some workspaces. */
  async list(
    accountId: string,
    filters: { workflow?: string; status?: ExecutionStatus; workspaces?: readonly string[] },
    limit: number,
    nextToken?: string,
  ): Promise<{ items: ExecutionRecord[]; nextToken: string | null }> {
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filters.status) {
      conditions.push('#s = :status');
      names['#s'] = 'status';
      values[':status'] = filters.status;
    }
    if (filters.workspaces) {
      conditions.push(`workspace_id IN (${filters.workspaces.map((_, i) => `:w${i}`).join(', ')})`);
      filters.workspaces.forEach((w, i) => (values[`:w${i}`] = w));
    }
    const byWorkflow = filters.workflow !== undefined;
    const page = await queryPage(
      this.doc,
      {
        TableName: this.table,
        ...(byWorkflow
          ? {
              IndexName: EXECUTIONS_BY_WORKFLOW_INDEX,
              KeyConditionExpression: 'account_workflow = :k',
              ExpressionAttributeValues: { ...values, ':k': accountWorkflow(accountId, filters.workflow!) },
            }
          : { KeyConditionExpression: 'account_id = :k', ExpressionAttributeValues: { ...values, ':k': accountId } }),
        ...(conditions.length > 0 ? { FilterExpression: conditions.join(' AND ') } : {}),
        ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
        ScanIndexForward: false,
      },
      limit,
      nextToken ? startAfter(nextToken, accountId, filters.workflow) : undefined,
    );
    const items = page.items.map(strip);
    const last = items.at(-1);
    return { items, nextToken: page.more && last ? encodePageToken(accountId, { e: last.execution_id, w: filters.workflow ?? '' }) : null };
  }
}

/** The index position after `executionId`; a token is bound to its account and to its workflow filter. */
function startAfter(token: string, accountId: string, workflow?: string): Record<string, unknown> {
  const { e, w } = decodePageToken(token, accountId, { e: EXECUTION_ID_PATTERN, w: /^$|^[a-z0-9][a-z0-9-]{0,62}$/ });
  if (w !== (workflow ?? '')) throw ValidationError.field('next_token', 'is not a valid page token');
  return workflow
    ? { account_workflow: accountWorkflow(accountId, workflow), execution_id: e, account_id: accountId }
    : { account_id: accountId, execution_id: e };
}
