/**
 * Webhook delivery (API.md §4 "Webhook delivery"). A run's terminal write marks its webhook pending
 * (ExecutionsRepository), so nothing is lost whoever crashes after it. Then:
 * - whoever ended the run makes the first attempt at once (`firstAttempt`);
 * - the scheduled sender (lambdas/webhook-sender) makes every attempt that comes due later
 *   (`sendDueWebhooks`), and the one a redelivery asks for (`sendNow`).
 * An attempt is one POST with one 5 s deadline. Before it, the sender claims it with a conditional write
 * (the due time it saw, moved to a lease a little longer than an attempt), so two senders never make the
 * same attempt; after it, the outcome is recorded on condition the claim is still the sender's. Nobody
 * waits between attempts: the next one is a due time in the table.
 */
import { randomBase62 } from '../api-key.js';
import { countMetric, log, METRIC } from '../log.js';
import type { AccountsRepository, FirstWebhookSecret } from '../repositories/accounts.js';
import { SYSTEM_ACTOR, type AuditRepository } from '../repositories/audit.js';
import type { DueWebhook, ExecutionRecord, ExecutionsRepository, WebhookOutcome } from '../repositories/executions.js';
import { WEBHOOK_SHARDS } from '../repositories/executions.js';
import { WEBHOOK_SENDER_INTERVAL_MINUTES } from '../run-budget.js';
import { nextAttemptAt, retryScheduleFromEnv } from '../webhook-schedule.js';
import { deliverWebhook, WEBHOOK_ATTEMPT_TIMEOUT_MS, type Delivery, type DeliveryOptions } from '../webhooks.js';
import { firstWebhookSecret } from './first-webhook-secret.js';
import { toExecutionObject } from './execution-object.js';

export interface WebhookDeps {
  readonly executions: ExecutionsRepository;
  readonly accounts: AccountsRepository;
  /** Where making an account's first secret records its event: needed by a sender that may make it (`makeSecret`). */
  readonly audit?: AuditRepository;
  readonly now?: () => Date;
  /** The delays between attempts, in seconds. @default the environment's (tests) or the default schedule */
  readonly retrySchedule?: readonly number[];
}

/**
 * How long a claimed attempt keeps its webhook out of other senders' hands: the attempt's 5 s, and room
 * for reading the secret and recording the outcome (DynamoDB calls of up to ~6 s each when it does not
 * answer). A sender that dies mid-attempt leaves the webhook due again when it ends.
 */
export const WEBHOOK_CLAIM_LEASE_MS = WEBHOOK_ATTEMPT_TIMEOUT_MS + 25_000;

/** What one run of the scheduled sender may do, so that it ends within its timeout and shares fairly. */
export interface SenderLimits {
  /** Attempts per run, all accounts together. */
  readonly perRun: number;
  /** Attempts per account per run: one tenant's backlog cannot take a run (the rest stay due, or are moved later). */
  readonly perAccount: number;
  /** Attempts in flight at once. */
  readonly concurrency: number;
  /** Index entries read per shard per run, at most (a backlog is read past to reach other accounts). */
  readonly scanPerShard: number;
  /**
   * Due webhooks of an account past its share that a run moves later, at most. A backlog left at the head
   * of the index (oldest due first) would fill every run's reads and keep other accounts' webhooks from
   * ever being read; moved later, spread over the next minutes, it leaves room for them. Only what a shard
   * whose read was cut by `scanPerShard` holds is moved, and only what has been due for over a minute.
   */
  readonly postponePerRun: number;
}

export const DEFAULT_SENDER_LIMITS: SenderLimits = { perRun: 200, perAccount: 20, concurrency: 20, scanPerShard: 2000, postponePerRun: 2000 };

/**
 * The most minutes one run spreads an account's backlog over. An account is served its share a run, so
 * a backlog spread at that pace waits about as long as it would have at the head of the index. Each move
 * writes the whole execution item: moves happen only where a shard's read was cut, so a backlog a run
 * reads whole is never moved.
 */
export const POSTPONE_SPREAD_MINUTES = 24 * 60;

export class NoWebhookSecretYet extends Error {
  override readonly name = 'NoWebhookSecretYet';
}

/** For a caller that may open the account's secret but not make one. */
export const NO_NEW_SECRET: FirstWebhookSecret = {
  make: () => {
    throw new NoWebhookSecretYet('the account has no webhook secret yet');
  },
  event: () => {
    throw new NoWebhookSecretYet('the account has no webhook secret yet');
  },
};

const clock = (deps: { now?: () => Date }) => (deps.now ?? (() => new Date()))();

const errorName = (error: unknown) => {
  const name = error instanceof Error ? error.name : '';
  return /^\w{1,64}$/.test(name) ? name : 'Error';
};

/**
 * The secrets a webhook is signed with now, each giving one `v1,` signature: the account's current
 * secret and, during a rotation's grace period, the one it replaced (POST /webhooks/secret/rotate).
 * `first` makes the secret, with its event, when the account has none (callers that may not make one
 * pass `NO_NEW_SECRET`).
 */
export async function signingSecrets(deps: Pick<WebhookDeps, 'accounts'>, accountId: string, first: FirstWebhookSecret, now = new Date()): Promise<string[]> {
  const secrets = await deps.accounts.webhookSecrets(accountId, first, now);
  return secrets.previous ? [secrets.current, secrets.previous.secret] : [secrets.current];
}

/** `webhook-id`: one per run and end state, the same on every attempt and redelivery (receivers dedupe on it). */
export function webhookMessageId(record: Pick<ExecutionRecord, 'execution_id' | 'status'>): string {
  return `msg_${record.execution_id}_${record.status.toLowerCase()}`;
}

/** A JSON value with every object's keys in sorted order (DynamoDB does not keep the order of a map's keys). */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
  );
}

/**
 * The body of a run's webhook: `{type, timestamp, data}`, `timestamp` the run's `finished_at`, `data` the
 * execution object without its `webhook` field. Made from the run as stored, with the keys of `input`
 * and `output` sorted, so every attempt and redelivery sends the same bytes.
 */
export function webhookPayload(record: ExecutionRecord): string {
  const { webhook: _webhook, ...data } = toExecutionObject(record);
  return JSON.stringify({
    type: `execution.${record.status.toLowerCase()}`,
    timestamp: record.finished_at ?? null,
    data: { ...data, input: sortedKeys(data.input), output: sortedKeys(data.output) },
  });
}

/**
 * The first secret made by a webhook's sending, with the `system` actor's event. A sender allowed to make
 * it (`makeSecret`) without an audit trail to record it in is a wiring defect: where a secret is needed, the
 * attempt fails (logged, and retried) rather than make a secret with no event.
 */
function firstBySystem(deps: WebhookDeps, accountId: string): FirstWebhookSecret {
  if (deps.audit) return firstWebhookSecret(deps.audit, accountId, SYSTEM_ACTOR, clock(deps));
  const miswired = (): never => {
    throw new Error('a webhook sender that may make the account\'s secret needs the audit trail (WebhookDeps.audit)');
  };
  return { make: miswired, event: miswired };
}

export type AttemptResult = WebhookOutcome['result'] | 'not-claimed' | 'error';

/**
 * A failure of DynamoDB or KMS that passes: an AWS SDK error (it carries `$metadata`) that the service
 * marked retryable, answered with a 5xx, or that got no answer at all (a network error). Not ours (a
 * missing account, a wiring defect) nor a 4xx (a disabled key, a secret that does not decrypt).
 */
function passing(error: unknown): boolean {
  const e = error as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown } | null;
  if (!e || typeof e !== 'object' || e.$metadata === undefined) return false;
  const status = e.$metadata.httpStatusCode;
  return e.$retryable !== undefined || status === undefined || status >= 500;
}

export interface AttemptOptions {
  /** Make the account's secret when it has none (the worker, which ends most runs, may). @default false */
  readonly makeSecret?: boolean;
  readonly delivery?: DeliveryOptions;
}

/**
 * One attempt at a pending webhook that `due` says is due: claims it, POSTs it, records the outcome.
 * 'not-claimed' when another sender has it (or it is no longer due as seen). Never throws: a failure is
 * logged, and the webhook comes due again when the claim's lease ends.
 */
export async function attemptWebhook(deps: WebhookDeps, due: DueWebhook, options: AttemptOptions = {}): Promise<AttemptResult> {
  const ids = { account_id: due.account_id, execution_id: due.execution_id };
  const claim = `clm_${randomBase62(16)}`;
  let claimed: ExecutionRecord | undefined;
  try {
    const nowMs = clock(deps).getTime();
    claimed = await deps.executions.claimWebhookAttempt(due.account_id, due.execution_id, due.webhook_due, claim, nowMs + WEBHOOK_CLAIM_LEASE_MS, nowMs);
  } catch (error) {
    log('warn', 'webhook attempt not claimed: the claim failed', { ...ids, error: errorName(error) });
    return 'error';
  }
  if (!claimed?.webhook_url || !claimed.webhook) return 'not-claimed';
  // The secrets to sign with, or why there are none.
  let secrets: string[] | { readonly missing: string };
  try {
    secrets = await signingSecrets(deps, due.account_id, options.makeSecret ? firstBySystem(deps, due.account_id) : NO_NEW_SECRET);
  } catch (error) {
    if (passing(error)) {
      // DynamoDB or KMS failing for a while (throttled, 5xx, no answer): nothing was sent, and no attempt
      // is counted against the receiver's 8. It comes due again when the claim's lease ends (30 s).
      log('error', 'webhook attempt not made: its secret could not be read; it comes due again when its claim ends', { ...ids, error: errorName(error) });
      return 'error';
    }
    // No secret yet (and this caller may not make one: the scheduled sender, which makes it, takes the
    // next), or one that cannot be read for good (a missing account, a disabled key, a wiring defect):
    // a failed attempt, so the schedule ends and its alarm sees it rather than trying for ever.
    secrets = { missing: `no webhook secret to sign it with (${errorName(error)})` };
  }
  const delivery: Delivery = Array.isArray(secrets)
    ? await deliverWebhook(claimed.webhook_url, secrets, webhookMessageId(claimed), webhookPayload(claimed), options.delivery)
    : { delivered: false, status: null, reason: secrets.missing };
  const at = clock(deps);
  const attemptsInRound = (claimed.webhook_round ?? 0) + 1;
  const nextDue = delivery.delivered ? undefined : nextAttemptAt(attemptsInRound, at.getTime(), deps.retrySchedule ?? retryScheduleFromEnv());
  const outcome: WebhookOutcome = delivery.delivered
    ? { result: 'delivered', status: delivery.status ?? 200, at }
    : nextDue !== undefined
      ? { result: 'retry', status: delivery.status, at, nextDue }
      : { result: 'failed', status: delivery.status, at };
  if (delivery.delivered) countMetric(METRIC.webhookDeliveries);
  else countMetric(METRIC.webhookFailedAttempts);
  if (outcome.result === 'failed') countMetric(METRIC.webhookFailures);
  let recorded: boolean;
  try {
    recorded = await deps.executions.recordWebhookAttempt(due.account_id, due.execution_id, claim, outcome);
  } catch (error) {
    log('error', 'webhook attempt made but not recorded; it comes due again when its claim ends', { ...ids, error: errorName(error) });
    return 'error';
  }
  log(delivery.delivered ? 'info' : 'warn', `webhook ${outcome.result === 'retry' ? 'attempt failed' : outcome.result}`, {
    ...ids,
    message_id: webhookMessageId(claimed),
    attempt: claimed.webhook.attempts + 1,
    status: delivery.status,
    ...(delivery.reason && !delivery.delivered ? { reason: delivery.reason } : {}),
    ...(outcome.result === 'retry' ? { next_attempt_at: new Date(outcome.nextDue).toISOString() } : {}),
    ...(recorded ? {} : { recorded: false }),
  });
  return outcome.result;
}

/**
 * The first attempt, by whoever ended the run, at once: the run as that write left it (pending, due
 * now). Nothing when the run asked for no webhook. Never throws.
 */
export async function firstAttempt(deps: WebhookDeps, ended: ExecutionRecord, options: AttemptOptions = {}): Promise<AttemptResult | undefined> {
  if (!ended.webhook_url || ended.webhook?.status !== 'pending' || ended.webhook_due === undefined) return undefined;
  return attemptWebhook(deps, { account_id: ended.account_id, execution_id: ended.execution_id, webhook_due: ended.webhook_due }, options);
}

/**
 * A redelivery's attempt (the sender invoked with `{account_id, execution_id}`): the run's webhook, if it
 * is pending and no live claim holds it. Like every attempt of the scheduled sender, it makes the
 * account's first secret if it has none (see `sendDueWebhooks`).
 */
export async function sendNow(deps: WebhookDeps, accountId: string, executionId: string): Promise<AttemptResult | undefined> {
  const record = await deps.executions.get(accountId, executionId);
  if (!record?.webhook_url || record.webhook?.status !== 'pending' || record.webhook_due === undefined) return undefined;
  // A live claim's lease, or the schedule's next attempt, as its due time: the claim refuses it ('not-claimed').
  return attemptWebhook(deps, { account_id: accountId, execution_id: executionId, webhook_due: record.webhook_due }, { makeSecret: true });
}

export interface SenderRun {
  /** Due webhooks read from the index. */
  readonly due: number;
  /** Not attempted by this run: past an account's or the run's share, or out of time (left due, or moved later). */
  readonly deferred: number;
  /** Of those, moved later (an account's backlog past its share in a shard read only in part, spread over the next minutes). */
  readonly postponed: number;
  readonly results: Partial<Record<AttemptResult, number>>;
}

/**
 * One run of the scheduled sender: reads every shard's webhooks due now (oldest first, bounded), takes
 * at most `perAccount` per account and `perRun` in all, and makes their attempts, `concurrency` at a
 * time, starting none after `startBy` (epoch ms). Two runs at once are safe: each attempt is claimed.
 * An account with no secret yet gets its first one from the attempt, as from the worker's (the system
 * actor's webhook_secret.created event): a run that ended without its worker (failed by housekeeping, or
 * by the workflows function, which only opens secrets) would otherwise have nothing to be signed with.
 */
export async function sendDueWebhooks(deps: WebhookDeps, startBy: number, limits: SenderLimits = DEFAULT_SENDER_LIMITS): Promise<SenderRun> {
  const nowMs = clock(deps).getTime();
  const shards = Array.from({ length: WEBHOOK_SHARDS }, (_, i) => String(i));
  const read = await Promise.all(shards.map((shard) => readShard(deps, shard, nowMs, limits)));
  // What the shards whose read stopped at `scanPerShard` with more due behind hold: only there can a
  // backlog keep other accounts' webhooks from being read at all.
  const inCutShard = new Set(read.filter((r) => r.cut).flatMap((r) => r.items));
  const due = read.flatMap((r) => r.items).sort((a, b) => a.webhook_due - b.webhook_due);
  const perAccount = new Map<string, number>();
  const chosen: DueWebhook[] = [];
  // Past its account's share in a cut shard, and due for more than a run's interval (not a redelivery or
  // a first attempt just made due): moved later, so that the next runs read past it.
  const beyondShare: DueWebhook[] = [];
  for (const item of due) {
    const taken = perAccount.get(item.account_id) ?? 0;
    perAccount.set(item.account_id, taken + 1);
    if (taken < limits.perAccount) {
      if (chosen.length < limits.perRun) chosen.push(item);
    } else if (inCutShard.has(item) && item.webhook_due <= nowMs - SENDER_INTERVAL_MS) beyondShare.push(item);
  }
  const postponing = postponeBacklogs(deps, beyondShare, perAccount, nowMs, startBy, limits);
  const results: Partial<Record<AttemptResult, number>> = {};
  const started = await eachUntil(chosen, limits.concurrency, startBy, async (item) => {
    const result = await attemptWebhook(deps, item, { makeSecret: true });
    results[result] = (results[result] ?? 0) + 1;
  });
  return { due: due.length, deferred: due.length - started, postponed: await postponing, results };
}

/**
 * Runs `work` on the items in order, `concurrency` at a time, starting none at or after `startBy` (epoch
 * ms); returns how many were started.
 */
async function eachUntil<T>(items: readonly T[], concurrency: number, startBy: number, work: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  let started = 0;
  const worker = async () => {
    for (;;) {
      const item = items[next++];
      if (item === undefined || Date.now() >= startBy) return;
      started++;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return started;
}

/**
 * Moves the webhooks of accounts past their share (oldest first, `postponePerRun` at most) to a random
 * due time over the next minutes: as many minutes as the account's backlog read takes at its share per
 * run, up to POSTPONE_SPREAD_MINUTES. Each move is conditioned on the due time read (a claim or a
 * redelivery meanwhile wins). The account's own webhooks wait about as long as they would have at its
 * share; other accounts' stop waiting behind them. Returns how many were moved.
 */
async function postponeBacklogs(
  deps: WebhookDeps,
  beyondShare: readonly DueWebhook[],
  readPerAccount: ReadonlyMap<string, number>,
  nowMs: number,
  startBy: number,
  limits: SenderLimits,
): Promise<number> {
  let moved = 0;
  // Few at a time: every move of one tenant writes its partition, beside the attempts of the run.
  await eachUntil(beyondShare.slice(0, limits.postponePerRun), POSTPONE_CONCURRENCY, startBy, async (item) => {
    const minutes = Math.min(POSTPONE_SPREAD_MINUTES, Math.ceil((readPerAccount.get(item.account_id) ?? 0) / limits.perAccount));
    const dueAt = nowMs + SENDER_INTERVAL_MS + Math.floor(Math.random() * minutes * 60_000);
    try {
      if (await deps.executions.postponeWebhook(item.account_id, item.execution_id, item.webhook_due, dueAt)) moved++;
    } catch (error) {
      // A move that fails (DynamoDB throttling one tenant's partition) leaves the webhook due: a later run
      // moves or sends it. It must not fail the run while its attempts are in flight.
      log('warn', 'a webhook could not be moved later', {
        account_id: item.account_id,
        execution_id: item.execution_id,
        error: error instanceof Error ? error.name : 'Error',
      });
    }
  });
  return moved;
}

/** How often the scheduled sender runs. */
const SENDER_INTERVAL_MS = WEBHOOK_SENDER_INTERVAL_MINUTES * 60_000;
/** Moves in flight at once. */
const POSTPONE_CONCURRENCY = 4;

/**
 * A shard's due webhooks, oldest first: pages of the index until it has nothing more due, or `scanPerShard`
 * entries were read, or it alone has enough for the run within the per-account share.
 */
async function readShard(deps: WebhookDeps, shard: string, nowMs: number, limits: SenderLimits): Promise<{ items: DueWebhook[]; cut: boolean }> {
  const items: DueWebhook[] = [];
  const perAccount = new Map<string, number>();
  let usable = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await deps.executions.dueWebhooks(shard, nowMs, Math.min(500, limits.scanPerShard - items.length), start);
    for (const item of page.items) {
      items.push(item);
      const taken = perAccount.get(item.account_id) ?? 0;
      perAccount.set(item.account_id, taken + 1);
      if (taken < limits.perAccount) usable++;
    }
    start = page.next;
  } while (start && items.length < limits.scanPerShard && usable < limits.perRun);
  // Stopped by the read bound, with more due behind it (not because the run had enough to do).
  return { items, cut: start !== undefined && items.length >= limits.scanPerShard && usable < limits.perRun };
}
