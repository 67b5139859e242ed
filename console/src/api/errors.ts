/**
 * The one mapping from API errors (API.md §3) to sentences a person understands, each saying what to
 * do. Components never parse an error body: they call `call()` and show `ApiProblem.message` (and
 * `fields` beside the form's fields).
 */
import type { Schemas } from './client';

type ErrorBody = Partial<Schemas['Error']> & Record<string, unknown>;

export interface ProblemFacts {
  /** The account's key limit, when the caller knows it (for a KEY_LIMIT_REACHED without `limit`, from an API before it had one). */
  readonly maxKeys?: number;
}

export class ApiProblem extends Error {
  constructor(
    message: string,
    /** The HTTP status; 0 when the API could not be reached. */
    readonly status: number,
    readonly code: string | undefined,
    /** VALIDATION_ERROR: the message for each field of the request (its first path segment). */
    readonly fields: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiProblem';
  }
}

/** The whole seconds `Retry-After` asks for, if it does. */
function retryAfter(response: Response): number | undefined {
  const value = Number(response.headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? Math.ceil(value) : undefined;
}

/** How long a rate-limited caller waits: `Retry-After`, else until the window's `X-RateLimit-Reset`. */
function seconds(response: Response): number | undefined {
  const asked = retryAfter(response);
  if (asked !== undefined) return asked;
  const reset = Number(response.headers.get('X-RateLimit-Reset'));
  if (Number.isFinite(reset) && reset > 0) return Math.max(1, Math.ceil(reset - Date.now() / 1000));
  return undefined;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The contract's field name for a detail's `field` (`workspaces.0` → `workspaces`). */
function fieldOf(field: string): string {
  return field.replace(/^\//, '').split(/[./[]/)[0] ?? field;
}

export function describeProblem(body: ErrorBody | undefined, response: Response, facts: ProblemFacts = {}): ApiProblem {
  const status = response.status;
  const code = typeof body?.code === 'string' ? body.code : undefined;
  const said = typeof body?.error === 'string' ? body.error : undefined;
  const requestId = (typeof body?.request_id === 'string' ? body.request_id : undefined) ?? response.headers.get('x-request-id') ?? undefined;
  const problem = (message: string, fields?: Record<string, string>) => new ApiProblem(message, status, code, fields);
  switch (code) {
    case 'VALIDATION_ERROR': {
      const fields: Record<string, string> = {};
      for (const detail of body?.details ?? []) fields[fieldOf(detail.field)] ??= detail.message;
      const list = (body?.details ?? []).map((d) => `${d.field}: ${d.message}`).join('; ');
      return problem(`Some of what you entered was not accepted${list ? ` (${list})` : said ? ` (${said})` : ''}. Correct it and try again.`, fields);
    }
    case 'UNAUTHORIZED':
      return problem('Your session has ended. Sign in again.');
    case 'CAPABILITY_DENIED':
      return problem(
        `You need the “${String(body?.required ?? 'required')}” permission for this, and you do not have it in this account. Ask an admin of the account for it.`,
      );
    case 'WORKSPACE_DENIED':
      return problem(`You cannot reach the workspace “${String(body?.workspace_id ?? '')}”. Choose a workspace you have access to.`);
    case 'TIER_CEILING_EXCEEDED':
      return problem(
        `The ${String(body?.tier ?? 'account’s')} tier does not allow the “${String(body?.capability ?? '')}” permission. Choose other permissions, or have the account upgraded: ask whoever manages your Knouds subscription.`,
      );
    case 'ENVIRONMENT_DENIED':
      return problem(`A test key cannot manage ${String(body?.environment ?? 'live')} keys. Use a live key or sign in as a person.`);
    case 'NOT_A_MEMBER':
      return problem('You are not a member of this account (any more). Choose another account, or ask an admin of this account to add you.');
    case 'NOT_FOUND':
      return problem('It no longer exists: someone may have deleted or rotated it. The list shows what is there now.');
    case 'KEY_LIMIT_REACHED': {
      // The body's `limit` and `active` (API.md §3); the account's limit as the page knows it, for an older API.
      const max = typeof body?.limit === 'number' ? body.limit : facts.maxKeys;
      const active = typeof body?.active === 'number' ? body.active : max;
      return problem(max ? `${active} of ${max} keys: delete one first.` : 'This account holds the most keys it may: delete one first.');
    }
    case 'KEY_ROTATED':
      return problem(`This key has been rotated${typeof body?.rotated_to === 'string' ? ` (its replacement is ${body.rotated_to})` : ''}: edit its replacement instead.`);
    case 'ALREADY_EXISTS':
      return problem('This has been done already (a key can be rotated once): the list shows its replacement.');
    case 'IDEMPOTENCY_IN_PROGRESS':
      return problem('Your earlier attempt is still being processed. Wait a moment, then look at the list before trying again.');
    case 'IDEMPOTENCY_KEY_REUSED':
      return problem('This form was already sent with other values. Close the dialog and start again.');
    case 'PAYLOAD_TOO_LARGE':
      return problem('What you sent is too large. Shorten it and try again.');
    case 'RATE_LIMIT_EXCEEDED':
    case 'THROTTLED':
    case 'CONCURRENCY_LIMIT_EXCEEDED': {
      const wait = seconds(response);
      return problem(`Too many requests: try again in ${wait ? plural(wait, 'second') : 'a minute'}.`);
    }
    default:
  }
  if (status === 429) {
    const wait = seconds(response);
    return problem(`Too many requests: try again in ${wait ? plural(wait, 'second') : 'a minute'}.`);
  }
  if (status === 503) {
    // Retry-After alone: a 503 says nothing about the rate limit's window.
    const wait = retryAfter(response);
    if (wait) return problem(`The API is not available right now: try again in ${plural(wait, 'second')}.`);
  }
  if (status >= 500) {
    return problem(
      `Something went wrong on our side${status === 504 ? ' (the API took too long to answer)' : ''}. Try again in a moment; if it keeps happening, report request ID ${requestId ?? 'unknown'}.`,
    );
  }
  if (status === 403) return problem(`You are not allowed to do this in this account${said ? ` (${said})` : ''}. Ask an admin of the account.`);
  return problem(`The API refused this request${said ? `: ${said}` : ''} (HTTP ${status}). Check what you entered and try again.`);
}

export const NETWORK_PROBLEM = 'The API could not be reached. Check your connection, then try again.';

/**
 * Awaits an openapi-fetch call: its data, or an ApiProblem in words (also for a network failure).
 */
export async function call<D>(pending: Promise<{ data?: D; error?: unknown; response: Response }>, facts?: ProblemFacts): Promise<D> {
  let result: { data?: D; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch {
    throw new ApiProblem(NETWORK_PROBLEM, 0, undefined);
  }
  if (result.response.ok) return result.data as D;
  const body = result.error && typeof result.error === 'object' ? (result.error as ErrorBody) : undefined;
  throw describeProblem(body, result.response, facts);
}

/** The thing acted on changed meanwhile (deleted, rotated): the list shown is out of date. */
export function isStale(error: unknown): boolean {
  return error instanceof ApiProblem && (error.code === 'NOT_FOUND' || error.code === 'KEY_ROTATED' || error.code === 'ALREADY_EXISTS');
}

/** Any thrown value as words. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiProblem) return error.message;
  return 'Something unexpected went wrong in the console. Reload the page and try again.';
}
