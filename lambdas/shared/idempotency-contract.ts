/**
 * The contract's names and window for idempotent retries (API.md §4 "Retries and idempotency"), apart
 * from the service so the OpenAPI document can name them without bundling the service's code.
 */

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** On a replayed answer. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** How long a kept answer is replayed. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
