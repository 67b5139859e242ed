/**
 * The time limits of a run, apart from the services so the stack (lib/) can size the functions' timeouts
 * from them without bundling the run code.
 */

/** How long a synchronous run may take, from the request reaching the workflows function: API Gateway gives up at 29 s. */
export const SYNC_BUDGET_MS = 25_000;

/**
 * Kept after a sync run's budget to record its outcome: the final write and the SDK's retries of it
 * (each attempt up to 1.5 s when DynamoDB does not answer), with room to spare.
 */
export const SYNC_OUTCOME_RESERVE_MS = 20_000;

/** The workflows function's timeout: the sync budget and the reserve to record the outcome. */
export const WORKFLOWS_TIMEOUT_SECONDS = Math.ceil((SYNC_BUDGET_MS + SYNC_OUTCOME_RESERVE_MS) / 1000);
