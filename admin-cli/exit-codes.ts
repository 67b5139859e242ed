/**
 * The admin CLI's exit codes: one per class of error, stable (scripts branch on them), in the spirit of
 * sysexits(3) but small. `--help` and the README list them; admin-cli.test.ts checks each class.
 */
import { outcomeUnknown } from '../lambdas/shared/ddb.js';

export const EXIT = {
  ok: 0,
  /** A bug, or an error of AWS or the local provider that is none of the classes below. */
  unexpected: 1,
  /** Unknown command or flag, a missing flag or a bad value: nothing was done. */
  usage: 2,
  /** The account, key or person does not exist (NOT_FOUND). */
  notFound: 3,
  /** Already exists, already rotated, the key limit (the 409s: ALREADY_EXISTS, KEY_LIMIT_REACHED, …). */
  conflict: 4,
  /** Refused by a rule: the tier ceiling, a capability or environment rule, invalid input (VALIDATION_ERROR). */
  refused: 5,
  /** No stack to talk to: none running locally, the stack or its tables not found, AWS credentials missing or not allowed. */
  unreachable: 6,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  done
  1  unexpected error (the message says what), or a change whose answer was lost (OUTCOME_UNKNOWN:
     it may have been made; look before trying again)
  2  bad usage: unknown command or flag, a missing flag, a bad value (nothing was done)
  3  not found: the account, key or person does not exist (NOT_FOUND)
  4  conflict or limit: already exists, already rotated, the key limit (ALREADY_EXISTS, KEY_LIMIT_REACHED)
  5  refused by a rule: the tier ceiling, invalid input (TIER_CEILING_EXCEEDED, VALIDATION_ERROR)
  6  cannot reach the stack: no local stack running, no such stack or table, AWS credentials missing,
     expired or not allowed (AccessDenied)`;

export const EXIT_CODES_LINE =
  'Exit codes: 0 done, 1 unexpected, 2 bad usage, 3 not found, 4 conflict or limit, 5 refused, 6 cannot reach the stack.';

/** An API error's class, by its HTTP status, as a client of the API would read it. */
export function exitOfStatus(status: number): number {
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412 || status === 429) return EXIT.conflict;
  if (status >= 400 && status < 500) return EXIT.refused;
  return EXIT.unexpected;
}

/**
 * AWS SDK errors that mean "cannot reach the stack with these credentials": no credentials, expired or
 * unknown ones, an IAM refusal, a table or user pool that is not there (the stack was deleted).
 */
const UNREACHABLE_ERRORS = new Set([
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'ResourceNotFoundException',
  'TimeoutError',
]);
/** Network failures before any answer (Node's system error codes). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

export function isUnreachable(error: Error): boolean {
  if (UNREACHABLE_ERRORS.has(error.name)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/** Failures after a request went out (no answer, a cut connection): a write may have landed. */
const LOST_ANSWER_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/**
 * Whether a write may have landed though it failed: no answer (a timeout, a cut connection), or an
 * answer of DynamoDB's that does not say (a 5xx, a transaction still in progress, any failure after an
 * earlier attempt that may have landed: `outcomeUnknown`, as the functions judge it). Not a connection
 * refused or a name not found: nothing went out.
 */
export function mayHaveLanded(error: Error): boolean {
  if (error.name === 'TimeoutError') return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return LOST_ANSWER_CODES.has(code);
  return '$metadata' in error && outcomeUnknown(error);
}
