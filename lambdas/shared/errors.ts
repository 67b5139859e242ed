/**
 * One error hierarchy for the whole codebase. Services throw these; the HTTP error mapper turns them
 * into the contract's bodies (API.md §3); the admin CLI prints their message.
 */
import { ACCOUNT_ID_PATTERN } from './account-id.js';
import type { Capability } from './capabilities.js';

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export abstract class ApiError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** Extra contract fields of the error body. */
  extra(): Record<string, unknown> {
    return {};
  }
}

export class ValidationError extends ApiError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  constructor(
    readonly details: readonly FieldError[],
    message = 'The request is not valid',
  ) {
    super(message);
  }
  static field(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }], `${field}: ${message}`);
  }
  override extra() {
    return { details: this.details };
  }
}

export class CapabilityDeniedError extends ApiError {
  readonly status = 403;
  readonly code = 'CAPABILITY_DENIED';
  constructor(
    readonly required: Capability,
    readonly actual: readonly Capability[],
  ) {
    super('Insufficient capability');
  }
  override extra() {
    return { required: this.required, actual: this.actual };
  }
}

export class WorkspaceDeniedError extends ApiError {
  readonly status = 403;
  readonly code = 'WORKSPACE_DENIED';
  constructor(readonly workspaceId: string) {
    super(`This key cannot reach workspace '${workspaceId}'`);
  }
  override extra() {
    return { workspace_id: this.workspaceId };
  }
}

export class TierCeilingExceededError extends ApiError {
  readonly status = 403;
  readonly code = 'TIER_CEILING_EXCEEDED';
  constructor(
    readonly tier: string,
    readonly capability: Capability,
  ) {
    super(`The '${tier}' tier does not allow the capability '${capability}'`);
  }
  override extra() {
    return { tier: this.tier, capability: this.capability };
  }
}

/** A `test` key managing (creating, editing, rotating, revoking) a `live` key (API.md §2). */
export class EnvironmentDeniedError extends ApiError {
  readonly status = 403;
  readonly code = 'ENVIRONMENT_DENIED';
  constructor(readonly environment: 'live' | 'test') {
    super(`A test key can only manage test keys; this is a ${environment} key: use a live key`);
  }
  override extra() {
    return { environment: this.environment };
  }
}

/** At most this many characters of a `Knouds-Account` value that is no account id are shown back. */
export const SHOWN_ACCOUNT_HEADER_LENGTH = 64;

/**
 * A header's value as a message shows it: cut to SHOWN_ACCOUNT_HEADER_LENGTH characters (`…` marks the
 * cut), a backslash and anything but printable ASCII escaped (`\uXXXX`), so that no control character,
 * line break or invisible character reaches a client's screen or a log as itself.
 */
function shownHeaderValue(value: string): string {
  const cut = value.length > SHOWN_ACCOUNT_HEADER_LENGTH ? value.slice(0, SHOWN_ACCOUNT_HEADER_LENGTH) : value;
  const escaped = cut.replace(/[^\x20-\x7E]|\\/g, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  return cut === value ? escaped : `${escaped}…`;
}

/**
 * A signed-in person who is no member of the account asked for (or of any account) (API.md §1).
 * `accountId`: the account asked for; null when none was named (and the person belongs to none). A
 * `Knouds-Account` value that is no account id (empty, or not of its shape) names no account of theirs
 * either: still NOT_A_MEMBER, with a message that says so rather than that they belong nowhere.
 */
export class NotAMemberError extends ApiError {
  readonly status = 403;
  readonly code = 'NOT_A_MEMBER';
  constructor(readonly accountId: string | null) {
    super(
      accountId === null
        ? 'You are not a member of any account: ask an account admin to add you'
        : accountId === ''
          ? 'The Knouds-Account header is empty: name one of your accounts in it (GET /me without the header lists them), or leave it out if you belong to one account only'
          : !ACCOUNT_ID_PATTERN.test(accountId)
            ? `'${shownHeaderValue(accountId)}' is not an account id: name one of your accounts in the Knouds-Account header (GET /me without the header lists them)`
            : `You are not a member of account '${accountId}': ask one of its admins to add you, or name another account in the Knouds-Account header`,
    );
  }
}

export class NotFoundError extends ApiError {
  readonly status = 404;
  readonly code = 'NOT_FOUND';
  constructor(message = 'Not found') {
    super(message);
  }
}

export class ConflictError extends ApiError {
  readonly status = 409;
  constructor(
    readonly code: 'ALREADY_EXISTS' | 'WORKFLOW_NOT_DEPLOYED' | 'EXECUTION_FINISHED' | 'EXECUTION_NOT_FINISHED',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The account holds its maximum of active keys (API.md §2, §3): 409 with `limit` (the maximum) and
 * `active` (the keys holding a slot now), and a message that says what to do.
 */
export class KeyLimitReachedError extends ApiError {
  readonly status = 409;
  readonly code = 'KEY_LIMIT_REACHED';
  constructor(
    readonly limit: number,
    readonly active: number,
  ) {
    super(
      `The account holds ${active} active keys, its limit of ${limit}: revoke one (DELETE /keys/{key_id}) and try again` +
        ' (a key rotated with a grace period keeps its slot until the grace ends; a rotation without one needs no free slot)',
    );
  }
  override extra() {
    return { limit: this.limit, active: this.active };
  }
}

/**
 * The key was rotated: an edit belongs on its replacement (409 KEY_ROTATED), and a key is rotated once
 * (409 ALREADY_EXISTS); both name the replacement in `rotated_to`.
 */
export class KeyRotatedError extends ApiError {
  readonly status = 409;
  constructor(
    readonly code: 'KEY_ROTATED' | 'ALREADY_EXISTS',
    readonly keyId: string,
    readonly rotatedTo: string,
  ) {
    super(
      code === 'KEY_ROTATED'
        ? `Key '${keyId}' has been rotated; edit its replacement '${rotatedTo}'`
        : `Key '${keyId}' was already rotated; its replacement is '${rotatedTo}'`,
    );
  }
  override extra() {
    return { rotated_to: this.rotatedTo };
  }
}

/** A model refused or failed on a direct run (POST /models/{id}/run); the message is the model's. */
export class ModelFailedError extends ApiError {
  readonly status = 422;
  readonly code = 'MODEL_FAILED';
}

export class PayloadTooLargeError extends ApiError {
  readonly status = 413;
  readonly code = 'PAYLOAD_TOO_LARGE';
  constructor(message = 'The request body is too large') {
    super(message);
  }
}

export class RateLimitExceededError extends ApiError {
  readonly status = 429;
  readonly code = 'RATE_LIMIT_EXCEEDED';
  constructor(readonly resetEpochSeconds: number) {
    super('Rate limit exceeded; retry after the time in the Retry-After header');
  }
}

/**
 * The account already has its tier's number of asynchronous executions in flight (API.md §4), or of
 * synchronous ones running at once (`kind: 'sync'`, our own limit: the contract names only the async
 * one, and the same code with `limit` the sync one is what a client already handles): 429 with
 * `limit`, and a Retry-After of CONCURRENCY_RETRY_AFTER_SECONDS (a slot frees when any run ends, which
 * the API cannot predict; runs take seconds to minutes, so a few seconds is a poll that neither hammers
 * the API nor keeps a client waiting long after a slot frees).
 */
export class ConcurrencyLimitExceededError extends ApiError {
  readonly status = 429;
  readonly code = 'CONCURRENCY_LIMIT_EXCEEDED';
  /**
   * `kind`: the runs the limit counts, the account's async runs (QUEUED or RUNNING) or its sync runs
   * (RUNNING, and direct runs of models that wait), refusing a sync workflow run or a direct model run.
   */
  constructor(
    readonly limit: number,
    readonly kind: 'async' | 'sync' | 'model' = 'async',
  ) {
    super(
      kind === 'async'
        ? `The account has its limit of ${limit} asynchronous executions in flight (QUEUED or RUNNING); retry after the time in the Retry-After header, or cancel one`
        : kind === 'sync'
          ? `The account has its limit of ${limit} synchronous executions running at once; retry after the time in the Retry-After header, or run this one with ?async=true`
          : `The account has its limit of ${limit} synchronous runs (workflows, and direct runs of models that wait) running at once; retry after the time in the Retry-After header, or run the model as a step of a workflow with ?async=true`,
    );
  }
  override extra() {
    return { limit: this.limit };
  }
}

/** The Retry-After (seconds) of a 429 CONCURRENCY_LIMIT_EXCEEDED. */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 5;

/**
 * An `Idempotency-Key` whose first request is still being served (API.md §4 "Retries and idempotency"):
 * 409 with Retry-After IDEMPOTENCY_RETRY_AFTER_SECONDS. Retried then, it gets the first answer once it is
 * kept, or runs again if the first request failed.
 */
export class IdempotencyInProgressError extends ApiError {
  readonly status = 409;
  readonly code = 'IDEMPOTENCY_IN_PROGRESS';
  constructor() {
    super('A request with this Idempotency-Key is still in progress; retry after the time in the Retry-After header');
  }
}

/** The Retry-After (seconds) of a 409 IDEMPOTENCY_IN_PROGRESS. */
export const IDEMPOTENCY_RETRY_AFTER_SECONDS = 1;

/** An `Idempotency-Key` sent again with another request (another body, path, query or key). */
export class IdempotencyKeyReusedError extends ApiError {
  readonly status = 422;
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  constructor() {
    super('This Idempotency-Key was used with a different request (method, path, query, body or API key) in the last 24 hours; use a new key for a new request');
  }
}
