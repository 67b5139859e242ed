/**
 * Housekeeping (API.md §7): what nobody's request cleans up, done on a schedule (lambdas/housekeeping,
 * every `sweepInterval`) and on demand (`npm run admin -- sweep`).
 * - Keys past their expiry, or past the grace of their rotation, give their slot back (each with its
 *   TTL and a `key.expired` event by the system actor, in one transaction):
 *   KeysRepository.releaseExpiredKeys, the release a create on a full account makes too.
 * - Runs still QUEUED or RUNNING past their deadline end FAILED "timed out", in the same terminal write
 *   as any end of a run (the in-flight slot freed, the webhook marked pending for the scheduled sender):
 *   ExecutionsRepository.failOverdue. A run's deadline:
 *     RUNNING: its lease (`lease_until`), the moment the attempt holding it is certainly gone: a sync run
 *       105 s after its request (the workflows function's 45 s timeout and a 60 s margin), an async run
 *       its worker invocation's end (at most 15 min) and 60 s; a run from before leases, 16 min after it
 *       started.
 *     QUEUED: 76 min after its creation (run-budget.ts QUEUED_DEADLINE_MS): Lambda gives up on a worker
 *       event after an hour (then it is dead-lettered) and an invocation may still take the run until
 *       its 15-minute timeout; a minute of margin.
 * Every change is one conditional write (or transaction) on the item itself, so a run is idempotent,
 * two runs at once release or fail each thing once (the second's conditions fail), and a run that stops
 * on an error leaves each thing done or not, never half: the next run does the rest. Bounded: at most
 * `keysPerRun` keys and `executionsPerRun` runs per run (`executionsPerAccount` of one account), and
 * nothing started after `startBy`; what is left waits for the next run.
 */
import { isThrottled } from '../ddb.js';
import { log } from '../log.js';
import type { AccountsRepository, ScannedAccount } from '../repositories/accounts.js';
import type { AuditRepository } from '../repositories/audit.js';
import { newAttemptId, type ExecutionsRepository, type OverdueCutoffs } from '../repositories/executions.js';
import type { KeysRepository } from '../repositories/keys.js';
import { LEASE_MARGIN_MS, QUEUED_DEADLINE_MS, WORKER_TIMEOUT_SECONDS } from '../run-budget.js';

export interface HousekeepingLimits {
  /** Keys released per run, all accounts together. */
  readonly keysPerRun: number;
  /** Overdue runs failed per run, all accounts together. */
  readonly executionsPerRun: number;
  /** Overdue runs read and failed per account per run: one tenant's backlog cannot take a run. */
  readonly executionsPerAccount: number;
  /** Accounts swept at once. */
  readonly concurrency: number;
  /** Accounts per page of the accounts table's scan. */
  readonly scanPage: number;
  /**
   * Parallel-scan segments of the accounts table, each run visiting them from a random one: a run that
   * runs out of time leaves a different part of the table for the next.
   */
  readonly segments: number;
  /** Accounts holding a plaintext webhook secret of an earlier release handled per run (each sealing a KMS call). */
  readonly secretsPerRun: number;
}

/** Accounts failing one after another (none swept between) that halt a run: DynamoDB failing, not one account. */
export const MAX_FAILURES_IN_A_ROW = 3;

export const DEFAULT_HOUSEKEEPING_LIMITS: HousekeepingLimits = {
  keysPerRun: 500,
  executionsPerRun: 200,
  executionsPerAccount: 50,
  concurrency: 8,
  scanPage: 100,
  segments: 16,
  secretsPerRun: 100,
};

export interface HousekeepingDeps {
  readonly keys: KeysRepository;
  /** Where each release writes its `key.expired` event, in the release's transaction. */
  readonly audit: AuditRepository;
  readonly executions: ExecutionsRepository;
  readonly accounts: AccountsRepository;
  /**
   * Seal the webhook secrets an earlier release kept in the clear (`accounts` needs a SecretBox that may
   * seal): the housekeeping function does; the admin CLI's `sweep`, which has no key, leaves them to it.
   * @default false
   */
  readonly sealPlaintextSecrets?: boolean;
  readonly now?: () => Date;
  readonly limits?: Partial<HousekeepingLimits>;
  /** Hears of each key released and each run failed. @default a log line each (the function's) */
  readonly report?: (message: string, fields: Record<string, unknown>) => void;
}

export interface SweepResult {
  /** Keys whose slot this run released. */
  readonly released_keys: number;
  /** Runs this run failed "timed out". */
  readonly failed_executions: number;
  /**
   * Webhook secrets an earlier release kept in the clear that this run sealed in place (or, where a sealed
   * one was there too, removed).
   */
  readonly sealed_secrets: number;
  /** Accounts whose plaintext secret this run could not seal (KMS or DynamoDB refusing): the next run tries again. */
  readonly seal_failures: number;
  /** Accounts looked at. */
  readonly accounts: number;
  /** False when a bound or the time stopped the run with work perhaps left, or a secret was left unsealed: the next run continues. */
  readonly complete: boolean;
}

/** A run that stopped on an error (DynamoDB failing, say), with what it had done: the next run continues. */
export class SweepStopped extends Error {
  override readonly name = 'SweepStopped';
  constructor(
    readonly partial: SweepResult,
    cause: unknown,
  ) {
    super(`housekeeping stopped on ${errorName(cause)} after releasing ${partial.released_keys} key(s) and failing ${partial.failed_executions} run(s); the next run continues`, { cause });
  }
}

const clock = (deps: { now?: () => Date }) => (deps.now ?? (() => new Date()))();

function errorName(error: unknown): string {
  const name = error instanceof Error ? error.name : '';
  return /^\w{1,64}$/.test(name) ? name : 'Error';
}

/** When runs in flight at `now` are overdue (see the module's comment). */
export function overdueCutoffs(now: Date): OverdueCutoffs {
  return {
    queuedBefore: new Date(now.getTime() - QUEUED_DEADLINE_MS),
    legacyStartedBefore: new Date(now.getTime() - WORKER_TIMEOUT_SECONDS * 1000 - LEASE_MARGIN_MS),
  };
}

/**
 * One housekeeping run over every account: their expired keys' slots released, their overdue runs
 * failed, within the limits and before `startBy` (epoch ms). Throws SweepStopped (with what it did) when
 * a call failed. An account's failure leaves that account to the next run and the sweep goes on to the
 * others; throttling, a failed scan, or MAX_FAILURES_IN_A_ROW accounts failing in a row halt it: it starts
 * nothing more, lets what is in progress end, and leaves the rest.
 */
export async function sweep(deps: HousekeepingDeps, options: { readonly startBy?: number } = {}): Promise<SweepResult> {
  const limits = { ...DEFAULT_HOUSEKEEPING_LIMITS, ...deps.limits };
  const report = deps.report ?? ((message: string, fields: Record<string, unknown>) => log('info', message, fields));
  const startBy = options.startBy ?? Number.POSITIVE_INFINITY;
  // This run's attempt id: the owner it writes on the runs it ends (so a retried write knows its own).
  const owner = newAttemptId();
  let keysLeft = limits.keysPerRun;
  let executionsLeft = limits.executionsPerRun;
  let sealsLeft = limits.secretsPerRun;
  let released = 0;
  let failed = 0;
  let sealed = 0;
  let sealFailures = 0;
  let accounts = 0;
  let complete = true;
  let failure: { error: unknown } | undefined;
  /** The first account's failure that did not halt the run. */
  let accountFailure: { error: unknown } | undefined;
  const halted = () => failure !== undefined || Date.now() >= startBy;
  /** Halted with an account's work perhaps left (time, or another account's failure): the run is not complete. */
  const stoppedMidAccount = () => {
    if (!halted()) return false;
    complete = false;
    return true;
  };
  /** One more unit of `left`'s work, if the run may still do it. */
  const take = (left: () => number, spend: () => void) => () => {
    if (halted() || left() <= 0) {
      complete = false;
      return false;
    }
    spend();
    return true;
  };
  const takeKey = take(() => keysLeft, () => keysLeft--);
  const takeExecution = take(() => executionsLeft, () => executionsLeft--);
  const takeSeal = take(() => sealsLeft, () => sealsLeft--);

  const failOverdueRuns = async (account: ScannedAccount) => {
    if (executionsLeft <= 0) {
      complete = false;
      return;
    }
    const now = clock(deps);
    const cutoffs = overdueCutoffs(now);
    const overdue = await deps.executions.overdue(account.account_id, now, cutoffs, limits.executionsPerAccount);
    if (overdue.length >= limits.executionsPerAccount) complete = false;
    for (const run of overdue) {
      if (!takeExecution()) return;
      const ended = await deps.executions.failOverdue(run, owner, clock(deps), cutoffs);
      if (!ended) continue;
      failed++;
      report('overdue run failed: timed out', {
        account_id: run.account_id,
        execution_id: run.execution_id,
        was: run.status,
        created_at: run.created_at,
        ...(run.lease_until !== undefined ? { lease_until: new Date(run.lease_until).toISOString() } : {}),
        webhook: ended.webhook?.status ?? null,
      });
    }
  };

  /**
   * The account's plaintext secret of an earlier release, sealed. Last, and on its own: a failure here
   * (KMS refusing or throttling, a value it cannot encrypt) is logged and counted (the run not complete),
   * and stops neither this account's nor any other account's releases and timeouts; the next run tries again.
   */
  const sealPlaintext = async (account: ScannedAccount) => {
    if (!deps.sealPlaintextSecrets || !account.plaintext_secret || !takeSeal()) return;
    try {
      const result = await deps.accounts.sealPlaintextSecret(account.account_id);
      if (result === 'none') return;
      sealed++;
      report(
        result === 'sealed' ? 'webhook secret kept in the clear by an earlier release sealed' : 'plaintext webhook secret removed: a sealed one is in force',
        { account_id: account.account_id },
      );
    } catch (error) {
      // Work left for the next run.
      complete = false;
      sealFailures++;
      log('warn', 'webhook secret kept in the clear not sealed; the next run tries again', { account_id: account.account_id, error: errorName(error) });
    }
  };

  const sweepAccount = async (account: ScannedAccount) => {
    accounts++;
    if (account.active_keys > 0) {
      // Counted as each lands, so a failure later in the account loses none of the count.
      await deps.keys.releaseExpiredKeys(account.account_id, clock(deps), deps.audit, {
        take: takeKey,
        onRelease: (keyId) => {
          released++;
          report('expired key’s slot released', { account_id: account.account_id, key_id: keyId });
        },
      });
    }
    if (stoppedMidAccount()) return;
    await failOverdueRuns(account);
    if (stoppedMidAccount()) return;
    await sealPlaintext(account);
  };

  // The accounts table, segment by segment from a random one, a page at a time as the workers need it.
  const first = Math.floor(Math.random() * limits.segments);
  let segment = 0;
  let start: Record<string, unknown> | undefined;
  let exhausted = false;
  let reading: Promise<void> | undefined;
  const queue: ScannedAccount[] = [];
  const readMore = () =>
    (reading ??= (async () => {
      try {
        const page = await deps.accounts.scanPage(
          limits.scanPage,
          start,
          { segment: (first + segment) % limits.segments, of: limits.segments },
          { plaintextSecrets: deps.sealPlaintextSecrets === true },
        );
        queue.push(...page.items);
        start = page.next;
        if (!start && ++segment >= limits.segments) exhausted = true;
      } finally {
        reading = undefined;
      }
    })());
  const nextAccount = async (): Promise<ScannedAccount | undefined> => {
    while (queue.length === 0 && !exhausted && !halted()) await readMore();
    return halted() ? undefined : queue.shift();
  };
  // One account's failure (a transaction conflicting for ever with its busy account item, say) is that
  // account's: logged, its work left to the next run, and the sweep goes on to the others, so that no
  // tenant keeps the accounts after it from being swept. What points at DynamoDB itself halts the run:
  // throttling (going on would add to it), or MAX_FAILURES_IN_A_ROW accounts failing one after another.
  let failuresInARow = 0;
  const worker = async () => {
    try {
      for (let account = await nextAccount(); account; account = await nextAccount()) {
        try {
          await sweepAccount(account);
          failuresInARow = 0;
        } catch (error) {
          accountFailure ??= { error };
          complete = false;
          log('warn', 'account not swept: the next run tries again', { account_id: account.account_id, error: errorName(error) });
          if (isThrottled(error) || ++failuresInARow >= MAX_FAILURES_IN_A_ROW) throw error;
        }
      }
    } catch (error) {
      failure ??= { error };
    }
  };
  await Promise.all(Array.from({ length: limits.concurrency }, worker));
  // A failed call left its own work undone, even when it came last.
  if (!exhausted || queue.length > 0 || failure) complete = false;
  const result: SweepResult = { released_keys: released, failed_executions: failed, sealed_secrets: sealed, seal_failures: sealFailures, accounts, complete };
  // Still an error (so that the function's errors alarm sees it), once every other account had its turn.
  const stoppedBy = failure ?? accountFailure;
  if (stoppedBy) throw new SweepStopped(result, stoppedBy.error);
  return result;
}
