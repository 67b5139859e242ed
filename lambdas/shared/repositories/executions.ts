import { createHash } from 'node:crypto';
import type { Principal } from '../caller.js';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { randomBase62 } from '../api-key.js';
import { failure, type Failure } from '../execution-failure.js';
import { cancellationReasons, conflictBackoff, isConditionalCheckFailed, queryPage, transactWrite } from '../ddb.js';
import { decodePageToken, encodePageToken } from '../page-tokens.js';
import { ConcurrencyLimitExceededError, ValidationError } from '../errors.js';
import { countMetric, METRIC } from '../log.js';

/**
 * Executions table (`account_id`, `execution_id`), GSI `by-workflow` (`account_workflow`,
 * `execution_id`). Ids sort by creation time, so descending queries list newest first. The status
 * moves only by conditional writes: QUEUED → RUNNING → SUCCEEDED | FAILED, and QUEUED | RUNNING →
 * CANCELLED; a terminal status fails every later condition, so it is never overwritten and a cancel
 * beats a finishing step.
 *
 * A run has an `owner`, the attempt that holds it (a random id per worker invocation, or per sync
 * request), and a `lease_until` (epoch ms) by which that attempt is certainly gone. Only the owner
 * finishes a run; a run whose lease has expired may be failed by anyone ("interrupted"), who becomes its
 * owner. Every write that takes or ends a run names the owner, so an attempt whose answer was lost and
 * retried finds the run already its own rather than "taken" (see `ownTerminal`).
 *
 * A cancel also writes a small signal item in the same transaction: partition `<account_id>#signal`,
 * sort key the execution id, no `account_workflow`, so it appears in neither list (the table's
 * partition is another, the index needs `account_workflow`). Running steps poll it, not the execution,
 * whose item holds the input and can be hundreds of KB (a read unit per 4 KB).
 *
 * Async runs in flight: an async run created under a limit holds a slot (`async_slot: true`) in its
 * account's `async_in_flight` counter (accounts table). The slot is taken in the same transaction as the
 * run's put (condition: the counter below the limit) and given back in the same transaction as the run's
 * terminal transition (finish, fail, interrupted, cancel): the transition's own condition lets it happen
 * once, so the slot is freed once. A lost answer is safe both ways: the SDK resends a transaction with
 * its one ClientRequestToken (idempotent), and a resent put or transition that meets its own earlier
 * result fails its condition and is recognised as ours without touching the counter again.
 *
 * Sync runs running at once: a sync run created under a limit holds one of its account's sync slots, an
 * item of partition `<account_id>#sync-slots`, sort key `slot#<k>` (k below the limit), naming the run
 * (`holder`) until `lease_until` (epoch ms: the run's own lease). The slot is taken before the run's put
 * by a conditional put on a slot that is free (absent, released, or its lease over), the free ones read
 * first with one consistent query of the partition; it is released after the run's end by an update
 * setting its lease to 0, conditioned on the run still holding it. Nothing else depends on the release:
 * a request that dies mid-run (or whose release fails) leaves its slot to its lease. A lost answer is
 * safe: the put sent again meets its own slot, and a release sent again changes nothing more. The items
 * have no `account_workflow` or `account_status`, so no list or index reads them.
 *
 * Webhooks: every terminal write of a run with a `webhook_url` marks its webhook pending in the same
 * write: the public `webhook` map (`status: pending`, `attempts: 0`, due now) and the internal due
 * attributes that put it in the sparse index `webhooks-due` (`webhook_shard`, one of WEBHOOK_SHARDS
 * fixed by the execution id; `webhook_due`, epoch ms). An attempt is claimed by moving `webhook_due` from
 * the value its sender saw to a lease (`webhook_claim` names the claim), and its outcome is recorded on
 * condition that the claim is still the sender's; a delivered or finally failed webhook leaves the index
 * (the due attributes are removed). A run of a webhook-less kind is written on condition it has no
 * `webhook_url` (the attribute never changes), so a writer that did not know writes again.
 */
import { EXECUTION_STATUSES, TERMINAL, type ExecutionStatus } from '../execution-status.js';

export { EXECUTION_STATUSES, TERMINAL, type ExecutionStatus };

export interface ExecutionRecord {
  readonly account_id: string;
  readonly execution_id: string;
  readonly workflow_slug: string;
  readonly workflow_version: number;
  /**
   * Internal: the `created_at` of the version the run was accepted for. A workflow deleted and made again
   * has a version of the same number; a queued run must not run that one (absent on older runs).
   */
  readonly workflow_version_created_at?: string;
  readonly workspace_id: string;
  readonly status: ExecutionStatus;
  readonly input: unknown;
  readonly output?: unknown;
  readonly error?: string;
  /** Why a FAILED run failed, for programs (absent on runs that failed before it was recorded). */
  readonly failure?: Failure;
  readonly created_at: string;
  readonly started_at?: string;
  readonly finished_at?: string;
  /** The key that started the run (absent when a person did: see `started_by`). */
  readonly key_id?: string;
  /** Who started the run (absent on runs from before people existed). */
  readonly started_by?: Principal;
  readonly webhook_url?: string;
  readonly async: boolean;
  /** The attempt that holds the run, or that ended it (then it sends the webhook). */
  readonly owner?: string;
  /** Epoch ms by which the owner is certainly gone (its function's timeout, plus a margin). */
  readonly lease_until?: number;
  /** An async run holding one of its account's in-flight slots (`async_in_flight`) until it ends. */
  readonly async_slot?: boolean;
  /** The webhook of a run that asked for one, from its terminal write on (API.md §4 "Webhook delivery"). */
  readonly webhook?: WebhookState;
  /** Internal: while pending, when the next attempt is due (or its claim's lease ends), epoch ms; the index's sort key. */
  readonly webhook_due?: number;
  /** Internal: while pending, the index partition (`0`…`7`). */
  readonly webhook_shard?: string;
  /** Internal: the claim of the attempt in progress. */
  readonly webhook_claim?: string;
  /** Internal: failed attempts since the run ended or was last redelivered (the place in the retry schedule). */
  readonly webhook_round?: number;
}

export type WebhookStatus = 'pending' | 'delivered' | 'failed';

/** The `webhook` field of the execution object. */
export interface WebhookState {
  readonly status: WebhookStatus;
  readonly attempts: number;
  readonly last_attempt_at: string | null;
  /** The receiver's HTTP status; null when none came (network error, timeout). */
  readonly last_response_status: number | null;
  readonly next_attempt_at: string | null;
}

/** What one attempt came to, as its sender records it. */
export type WebhookOutcome =
  | { readonly result: 'delivered'; readonly status: number; readonly at: Date }
  | { readonly result: 'retry'; readonly status: number | null; readonly at: Date; readonly nextDue: number }
  | { readonly result: 'failed'; readonly status: number | null; readonly at: Date };

/** A due webhook as the index lists it. */
export interface DueWebhook {
  readonly account_id: string;
  readonly execution_id: string;
  readonly webhook_due: number;
}

/** The error of a run housekeeping failed past its deadline (API.md §7). */
export const TIMED_OUT = 'timed out';

/** When runs still in flight are overdue (housekeeping; see run-budget.ts `QUEUED_DEADLINE_MS`). */
export interface OverdueCutoffs {
  /** A QUEUED run created before this will never be taken by a worker. */
  readonly queuedBefore: Date;
  /** A RUNNING run without a lease (from before leases) that started before this is certainly not running. */
  readonly legacyStartedBefore: Date;
}

/** A RUNNING run whose holder is certainly gone: its lease is over (`:nowMs`), or it has none and started before `:legacy`. */
const OVERDUE_RUNNING = 'lease_until < :nowMs OR (attribute_not_exists(lease_until) AND started_at < :legacy)';

/** How a run ends: its output, or why it failed (`error` for people, `failure` for programs). */
export type Outcome = { status: 'SUCCEEDED'; output: unknown } | { status: 'FAILED'; error: string; failure: Failure };

/** How long a finished execution stays readable before TTL removes it. */
export const EXECUTION_RETENTION_DAYS = 90;
/** How long a cancellation signal is kept: runs last at most the worker's 15 minutes. */
const SIGNAL_RETENTION_DAYS = 1;
/** The partition of an account's cancellation signals. */
export const SIGNAL_PARTITION_SUFFIX = '#signal';

/** The account item's counter of async runs holding a slot (QUEUED or RUNNING). */
export const IN_FLIGHT_ATTRIBUTE = 'async_in_flight';
/** GSI (`account_workflow`, `execution_id`): an account's executions of one workflow. */
export const EXECUTIONS_BY_WORKFLOW_INDEX = 'by-workflow';

/** What newExecutionId makes: `exe_`, 9 base62 characters of time, 12 random ones. */
export const EXECUTION_ID_PATTERN = /^exe_[0-9A-Za-z]{21}$/;

/** `exe_` + 9 base62 characters of milliseconds since the epoch (sortable) + 12 random ones. */
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

/** An attempt's id: who owns a run (`att_` + 16 random base62 characters). */
export function newAttemptId(): string {
  return `att_${randomBase62(16)}`;
}

const accountWorkflow = (accountId: string, slug: string) => `${accountId}#${slug}`;
const signalKey = (accountId: string, executionId: string) => ({ account_id: `${accountId}${SIGNAL_PARTITION_SUFFIX}`, execution_id: executionId });

/** The partition of an account's sync slots. */
export const SYNC_SLOTS_PARTITION_SUFFIX = '#sync-slots';
/**
 * The partition of an account's counters of webhook attempts sent at once: redeliveries
 * (takeImmediateSend, `window#<n>`) and the first attempts of runs that ended (takeFirstAttempt, `first#<n>`).
 */
export const REDELIVERIES_PARTITION_SUFFIX = '#redeliveries';
/**
 * Whether an item of the executions table is an execution: the table also holds, each in a partition
 * `<account_id>#…` of its own, cancels' signals, sync slots and redelivery counters, none with a status.
 */
export const isExecutionItem = (item: Record<string, unknown>): boolean =>
  ![SIGNAL_PARTITION_SUFFIX, SYNC_SLOTS_PARTITION_SUFFIX, REDELIVERIES_PARTITION_SUFFIX].some((suffix) => String(item['account_id']).endsWith(suffix));
/**
 * Redeliveries of an account sent at once (the sender invoked for each) per window of
 * REDELIVERY_WINDOW_MS, an attempt's 5 s: past them a redelivery is left to the scheduled sender (within
 * about a minute, sharing out the attempts between accounts). Each one sent at once is an invocation of
 * the sender of up to 5 s: without a bound, one account's keys redelivering runs whose receiver hangs
 * (each key within its rate limit) could run hundreds of senders at once, from the Lambda concurrency
 * every function of every account shares.
 */
export const REDELIVERIES_SENT_AT_ONCE = 10;
export const REDELIVERY_WINDOW_MS = 5_000;
/**
 * First webhook attempts of an account under way at once, per window of REDELIVERY_WINDOW_MS (so at most
 * twice this across two windows). Whoever ends a run (a worker, mostly) makes its first attempt, up to
 * 5 s of that instance, after the run's in-flight slot was given back: without a bound, an account whose
 * receiver never answers would hold a worker for 5 s per run it ends, beyond its tier's runs in flight,
 * from the pool every account shares. Past it the attempt is left to the scheduled sender (within about
 * a minute, sharing out attempts between accounts). Taken before, given back after: a receiver that
 * answers at once is never held back.
 */
export const FIRST_ATTEMPTS_AT_ONCE = 10;
/** A sync slot's sort key: `slot#0007`. */
const syncSlotKey = (k: number) => `slot#${String(k).padStart(4, '0')}`;
/**
 * Takes of a sync slot that may lose a race for the slot they chose before the request is refused as if
 * the account were full. Each race lost is a slot another run took, so only a burst loses many: 100 takes
 * at one instant under a limit of 100 were refused below it in 1 of 25 bursts with 6, in none of 50 with
 * 10. The jittered waits between them add up to about 2 s at the most.
 */
const SYNC_SLOT_RACES = 10;
/**
 * A take's first try chooses at random among this many of the lowest free slots, and each race it loses
 * widens the choice fourfold (16, 64, …): one run at a time keeps the partition at about the most runs
 * held at once plus these (a query reads them all), and a burst of takes at one instant spreads out
 * instead of racing for the same few slots.
 */
const SYNC_SLOT_CHOICES = 4;
/** How long a release may take, retries included (it is on the response path): past it, the slot's lease frees it. */
const SYNC_SLOT_RELEASE_MS = 1_000;
/** How long a sync slot item outlives its lease before TTL removes it (an account that stops running sync runs). */
const SYNC_SLOT_RETENTION_DAYS = 1;

/** A sync slot that is held: by a run, until its lease ends. */
export interface SyncSlot {
  readonly slot: string;
  readonly holder: string;
  readonly lease_until: number;
}
const ttlAfter = (now: Date, days: number) => Math.floor(now.getTime() / 1000) + days * 86_400;

/** GSI (`account_status`, `execution_id`): an account's executions in one status, newest first. */
export const EXECUTIONS_BY_STATUS_INDEX = 'by-status';

/** Sparse GSI (`webhook_shard`, `webhook_due`), keys only: pending webhooks by due time. */
export const WEBHOOKS_DUE_INDEX = 'webhooks-due';
/** Partitions of that index: enough to spread its writes, few enough to query each one every minute. */
export const WEBHOOK_SHARDS = 8;
/**
 * How far ahead of the claimer's clock a due time may be and still be claimed: Lambda's clocks agree to
 * well within this, and the retry schedule's shortest step (48 s) is far longer.
 */
export const WEBHOOK_CLOCK_SKEW_MS = 1000;

/** The index partition of an execution's webhook: fixed by its id. */
export function webhookShard(executionId: string): string {
  return String(createHash('sha256').update(executionId).digest().readUInt32BE(0) % WEBHOOK_SHARDS);
}

/** The `SET` clauses and values that mark a run's webhook pending, due `now`. */
function pendingWebhook(executionId: string, now: Date) {
  const fields = {
    webhook: { status: 'pending', attempts: 0, last_attempt_at: null, last_response_status: null, next_attempt_at: now.toISOString() } as WebhookState,
    webhook_due: now.getTime(),
    webhook_shard: webhookShard(executionId),
    webhook_round: 0,
  };
  return {
    set: 'webhook = :wh, webhook_due = :whDue, webhook_shard = :whShard, webhook_round = :whRound',
    values: { ':wh': fields.webhook, ':whDue': fields.webhook_due, ':whShard': fields.webhook_shard, ':whRound': fields.webhook_round },
    fields,
  };
}
const accountStatus = (accountId: string, status: ExecutionStatus) => `${accountId}#${status}`;

function strip(item: Record<string, unknown>): ExecutionRecord {
  const { account_workflow: _aw, account_status: _as, ttl: _ttl, ...rest } = item;
  return rest as unknown as ExecutionRecord;
}

/** JSON with object keys sorted: equal for equal values whatever the order DynamoDB returns keys in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Attribute names every update of an execution may use (`owner`, `ttl` are reserved words). */
const NAMES = { '#s': 'status', '#o': 'owner', '#out': 'output', '#err': 'error', '#fail': 'failure', '#ttl': 'ttl' } as const;
/** The condition a write by a writer that knows whether the run asked for a webhook adds (`webhook_url` never changes). */
const webhookCondition = (hook: boolean) => (hook ? 'attribute_exists(webhook_url)' : 'attribute_not_exists(webhook_url)');
const namesIn = (expressions: string) =>
  Object.fromEntries(Object.entries(NAMES).filter(([placeholder]) => new RegExp(`${placeholder}\\b`).test(expressions)));

export class ExecutionsRepository {
  /** `accountsTable`: where the in-flight counters are; needed to create or end a run holding a slot. */
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly accountsTable?: string,
  ) {}

  /**
   * Stores a new execution. Idempotent for its own retry: the id is random and made before the write, so
   * a failed condition on an item with exactly this content means an earlier attempt of this very write
   * landed (its answer was lost and the SDK retried). A record with `async_slot` takes one of its
   * account's `limit` in-flight slots in the same transaction: 429 CONCURRENCY_LIMIT_EXCEEDED when none
   * is free (nothing written).
   */
  async create(record: ExecutionRecord, limit?: number): Promise<void> {
    const item = {
      ...record,
      account_workflow: accountWorkflow(record.account_id, record.workflow_slug),
      account_status: accountStatus(record.account_id, record.status),
    };
    try {
      if (record.async_slot) {
        if (limit === undefined) throw new Error('a run holding a slot is created under a limit');
        if (limit <= 0) throw new ConcurrencyLimitExceededError(limit);
        await this.transact([
          { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(execution_id)' } },
          {
            Update: {
              TableName: this.accounts(),
              Key: { account_id: record.account_id },
              UpdateExpression: `ADD ${IN_FLIGHT_ATTRIBUTE} :one`,
              ConditionExpression: `attribute_exists(account_id) AND (attribute_not_exists(${IN_FLIGHT_ATTRIBUTE}) OR ${IN_FLIGHT_ATTRIBUTE} < :limit)`,
              ExpressionAttributeValues: { ':one': 1, ':limit': limit },
            },
          },
        ]);
      } else {
        await this.doc.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(execution_id)' }));
      }
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (reasons?.[0] !== 'ConditionalCheckFailed' && reasons?.[1] === 'ConditionalCheckFailed') throw new ConcurrencyLimitExceededError(limit!);
      if (!isConditionalCheckFailed(error) && reasons?.[0] !== 'ConditionalCheckFailed') throw error;
      const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { account_id: record.account_id, execution_id: record.execution_id }, ConsistentRead: true }));
      // Ours as written: nothing else writes this id between our put and this read but the run itself,
      // which is not started yet (an async run's worker is invoked after this returns).
      if (out.Item && canonical(out.Item) === canonical(JSON.parse(JSON.stringify(item)))) return;
      throw error;
    }
  }

  async get(accountId: string, executionId: string): Promise<ExecutionRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, execution_id: executionId }, ConsistentRead: true }),
    );
    return out.Item ? strip(out.Item) : undefined;
  }

  /**
   * The account's sync slots held at `nowMs` (their lease not over): one strongly consistent query of its
   * slot partition (small items: a read unit per 4 KB).
   */
  async heldSyncSlots(accountId: string, nowMs: number): Promise<SyncSlot[]> {
    const held: SyncSlot[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'account_id = :p',
          ExpressionAttributeValues: { ':p': `${accountId}${SYNC_SLOTS_PARTITION_SUFFIX}` },
          ProjectionExpression: 'execution_id, holder, lease_until',
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const leaseUntil = Number(item['lease_until']);
        if (leaseUntil > nowMs) held.push({ slot: String(item['execution_id']), holder: String(item['holder']), lease_until: leaseUntil });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return held;
  }

  /**
   * Takes one of the account's `limit` sync slots for the run `executionId` until `leaseUntil` (epoch ms):
   * a free slot below the limit (absent, released, or its lease over), chosen at random among the lowest
   * `SYNC_SLOT_CHOICES` the query found free (four times as many after each race lost), claimed by a
   * conditional put. Exact under concurrency: of two takes of one slot one wins, and the other reads
   * again. Returns the slot's key; 429
   * CONCURRENCY_LIMIT_EXCEEDED when `limit` slots are held (or when every free slot it tried was taken
   * first, `SYNC_SLOT_RACES` times). A put sent again after a lost answer finds its own slot; a put whose
   * every answer was lost is released before the error is thrown (it may have landed).
   *
   * One limit at a time is exact. When an account's limit is lowered while slots at or past the new limit
   * are held, those still count, but two takes at that moment may both find one free slot below it and
   * take different ones: until those runs end (their lease at the most), the account may run up to that
   * many more than the new limit.
   */
  async takeSyncSlot(accountId: string, executionId: string, limit: number, leaseUntil: number, nowMs = Date.now()): Promise<string> {
    if (limit <= 0) throw new ConcurrencyLimitExceededError(limit, 'sync');
    for (let race = 0; race < SYNC_SLOT_RACES; race++) {
      const held = await this.heldSyncSlots(accountId, nowMs);
      const mine = held.find((h) => h.holder === executionId);
      if (mine) return mine.slot;
      // Slots at or past a limit lowered since they were taken still count while they are held.
      if (held.length >= limit) break;
      const taken = new Set(held.map((h) => h.slot));
      const free: string[] = [];
      const choices = SYNC_SLOT_CHOICES * 4 ** race;
      for (let k = 0; k < limit && free.length < choices; k++) {
        const key = syncSlotKey(k);
        if (!taken.has(key)) free.push(key);
      }
      const slot = free[Math.floor(Math.random() * free.length)]!;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: {
              account_id: `${accountId}${SYNC_SLOTS_PARTITION_SUFFIX}`,
              execution_id: slot,
              holder: executionId,
              lease_until: leaseUntil,
              ttl: Math.ceil(leaseUntil / 1000) + SYNC_SLOT_RETENTION_DAYS * 86_400,
            },
            ConditionExpression: 'attribute_not_exists(execution_id) OR lease_until <= :now OR holder = :me',
            ExpressionAttributeValues: { ':now': nowMs, ':me': executionId },
          }),
        );
        return slot;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) {
          // No answer, or an error after it landed: a slot the run may hold would be kept to its lease.
          await this.releaseSyncSlot(accountId, slot, executionId).catch(() => false);
          throw error;
        }
        // Another run took it between the query and the put: read again.
        await conflictBackoff(race);
      }
    }
    throw new ConcurrencyLimitExceededError(limit, 'sync');
  }

  /**
   * Gives back the sync slot `slot` the run `executionId` holds: its lease set to 0, on condition the run
   * still holds it (a slot whose lease ended and another run took is left alone). False when it did not.
   * It waits `SYNC_SLOT_RELEASE_MS` at the most (attempts included), then throws: it is on a request's
   * response path, and the slot's lease frees it anyway.
   */
  async releaseSyncSlot(accountId: string, slot: string, executionId: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: `${accountId}${SYNC_SLOTS_PARTITION_SUFFIX}`, execution_id: slot },
          UpdateExpression: 'SET lease_until = :zero',
          ConditionExpression: 'holder = :me',
          ExpressionAttributeValues: { ':zero': 0, ':me': executionId },
        }),
        { abortSignal: AbortSignal.timeout(SYNC_SLOT_RELEASE_MS) },
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /**
   * Whether the execution has been cancelled: a strongly consistent read of its small signal item (one
   * read unit, whatever the execution's size). `abortSignal` bounds the call (a run's deadline).
   */
  async cancelRequested(accountId: string, executionId: string, abortSignal?: AbortSignal): Promise<boolean> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: signalKey(accountId, executionId), ConsistentRead: true, ProjectionExpression: 'execution_id' }),
      abortSignal ? { abortSignal } : {},
    );
    return out.Item !== undefined;
  }

  /**
   * QUEUED → RUNNING for `owner`, leased until `leaseUntil` (epoch ms). Also true when `owner` already
   * holds it (its own claim retried after a lost answer). Undefined when it is not QUEUED and not this
   * owner's: cancelled, finished, or another attempt's.
   */
  async claim(accountId: string, executionId: string, owner: string, leaseUntil: number, now: Date): Promise<ExecutionRecord | undefined> {
    return this.update(
      accountId,
      executionId,
      'SET #s = :running, account_status = :as, started_at = if_not_exists(started_at, :now), #o = :me, lease_until = :lease',
      '#s = :queued OR (#s = :running AND #o = :me)',
      { ':running': 'RUNNING', ':as': accountStatus(accountId, 'RUNNING'), ':queued': 'QUEUED', ':now': now.toISOString(), ':me': owner, ':lease': leaseUntil },
      (current) => current.status === 'RUNNING' && current.owner === owner,
    );
  }

  /**
   * A run `from` one of the given states (RUNNING by default) → SUCCEEDED | FAILED, by `owner`: the run
   * must be theirs, or have no owner yet (a QUEUED run that could not be started). Returns the run as it
   * ends when it ends in `owner`'s hands: finished by this write (or by an earlier attempt of it whose
   * answer was lost), or cancelled while `owner` held it. Undefined when the run is not `owner`'s.
   * `known`: the run as the caller holds it (a run holding a slot frees it in the same write; see `end`).
   */
  async finish(
    accountId: string,
    executionId: string,
    outcome: Outcome,
    now: Date,
    owner: string,
    from: readonly ExecutionStatus[] = ['RUNNING'],
    known?: ExecutionRecord,
  ): Promise<ExecutionRecord | undefined> {
    const states = from.map((_, i) => `:from${i}`).join(', ');
    return this.end(
      accountId,
      executionId,
      outcome,
      now,
      owner,
      `#s IN (${states}) AND (attribute_not_exists(#o) OR #o = :me)`,
      Object.fromEntries(from.map((s, i) => [`:from${i}`, s])),
      known,
    );
  }

  /**
   * RUNNING → FAILED "the run was interrupted", by `owner`, only when the lease of the attempt seen
   * holding it (`deadOwner`) has expired: that attempt is gone. A run of an earlier release (no lease)
   * counts as gone once it started longer ago than `legacyCutoff`.
   */
  async failInterrupted(
    accountId: string,
    executionId: string,
    deadOwner: string | undefined,
    owner: string,
    now: Date,
    legacyCutoff: Date,
    known?: ExecutionRecord,
  ): Promise<ExecutionRecord | undefined> {
    return this.end(
      accountId,
      executionId,
      { status: 'FAILED', error: 'the run was interrupted', failure: failure('INTERRUPTED') },
      now,
      owner,
      `#s = :running AND (lease_until < :nowMs OR (attribute_not_exists(lease_until) AND started_at < :cutoff)) AND ${
        deadOwner === undefined ? 'attribute_not_exists(#o)' : '#o = :dead'
      }`,
      { ':running': 'RUNNING', ':nowMs': now.getTime(), ':cutoff': legacyCutoff.toISOString(), ...(deadOwner === undefined ? {} : { ':dead': deadOwner }) },
      known,
    );
  }

  /**
   * A CANCELLED run that nobody owned (cancelled while QUEUED) gets `owner`, who then sends its webhook:
   * of several deliveries of its event, one. Undefined when it is another's, or not CANCELLED.
   */
  async claimCancelled(accountId: string, executionId: string, owner: string): Promise<ExecutionRecord | undefined> {
    return this.update(
      accountId,
      executionId,
      'SET #o = :me',
      '#s = :cancelled AND (attribute_not_exists(#o) OR #o = :me)',
      { ':cancelled': 'CANCELLED', ':me': owner },
      (current) => current.status === 'CANCELLED' && current.owner === owner,
    );
  }

  /**
   * `seen` (QUEUED or RUNNING, as just read) → CANCELLED, and the run's cancellation signal, in one
   * transaction, with the release of its in-flight slot when `slot` (the run as read holds one), and its
   * webhook marked pending when `webhook` (the run as read has a `webhook_url`). False when the status
   * is no longer `seen`, or `slot` or `webhook` were wrong (re-read and decide again). Idempotent for its
   * own retry: the SDK sends the transaction's one client token with each attempt.
   */
  async cancel(accountId: string, executionId: string, seen: 'QUEUED' | 'RUNNING', now: Date, slot = false, webhook = false): Promise<boolean> {
    const hook = webhook ? pendingWebhook(executionId, now) : undefined;
    try {
      await this.transact([
        {
          Update: {
            TableName: this.table,
            Key: { account_id: accountId, execution_id: executionId },
            UpdateExpression: `SET #s = :cancelled, account_status = :as, finished_at = :now, #ttl = :ttl${hook ? `, ${hook.set}` : ''}`,
            // The slot and webhook attributes never change, so a wrong `slot` or `webhook` only fails the condition (re-read).
            ConditionExpression: `attribute_exists(execution_id) AND #s = :seen AND ${slot ? 'async_slot = :true' : 'attribute_not_exists(async_slot)'} AND ${webhookCondition(webhook)}`,
            ExpressionAttributeNames: { '#s': 'status', '#ttl': 'ttl' },
            ExpressionAttributeValues: {
              ':cancelled': 'CANCELLED',
              ':as': accountStatus(accountId, 'CANCELLED'),
              ':now': now.toISOString(),
              ':ttl': ttlAfter(now, EXECUTION_RETENTION_DAYS),
              ':seen': seen,
              ...(slot ? { ':true': true } : {}),
              ...hook?.values,
            },
          },
        },
        {
          Put: {
            TableName: this.table,
            Item: { ...signalKey(accountId, executionId), cancelled_at: now.toISOString(), ttl: ttlAfter(now, SIGNAL_RETENTION_DAYS) },
          },
        },
        ...(slot ? [this.release(accountId)] : []),
      ]);
    } catch (error) {
      if (cancellationReasons(error)?.[0] === 'ConditionalCheckFailed') return false;
      throw error;
    }
    countMetric(METRIC.executionsFinished, ['status', 'CANCELLED']);
    return true;
  }

  /**
   * A terminal write by `owner`: sets the owner, the outcome, `finished_at` and the `ttl`, and marks the
   * webhook pending when the run asked for one. A run holding an in-flight slot gives it back in the same
   * transaction. `known`: the run as the caller last saw it (its `async_slot` picks the write, its
   * `webhook_url` whether the webhook is marked, and the ended run is built from it: a transaction
   * returns no item). A caller that did not know the run held a slot or asked for a webhook has its write
   * refused, and the write is made again knowing it.
   */
  private async end(
    accountId: string,
    executionId: string,
    outcome: Outcome,
    now: Date,
    owner: string,
    condition: string,
    values: Record<string, unknown>,
    known?: ExecutionRecord,
  ): Promise<ExecutionRecord | undefined> {
    const [result, resultValues] =
      outcome.status === 'SUCCEEDED'
        ? ['#out = :result', { ':result': outcome.output ?? null }]
        : ['#err = :result, #fail = :failure', { ':result': outcome.error, ':failure': outcome.failure }];
    const hasHook = known?.webhook_url !== undefined;
    const hook = hasHook ? pendingWebhook(executionId, now) : undefined;
    const update = `SET #s = :to, account_status = :as, ${result}, finished_at = :now, #ttl = :ttl, #o = :me${hook ? `, ${hook.set}` : ''}`;
    const allValues = { ...values, ':to': outcome.status, ':as': accountStatus(accountId, outcome.status), ...resultValues, ':now': now.toISOString(), ':ttl': ttlAfter(now, EXECUTION_RETENTION_DAYS), ':me': owner, ...hook?.values };
    const guarded = `${webhookCondition(hasHook)} AND (${condition})`;
    // Finished by an earlier attempt of this write, or cancelled while `owner` held it.
    const ours = (current: ExecutionRecord) => TERMINAL.includes(current.status) && current.owner === owner;
    // Refused because the caller did not know the run: the same write again, knowing it (once: neither attribute changes).
    const misjudged = (current: ExecutionRecord | undefined) =>
      current !== undefined && !TERMINAL.includes(current.status) && ((current.async_slot === true) !== (known?.async_slot === true) || (current.webhook_url !== undefined) !== hasHook);
    let record: ExecutionRecord | undefined;
    let current: ExecutionRecord | undefined;
    if (known?.async_slot) {
      const full = `attribute_exists(execution_id) AND async_slot = :true AND ${guarded}`;
      try {
        await this.transact([
          {
            Update: {
              TableName: this.table,
              Key: { account_id: accountId, execution_id: executionId },
              UpdateExpression: update,
              ConditionExpression: full,
              ExpressionAttributeNames: namesIn(`${update} ${full}`),
              ExpressionAttributeValues: { ...allValues, ':true': true },
            },
          },
          this.release(accountId),
        ]);
        record = {
          ...known,
          status: outcome.status,
          ...(outcome.status === 'SUCCEEDED' ? { output: outcome.output ?? null } : { error: outcome.error, failure: outcome.failure }),
          finished_at: now.toISOString(),
          owner,
          ...hook?.fields,
        };
      } catch (error) {
        if (cancellationReasons(error)?.[0] !== 'ConditionalCheckFailed') throw error;
        current = await this.get(accountId, executionId);
        record = current && ours(current) ? current : undefined;
      }
    } else {
      record = await this.update(accountId, executionId, update, `attribute_not_exists(async_slot) AND ${guarded}`, allValues, (c) => ((current = c), ours(c)));
    }
    if (!record && current && misjudged(current)) return this.end(accountId, executionId, outcome, now, owner, condition, values, current);
    if (record?.status === outcome.status) countMetric(METRIC.executionsFinished, ['status', record.status]);
    return record;
  }

  /**
   * Housekeeping: the account's runs past their deadline, at most `limit`, oldest first within each
   * status. QUEUED ones created before `cutoffs.queuedBefore` (their id begins with their creation time,
   * so the index's key bounds the read to them); RUNNING ones whose lease ended before `now`, or, from
   * before leases, that started before `cutoffs.legacyStartedBefore`. Read from the status index
   * (eventually consistent): every failure is conditioned on the item itself (`failOverdue`).
   */
  async overdue(accountId: string, now: Date, cutoffs: OverdueCutoffs, limit: number): Promise<ExecutionRecord[]> {
    const found: ExecutionRecord[] = [];
    const queries = [
      {
        KeyConditionExpression: 'account_status = :k AND execution_id < :before',
        ExpressionAttributeValues: { ':k': accountStatus(accountId, 'QUEUED'), ':before': newExecutionId(cutoffs.queuedBefore).slice(0, 'exe_'.length + 9) },
      },
      {
        KeyConditionExpression: 'account_status = :k',
        FilterExpression: OVERDUE_RUNNING,
        ExpressionAttributeValues: { ':k': accountStatus(accountId, 'RUNNING'), ':nowMs': now.getTime(), ':legacy': cutoffs.legacyStartedBefore.toISOString() },
      },
    ];
    for (const query of queries) {
      let start: Record<string, unknown> | undefined;
      do {
        if (found.length >= limit) return found;
        const page = await this.doc.send(
          new QueryCommand({ TableName: this.table, IndexName: EXECUTIONS_BY_STATUS_INDEX, ...query, Limit: Math.max(limit - found.length, 10), ExclusiveStartKey: start }),
        );
        found.push(...(page.Items ?? []).slice(0, limit - found.length).map(strip));
        start = page.LastEvaluatedKey;
      } while (start);
    }
    return found;
  }

  /**
   * Housekeeping: a run `overdue` found (`known`, as read) → FAILED "timed out" by `owner`, on condition
   * it is still overdue: still QUEUED and created before the cutoff, or still RUNNING with its lease
   * over. The same terminal write as any end of a run (`end`): its in-flight slot freed and its webhook
   * marked pending in that write, so the scheduled sender delivers it. Of this and a finish (or a cancel,
   * or another housekeeping run) at the same moment, one write lands and the others' conditions fail.
   * Returns the run as this write ended it; undefined when it was not overdue any more (finished,
   * cancelled, taken by a worker, or failed by another run).
   */
  async failOverdue(known: ExecutionRecord, owner: string, now: Date, cutoffs: OverdueCutoffs): Promise<ExecutionRecord | undefined> {
    if (known.status !== 'QUEUED' && known.status !== 'RUNNING') return undefined;
    const [condition, values] =
      known.status === 'QUEUED'
        ? ['#s = :queued AND created_at < :queuedBefore', { ':queued': 'QUEUED', ':queuedBefore': cutoffs.queuedBefore.toISOString() }]
        : [`#s = :running AND (${OVERDUE_RUNNING})`, { ':running': 'RUNNING', ':nowMs': now.getTime(), ':legacy': cutoffs.legacyStartedBefore.toISOString() }];
    return this.end(known.account_id, known.execution_id, { status: 'FAILED', error: TIMED_OUT, failure: failure('TIMED_OUT') }, now, owner, condition, values, known);
  }

  /** The decrement of the account's in-flight counter, as a transaction item. */
  private release(accountId: string) {
    return {
      Update: {
        TableName: this.accounts(),
        Key: { account_id: accountId },
        UpdateExpression: `ADD ${IN_FLIGHT_ATTRIBUTE} :minus`,
        ExpressionAttributeValues: { ':minus': -1 },
      },
    };
  }

  private accounts(): string {
    if (!this.accountsTable) throw new Error('ExecutionsRepository: no accounts table for the in-flight counters');
    return this.accountsTable;
  }

  /** One transaction, sent again when another cancelled it (runs of an account share its counter). */
  private transact(items: NonNullable<TransactWriteCommandInput['TransactItems']>): Promise<void> {
    return transactWrite(this.doc, { TransactItems: items });
  }

  /**
   * One conditional update, returning the item as it is after it. When the condition fails, the item is
   * read again and returned if `ours` says it is already what this write (by its owner) leads to: an
   * earlier attempt of the write landed and its answer was lost, so the SDK's retry met its own result.
   */
  private async update(
    accountId: string,
    executionId: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    ours: (current: ExecutionRecord) => boolean,
  ): Promise<ExecutionRecord | undefined> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, execution_id: executionId },
          UpdateExpression: update,
          ConditionExpression: `attribute_exists(execution_id) AND (${condition})`,
          ExpressionAttributeNames: namesIn(`${update} ${condition}`),
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? strip(out.Attributes) : undefined;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
    const current = await this.get(accountId, executionId);
    return current && ours(current) ? current : undefined;
  }

  /**
   * One page of the webhooks of `shard` due at or before `nowMs`, oldest due first (the index is eventually
   * consistent: a just-written change may show a moment late, and every claim checks the item itself).
   */
  async dueWebhooks(shard: string, nowMs: number, limit: number, startKey?: Record<string, unknown>): Promise<{ items: DueWebhook[]; next?: Record<string, unknown> }> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: WEBHOOKS_DUE_INDEX,
        KeyConditionExpression: 'webhook_shard = :shard AND webhook_due <= :now',
        ExpressionAttributeValues: { ':shard': shard, ':now': nowMs },
        Limit: limit,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    const items = (out.Items ?? []).map((i) => ({ account_id: String(i['account_id']), execution_id: String(i['execution_id']), webhook_due: Number(i['webhook_due']) }));
    return { items, ...(out.LastEvaluatedKey ? { next: out.LastEvaluatedKey } : {}) };
  }

  /**
   * Claims the next attempt of a pending webhook for `claim`: its due time moves from `seenDue` (as its
   * sender read it) to `leaseUntil`, by which the attempt is certainly over, so it comes due again if its
   * sender dies. Of several senders that saw the same due time, one gets it. Only a due attempt is
   * claimed: a caller may have read a due time that is a live claim's lease or the next attempt of the
   * retry schedule (a worker reading back the run a cancel ended in its hands), and neither may be taken
   * early. So `seenDue` must have come by `nowMs` (give or take `WEBHOOK_CLOCK_SKEW_MS` between machines:
   * a redelivery's due time is set by one function and claimed by another), and a live claim is taken
   * over only once its lease has ended. Returns the run as stored (what the payload is made from);
   * undefined when it is not due, another sender holds it, or its due time moved.
   */
  async claimWebhookAttempt(
    accountId: string,
    executionId: string,
    seenDue: number,
    claim: string,
    leaseUntil: number,
    nowMs: number,
  ): Promise<ExecutionRecord | undefined> {
    if (seenDue > nowMs + WEBHOOK_CLOCK_SKEW_MS) return undefined;
    return this.update(
      accountId,
      executionId,
      'SET webhook_due = :lease, webhook_claim = :claim',
      'webhook_due = :seen AND webhook.#s = :pending AND (attribute_not_exists(webhook_claim) OR webhook_due <= :now)',
      { ':lease': leaseUntil, ':claim': claim, ':seen': seenDue, ':pending': 'pending', ':now': nowMs },
      // Its own claim, retried by the SDK after a lost answer.
      (current) => current.webhook_claim === claim && current.webhook?.status === 'pending',
    );
  }

  /**
   * Moves a pending webhook's next attempt from `seenDue` (as its sender read it) to `dueAt`, and says so in
   * `next_attempt_at`: a scheduled sender spreading an account's backlog past its share. Conditioned on the
   * due time read and on no claim (a live one, or one whose lease ended, which a sender takes over), so
   * an attempt, a claim or a redelivery meanwhile is left as it is (false). A move the SDK sent again
   * after a lost answer finds its own due time: true.
   */
  async postponeWebhook(accountId: string, executionId: string, seenDue: number, dueAt: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, execution_id: executionId },
          UpdateExpression: 'SET webhook_due = :due, webhook.next_attempt_at = :next',
          ConditionExpression: 'webhook_due = :seen AND webhook.#s = :pending AND attribute_not_exists(webhook_claim)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':due': dueAt, ':next': new Date(dueAt).toISOString(), ':seen': seenDue, ':pending': 'pending' },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const current = await this.get(accountId, executionId);
      return current?.webhook_due === dueAt;
    }
  }

  /**
   * Records the outcome of the attempt `claim` made: one more attempt, when, and the receiver's status;
   * then delivered or failed (the webhook leaves the index) or due again at `nextDue`. False when the
   * claim is no longer its sender's (a redelivery took the webhook over, or the lease ran out and another
   * sender claimed it), or when this write's own earlier attempt landed.
   */
  async recordWebhookAttempt(accountId: string, executionId: string, claim: string, outcome: WebhookOutcome): Promise<boolean> {
    const sets = ['webhook.attempts = webhook.attempts + :one', 'webhook.last_attempt_at = :at', 'webhook.last_response_status = :code'];
    const values: Record<string, unknown> = { ':one': 1, ':at': outcome.at.toISOString(), ':code': outcome.status, ':claim': claim };
    let removes = ['webhook_claim'];
    if (outcome.result === 'retry') {
      sets.push('webhook.next_attempt_at = :next', 'webhook_due = :due', 'webhook_round = if_not_exists(webhook_round, :zero) + :one');
      Object.assign(values, { ':next': new Date(outcome.nextDue).toISOString(), ':due': outcome.nextDue, ':zero': 0 });
    } else {
      sets.push('webhook.#s = :final', 'webhook.next_attempt_at = :null');
      Object.assign(values, { ':final': outcome.result, ':null': null });
      removes = ['webhook_due', 'webhook_shard', 'webhook_claim'];
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: accountId, execution_id: executionId },
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ConditionExpression: 'webhook_claim = :claim',
          ...(outcome.result === 'retry' ? {} : { ExpressionAttributeNames: { '#s': 'status' } }),
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /**
   * One of the account's immediate webhook sends for the current window of REDELIVERY_WINDOW_MS (at most
   * REDELIVERIES_SENT_AT_ONCE): true when taken. One conditional ADD on a counter item of the window, in a
   * partition of its own (`<account_id>#redeliveries`, in no index), kept a day. Not idempotent: a retry
   * after a lost answer counts twice, which only leaves one more redelivery to the scheduled sender.
   */
  async takeImmediateSend(accountId: string, nowMs: number): Promise<boolean> {
    return this.takeSend(accountId, `window#${Math.floor(nowMs / REDELIVERY_WINDOW_MS)}`, REDELIVERIES_SENT_AT_ONCE, nowMs);
  }

  /**
   * One of the account's first webhook attempts under way at once (FIRST_ATTEMPTS_AT_ONCE, or `max`), in
   * the current window: the counter's sort key when taken (give it back with endFirstAttempt), undefined
   * when the account has `max` under way. One conditional ADD; not idempotent (a retry after a lost answer
   * counts twice, which only leaves one more attempt to the scheduled sender), and a count never given
   * back (a crash) holds only until its window ends.
   */
  async takeFirstAttempt(accountId: string, nowMs: number, max = FIRST_ATTEMPTS_AT_ONCE): Promise<string | undefined> {
    const counter = `first#${Math.floor(nowMs / REDELIVERY_WINDOW_MS)}`;
    return (await this.takeSend(accountId, counter, max, nowMs)) ? counter : undefined;
  }

  /** One more on the account's send counter `counter` (its partition of counters), while under `max`: true when taken. */
  private async takeSend(accountId: string, counter: string, max: number, nowMs: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: `${accountId}${REDELIVERIES_PARTITION_SUFFIX}`, execution_id: counter },
          UpdateExpression: 'ADD sent :one SET #ttl = if_not_exists(#ttl, :ttl)',
          ConditionExpression: 'attribute_not_exists(sent) OR sent < :max',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':one': 1, ':max': max, ':ttl': Math.ceil(nowMs / 1000) + 86_400 },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** Gives back a first attempt takeFirstAttempt counted (never below 0). */
  async endFirstAttempt(accountId: string, counter: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { account_id: `${accountId}${REDELIVERIES_PARTITION_SUFFIX}`, execution_id: counter },
          UpdateExpression: 'ADD sent :minus',
          ConditionExpression: 'sent > :zero',
          ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  /**
   * A finished run's webhook pending again and due `now`, its schedule restarted (`attempts` keeps
   * counting); a claim in progress is dropped (its outcome will not be recorded). `known`: the run as just
   * read (whether it has a `webhook` map yet: a run ended before webhooks were recorded gets a fresh one).
   * Undefined when the run is not finished, asked for no webhook, or changed since it was read.
   */
  async requeueWebhook(accountId: string, executionId: string, now: Date, known: ExecutionRecord): Promise<ExecutionRecord | undefined> {
    const fresh = pendingWebhook(executionId, now);
    const common = 'webhook_due = :whDue, webhook_shard = :whShard, webhook_round = :whRound';
    const base = `attribute_exists(webhook_url) AND #s IN (:succeeded, :failed, :cancelled)`;
    const statuses = { ':succeeded': 'SUCCEEDED', ':failed': 'FAILED', ':cancelled': 'CANCELLED' };
    const [update, condition, values] = known.webhook
      ? [
          `SET webhook.#s = :pending, webhook.next_attempt_at = :nextAt, ${common} REMOVE webhook_claim`,
          `${base} AND attribute_exists(webhook)`,
          { ':pending': 'pending', ':nextAt': now.toISOString(), ':whDue': fresh.values[':whDue'], ':whShard': fresh.values[':whShard'], ':whRound': 0 },
        ]
      : [`SET ${fresh.set} REMOVE webhook_claim`, `${base} AND attribute_not_exists(webhook)`, fresh.values];
    return this.update(accountId, executionId, update, condition, { ...values, ...statuses }, () => false);
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
    const byWorkflow = filters.workflow !== undefined;
    // One status without a workflow: its own index, so a rare status costs no history read. With a
    // workflow, the workflow's index and a filter (bounded per page).
    const byStatus = filters.status !== undefined && !byWorkflow;
    if (filters.status && !byStatus) {
      conditions.push('#s = :status');
      names['#s'] = 'status';
      values[':status'] = filters.status;
    }
    if (filters.workspaces) {
      conditions.push(`workspace_id IN (${filters.workspaces.map((_, i) => `:w${i}`).join(', ')})`);
      filters.workspaces.forEach((w, i) => (values[`:w${i}`] = w));
    }
    const key = byWorkflow
      ? { IndexName: EXECUTIONS_BY_WORKFLOW_INDEX, KeyConditionExpression: 'account_workflow = :k', ':k': accountWorkflow(accountId, filters.workflow!) }
      : byStatus
        ? { IndexName: EXECUTIONS_BY_STATUS_INDEX, KeyConditionExpression: 'account_status = :k', ':k': accountStatus(accountId, filters.status!) }
        : { KeyConditionExpression: 'account_id = :k', ':k': accountId };
    const { ':k': partition, ...query } = key;
    const page = await queryPage(
      this.doc,
      {
        TableName: this.table,
        ...query,
        ExpressionAttributeValues: { ...values, ':k': partition },
        ...(conditions.length > 0 ? { FilterExpression: conditions.join(' AND ') } : {}),
        ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
        ScanIndexForward: false,
      },
      limit,
      nextToken ? await startAfter(nextToken, accountId, filters.workflow, filters.status, byStatus) : undefined,
    );
    const items = page.items.map(strip);
    // After the last item, or where the reading stopped when a filter matched little (a short page).
    const after = page.resumeAfter ? String(page.resumeAfter['execution_id']) : items.at(-1)?.execution_id;
    return { items, nextToken: page.more && after ? await encodePageToken('executions', accountId, { e: after, w: filters.workflow ?? '', s: filters.status ?? '' }) : null };
  }
}

/**
 * The index position after `executionId`; a token is bound to its account and to its filters (workflow
 * and status: another list's token would resume at a position of a list it is not).
 */
async function startAfter(
  token: string,
  accountId: string,
  workflow: string | undefined,
  status: ExecutionStatus | undefined,
  byStatus: boolean,
): Promise<Record<string, unknown>> {
  const { e, w, s } = await decodePageToken('executions', token, accountId, { e: EXECUTION_ID_PATTERN, w: /^$|^[a-z0-9][a-z0-9-]{0,62}$/, s: /^$|^[A-Z]{1,20}$/ });
  if (w !== (workflow ?? '') || s !== (status ?? '')) throw ValidationError.field('next_token', 'is not a valid page token (it belongs to a list with other filters)');
  if (workflow) return { account_workflow: accountWorkflow(accountId, workflow), execution_id: e, account_id: accountId };
  if (status && byStatus) return { account_status: accountStatus(accountId, status), execution_id: e, account_id: accountId };
  return { account_id: accountId, execution_id: e };
}
