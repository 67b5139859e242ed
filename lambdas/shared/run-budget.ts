/**
 * The time limits of a run, apart from the services so the stack (lib/) can size the functions' timeouts
 * from them without bundling the run code.
 */

/** How long a synchronous run may take, from the request reaching the workflows function: API Gateway gives up at 29 s. */
export const SYNC_BUDGET_MS = 25_000;

/**
 * Kept after a sync run's budget to record its outcome: the final write, retried past the SDK's own
 * attempts (each up to 4 × 1.5 s when DynamoDB does not answer), new attempts starting only within
 * `FINAL_WRITE_WINDOW_MS` of the budget's end.
 */
export const SYNC_OUTCOME_RESERVE_MS = 20_000;

/** How long after a run's deadline another attempt at its final write may start. */
export const FINAL_WRITE_WINDOW_MS = 10_000;

/** The workflows function's timeout: the sync budget and the reserve to record the outcome. */
export const WORKFLOWS_TIMEOUT_SECONDS = Math.ceil((SYNC_BUDGET_MS + SYNC_OUTCOME_RESERVE_MS) / 1000);

/**
 * Added to a lease past the moment its holder is certainly gone (its function's timeout), against clock
 * differences between function instances.
 */
export const LEASE_MARGIN_MS = 60_000;

/** How often a running `sleep` checks for a cancel (one small read each). */
export const CANCEL_POLL_MS = 500;

/** The worker function's timeout (Lambda's longest). */
export const WORKER_TIMEOUT_SECONDS = 900;

/**
 * How long Lambda keeps a worker event (an async run) in its queue, retries included, before it gives up
 * and sends it to the dead-letter queue: past it, a run still QUEUED will never be taken by a worker.
 */
export const WORKER_MAX_EVENT_AGE_SECONDS = 3600;

/**
 * When a run still QUEUED is overdue (housekeeping fails it "timed out"): its worker event may arrive
 * until the event's maximum age, and the invocation it starts may take the run (the claim is retried)
 * until the worker's timeout; the margin covers clocks.
 */
export const QUEUED_DEADLINE_MS = (WORKER_MAX_EVENT_AGE_SECONDS + WORKER_TIMEOUT_SECONDS) * 1000 + LEASE_MARGIN_MS;

/** Kept back from the worker's timeout to record a run's outcome and send its webhook. */
export const WORKER_RESERVE_MS = 60_000;

/** How often the scheduled webhook sender runs (its EventBridge rule's rate). */
export const WEBHOOK_SENDER_INTERVAL_MINUTES = 1;

/**
 * The webhook sender's timeout: it runs every minute, and stops starting attempts 15 s before it ends
 * (an attempt's 5 s and recording it). Runs may overlap; every attempt is claimed.
 */
export const WEBHOOK_SENDER_TIMEOUT_SECONDS = 60;

/**
 * The housekeeping function's timeout. It stops starting work HOUSEKEEPING_RESERVE_MS before it (a
 * DynamoDB call that gets no answer is given up after about 6 s), so a run ends on its own, bounded,
 * and the next one continues.
 */
export const HOUSEKEEPING_TIMEOUT_SECONDS = 120;

/** Kept back from the housekeeping function's timeout: no account is started later than this before it. */
export const HOUSEKEEPING_RESERVE_MS = 20_000;
